import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { regionOf } from '../../src/core/regions.ts';
import {
  createKubernetesProvider,
  type KubernetesProviderOptions,
} from '../../src/manager/providers/kubernetes.ts';
import { KUBERNETES_RBAC } from '../../src/manager/providers/kubernetes-rbac.ts';
import {
  ClaimRefused,
  type NodeProvider,
  type ProvidedNode,
} from '../../src/manager/providers/provider.ts';
import {
  type FakeKubeApi,
  type FakeKubeApiOptions,
  type FakePod,
  type KubeRequest,
  startFakeKubeApi,
} from '../helpers/fake-kube-api.ts';
import { startManager } from '../helpers/manager.ts';
import { startNode, type TestNode } from '../helpers/nodes.ts';

/** Every API request of every test here, for the RBAC check at the end. */
const allRequests: KubeRequest[] = [];
const apis: FakeKubeApi[] = [];
after(() => Promise.all(apis.map((api) => api.close())));

/**
 * A fake API server whose pods announce their nodes the way `pixpool cache-node --announce
 * kubernetes` does (its DNS name, port 5001) to whichever provider `announceTo` holds then.
 */
async function cluster(options: FakeKubeApiOptions = {}) {
  const announceTo: { provider?: NodeProvider } = {};
  const refusals: string[] = [];
  const api: FakeKubeApi = await startFakeKubeApi({
    ...options,
    onPod: async (pod: FakePod) => {
      const provider = announceTo.provider;
      if (!provider?.register) return;
      await provider
        .register({ url: `http://${api.dnsName(pod.metadata.name)}:5001`, ref: pod.metadata.name })
        .catch((error: Error) => refusals.push(error.message));
    },
  });
  apis.push(api);
  const connect = (extra: Partial<KubernetesProviderOptions> = {}) => {
    const provider = createKubernetesProvider({
      apiUrl: api.url,
      namespace: api.namespace,
      statefulSet: api.statefulSet,
      service: api.service,
      poolName: 'pixpool',
      ...extra,
    });
    announceTo.provider = provider;
    return provider;
  };
  return { api, announceTo, refusals, connect, requestsSince: marker(api) };
}

/** The requests an API got after this call. */
function marker(api: FakeKubeApi) {
  return () => {
    const from = api.requests.length;
    return () => api.requests.slice(from);
  };
}

const writes = (requests: KubeRequest[]) =>
  requests.filter((r) => r.verb !== 'get' && r.verb !== 'list' && r.verb !== 'watch');
const podNames = (api: FakeKubeApi) => api.pods().map((p) => p.metadata.name);
const uidOf = (api: FakeKubeApi, name: string) => api.pod(name)?.metadata.uid;

async function grow(provider: NodeProvider, count: number, from = 0): Promise<ProvidedNode[]> {
  const nodes: ProvidedNode[] = [];
  for (let i = from; i < from + count; i++) nodes.push(await provider.start(`node-${i}`));
  return nodes;
}

