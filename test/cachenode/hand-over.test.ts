import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { regionOf } from '../../src/core/regions.ts';
import { call, png, startNode, type TestNode } from '../helpers/nodes.ts';

const put = (node: TestNode, key: string, version: number, bytes = 1000) =>
  node.cache.put(key, { value: png(bytes, version), contentType: 'image/png', version }, true);

describe('hand-over between two real nodes', () => {
  let a: TestNode;
  let b: TestNode;
  before(async () => {
    [a, b] = await Promise.all([startNode(), startNode()]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  beforeEach(() => {
    a.cache.clear();
    b.cache.clear();
  });

  it('moves every entry of the given regions, byte-exact, and only those', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `img-${i}`);
    keys.forEach((k, i) => {
      put(a, k, i + 1, 500 + i);
    });
    const moved = new Set([0, 3, 12]);
    const expected = keys.filter((k) => moved.has(regionOf(k)));
    const answer = await call(a.url, 'POST', '/api/cache/move_keys', {
      to: b.url,
      regions: [0, 3, 12],
    });
    assert.equal(answer.status, 200);
    const [result] = answer.body.content;
    assert.equal(result.entries, expected.length);
    assert.equal(result.accepted, expected.length);
    assert.equal(
      result.bytes,
      expected.reduce((sum, k) => sum + (b.cache.peek(k)?.value.length ?? 0), 0),
    );
    assert.deepEqual(b.cache.keys().sort(), [...expected].sort());
    for (const k of expected) {
      assert.ok(b.cache.peek(k)?.value.equals(png(500 + keys.indexOf(k), keys.indexOf(k) + 1)));
      assert.equal(a.cache.peek(k), undefined, 'the sender forgets what it handed over');
    }
    assert.equal(a.cache.items, keys.length - expected.length);
  });

  it('moves a key’s image variants with its region, and only with it', async () => {
    const variants = ['w64h.inside.webp.q', 'w256h128.cover.same.q80'].map((id) => `cat/${id}`);
    put(a, 'cat', 7);
    for (const key of variants) put(a, key, 7, 300);
    put(a, 'dog/w64h.inside.webp.q', 3);
    assert.notEqual(regionOf('dog'), regionOf('cat'), 'two keys of two regions');
    const answer = await call(a.url, 'POST', '/api/cache/move_keys', {
      to: b.url,
      regions: [regionOf('cat')],
    });
    assert.equal(answer.body.content[0].accepted, 3);
    assert.deepEqual(b.cache.keys().sort(), ['cat', ...variants].sort());
    for (const key of variants) assert.ok(b.cache.peek(key)?.value.equals(png(300, 7)));
    assert.deepEqual(a.cache.keys(), ['dog/w64h.inside.webp.q']);
    // On the new owner they are the key's: an invalidation of the key removes them.
    assert.equal((await call(b.url, 'DELETE', '/v1/entries/cat')).status, 204);
    assert.deepEqual(b.cache.keys(), []);
  });

  it('never replaces a newer version on the receiver', async () => {
    put(a, 'cat', 1);
    put(b, 'cat', 2);
    const answer = await call(a.url, 'POST', '/api/cache/move_keys', {
      moves: [{ to: b.url, keys: ['cat'] }],
    });
    assert.equal(answer.body.content[0].refused, 1);
    assert.equal(b.cache.peek('cat')?.version, 2);
  });

  it('accepts the seed payload {port, dest: {address: [keys]}} and reports missing keys', async () => {
    put(a, 'k1', 1);
    put(a, 'k2', 1);
    const address = b.url.replace('http://', '');
    const answer = await call(a.url, 'POST', '/api/cache/move_keys', {
      port: -1,
      dest: { [address]: ['k1', 'gone'] },
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(
      { entries: answer.body.content[0].entries, missing: answer.body.content[0].missing },
      { entries: 1, missing: 1 },
    );
    assert.ok(b.cache.peek('k1'));
    assert.ok(a.cache.peek('k2'));
  });

  it('keep: true copies without forgetting', async () => {
    put(a, 'test', 4);
    await call(a.url, 'POST', '/api/cache/move_keys', { to: b.url, regions: [0], keep: true });
    assert.equal(a.cache.peek('test')?.version, 4);
    assert.equal(b.cache.peek('test')?.version, 4);
  });

  it('when the receiver is down the entries stay and the answer says so', async () => {
    put(a, 'test', 1);
    const answer = await call(a.url, 'POST', '/api/cache/move_keys', {
      to: 'http://127.0.0.1:1',
      regions: [0],
    });
    assert.equal(answer.status, 502);
    assert.match(answer.body.error.message, /Hand-over failed/);
    assert.ok(a.cache.peek('test'));
  });

  it('the receiver refuses a hand-over from a node without the pool secret', async () => {
    const outsider = await startNode({ secret: 'another-pool' });
    try {
      put(outsider, 'test', 1);
      const answer = await call(
        outsider.url,
        'POST',
        '/api/cache/move_keys',
        { to: b.url, regions: [0] },
        { authorization: 'Bearer another-pool' },
      );
      assert.equal(answer.status, 502);
      assert.match(answer.body.error.message, /401/);
      assert.equal(b.cache.peek('test'), undefined);
    } finally {
      await outsider.close();
    }
  });
});
