/**
 * The multi-host tests with nodes that register the way engine-started nodes do (issue 18): the
 * manager runs `--provider kubernetes` in its own namespace against the fake Kubernetes API
 * (test/helpers/fake-kube-api.ts), which listens at the lab's bridge address like PostgreSQL and
 * the object store. Each pod the fake turns Running is a real `pixpool cache-node --announce
 * kubernetes` started on a free node host (the pod's IP is that host's address, POD_NAME its
 * name), which announces itself over the network; the manager checks the claim with the API
 * before the node joins. A pod deleted or scaled away ends its process (SIGTERM, SIGKILL after
 * 5 s, as the kubelet would) and frees its host. Under the history workload through both
 * frontends (test/helpers/history.ts):
 *
 * 1. the pool resized 1 → 4 → 2 (the StatefulSet gets replicas 1, 2, 3, 4, 3, 2);
 * 2. a node cut off from the manager between resizes: the manager deletes its pod, and the pod
 *    the StatefulSet makes again (on another host) announces its node, which takes its place;
 * 3. the manager restarted (SIGTERM, then the same command): it adopts the running pods, changes
 *    no replica count, writes nothing to the API, and every node process runs on;
 *
 * each ending with 0 stale and 0 failed operations, as in partitions.test.ts.
 *
 * Needs root (namespaces) and PostgreSQL on 127.0.0.1:5432 (DATABASE_URL), like the storage tests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeKubeApi, type FakePod, startFakeKubeApi } from '../helpers/fake-kube-api.ts';
import { createMultihostPool, type MultihostPool, NODE_PORT } from '../helpers/multihost-pool.ts';
import type { Host, HostProcess } from '../helpers/netns.ts';
import { sleep } from '../helpers/processes.ts';

/** At most four pods, and one more while a replaced pod's process ends. */
const NODE_HOSTS = 5;
/** What the kubelet gives a container between SIGTERM and SIGKILL here (5 s, not 30). */
const GRACE_MS = 5000;

/** One pod's run: its name and its node process. */
interface PodRun {
  pod: string;
  process: Promise<HostProcess>;
}