describe('kubernetes provider against a fake API server', () => {
  after(() => {
    for (const api of apis) allRequests.push(...api.requests);
  });

  it('grows the pool 1→8→1 as the replica sequence 1…8…1, one pod per node', async () => {
    const { api, connect } = await cluster();
    const provider = connect();
    const nodes = await grow(provider, 8);
    assert.deepEqual(
      nodes.map((n) => n.url),
      nodes.map((_, i) => `http://${api.dnsName(`pixpool-node-${i}`)}:5001`),
    );
    assert.equal(api.pods().length, 8);
    for (let i = 7; i >= 1; i--) {
      await provider.stop(`node-${i}`);
      assert.equal(api.pods().length, i, `${i} pods after stopping node-${i}`);
    }
    assert.deepEqual(api.replicaHistory, [1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 5, 4, 3, 2, 1]);
    assert.deepEqual(podNames(api), ['pixpool-node-0']);
    assert.deepEqual(api.hookErrors, []);
    await provider.close();
  });

  it('a restarted manager adopts the n running pods and scales or deletes nothing', async () => {
    const { api, connect, requestsSince } = await cluster();
    const first = connect();
    const nodes = await grow(first, 3);
    await first.close();
    const uids = podNames(api).map((name) => uidOf(api, name));
    const since = requestsSince();

    const second = connect();
    const resumed = await second.resume(nodes);
    assert.deepEqual(resumed, nodes);
    assert.deepEqual(writes(since()), []);
    assert.deepEqual(api.replicaHistory, [1, 2, 3]);
    assert.deepEqual(
      podNames(api).map((name) => uidOf(api, name)),
      uids,
    );
    // Adopted, so the ordinals are known: the next node is the fourth pod, the last one stops.
    assert.equal(
      (await second.start('node-3')).url,
      `http://${api.dnsName('pixpool-node-3')}:5001`,
    );
    await second.stop('node-3');
    assert.deepEqual(api.replicaHistory, [1, 2, 3, 4, 3]);
    await second.close();
  });

  it('a restart sets replicas back to the pool size when someone scaled the StatefulSet', async () => {
    const { api, connect } = await cluster();
    const first = connect();
    const nodes = await grow(first, 2);
    await first.close();
    api.scaleTo(4); // kubectl scale while no manager runs: pods 2 and 3 are nobody's nodes
    await api.settled();
    assert.equal(api.pods().length, 4);

    const second = connect();
    assert.deepEqual(await second.resume(nodes), nodes);
    assert.deepEqual(api.replicaHistory, [1, 2, 4, 2]);
    assert.deepEqual(podNames(api), ['pixpool-node-0', 'pixpool-node-1']);
    await second.close();
  });

  it('a restart waits for a node whose pod is not running yet instead of adding a pod', async () => {
    const { api, connect } = await cluster({ hold: true });
    const first = connect();
    const starting = first.start('node-0');
    await waitFor(() => api.pods().length === 1);
    await api.run('pixpool-node-0');
    const node0 = await starting;
    await first.close();
    api.scaleTo(2); // a second pod the previous manager asked for but never saw announce
    const node1 = { id: 'node-1', url: `http://${api.dnsName('pixpool-node-1')}:5001` };

    const second = connect();
    assert.deepEqual(await second.resume([node0, node1]), [node0, undefined]);
    // The manager then starts node-1 again: the same pod, once it runs, not a third one.
    const again = second.start('node-1');
    await api.run('pixpool-node-1');
    assert.deepEqual(await again, node1);
    assert.deepEqual(api.replicaHistory, [1, 2]);
    await second.close();
  });

  it('a replaced node is its pod deleted and made again, back under the same id', async () => {
    const { api, connect, requestsSince } = await cluster();
    const provider = connect();
    const [, node1] = await grow(provider, 2);
    const before = uidOf(api, 'pixpool-node-1');
    const since = requestsSince();
    assert.ok(provider.replace);
    const back = await provider.replace('node-1');
    assert.deepEqual(back, node1);
    assert.notEqual(uidOf(api, 'pixpool-node-1'), before, 'a new pod');
    assert.deepEqual(writes(since()), [
      { verb: 'delete', resource: 'pods', name: 'pixpool-node-1' },
    ]);
    assert.deepEqual(api.replicaHistory, [1, 2]);
    await provider.close();
  });

  it('a pool pod whose container restarted is reported replaced, once per restart', async () => {
    const { api, connect } = await cluster();
    const provider = connect();
    const [node0] = await grow(provider, 1);
    const replaced: ProvidedNode[] = [];
    provider.onReplaced((node) => replaced.push(node));
    await api.restart('pixpool-node-0');
    assert.deepEqual(replaced, [node0]);
    // The same run announcing again (its answer was lost) is not a restart.
    assert.ok(provider.register && node0);
    assert.deepEqual(await provider.register({ url: node0.url, ref: 'pixpool-node-0' }), node0);
    assert.deepEqual(replaced, [node0]);
    await provider.close();
  });

  it('refuses claims from pods it does not know, foreign or terminating pods and wrong URLs', async () => {
    const { api, connect, requestsSince } = await cluster();
    const provider = connect();
    await grow(provider, 2);
    const register = provider.register;
    assert.ok(register);
    const dns = (name: string) => `http://${api.dnsName(name)}:5001`;
    const owner = api.pod('pixpool-node-0')?.metadata.ownerReferences;
    api.addPod({
      name: 'pixpool-node-5',
      labels: { 'app.kubernetes.io/name': 'pixpool-node', 'pixpool.io/pool': 'pixpool' },
    });
    api.addPod({
      name: 'pixpool-node-6',
      ownerReferences: owner,
      labels: { 'app.kubernetes.io/name': 'pixpool-node', 'pixpool.io/pool': 'other' },
    });
    const since = requestsSince();

    const refused = async (claim: unknown, message: RegExp) => {
      const error = await register(claim as { url: string; ref: string }).then(
        () => assert.fail(`accepted ${JSON.stringify(claim)}`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof ClaimRefused, `${error}`);
      assert.match(error.message, message);
    };
    await refused(
      { ref: 'pixpool-node-7', url: dns('pixpool-node-7') },
      /no pod pixpool-node-7 in namespace pixpool/,
    );
    await refused({ ref: 'web-0', url: dns('web-0') }, /not a pod of StatefulSet pixpool-node/);
    await refused(
      { ref: 'pixpool-node-5', url: dns('pixpool-node-5') },
      /not owned by StatefulSet pixpool-node/,
    );
    await refused(
      { ref: 'pixpool-node-6', url: dns('pixpool-node-6') },
      /lacks the labels .*pixpool\.io\/pool=pixpool/,
    );
    await refused(
      { ref: 'pixpool-node-0', url: 'http://10.9.9.9:5001' },
      /does not name pod pixpool-node-0/,
    );
    await refused(
      { ref: 'pixpool-node-0', url: dns('pixpool-node-1') },
      /does not name pod pixpool-node-0/,
    );
    await refused({ ref: 'pixpool-node-0', url: `${dns('pixpool-node-0')}/evil` }, /not an origin/);
    await refused({ ref: 'pixpool-node-0', url: 'not a url' }, /is not a URL/);
    await refused({ ref: 42, url: null }, /names a pod \(ref\) and a URL/);
    api.terminate('pixpool-node-1');
    await refused(
      { ref: 'pixpool-node-1', url: dns('pixpool-node-1') },
      /pod pixpool-node-1 is terminating/,
    );
    assert.deepEqual(writes(since()), [], 'a refusal changes nothing');

    // Positive controls: the pod's own DNS names and its pod IP are accepted.
    const ip = api.pod('pixpool-node-0')?.status.podIP;
    for (const url of [
      dns('pixpool-node-0'),
      `http://pixpool-node-0.pixpool-node.pixpool.svc:5001`,
      `https://${ip}:5001`,
    ]) {
      assert.equal((await register({ ref: 'pixpool-node-0', url })).id, 'node-0');
    }
    await provider.close();
  });

  it('refuses a running pool pod at an ordinal no node holds', async () => {
    const { api, connect } = await cluster({ replicas: 2 }); // pods from before this manager
    await api.settled();
    const provider = connect();
    assert.ok(provider.register);
    await assert.rejects(
      provider.register({
        ref: 'pixpool-node-1',
        url: `http://${api.dnsName('pixpool-node-1')}:5001`,
      }),
      (error: Error) =>
        error instanceof ClaimRefused && /no node holds ordinal 1/.test(error.message),
    );
    await provider.close();
  });

  it('a start that finds a pod left at its ordinal deletes it, so the node starts empty', async () => {
    const { api, connect, refusals } = await cluster({ replicas: 1 });
    await api.settled();
    const left = uidOf(api, 'pixpool-node-0');
    const provider = connect();
    const node = await provider.start('node-a');
    assert.equal(node.url, `http://${api.dnsName('pixpool-node-0')}:5001`);
    assert.notEqual(uidOf(api, 'pixpool-node-0'), left);
    assert.deepEqual(refusals, []);
    await provider.close();
  });

  it('a stop of any node but the last is refused and changes nothing', async () => {
    const { api, connect, requestsSince } = await cluster();
    const provider = connect();
    await grow(provider, 3);
    const since = requestsSince();
    await assert.rejects(
      provider.stop('node-0'),
      /refusing to stop node node-0 \(pod pixpool-node-0\).*highest ordinal, pod pixpool-node-2 \(node node-2\)/,
    );
    await assert.rejects(provider.stop('node-1'), /refusing to stop node node-1/);
    assert.deepEqual(writes(since()), []);
    assert.equal(api.pods().length, 3);
    await provider.stop('node-2');
    await provider.stop('node-2'); // idempotent
    assert.deepEqual(api.replicaHistory, [1, 2, 3, 2]);
    await provider.close();
  });

  it('close() changes no replica count; deletePool() scales the StatefulSet to 0', async () => {
    const { api, connect, requestsSince } = await cluster();
    const provider = connect();
    await grow(provider, 2);
    const since = requestsSince();
    assert.equal(provider.outlivesManager, true);
    await provider.close();
    assert.deepEqual(since(), [], 'close() makes no request at all');
    assert.equal(api.pods().length, 2);

    const deleter = connect();
    assert.ok(deleter.deletePool);
    await deleter.deletePool();
    assert.deepEqual(api.replicaHistory, [1, 2, 0]);
    assert.deepEqual(api.pods(), []);
  });

  it('a pod that never announces fails its start, and the stop after it scales back', async () => {
    const { api, connect } = await cluster({ hold: true });
    const provider = connect({ startTimeoutMs: 300 });
    await assert.rejects(
      provider.start('node-0'),
      /pod pixpool-node-0 did not announce its node within 0.3 s/,
    );
    await provider.stop('node-0'); // what the manager does after a failed start
    assert.deepEqual(api.replicaHistory, [1, 0]);
    await provider.close();
  });

  it('sends the bearer token from --kube-token-file, and says so when the API refuses it', async () => {
    const { connect } = await cluster({ token: 'sa-token' });
    const dir = await mkdtemp(join(tmpdir(), 'pixpool-kube-'));
    try {
      await writeFile(join(dir, 'token'), 'sa-token\n');
      await writeFile(join(dir, 'wrong'), 'not-it\n');
      const good = connect({ tokenFile: join(dir, 'token') });
      assert.equal((await good.start('node-0')).id, 'node-0');
      await good.close();
      const bad = connect({ tokenFile: join(dir, 'wrong') });
      await assert.rejects(bad.start('node-x'), /the Kubernetes API answered 401/);
      await bad.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an API server that cannot be reached fails with the StatefulSet named', async () => {
    const provider = createKubernetesProvider({ apiUrl: 'http://127.0.0.1:1', namespace: 'ns' });
    await assert.rejects(provider.start('node-0'), /pod pixpool-node-0 in namespace ns/);
    await assert.rejects(provider.resume([]), /StatefulSet pixpool-node in namespace ns/);
  });
});

describe('manager with the kubernetes provider (real cache nodes as the pods)', () => {
  it('grows 1→3→1 with hand-over, and puts a replaced pod back in the map', async () => {
    // Every pod "runs" a real cache node in this process; they all share the pod IP 127.0.0.1.
    const running = new Map<string, TestNode>();
    const all: TestNode[] = [];
    const target: { provider?: NodeProvider } = {};
    const api = await startFakeKubeApi({
      podIp: () => '127.0.0.1',
      onPod: async (pod) => {
        const node = await startNode();
        all.push(node);
        running.set(pod.metadata.name, node);
        await target.provider?.register?.({ url: node.url, ref: pod.metadata.name });
      },
    });
    apis.push(api);
    const provider = createKubernetesProvider({ apiUrl: api.url, namespace: api.namespace });
    target.provider = provider;
    const m = await startManager({ provider });
    try {
      await (await m.pool.resize(1)).done;
      await (await m.pool.resize(1)).done;
      assert.equal(m.pool.size, 3);
      const last = m.pool.view().map.nodes[2] as string;
      const leaving = running.get('pixpool-node-2');
      // A key of a region the leaving node owns, so the hand-over must carry it.
      const owner = m.pool.view().map.owner;
      let key = 'k0';
      for (let i = 1; owner[regionOf(key)] !== last; i++) key = `k${i}`;
      const entry = { value: Buffer.from('x'), contentType: 'image/png', version: 1 };
      leaving?.cache.put(key, entry, true);
      await (await m.pool.resize(-1)).done;
      assert.ok(!m.pool.view().map.nodes.includes(last));
      const holder = [...running.values()].find((n) => n !== leaving && n.cache.peek(key));
      assert.ok(holder, 'the drained pod handed its entry over');
      await (await m.pool.resize(-1)).done;
      assert.deepEqual(api.replicaHistory, [1, 2, 3, 2, 1]);
      assert.deepEqual(podNames(api), ['pixpool-node-0']);

      const id = m.pool.view().map.nodes[0] as string;
      const before = running.get('pixpool-node-0');
      assert.ok(provider.replace);
      const back = await provider.replace(id);
      const now = running.get('pixpool-node-0');
      assert.notEqual(now, before);
      assert.equal(back.url, now?.url);
    } finally {
      await m.close();
      await Promise.all(all.map((node) => node.close()));
    }
    assert.deepEqual(api.replicaHistory, [1, 2, 3, 2, 1], 'closing the manager scaled nothing');
  });
});

describe('kubernetes provider RBAC', () => {
  it("calls exactly what KUBERNETES_RBAC grants, which the deploy files' Role grants", () => {
    const used = new Set(allRequests.map((r) => `${r.verb} ${r.resource}`));
    assert.ok(used.size > 0);
    const granted = KUBERNETES_RBAC.flatMap((rule) =>
      rule.verbs.map((verb) => `${verb} ${rule.resource}`),
    );
    assert.deepEqual([...used].sort(), granted.sort());
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; !condition(); i++) {
    if (i > 2000) throw new Error('the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
