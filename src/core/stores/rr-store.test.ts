import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createRrStore } from './rr-store.ts';
import { entry, seededRandom, storeContract } from './store.contract.ts';

storeContract('RR', createRrStore);

/** A random source that returns the given values in turn. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] as number;
};

it('RR evicts the slot the random source picks', () => {
  const evicted: string[] = [];
  // 4 resident keys [a,b,c,d]: 0.6 → slot 2 (c); then [a,b,d,e]: 0.0 → slot 0 (a).
  const store = createRrStore({
    capacity: 40,
    random: sequence(0.6, 0.0),
    onEvict: (k) => evicted.push(k),
  });
  for (const k of ['a', 'b', 'c', 'd']) store.set(k, entry(10));
  store.get('a');
  store.set('e', entry(10));
  store.set('f', entry(10));
  assert.deepEqual(evicted, ['c', 'a']);
  assert.equal(store.size, 40);
  assert.deepEqual(new Set([...store.entries()].map(([k]) => k)), new Set(['b', 'd', 'e', 'f']));
});

it('RR picks victims uniformly, whatever their recency', () => {
  const counts = new Map<string, number>();
  const random = seededRandom(42);
  for (let round = 0; round < 4000; round++) {
    const store = createRrStore({
      capacity: 40,
      random,
      onEvict: (k) => counts.set(k, (counts.get(k) ?? 0) + 1),
    });
    for (const k of ['a', 'b', 'c', 'd']) store.set(k, entry(10));
    store.get('d');
    store.set('e', entry(10));
  }
  for (const k of ['a', 'b', 'c', 'd']) {
    const share = (counts.get(k) ?? 0) / 4000;
    assert.ok(Math.abs(share - 0.25) < 0.03, `${k} evicted with share ${share}`);
  }
});
