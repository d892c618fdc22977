import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planMoves } from '../../core/pool-map.ts';
import { resizeByOne } from './resize.ts';
import { createParts } from './testing.ts';

async function parts(size: number) {
  const p = await createParts(size);
  const deps = { ...p, admin: p.fakes.admin, handOverTimeoutMs: 1000 };
  return { ...p, deps };
}

test('a grow starts and configures the node, publishes the transitional view, hands over, then the final view', async () => {
  const { deps, fakes, views, journal, registry } = await parts(2);
  const before = views.map;
  await resizeByOne(deps, 1);

  const moved = planMoves(before, registry.maps[1] ?? before);
  assert.ok(moved.length > 0);
  const n2 = views.address('n2') as string;
  const handOvers = ['n0', 'n1'].map(
    (from) =>
      `hand-over from ${views.address(from)} (keep): ${moved
        .filter((m) => m.from === from)
        .map((m) => m.region)
        .join(',')} → ${n2}`,
  );
  assert.deepEqual(fakes.calls.slice(0, 5), [
    'start n2',
    `configure ${n2}`,
    // 1. Transitional view, to every node it names: the old owners serve their moved regions.
    'view n0 v2 transitional',
    'view n1 v2 transitional',
    'view n2 v2 transitional',
  ]);
  // 2. The old owners hand the moved regions straight to the new node (in parallel), keeping them.
  assert.deepEqual(fakes.calls.slice(5, 7).sort(), handOvers.sort());
  // 3. The final view.
  assert.deepEqual(fakes.calls.slice(7), ['view n0 v3', 'view n1 v3', 'view n2 v3']);
  assert.deepEqual(views.map.nodes, ['n0', 'n1', 'n2']);
  assert.equal(views.view().previous, undefined, 'no resize in progress any more');
  assert.equal(fakes.get(n2)?.config?.capacity, 64, 'configured before it serves');
  const report = journal.events.find((e) => e.message.startsWith('Grew to 3 nodes'));
  assert.ok(report, journal.events.map((e) => e.message).join('\n'));
  assert.deepEqual(
    {
      ...(report.details as object),
      ms: 0,
      handOverMs: 0,
    },
    {
      from: 2,
      to: 3,
      mapVersion: 2,
      minimumRegions: moved.length,
      cachedBytes: 0,
      regions: moved.length,
      entries: moved.length,
      bytes: 0,
      failed: [],
      ms: 0,
      handOverMs: 0,
      // The fake clock stands still.
      steps: { nodeMs: 0, transitionalViewMs: 0, censusMs: 0, handOverMs: 0, finalViewMs: 0 },
    },
  );
  assert.deepEqual(journal.failures, []);
});

test('a shrink drains the last node, hands its regions over, and stops it only after the final view', async () => {
  const { deps, fakes, views, registry } = await parts(3);
  const leaving = views.address('n2') as string;
  await resizeByOne(deps, -1);
  const stop = fakes.calls.indexOf('stop n2');
  const finalViews = fakes.calls.filter((c) => c.endsWith(' v3'));
  assert.deepEqual(finalViews, ['view n0 v3', 'view n1 v3']);
  assert.ok(stop > fakes.calls.indexOf('view n1 v3'), fakes.calls.join('\n'));
  assert.ok(
    fakes.calls.some((c) => c.startsWith(`hand-over from ${leaving} (keep)`)),
    'the leaving node hands its regions over',
  );
  assert.equal(views.address('n2'), undefined);
  assert.deepEqual(views.map.nodes, ['n0', 'n1']);
  assert.equal((await registry.listNodes()).find((n) => n.id === 'n2')?.state, 'stopped');
});

test('a node that does not start leaves the pool as it was: stopped, recorded failed, the error thrown', async () => {
  const { deps, fakes, provider, views, journal, registry } = await parts(1);
  provider.failing.add('n1');
  await assert.rejects(resizeByOne(deps, 1), /would not start/);
  assert.deepEqual(fakes.calls, ['start n1', 'stop n1']);
  assert.equal(views.map.version, 1);
  assert.equal(registry.maps.length, 1);
  assert.match(journal.events.at(-1)?.message ?? '', /Growing failed: node n1 did not start/);
});

test('a node that never answers /health is given up after the wait, on the injected clock', async () => {
  const { deps, fakes, clock, views } = await parts(1);
  const start = fakes.admin.healthy;
  // The new node listens but never answers its health check.
  fakes.admin.healthy = async (url) => !url.startsWith('http://n1.') && start(url);
  const resize = resizeByOne(deps, 1);
  const refused = assert.rejects(resize, /did not answer \/health within 20 s/);
  await clock.advance(20_000 + 400);
  await refused;
  assert.deepEqual(fakes.calls, ['start n1', 'stop n1']);
  assert.equal(views.map.nodes.length, 1);
});

test('a transitional view that cannot be saved publishes nothing and stops the new node', async () => {
  const { deps, fakes, views, registry } = await parts(1);
  registry.failSaves = true;
  await assert.rejects(resizeByOne(deps, 1), /the database is down/);
  assert.ok(!fakes.calls.some((c) => c.startsWith('view')), 'no node was told a view');
  assert.equal(fakes.calls.at(-1), 'stop n1');
  assert.equal(views.address('n1'), undefined);
  assert.equal(views.map.version, 1);
  assert.equal((await registry.listNodes()).find((n) => n.id === 'n1')?.state, 'failed');
});

test('a shrink whose view cannot be saved puts the draining node back to active', async () => {
  const { deps, fakes, registry } = await parts(2);
  registry.failSaves = true;
  await assert.rejects(resizeByOne(deps, -1), /the database is down/);
  assert.ok(!fakes.calls.includes('stop n1'));
  assert.equal((await registry.listNodes()).find((n) => n.id === 'n1')?.state, 'active');
});

test('a failed hand-over does not fail the resize: counted, reported, and the final view follows', async () => {
  const { deps, fakes, views, journal } = await parts(2);
  const n0 = fakes.get(views.address('n0') as string);
  assert.ok(n0);
  n0.unreachable = true;
  const n1 = fakes.get(views.address('n1') as string);
  assert.ok(n1);
  n1.handOver = (orders) => orders.map((o) => ({ to: o.to, entries: 0, bytes: 0, error: 'full' }));
  n1.regionBytes[1] = 5000;
  await resizeByOne(deps, 1);
  assert.equal(views.map.version, 3, 'the final view is in force');
  const report = journal.events.find((e) => e.message.startsWith('Grew to 3'));
  assert.match(report?.message ?? '', /2 hand-over\(s\) failed/);
  assert.deepEqual(journal.failures.map((f) => f.operation).sort(), [
    'hand-over',
    'hand-over',
    'measure-hand-over',
    'push-view',
    'push-view',
  ]);
});
