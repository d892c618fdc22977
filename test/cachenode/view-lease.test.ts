/**
 * A cache node's view lease (src/cachenode/view.ts) on a real socket: a node given a leased view
 * serves reads only while the lease its manager renews runs (here test/helpers/renewer.ts plays
 * the manager's renewal endpoint), and takes invalidations all the time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createNodeClient, NodeRequestError } from '../../src/clients/node-client.ts';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { call, png, SECRET, startNode, type TestNode } from '../helpers/nodes.ts';
import { sleep, waitFor } from '../helpers/processes.ts';
import { type Renewer, startRenewer } from '../helpers/renewer.ts';

const refusedAs503 = (error: unknown) => {
  assert.ok(error instanceof NodeRequestError, String(error));
  assert.equal(error.status, 503);
  assert.match(error.message, /pool view has expired/);
  return true;
};

describe('a node serves its view only under a lease the manager renews', () => {
  let renewer: Renewer;
  let node: TestNode;
  const client = createNodeClient({ secret: SECRET });
  const entry = (version: number) => ({
    value: png(50, version),
    contentType: 'image/png',
    version,
  });
  const push = (version: number, self: string | null, extra: Record<string, unknown> = {}) =>
    call(node.url, 'POST', '/v1/pool-view', {
      map: createPoolMap(['n'], 'balanced', version),
      addresses: { n: node.url },
      self,
      leased: true,
      ...extra,
    });

  before(async () => {
    renewer = await startRenewer(600);
    node = await startNode({ managerUrl: renewer.url });
  });
  after(async () => {
    await client.close();
    await node.close();
    await renewer.close();
  });

  it('serves nothing until its first renewal, then reads, fills and leases within it', async () => {
    renewer.granting = false;
    const pushed = await push(2, 'n');
    assert.equal(pushed.status, 200);
    assert.equal(typeof pushed.body.instance, 'string');
    await assert.rejects(client.put(node.url, 'k', entry(1)), refusedAs503);
    renewer.granting = true;
    await waitFor(
      'a renewal',
      async () => (await client.put(node.url, 'k', entry(1))) === 'stored',
    );
    const read = await client.read(node.url, 'k', undefined, true);
    assert.equal(read.entry && read.entry !== 'current' && read.entry.version, 1);
    assert.ok(
      read.leaseMs > 0 && read.leaseMs <= 100,
      `a read lease within the view's: ${read.leaseMs}`,
    );
    const asked = renewer.asked.at(-1);
    assert.deepEqual(
      { id: asked?.node_id, version: asked?.version, instance: asked?.instance },
      { id: 'n', version: 2, instance: pushed.body.instance },
    );
  });

  it('a lease not renewed runs out: reads, fills and invalidations get 503; invalidations land', async () => {
    renewer.granting = false;
    await waitFor(
      'the lease to run out',
      () => client.read(node.url, 'k', undefined).then(() => false, refusedAs503),
      { timeoutMs: 3000, everyMs: 50 },
    );
    await assert.rejects(client.put(node.url, 'k', entry(1)), refusedAs503);
    const viaSeedApi = await call(node.url, 'POST', '/api/cache/key', { key: 'k' });
    assert.equal(viaSeedApi.status, 503);
    assert.equal(viaSeedApi.body.success, 'false');
    // Applied while expired, and kept (the old version cannot come back after the lease
    // returns), but not vouched for: the sender must not acknowledge an upload on it.
    await assert.rejects(client.invalidate(node.url, 'k', 7), refusedAs503);
    renewer.granting = true;
    await waitFor(
      'a renewal',
      async () => (await client.read(node.url, 'k', undefined)).entry === undefined,
    );
    assert.equal(await client.put(node.url, 'k', entry(5)), 'stale', 'older than the invalidation');
    assert.equal(await client.put(node.url, 'k', entry(8)), 'stored');
  });

  it('a view that leaves the node out of the pool: it serves nothing and stops renewing', async () => {
    assert.equal((await push(3, null)).status, 200);
    await assert.rejects(client.read(node.url, 'k', undefined), refusedAs503);
    const asked = renewer.asked.length;
    await sleep(400);
    assert.equal(renewer.asked.length, asked, 'no renewal asked once out of the pool');
    // Named again by a later view: it renews and serves (the region starts empty).
    assert.equal((await push(4, 'n')).status, 200);
    await renewer.renewed('n', 4);
    assert.equal((await client.read(node.url, 'k', undefined)).entry, undefined);
  });

  it('refuses a malformed push with the envelope and keeps its view', async () => {
    for (const [extra, message] of [
      [{ leased: 'yes' }, /leased must be true or false/],
      [{ self: 5 }, /self must be the id/],
    ] as const) {
      const answer = await push(9, 'n', extra);
      assert.equal(answer.status, 400);
      assert.match(answer.body.error.message, message);
    }
    assert.equal((await push(5, 'n')).body.version, 5, 'still at map 4 before this push');
  });
});

describe('a node given a leased view with no manager to renew it from', () => {
  it('serves no reads (and says why in its log)', async () => {
    const node = await startNode();
    try {
      const pushed = await call(node.url, 'POST', '/v1/pool-view', {
        map: createPoolMap(['n'], 'balanced', 2),
        addresses: { n: node.url },
        self: 'n',
        leased: true,
      });
      assert.equal(pushed.status, 200);
      const read = await call(node.url, 'GET', '/v1/entries/k');
      assert.equal(read.status, 503);
    } finally {
      await node.close();
    }
  });
});
