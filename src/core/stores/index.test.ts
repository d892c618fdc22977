import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createStore, reconfigureStore } from './index.ts';
import { entry, seededRandom } from './store.contract.ts';

it('a config change to the same policy resizes the store in place', () => {
  const store = createStore('LRU', { capacity: 100 });
  for (const k of ['a', 'b', 'c']) store.set(k, entry(30));
  const next = reconfigureStore(store, 'LRU', { capacity: 70 });
  assert.equal(next, store);
  assert.deepEqual(
    [...next.entries()].map(([k]) => k),
    ['b', 'c'],
  );
});

it('a policy change keeps the content and the recency order', () => {
  const rr = createStore('RR', { capacity: 100 });
  for (const k of ['a', 'b', 'c']) rr.set(k, entry(30));
  const lru = reconfigureStore(rr, 'LRU', { capacity: 100 });
  assert.equal(lru.policy, 'LRU');
  assert.equal(lru.size, 90);
  const back = reconfigureStore(lru, 'RR', { capacity: 200 });
  assert.equal(back.policy, 'RR');
  assert.equal(back.count, 3);
  assert.equal(rr.count, 3, 'the old store is left as it was');
});

it('a policy change with a smaller capacity evicts with the new policy', () => {
  const lru = createStore('LRU', { capacity: 100 });
  for (const k of ['a', 'b', 'c', 'd']) lru.set(k, entry(25));
  const evicted: string[] = [];
  const rr = reconfigureStore(lru, 'RR', {
    capacity: 50,
    random: seededRandom(3),
    onEvict: (k) => evicted.push(k),
  });
  assert.equal(rr.size, 50);
  assert.equal(evicted.length, 2);
  assert.equal(lru.count, 4, 'the old store is left as it was');
  const evictedLru: string[] = [];
  const back = reconfigureStore(rr, 'LRU', { capacity: 25, onEvict: (k) => evictedLru.push(k) });
  assert.equal(back.count, 1);
  assert.equal(evictedLru.length, 1);
});
