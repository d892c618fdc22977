import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { handOver } from '../../src/cachenode/hand-over.ts';
import { createNodeCache } from '../../src/cachenode/node-cache.ts';
import { createNodeClient, type NodeClient } from '../../src/clients/node-client.ts';
import { decodeBatch } from '../../src/core/entry-batch.ts';
import { regionOf } from '../../src/core/regions.ts';
import { call, png, SECRET, startNode, type TestNode } from '../helpers/nodes.ts';

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

describe('a hand-over streams its batches', () => {
  const MiB = 1024 * 1024;
  const VALUE = 100 * 1024;
  /** Keys of one region, `count` of them. */
  const keysOf = (region: number, count: number) => {
    const keys: string[] = [];
    for (let i = 0; keys.length < count; i++) {
      if (regionOf(`big-${i}`) === region) keys.push(`big-${i}`);
    }
    return keys;
  };
  const sender = (keys: string[]) => {
    const cache = createNodeCache({ policy: 'LRU', capacityMb: 64, maxCapacityMb: 64 });
    keys.forEach((key, i) => {
      cache.put(key, { value: png(VALUE, i), contentType: 'image/png', version: 1 }, true);
    });
    return cache;
  };
  type Batch = Parameters<NodeClient['importBatch']>[1];

  /** `batch` as a body stream that records, per part it gives, the bytes waiting in it. */
  const measured = (batch: Iterable<Buffer>, request: { bytes: number; pendingMax: number }) => {
    const state = { body: undefined as Readable | undefined };
    state.body = Readable.from(
      (function* () {
        for (const part of batch) {
          request.bytes += part.length;
          const waiting = state.body?.readableLength ?? 0;
          request.pendingMax = Math.max(request.pendingMax, waiting + part.length);
          yield part;
        }
      })(),
      { objectMode: false },
    );
    return state.body;
  };

  it('moves a region larger than a batch in bounded requests, none built whole', async () => {
    const receiver = await startNode({ capacityMb: 64 });
    const real = createNodeClient({ secret: SECRET, timeoutMs: 30_000 });
    try {
      const keys = keysOf(5, 120); // 12 MB in one region
      const cache = sender(keys);
      const requests: { bytes: number; pendingMax: number }[] = [];
      // The real client, with what the sender gives it measured: bytes per request, and the
      // bytes waiting in the request's body stream (pulled from the sender, not yet taken by
      // the socket). A batch built before it is sent — one Buffer or a list of its parts — is
      // waiting whole.
      const client: NodeClient = {
        ...real,
        importBatch(url: string, batch: Batch, length?: number) {
          const request = { bytes: 0, pendingMax: 0 };
          requests.push(request);
          if (Buffer.isBuffer(batch) || Array.isArray(batch)) {
            const parts: readonly Buffer[] = Buffer.isBuffer(batch) ? [batch] : batch;
            request.bytes = parts.reduce((sum, part) => sum + part.length, 0);
            request.pendingMax = request.bytes;
            return real.importBatch(url, batch, length);
          }
          return real.importBatch(url, measured(batch as Iterable<Buffer>, request), length);
        },
      };
      const result = await handOver(cache, client, { to: receiver.url, regions: [5] });
      assert.equal(result.error, undefined);
      assert.equal(result.accepted, keys.length);
      assert.ok(requests.length >= 3, `12 MB in ${requests.length} request(s)`);
      for (const { bytes, pendingMax } of requests) {
        // What the receiver holds per request before it applies a batch.
        assert.ok(bytes <= 4 * MiB + VALUE + 1024, `a request of ${bytes} bytes`);
        // What the sender holds per request beyond its cached values: about one part.
        assert.ok(pendingMax <= MiB, `${pendingMax} bytes waiting in a request body`);
      }
      keys.forEach((key, i) => {
        assert.ok(receiver.cache.peek(key)?.value.equals(png(VALUE, i)), `${key} byte-exact`);
      });
      assert.equal(cache.items, 0, 'the sender forgot what it handed over');
    } finally {
      await real.close();
      await receiver.close();
    }
  });

  it('sends the next batch before the last one is answered', async () => {
    const keys = keysOf(9, 100); // 10 MB: three batches
    const cache = sender(keys);
    let open = 0;
    let mostOpen = 0;
    const received: string[] = [];
    const client = {
      async importBatch(_url: string, batch: Batch) {
        open++;
        mostOpen = Math.max(mostOpen, open);
        const parts: Buffer[] = [];
        for await (const part of batch as AsyncIterable<Buffer> | Iterable<Buffer>) {
          parts.push(part);
        }
        const entries = decodeBatch(Buffer.concat(parts));
        received.push(...entries.map((e) => e.key));
        // Answered on a later turn of the event loop, as a receiver over a socket would.
        await new Promise((resolve) => setImmediate(resolve));
        open--;
        return { accepted: entries.length, refused: 0 };
      },
    } as unknown as NodeClient;
    const result = await handOver(cache, client, { to: 'http://127.0.0.1:1', regions: [9] });
    assert.equal(result.accepted, keys.length);
    assert.deepEqual(received.sort(), [...keys].sort());
    assert.equal(mostOpen, 2, 'two batches on their way at once');
  });
});
