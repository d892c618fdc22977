import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createNodeClient, NodeRequestError } from '../../src/clients/node-client.ts';
import { encodeBatch } from '../../src/core/entry-batch.ts';
import { auth, png, SECRET, startNode, type TestNode } from '../helpers/nodes.ts';

describe('cache node binary path over a real socket', () => {
  let node: TestNode;
  const client = createNodeClient({ secret: SECRET });
  before(async () => {
    node = await startNode({ capacityMb: 1 });
  });
  after(async () => {
    await client.close();
    await node.close();
  });

  it('stores raw bytes and returns them byte-exact with type and version', async () => {
    const value = png(50_000);
    assert.equal(
      await client.put(node.url, 'cat', { value, contentType: 'image/png', version: 3 }),
      'stored',
    );
    const got = await client.get(node.url, 'cat');
    assert.ok(got);
    assert.ok(got.value.equals(value));
    assert.equal(got.contentType, 'image/png');
    assert.equal(got.version, 3);
  });

  it('keys with any unicode survive the URL round trip', async () => {
    const key = 'фото%20#1?x=ü&y';
    await client.put(node.url, key, { value: png(10), contentType: 'image/png', version: 1 });
    assert.equal((await client.get(node.url, key))?.version, 1);
    assert.ok(node.cache.peek(key));
  });

  it('a miss is undefined, a stale put is refused, an invalidation forgets', async () => {
    assert.equal(await client.get(node.url, 'nothing-here'), undefined);
    await client.put(node.url, 'v', { value: png(10), contentType: 'image/png', version: 5 });
    assert.equal(
      await client.put(node.url, 'v', { value: png(10, 1), contentType: 'image/png', version: 4 }),
      'stale',
    );
    assert.equal((await client.get(node.url, 'v'))?.version, 5);
    await client.invalidate(node.url, 'v');
    assert.equal(await client.get(node.url, 'v'), undefined);
  });

  it('an invalidation carrying the new version turns away a late fill of an older one', async () => {
    const value = png(10);
    await client.put(node.url, 't', { value, contentType: 'image/png', version: 1, modifiedAt: 5 });
    assert.equal((await client.get(node.url, 't'))?.modifiedAt, 5);
    await client.invalidate(node.url, 't', 2);
    assert.equal(
      await client.put(node.url, 't', { value, contentType: 'image/png', version: 1 }),
      'stale',
    );
    assert.equal(
      await client.put(node.url, 't', { value, contentType: 'image/png', version: 2 }),
      'stored',
    );
  });

  it('imports a batch without replacing newer versions', async () => {
    await client.put(node.url, 'i1', { value: png(10), contentType: 'image/png', version: 7 });
    const batch = encodeBatch([
      { key: 'i1', contentType: 'image/png', version: 6, value: png(10, 2) },
      { key: 'i2', contentType: 'image/gif', version: 2, value: png(10, 3) },
    ]);
    assert.deepEqual(await client.importBatch(node.url, batch), { accepted: 1, refused: 1 });
    assert.equal((await client.get(node.url, 'i1'))?.version, 7);
    assert.equal((await client.get(node.url, 'i2'))?.contentType, 'image/gif');
  });

  it('refuses bad input with the envelope and leaves the content as it was', async () => {
    const before = node.cache.items;
    const cases: [string, RequestInit, number, RegExp][] = [
      [
        '/v1/entries/a%20b',
        { method: 'PUT', body: png(10), headers: { ...auth, 'content-type': 'image/png' } },
        400,
        /whitespace/,
      ],
      [
        '/v1/entries/a',
        { method: 'PUT', body: png(10), headers: { ...auth, 'content-type': 'nonsense' } },
        415,
        /Content-Type/,
      ],
      [
        '/v1/entries/a',
        {
          method: 'PUT',
          body: png(10),
          headers: { ...auth, 'content-type': 'image/png', 'x-pixpool-version': '-1' },
        },
        400,
        /version/,
      ],
      [
        '/v1/entries/a',
        {
          method: 'PUT',
          body: png(10),
          headers: { ...auth, 'content-type': 'image/png', 'x-pixpool-version': 'abc' },
        },
        400,
        /version/,
      ],
      [
        '/v1/entries/a',
        { method: 'PUT', body: '', headers: { ...auth, 'content-type': 'image/png' } },
        400,
        /raw request body/,
      ],
      [
        '/v1/entries/big',
        {
          method: 'PUT',
          body: png(1024 * 1024 + 1),
          headers: { ...auth, 'content-type': 'image/png' },
        },
        413,
        /larger than this node's whole capacity/,
      ],
      [`/v1/entries/${'k'.repeat(129)}`, { method: 'GET', headers: auth }, 400, /at most 128/],
      [
        '/v1/import',
        {
          method: 'POST',
          body: Buffer.from([0, 0, 0, 9, 1]),
          headers: { ...auth, 'content-type': 'application/x-pixpool-entries' },
        },
        400,
        /malformed/,
      ],
    ];
    for (const [path, init, status, message] of cases) {
      const response = await fetch(node.url + path, init);
      const body = (await response.json()) as {
        success: string;
        error: { code: number; message: string };
      };
      assert.equal(response.status, status, `${init.method} ${path}`);
      assert.deepEqual(Object.keys(body), ['success', 'error']);
      assert.equal(body.success, 'false');
      assert.equal(body.error.code, status);
      assert.match(body.error.message, message);
    }
    assert.equal(node.cache.items, before);
  });

  it('a node that is not there is a NodeRequestError, not a hang', async () => {
    const dead = createNodeClient({ secret: SECRET, timeoutMs: 500 });
    await assert.rejects(dead.get('http://127.0.0.1:1', 'k'), NodeRequestError);
    await dead.close();
  });

  it('reads stay on connections of their own, which the node answers in its socket lane', async () => {
    // One connection per kind: were reads (or fills) and the import to share it, the import would
    // move it to node:http (http/socket-lane.ts) and every read after it would be a node:http
    // request. (The lane takes fills and invalidations too.)
    // (A node of its own, with the lane whatever PIXPOOL_SOCKET_LANES says.)
    const laned = await startNode({ socketLanes: true });
    const one = createNodeClient({ secret: SECRET, connections: 1 });
    let viaNodeHttp = 0;
    const count = () => viaNodeHttp++;
    laned.server.on('request', count);
    try {
      const value = png(1000);
      await one.put(laned.url, 'lane-read', { value, contentType: 'image/png', version: 1 });
      for (let i = 0; i < 5; i++)
        assert.ok((await one.get(laned.url, 'lane-read'))?.value.equals(value));
      await one.invalidate(laned.url, 'lane-read');
      assert.equal(await one.get(laned.url, 'lane-read'), undefined);
      assert.equal(viaNodeHttp, 0, 'the lane took the PUT and the DELETE');
      const batch = encodeBatch([
        { key: 'lane-import', value, contentType: 'image/png', version: 2 },
      ]);
      assert.deepEqual(await one.importBatch(laned.url, batch), { accepted: 1, refused: 0 });
      for (let i = 0; i < 5; i++)
        assert.ok((await one.get(laned.url, 'lane-import'))?.value.equals(value));
      await one.put(laned.url, 'lane-read', { value, contentType: 'image/png', version: 3 });
      assert.equal(viaNodeHttp, 1, 'only the import reached node:http, not the PUT after it');
    } finally {
      laned.server.off('request', count);
      await one.close();
      await laned.close();
    }
  });
});
