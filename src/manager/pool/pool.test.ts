import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { PixpoolError } from '../../core/errors.ts';
import { createPoolMap } from '../../core/pool-map.ts';
import { createPool, LAST_RESIZE_SETTING } from './pool.ts';
import {
  createFakeNodes,
  createFakeProvider,
  createManualClock,
  createMemoryRegistry,
  settle,
  silentLog,
} from './testing.ts';

function setup(shared?: { registry: ReturnType<typeof createMemoryRegistry> }) {
  const fakes = createFakeNodes();
  const provider = createFakeProvider(fakes);
  const store = shared?.registry ?? createMemoryRegistry();
  const clock = createManualClock();
  const metrics = new Registry();
  let ids = 0;
  const pool = createPool({
    store,
    provider,
    admin: fakes.admin,
    assignment: 'balanced',
    log: silentLog,
    publish: async () => {},
    registry: metrics,
    clock,
    newNodeId: () => `n${ids++}`,
  });
  return { fakes, provider, store, clock, metrics, pool };
}

const status = (code: number) => (error: unknown) =>
  error instanceof PixpoolError && error.status === code;

test('building a pool does no I/O; start() starts the first node and publishes map 1', async () => {
  const { pool, fakes, store } = setup();
  await settle();
  assert.deepEqual(fakes.calls, []);
  assert.equal(pool.size, 0);
  await pool.start();
  assert.equal(pool.size, 1);
  assert.deepEqual(pool.view().map.nodes, ['n0']);
  assert.equal(pool.view().map.version, 1);
  assert.equal(store.maps.length, 1);
  assert.match(store.events.at(-1)?.message ?? '', /Started the pool with node n0/);
  await pool.close();
});

test('a restart resumes the saved pool; a node that cannot be brought back leaves the map', async () => {
  const registry = createMemoryRegistry();
  const map = createPoolMap(['a', 'b'], 'balanced');
  await registry.saveMap(map);
  for (const id of ['a', 'b']) {
    await registry.upsertNode({ id, address: `http://${id}.0`, state: 'active', provider: 'fake' });
  }
  const { pool, fakes, provider, clock } = setup({ registry });
  fakes.add('http://a.0'); // a still runs; b is gone and will not start again
  provider.failing.add('b');
  const started = pool.start();
  // b may still serve under a lease the manager before this one granted: its regions move only
  // once that has run out.
  await clock.advance(2900);
  assert.equal(pool.view().map.version, 1);
  await clock.advance(100);
  await started;
  assert.deepEqual(pool.view().map.nodes, ['a']);
  assert.equal(pool.view().map.version, 2);
  assert.deepEqual(pool.view().addresses, { a: 'http://a.0' });
  assert.ok(registry.events.some((e) => e.message === 'Node b could not be brought back'));
  await pool.close();
});

test('a restart waits out no lease when every node the manager before recorded answers or is gone', async () => {
  for (const provable of [true, false]) {
    const registry = createMemoryRegistry();
    await registry.saveMap(createPoolMap(['a', 'b'], 'balanced'));
    for (const id of ['a', 'b']) {
      await registry.upsertNode({
        id,
        address: `http://${id}.0`,
        state: 'active',
        provider: 'fake',
      });
    }
    // Stopped long ago; a failed node may be hung rather than dead: both are checked too.
    await registry.upsertNode({
      id: 'c',
      address: 'http://c.0',
      state: 'stopped',
      provider: 'fake',
    });
    const { pool, fakes, provider, clock } = setup({ registry });
    fakes.add('http://a.0'); // a still runs; b and c are gone, b starts again elsewhere
    provider.gone.add('http://b.0');
    if (provable) provider.gone.add('http://c.0');
    let done = false;
    const started = pool.start().then(() => {
      done = true;
    });
    await clock.advance(10);
    // b moved, so the pool takes a new map: at once when nothing can hold a lease, else only
    // once the predecessor's leases have run out.
    assert.equal(done, provable, `c proven gone: ${provable}`);
    await clock.advance(3000);
    await started;
    assert.deepEqual(pool.view().map.nodes, ['a', 'b']);
    assert.equal(pool.view().map.version, 2);
    assert.equal(pool.view().addresses.b, 'http://b.1');
    await pool.close();
  }
});

test('the bounds hold for the size the queue will reach, and automatic mode refuses a manual resize', async () => {
  const { pool, store } = setup();
  await pool.start();
  const steps = [];
  for (let i = 0; i < 7; i++) steps.push((await pool.resize(1)).done);
  await assert.rejects(pool.resize(1), (e) => status(409)(e) && /will have 8/.test(String(e)));
  await Promise.all(steps);
  assert.equal(pool.size, 8);
  await store.setSetting('mode', 'automatic');
  await assert.rejects(pool.resize(-1), (e) => status(409)(e) && /automatic mode/.test(String(e)));
  const { done } = await pool.resize(-1, 'automatic');
  await done;
  assert.equal(pool.size, 7);
  await pool.close();
});

