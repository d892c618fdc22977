import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createFrequencySketch } from './frequency-sketch.ts';
import { createSeededRandom } from './seeded-random.ts';

const NEVER_AGES = 1 << 30;

describe('frequency sketch', () => {
  it('counts each key apart, and an unseen key is 0', () => {
    const sketch = createFrequencySketch({ width: 1024, sampleSize: NEVER_AGES });
    for (let n = 1; n <= 12; n++) {
      for (let i = 0; i < n; i++) sketch.increment(`key-${n}`);
    }
    for (let n = 1; n <= 12; n++) assert.equal(sketch.frequency(`key-${n}`), n, `key-${n}`);
    assert.equal(sketch.frequency('never-seen'), 0);
  });

  it('never estimates under the true count, even with more keys than counters', () => {
    const sketch = createFrequencySketch({ width: 64, sampleSize: NEVER_AGES });
    const random = createSeededRandom(11);
    const counts = new Map<string, number>();
    for (let i = 0; i < 5_000; i++) {
      const key = `k${Math.floor(random() * 300)}`;
      sketch.increment(key);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [key, count] of counts) {
      assert.ok(sketch.frequency(key) >= Math.min(15, count), `${key}: ${count}`);
    }
  });

  it('saturates at 15', () => {
    const sketch = createFrequencySketch({ width: 256, sampleSize: NEVER_AGES });
    for (let i = 0; i < 100; i++) sketch.increment('hot');
    assert.equal(sketch.frequency('hot'), 15);
  });

  it('halves every count, rounding down', () => {
    const sketch = createFrequencySketch({ width: 256, sampleSize: NEVER_AGES });
    for (let i = 0; i < 15; i++) sketch.increment('a');
    for (let i = 0; i < 7; i++) sketch.increment('b');
    sketch.increment('c');
    sketch.halve();
    assert.deepEqual(['a', 'b', 'c'].map(sketch.frequency), [7, 3, 0]);
  });

  it('halves on its own once sampleSize increments were counted', () => {
    let sample = 20;
    const sketch = createFrequencySketch({ width: 256, sampleSize: () => sample });
    for (let i = 0; i < 10; i++) sketch.increment('a');
    for (let i = 0; i < 9; i++) sketch.increment('b');
    assert.deepEqual(['a', 'b'].map(sketch.frequency), [10, 9]);
    sketch.increment('b'); // the 20th
    assert.deepEqual(['a', 'b'].map(sketch.frequency), [5, 5]);
    // The sample size is read each time (it follows the cache's entry count).
    sample = 1_000;
    for (let i = 0; i < 10; i++) sketch.increment('a');
    assert.equal(sketch.frequency('a'), 15);
  });

  it('refuses a width that is not a power of two, and an empty sample', () => {
    assert.throws(() => createFrequencySketch({ width: 100, sampleSize: 10 }), TypeError);
    assert.throws(() => createFrequencySketch({ width: 4, sampleSize: 10 }), TypeError);
    assert.throws(() => createFrequencySketch({ width: 64, sampleSize: 0 }), TypeError);
  });
});
