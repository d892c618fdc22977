import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createLruStore } from './lru-store.ts';
import { createSieveStore } from './sieve-store.ts';
import { entry, seededRandom, storeContract } from './store.contract.ts';
import type { CacheStore } from './store.ts';

storeContract('SIEVE', createSieveStore);

const keysOf = (store: CacheStore) => [...store.entries()].map(([k]) => k);

it('SIEVE keeps a visited entry over an unvisited one, in place, until the hand comes round', () => {
  const evicted: string[] = [];
  const store = createSieveStore({ capacity: 40, onEvict: (k) => evicted.push(k) });
  for (const k of ['a', 'b', 'c', 'd']) store.set(k, entry(10));
  store.get('a');
  store.peek('b'); // a look, not a use
  // The hand starts at the tail: a is visited (bit cleared, kept), b is evicted.
  store.set('e', entry(10));
  assert.deepEqual(evicted, ['b']);
  // The hand stays where it evicted and moves on: c, then d, then e.
  store.set('f', entry(10));
  store.set('g', entry(10));
  store.set('h', entry(10));
  assert.deepEqual(evicted, ['b', 'c', 'd', 'e']);
  // New entries that are never hit go first: the hand chases the head, and a stays put.
  // Once everything ahead of the hand is visited, the hand clears them, wraps to the tail and
  // finds a, unvisited since its bit was cleared: a goes, then f (cleared on that lap).
  for (const k of ['f', 'g', 'h']) store.get(k);
  store.set('i', entry(10));
  assert.deepEqual(evicted, ['b', 'c', 'd', 'e', 'a']);
  store.set('j', entry(10));
  assert.deepEqual(evicted, ['b', 'c', 'd', 'e', 'a', 'f']);
  assert.deepEqual(new Set(keysOf(store)), new Set(['g', 'h', 'i', 'j']));
});

it('SIEVE evicts as many entries as a large value needs, skipping visited ones', () => {
  const evicted: string[] = [];
  const store = createSieveStore({ capacity: 100, onEvict: (k) => evicted.push(k) });
  for (const k of ['a', 'b', 'c', 'd', 'e']) store.set(k, entry(20));
  store.get('b');
  store.get('d');
  store.set('big', entry(55));
  assert.deepEqual(evicted, ['a', 'c', 'e']);
  assert.equal(store.size, 95);
  assert.deepEqual(new Set(keysOf(store)), new Set(['b', 'd', 'big']));
});

it('SIEVE keeps the visited bit of a replaced key and never evicts it for itself', () => {
  const evicted: string[] = [];
  const store = createSieveStore({ capacity: 30, onEvict: (k) => evicted.push(k) });
  for (const k of ['a', 'b', 'c']) store.set(k, entry(10));
  store.get('a');
  store.set('a', entry(15, 2)); // a new version of a hot entry: b goes, a stays visited
  assert.deepEqual(evicted, ['b']);
  store.set('d', entry(5));
  store.set('e', entry(10)); // c (unvisited) goes; a would go only after a full lap
  assert.deepEqual(evicted, ['b', 'c']);
  assert.equal(store.peek('a')?.version, 2);
});

it('SIEVE moves the hand on when the entry under it is deleted', () => {
  const evicted: string[] = [];
  const store = createSieveStore({ capacity: 30, onEvict: (k) => evicted.push(k) });
  for (const k of ['a', 'b', 'c']) store.set(k, entry(10));
  store.get('a');
  store.get('b');
  store.set('d', entry(10)); // clears a and b, evicts c; the hand is now past the head
  assert.deepEqual(evicted, ['c']);
  store.get('d');
  store.delete('a');
  store.set('e', entry(10)); // room already: nothing evicted
  store.set('f', entry(10)); // from the tail: b unvisited → evicted
  assert.deepEqual(evicted, ['c', 'b']);
  assert.deepEqual(new Set(keysOf(store)), new Set(['d', 'e', 'f']));
});

it('SIEVE lists its entries in the order it would evict them', () => {
  const random = seededRandom(11);
  for (let round = 0; round < 50; round++) {
    let evicted: string[] = [];
    const store = createSieveStore({ capacity: 2000, onEvict: (k) => evicted.push(k) });
    for (let step = 0; step < 300; step++) {
      const key = `k${Math.floor(random() * 40)}`;
      const op = random();
      if (op < 0.5) store.set(key, entry(2 + Math.floor(random() * 200)));
      else if (op < 0.95) store.get(key);
      else store.delete(key);
    }
    const listed = keysOf(store);
    evicted = [];
    store.setCapacity(1); // every value is at least 2 bytes: evicts everything, in its order
    assert.deepEqual(evicted, listed);
    assert.equal(store.count, 0);
  }
});

it('SIEVE: a scan longer than the cache does not flush a hot set that keeps being hit', () => {
  // 10 hot keys, each read twice per round (so a hit marks it visited), then a burst of 25 keys
  // read once each — more than the whole capacity of 20. SIEVE's hand clears the hot keys' bits
  // once, then keeps evicting the scan's keys just behind the head and never comes round to the
  // hot ones; LRU pushes the hot set out every round.
  const hotMisses = (store: CacheStore) => {
    const value = entry(1);
    let scanned = 0;
    const misses: number[] = [];
    for (let round = 0; round < 20; round++) {
      let missed = 0;
      for (let i = 0; i < 20; i++) {
        const key = `hot${i % 10}`;
        if (!store.get(key)) {
          missed++;
          store.set(key, value);
        }
      }
      misses.push(missed);
      for (let i = 0; i < 25; i++) {
        const key = `scan${scanned++}`;
        if (!store.get(key)) store.set(key, value);
      }
    }
    return misses;
  };
  const sieve = hotMisses(createSieveStore({ capacity: 20 }));
  const lru = hotMisses(createLruStore({ capacity: 20 }));
  assert.equal(sieve[0], 10, 'the first round fills the hot set');
  assert.deepEqual(sieve.slice(1), Array(19).fill(0));
  assert.deepEqual(lru.slice(1), Array(19).fill(10));
});
