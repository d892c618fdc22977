import assert from 'node:assert/strict';
import { it } from 'node:test';
import { classOf, createBufferPool, memoryOf } from './buffer-pool.ts';

it('rounds a length up to an eighth of its power of two', () => {
  assert.equal(classOf(100_000), 106_496); // 2^17 / 16 = 8,192 per step
  assert.equal(classOf(65_536), 65_536);
  assert.equal(classOf(65_537), 73_728);
  assert.equal(classOf(16_384), 16_384);
  for (const n of [16_385, 99_999, 300_001, 1_000_000]) {
    assert.ok(classOf(n) >= n && classOf(n) <= n * 1.125, `${n} → ${classOf(n)}`);
  }
});

it('hands a given-back buffer to the next take of its class, at the length asked', () => {
  const pool = createBufferPool();
  const a = pool.take(100_000);
  assert.equal(a.length, 100_000);
  pool.give(a);
  assert.equal(pool.idleBytes, 106_496);
  const b = pool.take(99_000);
  assert.equal(b.buffer, a.buffer);
  assert.equal(b.length, 99_000);
  assert.equal(pool.idleBytes, 0);
  // Another class gets memory of its own.
  const c = pool.take(200_000);
  assert.notEqual(c.buffer, a.buffer);
});

it('takes back only what it made, once, and whole', () => {
  const pool = createBufferPool();
  pool.give(Buffer.alloc(100_000));
  const a = pool.take(100_000);
  pool.give(a.subarray(10));
  assert.equal(pool.idleBytes, 0, 'a view from inside is not the buffer given out');
  pool.give(a);
  pool.give(a);
  assert.equal(pool.idleBytes, 106_496, 'given back twice, kept once');
  const b = pool.take(100_000);
  const c = pool.take(100_000);
  assert.notEqual(b.buffer, c.buffer, 'two takes never share memory');
});

it('keeps at most maxBytes idle, and pools only lengths within its bounds', () => {
  const pool = createBufferPool({ maxBytes: 250_000, minLength: 1000, maxLength: 200_000 });
  const taken = [pool.take(100_000), pool.take(100_000), pool.take(100_000)];
  for (const b of taken) pool.give(b);
  assert.equal(pool.idleBytes, 2 * 106_496);
  const small = pool.take(500);
  const big = pool.take(300_000);
  pool.give(small);
  pool.give(big);
  assert.equal(pool.idleBytes, 2 * 106_496);
});

it('counts the memory a pooled buffer keeps alive, its whole class', () => {
  const pool = createBufferPool();
  assert.equal(memoryOf(pool.take(100_000)), 106_496);
  assert.equal(memoryOf(Buffer.alloc(100_000)), 100_000);
  assert.equal(memoryOf(pool.take(100)), 100);
});
