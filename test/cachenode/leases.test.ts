/**
 * Read leases on the wire (src/cachenode/leases.ts): which answers grant one, and that an
 * invalidation is not answered while a lease it granted can still be trusted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LEASE_HEADER } from '../../src/core/node-protocol.ts';
import { createPoolMap, resizePoolMap } from '../../src/core/pool-map.ts';
import { auth, call, startNode, type TestNode } from '../helpers/nodes.ts';

const LEASE_MS = 300;
const value = { value: Buffer.from('\x89PNG lease test'), contentType: 'image/png', version: 4 };

async function get(node: TestNode, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${node.url}${path}`, { headers: { ...auth, ...headers } });
  await response.arrayBuffer();
  return { status: response.status, lease: response.headers.get(LEASE_HEADER) };
}

describe('read leases', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ leaseMs: LEASE_MS });
  });
  after(() => node.close());

  it('a read that asks gets a lease on a hit or a revalidation, never on a miss or unasked', async () => {
    node.cache.put('leased', value, true);
    const ask = { [LEASE_HEADER]: '1' };
    assert.deepEqual(await get(node, '/v1/entries/leased', ask), {
      status: 200,
      lease: String(LEASE_MS),
    });
    assert.deepEqual(
      await get(node, '/v1/entries/leased', { ...ask, 'x-pixpool-if-version': '4' }),
      {
        status: 304,
        lease: String(LEASE_MS),
      },
    );
    // The same read through the route behind the socket lane (a query string sends it there).
    assert.deepEqual(await get(node, '/v1/entries/leased?via=route', ask), {
      status: 200,
      lease: String(LEASE_MS),
    });
    assert.deepEqual(await get(node, '/v1/entries/leased'), { status: 200, lease: null });
    assert.deepEqual(await get(node, '/v1/entries/absent', ask), { status: 404, lease: null });
  });

  it('an invalidation of a leased key is answered only once the lease has run out', async () => {
    node.cache.put('held', value, true);
    // Past the fence every node starts with, so only the lease below is waited for.
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS));
    const sent = performance.now();
    assert.equal((await get(node, '/v1/entries/held', { [LEASE_HEADER]: '1' })).lease, '300');
    const deleted = await fetch(`${node.url}/v1/entries/held`, {
      method: 'DELETE',
      headers: { ...auth, 'x-pixpool-version': '5' },
    });
    assert.equal(deleted.status, 204);
    // The lease began at the node after `sent`, so the answer cannot come before sent + lease.
    const answered = performance.now();
    assert.ok(
      answered >= sent + LEASE_MS - 1,
      `answered ${(answered - sent).toFixed(1)} ms after the read`,
    );
    assert.equal(node.cache.peek('held'), undefined, 'the entry went at once, not after the wait');
    // Cleared (delete-all) waits for every lease too.
    node.cache.put('held', { ...value, version: 6 }, true);
    const again = performance.now();
    await get(node, '/v1/entries/held', { [LEASE_HEADER]: '1' });
    assert.equal((await call(node.url, 'DELETE', '/api/cache')).status, 200);
    assert.ok(performance.now() >= again + LEASE_MS - 1);
  });

  it('no lease on a region while it is handed over: another node serves it too', async () => {
    const addresses = { a: node.url, b: 'http://127.0.0.1:9' };
    const one = createPoolMap(['a'], 'balanced');
    const two = resizePoolMap(one, ['a', 'b']);
    const pushed = await call(node.url, 'POST', '/v1/pool-view', {
      map: two,
      addresses,
      previous: one.owner,
      self: 'a',
    });
    assert.equal(pushed.status, 200);
    const region = (key: string) =>
      import('../../src/core/regions.ts').then(({ regionOf }) => regionOf(key));
    let moving = '';
    let kept = '';
    for (let i = 0; !moving || !kept; i++) {
      const owner = two.owner[await region(`r${i}`)];
      if (owner === 'b' && !moving) moving = `r${i}`;
      if (owner === 'a' && !kept) kept = `r${i}`;
    }
    const ask = { [LEASE_HEADER]: '1', 'x-pixpool-map-version': String(two.version) };
    node.cache.put(moving, value, true);
    node.cache.put(kept, value, true);
    assert.deepEqual(await get(node, `/v1/entries/${moving}`, ask), { status: 200, lease: null });
    assert.deepEqual(await get(node, `/v1/entries/${kept}`, ask), {
      status: 200,
      lease: String(LEASE_MS),
    });
  });
});

it('a node started with --lease-ms 0 grants none', async () => {
  const node = await startNode({ leaseMs: 0 });
  try {
    node.cache.put('k', value, true);
    assert.deepEqual(await get(node, '/v1/entries/k', { [LEASE_HEADER]: '1' }), {
      status: 200,
      lease: null,
    });
  } finally {
    await node.close();
  }
});
