import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import {
  BatchDecoder,
  BatchFormatError,
  BatchTooLargeError,
  batchBodyBytes,
  decodeBatch,
  encodeBatch,
  encodeBatchParts,
} from './entry-batch.ts';

const entries = [
  {
    key: 'cat',
    contentType: 'image/png',
    version: 3,
    modifiedAt: 1_700_000_000_000,
    value: Buffer.from([1, 2, 3]),
  },
  { key: 'ключ', contentType: 'image/jpeg', version: 0, value: Buffer.alloc(70_000, 9) },
];

it('a batch decodes to exactly the entries it was encoded from', () => {
  assert.deepEqual(decodeBatch(encodeBatch(entries)), entries);
  assert.deepEqual(decodeBatch(Buffer.alloc(0)), []);
});

it('a truncated or forged batch is refused with a clear error', () => {
  const good = encodeBatch(entries);
  for (const cut of [1, 5, 30, good.length - 1]) {
    assert.throws(() => decodeBatch(good.subarray(0, cut)), BatchFormatError);
  }
  const badJson = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('{x')]);
  assert.throws(() => decodeBatch(badJson), /not valid JSON/);
  const badHeader = Buffer.from('{"k":1,"t":"x","v":1}');
  const framed = Buffer.concat([Buffer.from([0, 0, 0, badHeader.length]), badHeader]);
  assert.throws(() => decodeBatch(framed), /needs k/);
  assert.throws(() => decodeBatch(Buffer.from([255, 255, 255, 255])), /too long/);
});

const arbitraryEntry = fc
  .record(
    {
      key: fc.string({ minLength: 1, maxLength: 40 }),
      contentType: fc.constantFrom('image/png', 'image/jpeg', 'image/webp'),
      version: fc.nat(),
      modifiedAt: fc.nat(),
      value: fc.uint8Array({ maxLength: 3000 }).map((bytes) => Buffer.from(bytes)),
    },
    { requiredKeys: ['key', 'contentType', 'version', 'value'] },
  )
  .map((entry) => ({ ...entry })); // a plain object, as decoding makes

/** `batch` cut at the given offsets (sorted, deduplicated, inside it). */
const chunked = (batch: Buffer, cuts: number[]) => {
  const at = [...new Set(cuts.map((c) => c % (batch.length + 1)))].sort((a, b) => a - b);
  return [0, ...at].map((from, i) => batch.subarray(from, at[i] ?? batch.length));
};

it('decoding a batch chunk by chunk, cut anywhere, gives the same entries', () => {
  fc.assert(
    fc.property(
      fc.array(arbitraryEntry, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (list, cuts) => {
        const batch = encodeBatch(list);
        const decoder = new BatchDecoder();
        for (const chunk of chunked(batch, cuts)) decoder.push(chunk);
        assert.deepEqual(decoder.end(), decodeBatch(batch));
        assert.deepEqual(decodeBatch(batch), list);
        assert.deepEqual(Buffer.concat(encodeBatchParts(list)), batch);
      },
    ),
  );
});

it('every proper prefix of a batch, however chunked, is refused unless it ends between frames', () => {
  fc.assert(
    fc.property(
      fc.array(arbitraryEntry, { minLength: 1, maxLength: 4 }),
      fc.nat(),
      fc.array(fc.nat(), { maxLength: 8 }),
      (list, cutAt, cuts) => {
        const batch = encodeBatch(list);
        const prefix = batch.subarray(0, cutAt % batch.length);
        // Where each frame ends: a prefix ending there is a valid, shorter batch.
        const frameEnds = [0];
        for (const e of list)
          frameEnds.push((frameEnds.at(-1) as number) + encodeBatch([e]).length);
        const decoder = new BatchDecoder();
        const decode = () => {
          for (const chunk of chunked(prefix, cuts)) decoder.push(chunk);
          return decoder.end();
        };
        const frames = frameEnds.indexOf(prefix.length);
        if (frames >= 0) assert.deepEqual(decode(), list.slice(0, frames));
        else assert.throws(decode, /truncated/);
      },
    ),
  );
});

it('each decoded value is its own exact-size memory, not a view of the request bytes', () => {
  const batch = encodeBatch(entries);
  const decoder = new BatchDecoder();
  for (const chunk of chunked(batch, [3, 50, 1000, 40_000])) decoder.push(chunk);
  for (const { value } of decoder.end()) {
    assert.notEqual(value.buffer, batch.buffer);
    assert.equal(value.buffer.byteLength, value.length);
  }
});

it('a batch or a value past the size limit is refused before it is allocated', () => {
  const batch = encodeBatch(entries);
  assert.throws(() => new BatchDecoder({ maxBytes: 1000 }).push(batch), BatchTooLargeError);
  // A forged 4 GB value length fails on its 4 bytes, not after allocating 4 GB.
  const header = Buffer.from('{"k":"a","t":"image/png","v":1}');
  const forged = Buffer.concat([
    Buffer.from([0, 0, 0, header.length]),
    header,
    Buffer.from([255, 255, 255, 255]),
  ]);
  assert.throws(() => new BatchDecoder({ maxBytes: 1 << 20 }).push(forged), BatchTooLargeError);
  assert.equal(new BatchDecoder({ maxBytes: batch.length }).push(batch), undefined);
});

it('a batch is sent as large values uncopied and small pieces joined', () => {
  const big = Buffer.alloc(100_000, 1);
  const small = Array.from({ length: 200 }, (_, i) => entry2(`s${i}`, Buffer.alloc(500, i % 256)));
  const parts = encodeBatchParts([entry2('big', big), ...small, entry2('big2', big)]);
  assert.equal(parts[1], big, 'a large value is its own part, the very same Buffer');
  assert.equal(parts.at(-1), big);
  // 200 small frames (~100 KB with their prefixes) travel in a few joined parts, not 400.
  assert.ok(parts.length <= 6, `${parts.length} parts`);
  assert.deepEqual(
    decodeBatch(Buffer.concat(parts)).map((e) => e.key),
    ['big', ...small.map((e) => e.key), 'big2'],
  );
});

function entry2(key: string, value: Buffer) {
  return { key, contentType: 'image/png', version: 1, value };
}

it('batchBodyBytes: the given length, a Buffer’s or a list’s, none for a stream', () => {
  const part = Buffer.alloc(5);
  assert.equal(batchBodyBytes(part), 5);
  assert.equal(batchBodyBytes([part, Buffer.alloc(7)]), 12);
  assert.equal(batchBodyBytes([part], 99), 99);
  assert.equal(batchBodyBytes((function* () {})()), undefined);
});
