import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { auth, call, dataUrl, png, startNode, type TestNode } from '../helpers/nodes.ts';

describe('cache node seed-compatible API over a real socket', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ capacityMb: 1, bodyLimit: 2 * 1024 * 1024 });
  });
  after(() => node.close());
  beforeEach(async () => {
    await call(node.url, 'DELETE', '/api/cache');
    await call(node.url, 'POST', '/api/cache/config', { capacity: 1, replacement_policy: 'LRU' });
  });

  it('puts a data URL and gets it back as the same data URL', async () => {
    const url = dataUrl(png(300), 'image/png');
    const put = await call(node.url, 'POST', '/api/cache/content', { key: 'cat', value: url });
    assert.deepEqual(put, { status: 200, body: { success: 'true', content: '' } });
    const got = await call(node.url, 'POST', '/api/cache/key', { key: 'cat' });
    assert.equal(got.status, 200);
    assert.equal(got.body.success, 'true');
    assert.equal(got.body.content, url);
    assert.equal(got.body.key, 'cat');
  });

  it('puts bare base64 and sniffs its type; accepts form-encoded bodies as the originals’ clients send them', async () => {
    const value = png(64).toString('base64');
    const form = await fetch(`${node.url}/api/cache/content`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: 'dog', value }).toString(),
    });
    assert.equal(form.status, 200);
    const got = await call(node.url, 'POST', '/api/cache/key', { key: 'dog' });
    assert.equal(got.body.content, `data:image/png;base64,${value}`);
    assert.equal(node.cache.peek('dog')?.value.length, 64);
  });

  it('a miss is a 404 envelope; invalidating forgets the key and is idempotent', async () => {
    await call(node.url, 'POST', '/api/cache/content', { key: 'k', value: dataUrl(png(10)) });
    assert.equal((await call(node.url, 'DELETE', '/api/cache/key', { key: 'k' })).status, 200);
    assert.equal((await call(node.url, 'DELETE', '/api/cache/key', { key: 'k' })).status, 200);
    const miss = await call(node.url, 'POST', '/api/cache/key', { key: 'k' });
    assert.equal(miss.status, 404);
    assert.deepEqual(miss.body.error.code, 404);
    assert.match(miss.body.error.message, /not in this cache/);
  });

  it('config: shrinking evicts down with the new policy and content otherwise survives', async () => {
    for (let i = 0; i < 10; i++) {
      await call(node.url, 'POST', '/api/cache/content', {
        key: `k${i}`,
        value: dataUrl(png(100_000)),
      });
    }
    assert.equal(node.cache.items, 10);
    const shrink = await call(node.url, 'POST', '/api/cache/config', {
      capacity: 0.5,
      replacement_policy: 'rr',
    });
    assert.equal(shrink.status, 200);
    assert.equal(shrink.body.content.replacement_policy, 'RR');
    assert.equal(shrink.body.content.evicted, 5);
    assert.equal(node.cache.items, 5);
    const config = await call(node.url, 'GET', '/api/cache/config');
    assert.equal(config.body.content.capacity, 0.5);
    assert.equal(config.body.content.capacity_bytes, 524288);
  });

  it('statistics count gets, hits and misses; clear keeps them; reset zeroes them', async () => {
    await call(node.url, 'DELETE', '/api/cache/statistics');
    const empty = await call(node.url, 'GET', '/api/cache/statistics');
    assert.equal(empty.body.content.hit_rate, null, 'no gets: no hit rate');
    await call(node.url, 'POST', '/api/cache/content', { key: 'a', value: dataUrl(png(10)) });
    await call(node.url, 'POST', '/api/cache/key', { key: 'a' });
    await call(node.url, 'POST', '/api/cache/key', { key: 'b' });
    await call(node.url, 'DELETE', '/api/cache');
    const stats = (await call(node.url, 'GET', '/api/cache/statistics')).body.content;
    assert.equal(stats.gets, 2);
    assert.equal(stats.hits, 1);
    assert.equal(stats.misses, 1);
    assert.equal(stats.puts, 1);
    assert.equal(stats.hit_rate, 0.5);
    assert.equal(stats.items, 0, 'clear emptied the content');
    assert.equal(stats.num_GET_request_served, 2);
    assert.equal(stats.num_hit, 1);
    const reset = await call(node.url, 'DELETE', '/api/cache/statistics');
    assert.equal(reset.body.content.gets, 0);
  });

  it('lists keys, by region too, and sums regions', async () => {
    for (const key of ['test', 'test123', 'testabc', 'k1', 'k2']) {
      await call(node.url, 'POST', '/api/cache/content', { key, value: dataUrl(png(10)) });
    }
    const all = await call(node.url, 'GET', '/keys');
    assert.deepEqual([...all.body].sort(), ['k1', 'k2', 'test', 'test123', 'testabc']);
    const twelve = await call(node.url, 'POST', '/keys?region=12');
    assert.deepEqual([...twelve.body].sort(), ['test123', 'testabc']);
    const regions = await call(node.url, 'GET', '/api/cache/regions');
    assert.deepEqual(regions.body.content[12], { region: 12, items: 2, bytes: 20 });
    assert.equal((await call(node.url, 'GET', '/keys?region=16')).status, 400);
  });

  it('metrics are Prometheus text with the node counters', async () => {
    await call(node.url, 'POST', '/api/cache/key', { key: 'nope' });
    const response = await fetch(`${node.url}/metrics`, { headers: auth });
    const text = await response.text();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(text, /^pixpool_cache_misses_total\{service="cache-node"\} [1-9]/m);
    assert.match(text, /^pixpool_cache_capacity_bytes\{service="cache-node"\} 1048576$/m);
  });

  it('bad input gets a clear 4xx envelope and changes nothing', async () => {
    await call(node.url, 'POST', '/api/cache/content', { key: 'keep', value: dataUrl(png(10)) });
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/api/cache/key', {}, 400, /key is required/],
      ['POST', '/api/cache/key', { key: 'a b' }, 400, /whitespace/],
      ['POST', '/api/cache/key', { key: 'a/b' }, 400, /slash/],
      ['POST', '/api/cache/key', { key: 42 }, 400, /key is required/],
      ['POST', '/api/cache/key', '{"key":', 400, /not valid JSON/],
      ['POST', '/api/cache/key', '[1,2]', 400, /JSON object/],
      ['DELETE', '/api/cache/key', {}, 400, /key is required/],
      ['POST', '/api/cache/content', { key: 'keep' }, 400, /value is required/],
      [
        'POST',
        '/api/cache/content',
        { key: 'keep', value: 'not base64!' },
        400,
        /not valid base64/,
      ],
      [
        'POST',
        '/api/cache/content',
        { key: 'keep', value: 'data:image/png,abc' },
        400,
        /not a base64 data URL/,
      ],
      [
        'POST',
        '/api/cache/content',
        { key: 'keep', value: 'data:image/png;base64,' },
        400,
        /not valid base64/,
      ],
      [
        'POST',
        '/api/cache/content',
        { key: 'keep', value: dataUrl(png(10)), version: 'x' },
        400,
        /version/,
      ],
      [
        'POST',
        '/api/cache/content',
        { key: 'big', value: dataUrl(png(1024 * 1024 + 1)) },
        413,
        /capacity/,
      ],
      [
        'POST',
        '/api/cache/content',
        { key: 'huge', value: 'A'.repeat(3 * 1024 * 1024) },
        413,
        /larger than this endpoint accepts/,
      ],
      ['POST', '/api/cache/config', {}, 400, /Nothing to change/],
      ['POST', '/api/cache/config', { capacity: 0 }, 400, /more than 0/],
      ['POST', '/api/cache/config', { capacity: -3, replacement_policy: 'RR' }, 400, /more than 0/],
      ['POST', '/api/cache/config', { capacity: 1e9 }, 400, /more than this node allows/],
      ['POST', '/api/cache/config', { capacity: 'lots' }, 400, /number of MB/],
      [
        'POST',
        '/api/cache/config',
        { capacity: 0.1, replacement_policy: 'FIFO' },
        400,
        /Unknown replacement policy/,
      ],
      ['POST', '/api/cache/move_keys', {}, 400, /Say what to move/],
      ['POST', '/api/cache/move_keys', { to: 'ftp://x', regions: [1] }, 400, /node address/],
      [
        'POST',
        '/api/cache/move_keys',
        { to: 'http://127.0.0.1:1', regions: [16] },
        400,
        /region numbers/,
      ],
      ['POST', '/api/cache/move_keys', { dest: ['x'] }, 400, /dest must map/],
      ['GET', '/api/nothing', undefined, 404, /no endpoint GET \/api\/nothing/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const answer = await call(node.url, method, path, body);
      assert.equal(
        answer.status,
        status,
        `${method} ${path} ${JSON.stringify(body)?.slice(0, 80)}`,
      );
      assert.deepEqual(answer.body, {
        success: 'false',
        error: { code: status, message: answer.body.error.message },
      });
      assert.match(answer.body.error.message, message);
    }
    assert.deepEqual(node.cache.keys(), ['keep']);
    assert.deepEqual(node.cache.config, { policy: 'LRU', capacityMb: 1 });
    assert.equal((await call(node.url, 'GET', '/health', undefined, {})).status, 200);
  });
});
