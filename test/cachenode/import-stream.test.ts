/**
 * POST /v1/import reads a hand-over batch as a stream and decodes it as it arrives. These tests
 * send batches over a real socket in small and odd-sized chunks, and check that a truncated,
 * malformed or oversized batch is refused with a 4xx envelope and changes nothing, and that the
 * connection still carries the next request.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Pool } from 'undici';
import { createNodeClient } from '../../src/clients/node-client.ts';
import {
  BATCH_CONTENT_TYPE,
  type BatchEntry,
  encodeBatch,
  encodeBatchParts,
} from '../../src/core/entry-batch.ts';
import { auth, png, SECRET, startNode, type TestNode } from '../helpers/nodes.ts';

const entry = (key: string, version: number, bytes: number): BatchEntry => ({
  key,
  contentType: 'image/png',
  version,
  value: png(bytes, version),
});

/** `bytes` as a stream of `size`-byte chunks, each on its own turn of the event loop. */
function trickle(bytes: Buffer, size: number): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < bytes.length; at += size) {
        await new Promise((resolve) => setImmediate(resolve));
        yield bytes.subarray(at, at + size);
      }
    })(),
    { objectMode: false },
  );
}

describe('streamed import of an entry batch', () => {
  let node: TestNode;
  let pool: Pool;
  before(async () => {
    node = await startNode({ capacityMb: 20, bodyLimit: 4 * 1024 * 1024 });
    // One connection, so a follow-up request reuses the socket of a refused one.
    pool = new Pool(node.url, { connections: 1 });
  });
  after(async () => {
    await pool.close();
    await node.close();
  });
  beforeEach(() => node.cache.clear());

  const send = async (body: Buffer | Readable, length: number) => {
    const response = await pool.request({
      method: 'POST',
      path: '/v1/import',
      headers: { ...auth, 'content-type': BATCH_CONTENT_TYPE, 'content-length': String(length) },
      body,
    });
    const answer = (await response.body.json()) as {
      success: string;
      accepted?: number;
      refused?: number;
      error?: { code: number; message: string };
    };
    return { status: response.statusCode, body: answer };
  };

  it('imports a batch that arrives in small, odd-sized chunks, byte-exact', async () => {
    const list = [entry('a', 1, 70_000), entry('b', 2, 3), entry('c', 3, 150_000)];
    const batch = encodeBatch(list);
    const answer = await send(trickle(batch, 4093), batch.length);
    assert.equal(answer.status, 200);
    assert.deepEqual([answer.body.accepted, answer.body.refused], [3, 0]);
    for (const e of list) {
      const held = node.cache.peek(e.key);
      assert.ok(held?.value.equals(e.value), `${e.key} arrived byte-exact`);
      assert.equal(held?.version, e.version);
      assert.equal(held?.value.buffer.byteLength, e.value.length, 'an exact-size buffer');
    }
  });

  it('the node client sends a batch as its parts, without joining them', async () => {
    const client = createNodeClient({ secret: SECRET });
    try {
      const list = Array.from({ length: 30 }, (_, i) => entry(`k${i}`, i + 1, 20_000 + i));
      const result = await client.importBatch(node.url, encodeBatchParts(list));
      assert.deepEqual(result, { accepted: 30, refused: 0 });
      assert.equal(node.cache.items, 30);
      assert.ok(node.cache.peek('k29')?.value.equals(png(20_029, 30)));
    } finally {
      await client.close();
    }
  });

  it('a truncated batch is refused with a 400 envelope and imports nothing', async () => {
    const batch = encodeBatch([entry('a', 1, 50_000), entry('b', 1, 50_000)]);
    const cut = batch.subarray(0, batch.length - 10);
    // A whole HTTP body that ends mid-frame (a sender that lost the end of its batch).
    const answer = await send(trickle(cut, 1000), cut.length);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.success, 'false');
    assert.match(answer.body.error?.message ?? '', /malformed: batch is truncated/);
    assert.equal(node.cache.items, 0, 'not even the complete first entry');
  });

  it('a malformed frame refuses the whole batch, and the connection carries the next request', async () => {
    const good = encodeBatch([entry('a', 1, 1000)]);
    const badHeader = Buffer.from('{"k":"b","t":"image/png"}'); // no version
    const bad = Buffer.concat([
      Buffer.from([0, 0, 0, badHeader.length]),
      badHeader,
      Buffer.from([0, 0, 0, 4]),
      Buffer.from('abcd'),
    ]);
    // Plenty of well-formed bytes after the bad frame: the node must read past them.
    const rest = encodeBatch(Array.from({ length: 20 }, (_, i) => entry(`r${i}`, 1, 50_000)));
    const batch = Buffer.concat([good, bad, rest]);
    const answer = await send(trickle(batch, 16_384), batch.length);
    assert.equal(answer.status, 400);
    assert.match(answer.body.error?.message ?? '', /needs k \(string\), t \(string\) and v/);
    assert.equal(node.cache.items, 0);
    const next = encodeBatch([entry('after', 7, 500)]);
    const again = await send(next, next.length);
    assert.equal(again.status, 200);
    assert.equal(node.cache.peek('after')?.version, 7);
  });

  it('a bad key refuses the whole batch', async () => {
    const batch = encodeBatch([entry('fine', 1, 100), entry('', 1, 100)]);
    const answer = await send(trickle(batch, 50), batch.length);
    assert.equal(answer.status, 400);
    assert.equal(node.cache.items, 0);
  });

  it('a batch past the body limit is refused with 413 before its value is allocated', async () => {
    const batch = encodeBatch([entry('big', 1, 5 * 1024 * 1024)]);
    const answer = await send(trickle(batch, 65_536), batch.length);
    assert.equal(answer.status, 413);
    assert.match(answer.body.error?.message ?? '', /too large/);
    assert.equal(node.cache.items, 0);
  });

  it('the version rule holds for streamed entries: an equal or older version is refused', async () => {
    node.cache.put('cat', { value: png(10, 5), contentType: 'image/png', version: 5 }, true);
    const batch = encodeBatch([entry('cat', 5, 20), entry('cat', 4, 30), entry('dog', 1, 40)]);
    const answer = await send(trickle(batch, 7), batch.length);
    assert.equal(answer.status, 200);
    assert.deepEqual([answer.body.accepted, answer.body.refused], [1, 2]);
    assert.ok(node.cache.peek('cat')?.value.equals(png(10, 5)));
  });

  it('a small PUT value is kept in memory of its own, not a slice of a shared pool', async () => {
    for (const bytes of [1, 100, 4000, 70_000]) {
      const value = png(bytes, 3);
      const response = await fetch(`${node.url}/v1/entries/small-${bytes}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'image/png', 'x-pixpool-version': '1' },
        body: value,
      });
      assert.equal(response.status, 204);
      const held = node.cache.peek(`small-${bytes}`)?.value;
      assert.ok(held?.equals(value));
      assert.equal(held?.buffer.byteLength, bytes, `${bytes} bytes held in exactly ${bytes}`);
    }
  });
});
