import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createStore, POLICIES, type PolicyName, reconfigureStore } from './index.ts';
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

it('createStore builds every listed policy', () => {
  for (const policy of POLICIES) assert.equal(createStore(policy, { capacity: 10 }).policy, policy);
  assert.throws(() => createStore('LFU' as PolicyName, { capacity: 10 }), TypeError);
});

it('a change between any two policies keeps what fits, and SIEVE gets the coldest out first', () => {
  for (const from of POLICIES) {
    for (const to of POLICIES) {
      // One callback for both, as a node passes (a same-policy change resizes in place).
      const evicted: string[] = [];
      const options = { random: seededRandom(5), onEvict: (k: string) => evicted.push(k) };
      const store = createStore(from, { ...options, capacity: 100 });
      for (const k of ['a', 'b', 'c', 'd']) store.set(k, entry(25));
      store.get('a');
      const next = reconfigureStore(store, to, { ...options, capacity: 75 });
      assert.equal(next.policy, to, `${from} → ${to}`);
      assert.equal(next.count, 3, `${from} → ${to}`);
      assert.equal(next.size, 75, `${from} → ${to}`);
      assert.equal(evicted.length, 1, `${from} → ${to}`);
      // b is the coldest for LRU (a was used since) and SIEVE (first unvisited from the tail);
      // a change to LRU or SIEVE keeps that order, so b is the one evicted.
      if (from !== 'RR' && to !== 'RR') assert.deepEqual(evicted, ['b'], `${from} → ${to}`);
      if (from !== to) assert.equal(store.count, 4, 'the old store is left as it was');
    }
  }
});

it('a change from SIEVE lists visited entries as hotter, whatever their age', () => {
  const sieve = createStore('SIEVE', { capacity: 100 });
  for (const k of ['a', 'b', 'c', 'd']) sieve.set(k, entry(25));
  sieve.get('a');
  sieve.get('c');
  const lru = reconfigureStore(sieve, 'LRU', { capacity: 100 });
  assert.deepEqual(
    [...lru.entries()].map(([k]) => k),
    ['b', 'd', 'a', 'c'],
  );
  const back = reconfigureStore(lru, 'SIEVE', { capacity: 50 });
  assert.deepEqual(
    [...back.entries()].map(([k]) => k),
    ['a', 'c'],
  );
});
