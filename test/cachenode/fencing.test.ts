/**
 * The hooks every cache-node entry request runs, over a real socket: the shared secret (401
 * envelope) and the map-version fence (421 for a request routed with an older pool view, 400
 * for a malformed tag, the request itself when the tag is current or absent). These hooks are
 * callback-style for speed (binary-routes.ts, http/auth.ts); this pins what they answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createNodeClient, NodeRequestError } from '../../src/clients/node-client.ts';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { auth, call, png, startNode, type TestNode } from '../helpers/nodes.ts';

describe('cache node entry hooks: secret and map-version fence', () => {
  let node: TestNode;
  let mapVersion: number | undefined;
  const client = createNodeClient({ secret: 'test-secret', mapVersion: () => mapVersion });
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await client.close();
    await node.close();
  });

  const get = (path: string, headers: Record<string, string>) =>
    fetch(`${node.url}${path}`, { headers }).then(async (r) => ({
      status: r.status,
      body: await r.text(),
    }));

  it('refuses a request without or with a wrong secret, in the envelope', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }];
    for (const headers of attempts) {
      const { status, body } = await get('/v1/entries/a', headers);
      assert.equal(status, 401);
      assert.equal(JSON.parse(body).error.code, 401);
    }
  });

  it('fences entry requests by the pool map version', async () => {
    // A bare view, not leased (test/cachenode/view-lease.test.ts covers leased ones).
    const pushed = await call(node.url, 'POST', '/v1/pool-view', {
      map: createPoolMap([node.url], 'balanced', 4),
      addresses: { [node.url]: node.url },
    });
    assert.equal(pushed.body.adopted, true);
    mapVersion = 4;
    await client.put(node.url, 'k', { value: png(10), contentType: 'image/png', version: 1 });

    mapVersion = 3;
    await assert.rejects(client.read(node.url, 'k', 1), (error: unknown) => {
      assert.ok(error instanceof NodeRequestError);
      assert.equal(error.status, 421);
      return true;
    });
    mapVersion = 4;
    assert.equal((await client.read(node.url, 'k', 1)).entry, 'current');
    mapVersion = undefined;
    assert.equal((await client.get(node.url, 'k'))?.version, 1);

    const bad = await get('/v1/entries/k', { ...auth, 'x-pixpool-map-version': 'soon' });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error.message, /version must be a whole number/);
  });
});
