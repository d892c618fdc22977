/**
 * The manager with the ec2 provider, end to end as far as can be run here: a real manager (its
 * pool, health checks, HTTP routes, SQLite registry), the real AWS SDK clients answered by the
 * stateful fake EC2 and Auto Scaling (aws-sdk-client-mock, so everything runs in this process),
 * and real `pixpool cache-node` processes as the instances' nodes. An instance that boots runs
 * its node exactly as an engine-started one: `--announce ec2`, asking a fake IMDSv2 who it is,
 * and announcing itself over HTTP to the manager's register route with the shared secret. Every
 * instance has the private address 127.0.0.1, so each node listens on a port of its own, which
 * its claim names (the instance's local-ipv4 and its port, as on EC2). An instance that stops or
 * is terminated takes its node process with it.
 *
 * What the local provider passes, through ec2 in launch and asg mode: a resize 1→3→2 by the HTTP
 * route with hand-over, a killed node found by the health checks and replaced by a new instance,
 * a manager restart that adopts the nodes and launches nothing, then a shrink to 1 by the new
 * manager. At each step exactly n running tagged instances (and n node processes), the asg
 * group's desired capacity the pool's size, and instances without the pool's tag untouched.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { createNodeClient } from '../../src/clients/node-client.ts';
import { regionOf } from '../../src/core/regions.ts';
import { freePort } from '../../src/http/listen.ts';
import { createEc2Provider, type Ec2ProviderOptions } from '../../src/manager/providers/ec2.ts';
import { NODE_TAG, POOL_TAG } from '../../src/manager/providers/ec2-options.ts';
import { startChildService, stopChildProcess } from '../../src/process/child-service.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { createFakeEc2, type FakeEc2, type FakeInstance } from '../helpers/fake-ec2.ts';
import { startFakeImds } from '../helpers/fake-imds.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import { SECRET } from '../helpers/nodes.ts';
import { cliEnv, waitFor } from '../helpers/processes.ts';

const GROUP = 'pixpool-nodes';
const nodes = createNodeClient({ secret: SECRET });
const admin = createNodeAdmin({ secret: SECRET });

type Mode = 'launch' | 'asg';
/** One pool per mode, each with its own manager, over one fake EC2 (the mock is per process). */
const poolOf: Record<Mode, string> = { launch: 'ec2-launch', asg: 'ec2-asg' };
const settingsFor: Record<Mode, Pick<Ec2ProviderOptions, 'mode' | 'launchTemplate' | 'asgName'>> = {
  launch: { mode: 'launch', launchTemplate: 'pixpool-node' },
  asg: { mode: 'asg', asgName: GROUP },
};

/** A fake EC2 whose instances of a pool run real cache nodes that announce themselves. */
interface Cloud {
  fake: FakeEc2;
  /** The port of each pool's manager, picked before it starts. */
  ports: Record<Mode, number>;
  /** Each instance's node process, by instance id. */
  processes: Map<string, ChildProcess>;
  /** Nodes that failed to start (a test fails on any). */
  failures: string[];
  close(): Promise<void>;
}

