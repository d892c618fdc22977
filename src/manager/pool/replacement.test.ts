import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createReplacement } from './replacement.ts';
import { resizeByOne } from './resize.ts';
import { createResizeQueue } from './resize-queue.ts';
import { createParts, settle } from './testing.ts';

async function parts(size: number, options: { canReplace?: boolean } = {}) {
  const p = await createParts(size, options);
  const queue = createResizeQueue({ clock: p.clock });
  const replacement = createReplacement({ ...p, queue, admin: p.fakes.admin });
  return { ...p, queue, replacement };
}

test('a dead node is logged at once, down in the views, then replaced under its id: same regions, new address', async () => {
  const { replacement, views, journal, fakes, registry, published } = await parts(2);
  const before = views.view();
  await replacement.nodeFailed('n1', 'failed 2 health checks in a row');
  const after = views.view();
  assert.match(journal.events[0]?.message ?? '', /^Node n1 at http:\/\/n1\.1 failed 2 health/);
  // First a view that says n1 is down (frontends stop reading and invalidating it), pushed to
  // every node but n1; then the replacement's, which is up again.
  assert.deepEqual(
    published.map((v) => [v.map.version, v.down, v.addresses.n1]),
    [
      [2, ['n1'], 'http://n1.1'],
      [3, undefined, 'http://n1.2'],
    ],
  );
  assert.deepEqual(
    fakes.calls.filter((c) => c.startsWith('view')),
    ['view n0 v2', 'view n0 v3', 'view n1 v3'],
  );
  assert.deepEqual(after.map.nodes, before.map.nodes);
  assert.deepEqual(after.map.owner, before.map.owner);
  assert.equal(after.map.version, before.map.version + 2);
  assert.equal(after.addresses.n1, 'http://n1.2');
  assert.equal(fakes.get('http://n1.2')?.config?.capacity, 64, 'configured');
  assert.match(
    journal.events.at(-1)?.message ?? '',
    /Node n1 was replaced by the node at http:\/\/n1\.2/,
  );
  assert.equal((await registry.listNodes()).find((n) => n.id === 'n1')?.address, 'http://n1.2');
});

test('word of the same death twice replaces the node once', async () => {
  const { replacement, fakes } = await parts(2);
  await Promise.all([
    replacement.nodeFailed('n1', 'exited (SIGKILL)'),
    replacement.nodeFailed('n1', 'failed 2 health checks in a row'),
  ]);
  assert.deepEqual(
    fakes.calls.filter((c) => c.startsWith('replace')),
    ['replace n1'],
  );
});

test('a provider that already restarted the node: its new address is taken, nothing replaced again', async () => {
  const { replacement, provider, views, fakes, queue } = await parts(2);
  provider.onReplaced((node) => void replacement.nodeReplaced(node));
  provider.onFailed?.((id, reason) => void replacement.nodeFailed(id, reason));
  provider.die('n0');
  await provider.restartOnItsOwn('n0');
  await replacement.nodeFailed('n0', 'late word');
  await queue.idle();
  assert.equal(views.address('n0'), 'http://n0.2');
  assert.deepEqual(
    fakes.calls.filter((c) => c.startsWith('replace')),
    [],
  );
});

test('with no replacement, the node leaves the map and its regions go to the others', async () => {
  const { replacement, views, journal, fakes } = await parts(3, { canReplace: false });
  const before = views.map;
  await replacement.nodeFailed('n2', 'exited (1)');
  assert.deepEqual(views.map.nodes, ['n0', 'n1']);
  assert.ok(views.map.owner.every((id) => id !== 'n2'));
  assert.equal(views.map.version, before.version + 1);
  assert.equal(views.address('n2'), undefined);
  assert.ok(fakes.calls.includes('stop n2'));
  assert.match(
    journal.events.at(-1)?.message ?? '',
    /Node n2 could not be replaced \(the fake provider cannot replace nodes\): took it out of the pool; its 5 regions went to the other 2 node\(s\)/,
  );
});

test('the last node is never taken out: it stays, and the event says frontends read from storage', async () => {
  const { replacement, views, journal } = await parts(1, { canReplace: false });
  await replacement.nodeFailed('n0', 'exited (1)');
  assert.deepEqual(views.map.nodes, ['n0']);
  assert.equal(views.map.version, 1);
  assert.match(journal.events.at(-1)?.message ?? '', /it is the only node, so it stays in the map/);
});