describe('pixpool on real hosts: nodes a StatefulSet starts announce themselves', {
  timeout: 180_000,
}, () => {
  let pool: MultihostPool;
  let kube: FakeKubeApi;
  let manager: HostProcess;
  /** Node hosts no pod runs on, the longest free first. */
  const free: Host[] = [];
  const runs = new Map<string, PodRun>(); // pod uid → its run

  const hostAt = (ip: string | undefined): Host => {
    const host = pool.nodeHosts.find((h) => h.address === ip);
    assert.ok(host, `no node host at ${ip}`);
    return host;
  };

  /** The pod's IP: a free host's address, taken until the pod is gone and its process ended. */
  function placePod(name: string): string {
    const host = free.shift();
    if (!host) throw new Error(`no free node host for pod ${name}`);
    return host.address;
  }

  /** A pod runs: its node starts on the pod's host and announces itself to the manager. */
  async function runPod(pod: FakePod): Promise<void> {
    const name = pod.metadata.name;
    const host = hostAt(pod.status.podIP);
    const started = pool.start(
      host,
      pool.cacheNodeArgs('--announce', 'kubernetes', '--advertise-url', host.url(NODE_PORT)),
      { label: `${host.name}-${name}`, extraEnv: { POD_NAME: name } },
    );
    runs.set(pod.metadata.uid, { pod: name, process: started });
    await started;
    pool.log(`pod ${name} runs on ${host.name}`);
  }

  /** A pod is gone: its process ends (SIGTERM, SIGKILL after the grace), its host is free. */
  async function endPod(pod: FakePod): Promise<void> {
    const run = runs.get(pod.metadata.uid);
    runs.delete(pod.metadata.uid);
    const node = await run?.process.catch(() => undefined);
    let ended = 'no process';
    if (node) {
      pool.forget(node);
      const t = performance.now();
      node.child.kill('SIGTERM');
      const timer = setTimeout(() => node.child.kill('SIGKILL'), GRACE_MS);
      const { code, signal } = await node.exited;
      clearTimeout(timer);
      ended = `its node ended (${signal ?? code}) ${Math.round(performance.now() - t)} ms after SIGTERM`;
    }
    const host = hostAt(pod.status.podIP);
    free.push(host);
    pool.log(`pod ${pod.metadata.name} gone, ${ended}; ${host.name} is free`);
  }

  const managerArgs = () =>
    pool.managerArgs(
      '--provider',
      'kubernetes',
      '--kube-api-url',
      kube.url,
      '--kube-namespace',
      kube.namespace,
      '--kube-statefulset',
      kube.statefulSet,
      '--kube-service',
      kube.service,
    );

  /** The live node processes, by pod name, with their pids. */
  async function nodeProcesses(): Promise<Record<string, number>> {
    const live: Record<string, number> = {};
    for (const run of runs.values()) {
      const node = await run.process;
      if (node.child.exitCode === null && node.child.signalCode === null) live[run.pod] = node.pid;
    }
    return live;
  }

  /** The pods, the pool's view and the node processes agree: one process per pod, on its IP. */
  async function podsServeThePool(size: number): Promise<void> {
    await kube.settled();
    assert.deepEqual(kube.hookErrors, []);
    const pods = kube.pods();
    assert.deepEqual(
      pods.map((p) => p.metadata.name),
      Array.from({ length: size }, (_, i) => `${kube.statefulSet}-${i}`),
    );
    const view = await pool.poolView();
    assert.deepEqual(
      Object.values(view.addresses).sort(),
      pods.map((p) => hostAt(p.status.podIP).url(NODE_PORT)).sort(),
      'every node of the view is a pod, at its IP',
    );
    assert.deepEqual(
      Object.keys(await nodeProcesses()).sort(),
      pods.map((p) => p.metadata.name),
      'one node process per pod: those of gone pods ended',
    );
    assert.equal(free.length, NODE_HOSTS - size, 'the hosts of gone pods are free');
  }

  before(async () => {
    pool = await createMultihostPool({
      nodeHosts: NODE_HOSTS,
      title: 'multi-host scenarios, kubernetes provider',
    });
    free.push(...pool.nodeHosts);
    kube = await startFakeKubeApi({
      host: pool.lab.gateway,
      podIp: placePod,
      onPod: runPod,
      onPodGone: endPod,
    });
    pool.log(`fake Kubernetes API at ${kube.url}`);
    manager = await pool.start(pool.managerHost, managerArgs());
    await pool.startFrontends();
    await pool.seed();
    assert.deepEqual(kube.replicaHistory, [1], 'the manager starts the pool with one pod');
  });

  after(async () => {
    await kube?.close();
    await pool?.close();
  });

  it('resizes the pool 1 → 4 → 2 across hosts: replicas 1, 2, 3, 4, 3, 2', async () => {
    await pool.scenario('k8s: resize 1 → 4 → 2', pool.growAndShrink);
    assert.deepEqual(kube.replicaHistory, [1, 2, 3, 4, 3, 2]);
    await podsServeThePool(2);
  });

  it('a node cut off from the manager: its pod is deleted, the new pod announces and rejoins', async () => {
    const view = await pool.poolView();
    const id = view.map.nodes[0] as string;
    const oldUrl = view.addresses[id] as string;
    const victim = pool.hostOf(oldUrl);
    const oldPod = kube.pods().find((p) => p.status.podIP === victim.address);
    assert.ok(oldPod, `a pod at ${victim.address}`);
    const from = kube.requests.length;
    await pool.scenario('k8s: node ↮ manager, pod replaced', async (note) => {
      const t = performance.now();
      await pool.lab.cut(victim, pool.managerHost);
      note(`cut ${victim.name} (${id}, pod ${oldPod.metadata.name}) from the manager`);
      const now = await pool.replaced(id, oldUrl);
      note(
        `${id} (${victim.name}) replaced by ${pool.hostOf(now).name} after ${Math.round(performance.now() - t)} ms`,
      );
      await sleep(2000);
    });
    const newPod = kube.pod(oldPod.metadata.name);
    assert.ok(newPod, 'the StatefulSet made the pod again');
    assert.notEqual(newPod.metadata.uid, oldPod.metadata.uid, 'a new pod');
    assert.notEqual(newPod.status.podIP, victim.address, 'on another host');
    assert.equal((await pool.poolView()).addresses[id], hostAt(newPod.status.podIP).url(NODE_PORT));
    assert.deepEqual(
      kube.requests.slice(from).filter((r) => r.verb !== 'get' && r.verb !== 'list'),
      [{ verb: 'delete', resource: 'pods', name: oldPod.metadata.name }],
      'the replacement is one pod deleted, no scale',
    );
    assert.deepEqual(kube.replicaHistory, [1, 2, 3, 4, 3, 2]);
    await podsServeThePool(2);
  });

  it('a restarted manager adopts the running pods: no scale, no node restarted', async () => {
    const view = await pool.poolView();
    const processesBefore = await nodeProcesses();
    const uids = kube.pods().map((p) => p.metadata.uid);
    const from = kube.requests.length;
    await pool.scenario('k8s: manager restarted', async (note) => {
      const t = performance.now();
      pool.forget(manager);
      manager.child.kill('SIGTERM');
      const exit = await manager.exited;
      note(
        `manager exited (${exit.signal ?? exit.code}) in ${Math.round(performance.now() - t)} ms`,
      );
      assert.equal(exit.code, 0, `the manager's stop: ${manager.output().slice(-2000)}`);
      manager = await pool.start(pool.managerHost, managerArgs());
      note(`manager listening again ${Math.round(performance.now() - t)} ms after the SIGTERM`);
      await sleep(2000);
    });
    const writes = kube.requests.slice(from).filter((r) => r.verb !== 'get' && r.verb !== 'list');
    assert.deepEqual(writes, [], 'the restarted manager wrote nothing to the API');
    assert.deepEqual(kube.replicaHistory, [1, 2, 3, 4, 3, 2]);
    assert.deepEqual(
      kube.pods().map((p) => p.metadata.uid),
      uids,
      'the same pods',
    );
    assert.deepEqual(await nodeProcesses(), processesBefore, 'the same node processes');
    const adopted = await pool.poolView();
    assert.deepEqual(adopted.map.nodes, view.map.nodes, 'the same nodes');
    assert.deepEqual(adopted.addresses, view.addresses);
    await podsServeThePool(2);
  });
});