async function cloud(): Promise<Cloud> {
  // The nodes must know their manager's URL before it starts: its first node boots in its start.
  const ports = { launch: await freePort('127.0.0.1'), asg: await freePort('127.0.0.1') };
  const managerPort = new Map(
    Object.entries(poolOf).map(([mode, pool]) => [pool, ports[mode as Mode]]),
  );
  const imds = await startFakeImds();
  const processes = new Map<string, ChildProcess>();
  const failures: string[] = [];
  const fake = createFakeEc2({
    privateIp: () => '127.0.0.1',
    onBoot: (instance) => {
      const port = managerPort.get(instance.tags[POOL_TAG] ?? '');
      if (port === undefined) return;
      // The launch template's user data: no node id, no URL; the node asks IMDS.
      startChildService({
        args: [
          'cache-node',
          '--port',
          '0',
          '--announce',
          'ec2',
          '--ec2-metadata-url',
          imds.url(instance),
          '--manager-url',
          `http://127.0.0.1:${port}`,
          '--capacity',
          '16',
          '--log-level',
          'error',
        ],
        env: cliEnv({ PIXPOOL_SECRET: SECRET }),
        label: `node on ${instance.id}`,
        quiet: true,
        onSpawn: (child) => processes.set(instance.id, child),
      }).catch((error: Error) => {
        if (fake.instance(instance.id)?.state === 'running') failures.push(error.message);
      });
    },
    // The machine goes, and its node with it (SIGTERM, as a shutdown sends).
    onShutdown: (instance) => {
      const child = processes.get(instance.id);
      if (child) void stopChildProcess(child, 2000);
    },
  });
  fake.addGroup({ name: GROUP, max: 8, tags: { [POOL_TAG]: poolOf.asg } });
  return {
    fake,
    ports,
    processes,
    failures,
    async close() {
      await Promise.all([...processes.values()].map((child) => stopChildProcess(child, 2000)));
      fake.restore();
      await imds.close();
    },
  };
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Node `id` of the pool: the instance running with its tag. */
function instanceOf(c: Cloud, mode: Mode, id: string): FakeInstance | undefined {
  return c.fake.running(poolOf[mode]).find((i) => i.tags[NODE_TAG] === id);
}

/**
 * The pool has `n` nodes, each a running instance tagged with its node id, each answering; no
 * other instance of the pool runs, no other node process of it lives; asg: desired capacity n.
 */
async function expectPool(c: Cloud, m: TestManager, mode: Mode, n: number): Promise<void> {
  const { map, addresses } = m.pool.view();
  assert.equal(map.nodes.length, n);
  const running = c.fake.running(poolOf[mode]);
  assert.deepEqual(running.map((i) => i.tags[NODE_TAG]).sort(), [...map.nodes].sort());
  for (const id of map.nodes) {
    assert.ok(await admin.healthy(addresses[id] as string), `node ${id} answers`);
  }
  if (mode === 'asg') assert.equal(c.fake.group(GROUP)?.desired, n);
  // A terminated instance's node gets SIGTERM: wait for it to be gone.
  await waitFor(`${n} node processes`, () => {
    const live = [...c.processes].filter(
      ([id, child]) => alive(child) && c.fake.instance(id)?.tags[POOL_TAG] === poolOf[mode],
    );
    return live.length === n && live.every(([id]) => running.some((i) => i.id === id));
  });
  assert.deepEqual(c.failures, []);
}

const entry = (fill: number) => ({
  value: Buffer.alloc(500, fill),
  contentType: 'image/png',
  version: 1,
});

/** A key whose region node `id` owns in the map in force. */
function keyOf(m: TestManager, id: string, prefix: string): string {
  const { owner } = m.pool.view().map;
  let key = `${prefix}-0`;
  for (let i = 1; owner[regionOf(key)] !== id; i++) key = `${prefix}-${i}`;
  return key;
}

/** Where `key` lives now: its owner's URL in the map in force. */
function ownerUrl(m: TestManager, key: string): string {
  const { map, addresses } = m.pool.view();
  return addresses[map.owner[regionOf(key)] as string] as string;
}

async function resizeByRoute(m: TestManager, change: 'increase' | 'decrease'): Promise<void> {
  const answer = await managerCall(m.url, 'POST', '/api/manager/poolsize/manual', {
    change,
    wait: true,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

/** Shrinks by one; an entry of the leaving node's region must be on its new owner after. */
async function shrinkHandingOver(m: TestManager, fill: number): Promise<void> {
  const leaving = m.pool.view().map.nodes.at(-1) as string; // a shrink ends the newest node
  const key = keyOf(m, leaving, `handed-${fill}`);
  await nodes.put(ownerUrl(m, key), key, entry(fill));
  await resizeByRoute(m, 'decrease');
  assert.ok(!m.pool.view().map.nodes.includes(leaving), `node ${leaving} left`);
  const got = await nodes.get(ownerUrl(m, key), key);
  assert.deepEqual(got?.value, entry(fill).value, `${key} was handed over`);
}

async function exercise(c: Cloud, mode: Mode): Promise<void> {
  const pool = poolOf[mode];
  const driver = createSqliteDriver();
  const provider = () =>
    createEc2Provider({ ...settingsFor[mode], poolName: pool, bootTimeoutMs: 20_000 });
  const port = c.ports[mode];
  let m = await startManager({ provider: provider(), port, driver });
  try {
    await expectPool(c, m, mode, 1);
    await resizeByRoute(m, 'increase');
    await expectPool(c, m, mode, 2);
    await resizeByRoute(m, 'increase');
    await expectPool(c, m, mode, 3);

    // A node process dies: the health checks find it, and the provider puts a new instance in
    // its place under the same node id.
    const dead = m.pool.view().map.nodes[1] as string;
    const deadUrl = m.pool.view().addresses[dead];
    const deadInstance = instanceOf(c, mode, dead) as FakeInstance;
    const deadProcess = c.processes.get(deadInstance.id) as ChildProcess;
    deadProcess.kill('SIGKILL');
    await once(deadProcess, 'exit');
    const back = await waitFor(
      `node ${dead} replaced`,
      async () => {
        const url = m.pool.view().addresses[dead];
        return url && url !== deadUrl && (await admin.healthy(url)) ? url : undefined;
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(deadInstance.state, 'terminated');
    const replacement = instanceOf(c, mode, dead) as FakeInstance;
    assert.notEqual(replacement.id, deadInstance.id);
    assert.ok(m.pool.view().map.nodes.includes(dead), 'the node is back in the map');
    assert.match(back, /^http:\/\/127\.0\.0\.1:\d+$/);
    await expectPool(c, m, mode, 3);

    await shrinkHandingOver(m, 1);
    await expectPool(c, m, mode, 2);

    // The manager stops; its nodes do not. A new one on the same registry (and URL, which the
    // nodes know) with a new provider over the same EC2 adopts them and launches nothing.
    const kept = m.pool.view();
    const key = keyOf(m, kept.map.nodes[0] as string, 'kept');
    await nodes.put(ownerUrl(m, key), key, entry(9));
    const instancesOfPool = () => c.fake.instances().filter((i) => i.tags[POOL_TAG] === pool);
    const launched = instancesOfPool().length;
    await m.close({ keepStorage: true });
    assert.equal(c.fake.running(pool).length, 2, 'closing the manager ended no instance');
    m = await startManager({ provider: provider(), port, driver });
    assert.deepEqual(m.pool.view().map.nodes, kept.map.nodes);
    assert.deepEqual(m.pool.view().addresses, kept.addresses);
    assert.equal(instancesOfPool().length, launched, 'no instance launched');
    await expectPool(c, m, mode, 2);
    // Served by the node that cached it before the restart (its view renewed by the new manager).
    const served = await waitFor('the cached entry served again', () =>
      nodes.get(ownerUrl(m, key), key),
    );
    assert.deepEqual(served.value, entry(9).value);

    await shrinkHandingOver(m, 2);
    await expectPool(c, m, mode, 1);
  } finally {
    await m.close();
    await driver.close();
  }
}

describe('manager with the ec2 provider (real cache nodes that announce themselves)', () => {
  let c: Cloud;
  let foreign: FakeInstance[];
  let foreignBefore: string;
  before(async () => {
    c = await cloud();
    foreign = [
      c.fake.addInstance(),
      c.fake.addInstance({ tags: { [POOL_TAG]: 'another-pool', [NODE_TAG]: 'n-1' } }),
    ];
    foreignBefore = JSON.stringify(foreign);
  });
  after(async () => {
    await c.close();
    await Promise.all([nodes.close(), admin.close()]);
  });

  // Concurrently: most of each is waiting (health checks, view leases), and CI time is scarce.
  describe('in both modes at once', { concurrency: 2 }, () => {
    it('launch: resize 1→3→2 with hand-over, a dead node replaced, a restart adopts, →1', () =>
      exercise(c, 'launch'));
    it('asg: resize 1→3→2 with hand-over, a dead node replaced, a restart adopts, →1', () =>
      exercise(c, 'asg'));
  });

  it('touched no instance outside the pools', () => {
    assert.equal(JSON.stringify(foreign), foreignBefore);
  });
});