test('a provider that ends what it replaces: down at once if the process exited, not while a hung one lives', async () => {
  for (const [exited, versions] of [
    [
      true,
      [
        [2, ['n1']],
        [3, undefined],
      ],
    ],
    [false, [[2, undefined]]],
  ] as const) {
    const p = await createParts(2);
    const queue = createResizeQueue({ clock: p.clock });
    const provider = { ...p.provider, endsReplaced: true };
    const replacement = createReplacement({ ...p, provider, queue, admin: p.fakes.admin });
    await replacement.nodeFailed('n1', exited ? 'exited (SIGKILL)' : 'failed 2 checks', { exited });
    assert.deepEqual(
      p.published.map((v) => [v.map.version, v.down]),
      versions,
      `exited: ${exited}`,
    );
  }
});

test('a node whose process exits while a grow waits for its new node is down at once; the grow numbers its views after', async () => {
  const p = await createParts(3);
  const queue = createResizeQueue({ clock: p.clock });
  const provider = { ...p.provider, endsReplaced: true };
  const replacement = createReplacement({ ...p, provider, queue, admin: p.fakes.admin });
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const start = p.provider.start;
  p.provider.start = async (id) => {
    await gate;
    return start(id);
  };
  const grow = queue.run(() =>
    resizeByOne({ ...p, admin: p.fakes.admin, handOverTimeoutMs: 1000 }, 1),
  );
  await settle();
  const failed = replacement.nodeFailed('n1', 'exited (SIGKILL)', { exited: true });
  await settle();
  assert.deepEqual(
    p.published.map((v) => [v.map.version, v.down]),
    [[2, ['n1']]],
    'down while the grow still waits',
  );
  open();
  await Promise.all([grow, failed]);
  assert.deepEqual(
    p.published.map((v) => [v.map.version, v.down, v.previous !== undefined, v.map.nodes.length]),
    [
      [2, ['n1'], false, 3],
      [3, ['n1'], true, 4],
      [4, ['n1'], false, 4],
      [5, undefined, false, 4],
    ],
  );
  assert.ok(!p.fakes.calls.some((c) => /^view n1 v[234]/.test(c)), 'n1 is told nothing while down');
  const report = p.journal.events.find((e) => e.message.startsWith('Grew to 4'));
  assert.ok(report, p.journal.events.map((e) => e.message).join('\n'));
  assert.equal((report.details as { mapVersion: number }).mapVersion, 3);
});

test('a lone node whose process exited stays down if it cannot be started again; one retired is never down', async () => {
  for (const endsReplaced of [true, false]) {
    const p = await createParts(1);
    const queue = createResizeQueue({ clock: p.clock });
    const provider = { ...p.provider, endsReplaced };
    const replacement = createReplacement({ ...p, provider, queue, admin: p.fakes.admin });
    p.provider.failing.add('n0');
    await replacement.nodeFailed('n0', 'exited (1)', { exited: true });
    assert.deepEqual(p.views.map.nodes, ['n0']);
    assert.deepEqual(
      p.published.map((v) => [v.map.version, v.down]),
      endsReplaced ? [[2, ['n0']]] : [],
      `endsReplaced: ${endsReplaced}`,
    );
  }
});

test('a restarted node handed over twice (by replace() and by the provider) is taken once', async () => {
  const { replacement, views, journal, fakes } = await parts(2);
  const before = views.map.version;
  fakes.add('http://n1.9');
  const node = { id: 'n1', url: 'http://n1.9' };
  await replacement.nodeReplaced(node);
  await replacement.nodeReplaced(node);
  assert.equal(views.map.version, before + 1);
  assert.equal(journal.events.filter((e) => /was replaced by/.test(e.message)).length, 1);
});

test('after close, a death is neither logged nor acted on', async () => {
  const { replacement, journal, fakes } = await parts(2);
  replacement.close();
  await replacement.nodeFailed('n1', 'exited (1)');
  assert.deepEqual(journal.events, []);
  assert.deepEqual(fakes.calls, []);
});

test('a node back at the same address (a pod replaced) is a new process: configured, new view', async () => {
  const { replacement, views, fakes } = await parts(2);
  const before = views.map.version;
  const url = views.address('n1') as string;
  const fake = fakes.get(url);
  assert.ok(fake);
  fake.config = undefined; // as a fresh process at that address has none
  await replacement.nodeReplaced({ id: 'n1', url });
  assert.equal(views.map.version, before + 1);
  assert.equal(views.address('n1'), url);
  assert.equal(fakes.get(url)?.config?.capacity, 64, 'configured');
});