test('when the last resize ended survives a restart, so the autoscaler keeps its cooldown', async () => {
  const first = setup();
  await first.pool.start();
  await first.clock.advance(5000);
  await (await first.pool.resize(1)).done;
  await settle();
  const ended = first.clock.now();
  assert.equal(first.pool.lastResizeAt, ended);
  assert.equal(await first.store.getSetting(LAST_RESIZE_SETTING), ended);
  await first.pool.close();

  const second = setup({ registry: first.store });
  second.fakes.nodes.clear();
  for (const url of first.fakes.nodes.keys()) second.fakes.add(url);
  await second.pool.start();
  assert.equal(second.pool.lastResizeAt, ended);
  await second.pool.close();
});

test('a drained pool refuses resizes with a 503, and a waiting caller is answered when the budget is spent', async () => {
  const { pool, clock, fakes } = setup();
  await pool.start();
  const original = fakes.admin.healthy;
  // The next node never answers /health, so the grow outlasts the drain budget.
  fakes.admin.healthy = (url) =>
    url.startsWith('http://n1.') ? new Promise(() => {}) : original(url);
  const { done } = await pool.resize(1);
  await settle();
  pool.drain(8000);
  await assert.rejects(pool.resize(1), status(503));
  const answered = assert.rejects(
    done,
    (e) => status(503)(e) && /did not finish in time/.test(String(e)),
  );
  await clock.advance(8000);
  await answered;
  await pool.close(); // no longer than the budget, spent already
});

test('the health monitor finds a hung node on the injected clock and the pool replaces it', async () => {
  const { pool, clock, fakes, provider } = setup();
  await pool.start();
  await (await pool.resize(1)).done;
  const hung = pool.view().addresses.n1 as string;
  const node = fakes.get(hung);
  assert.ok(node);
  node.healthy = false; // hung: the process is there, it just does not answer
  await clock.advance(1000);
  assert.equal(pool.view().addresses.n1, hung, 'one failed check is not enough');
  await clock.advance(1000);
  await pool.idle();
  assert.notEqual(pool.view().addresses.n1, hung);
  assert.equal(provider.running.get('n1'), pool.view().addresses.n1);
  await pool.close();
});

test('failures the pool lives with are counted in Prometheus by operation', async () => {
  const { pool, fakes, metrics } = setup();
  await pool.start();
  await (await pool.resize(1)).done;
  const n0 = fakes.get(pool.view().addresses.n0 as string);
  assert.ok(n0);
  n0.unreachable = true;
  await (await pool.resize(1)).done;
  const text = await metrics.metrics();
  // Both views of the second grow missed n0, and it could not say what it held or hand it over.
  assert.match(text, /pixpool_manager_failures_total\{operation="push-view"\} 2/);
  assert.match(text, /pixpool_manager_failures_total\{operation="hand-over"\} 1/);
  assert.match(text, /pixpool_manager_resizes_total\{direction="grow",result="done"\} 2/);
  await pool.close();
});

test('a renewal that comes while the push of a new view to that node is under way waits for its answer', async () => {
  const { pool, fakes } = setup();
  await pool.start();
  const url = fakes.nodes.keys().next().value as string;
  const instance = `${url}#1`;
  assert.deepEqual(await pool.renewViewLease('n0', instance, 1), { leaseMs: 3000, renewMs: 1000 });
  // The pushes of the grow's views reach the node (it takes them) but their answers are held.
  const push = fakes.admin.pushView.bind(fakes.admin);
  const held: (() => void)[] = [];
  fakes.admin.pushView = async (to, view, self) => {
    const answer = await push(to, view, self);
    if (to === url) await new Promise<void>((resolve) => held.push(resolve));
    return answer;
  };
  const { done } = await pool.resize(1);
  while (held.length === 0) await settle();
  const version = fakes.get(url)?.views.at(-1)?.map.version as number;
  assert.equal(version, 2);
  // The node took view 2 and asks at once, before the manager has read its answer.
  let answered = false;
  const renewal = pool.renewViewLease('n0', instance, version).finally(() => {
    answered = true;
  });
  await settle();
  assert.equal(answered, false, 'the renewal waits for the push’s answer');
  held.shift()?.();
  assert.deepEqual(await renewal, { leaseMs: 3000, renewMs: 1000 });
  while (held.length === 0) await settle();
  held.shift()?.();
  await done;
  await pool.close();
});
