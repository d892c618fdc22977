import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BatchFormatError, decodeBatch, encodeBatch } from './entry-batch.ts';

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
