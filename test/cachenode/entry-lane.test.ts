/**
 * The node's socket lane (cachenode/binary-routes.ts entrySocketLane) answers entry GETs before
 * node:http and Fastify see them. These tests hold it to the route it stands in front of, through
 * an ordinary HTTP client: the same status, headers and bytes for hits and revalidations, and
 * every refusal worded as the route words it. test/cachenode/socket-lane.test.ts tests it on
 * the wire.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { auth, SECRET, startNode, type TestNode } from '../helpers/nodes.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One raw HTTP request (fetch would normalise the path; the lane must see odd ones as sent). */
function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  agent?: import('node:http').Agent,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const value = Buffer.from('\x89PNG\r\n\x1a\n fast lane test value');

describe('cache node entry lane', () => {
  let node: TestNode;
  before(async () => {
    // The lane, whatever PIXPOOL_SOCKET_LANES says: it is what these tests are about.
    node = await startNode({ socketLanes: true });
    node.cache.put(
      'kép-1',
      { value, contentType: 'image/png', version: 7, modifiedAt: 1234 },
      true,
    );
  });
  after(() => node.close());

  it('serves a hit with the route’s headers and bytes, and counts it once', async () => {
    const before = { ...node.cache.stats.totals };
    const answer = await raw(node.url, 'GET', `/v1/entries/${encodeURIComponent('kép-1')}`, auth);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, value);
    assert.equal(answer.headers['content-type'], 'image/png');
    assert.equal(answer.headers['content-length'], String(value.length));
    assert.equal(answer.headers['x-pixpool-version'], '7');
    assert.equal(answer.headers['x-pixpool-modified'], '1234');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    assert.equal(answer.headers['content-security-policy'], "default-src 'none'; sandbox");
    const after = node.cache.stats.totals;
    assert.equal(after.hits - before.hits, 1);
    assert.equal(after.misses - before.misses, 0);
  });

  it('answers 304 when the sender holds the cached version, 200 when it holds another', async () => {
    const path = `/v1/entries/${encodeURIComponent('kép-1')}`;
    const same = await raw(node.url, 'GET', path, { ...auth, 'x-pixpool-if-version': '7' });
    assert.equal(same.status, 304);
    assert.equal(same.body.length, 0);
    const other = await raw(node.url, 'GET', path, { ...auth, 'x-pixpool-if-version': '6' });
    assert.equal(other.status, 200);
    assert.deepEqual(other.body, value);
  });

  it('words misses, refusals and odd requests as the route does', async () => {
    const path = `/v1/entries/${encodeURIComponent('kép-1')}`;
    const cases: [string, string, Record<string, string>, number][] = [
      ['GET', '/v1/entries/absent', auth, 404],
      ['GET', path, {}, 401],
      ['GET', path, { authorization: `Bearer ${SECRET}x` }, 401],
      ['GET', path, { ...auth, 'x-pixpool-map-version': 'soon' }, 400],
      ['GET', '/v1/entries/%E0%A4%A', auth, 400],
      // A slash makes an image variant's entry key (key/variant): one of a bad key or id is refused.
      ['GET', '/v1/entries/a%2Fb', auth, 404],
      ['GET', '/v1/entries/a%2F', auth, 400],
      ['GET', '/v1/entries/a%2Fb%2Fc', auth, 400],
    ];
    for (const [method, target, headers, status] of cases) {
      const answer = await raw(node.url, method, target, headers);
      assert.equal(answer.status, status, `${method} ${target} ${JSON.stringify(headers)}`);
      const body = JSON.parse(answer.body.toString());
      assert.equal(body.success, 'false');
      assert.equal(body.error.code, status);
    }
    // HEAD and a query string go through Fastify too, and still find the entry.
    const head = await raw(node.url, 'HEAD', path, auth);
    assert.equal(head.status, 200);
    assert.equal(head.headers['x-pixpool-version'], '7');
    const query = await raw(node.url, 'GET', `${path}?x=1`, auth);
    assert.deepEqual(query.body, value);
  });

  it('is fenced like the route: an older map version gets 421 even for a cached key', async () => {
    const response = await fetch(`${node.url}/v1/pool-view`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        map: createPoolMap([node.url], 'balanced', 5),
        addresses: { [node.url]: node.url },
      }),
    });
    assert.equal(response.status, 200, await response.text());
    // Adopting the view dropped what the node held before it; cache the entry again.
    node.cache.put('kép-1', { value, contentType: 'image/png', version: 7 }, true);
    const path = `/v1/entries/${encodeURIComponent('kép-1')}`;
    const old = await raw(node.url, 'GET', path, { ...auth, 'x-pixpool-map-version': '4' });
    assert.equal(old.status, 421);
    const current = await raw(node.url, 'GET', path, { ...auth, 'x-pixpool-map-version': '5' });
    assert.equal(current.status, 200);
  });

  it('checks the secret again when a kept-alive connection changes its header', async () => {
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const path = `/v1/entries/${encodeURIComponent('kép-1')}`;
      assert.equal((await raw(node.url, 'GET', path, auth, agent)).status, 200);
      const wrong = await raw(node.url, 'GET', path, { authorization: 'Bearer no' }, agent);
      assert.equal(wrong.status, 401);
      assert.equal((await raw(node.url, 'GET', path, {}, agent)).status, 401);
      assert.equal((await raw(node.url, 'GET', path, auth, agent)).status, 200);
    } finally {
      agent.destroy();
    }
  });
});
