import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createLruStore } from './lru-store.ts';
import { entry, storeContract } from './store.contract.ts';

storeContract('LRU', createLruStore);

const keysOf = (store: ReturnType<typeof createLruStore>) => [...store.entries()].map(([k]) => k);

it('LRU evicts the least recently used first; get and set count as use, peek does not', () => {
  const evicted: string[] = [];
  const store = createLruStore({ capacity: 40, onEvict: (k) => evicted.push(k) });
  for (const k of ['a', 'b', 'c', 'd']) store.set(k, entry(10));
  store.get('a');
  store.peek('b');
  store.set('c', entry(10, 2));
  assert.deepEqual(keysOf(store), ['b', 'd', 'a', 'c']);
  store.set('e', entry(10));
  store.set('f', entry(15));
  assert.deepEqual(evicted, ['b', 'd', 'a']);
  assert.deepEqual(keysOf(store), ['c', 'e', 'f']);
  assert.equal(store.size, 35);
});

it('LRU shrinks by evicting the coldest entries', () => {
  const evicted: string[] = [];
  const store = createLruStore({ capacity: 100, onEvict: (k) => evicted.push(k) });
  for (const k of ['a', 'b', 'c', 'd']) store.set(k, entry(20));
  store.get('a');
  store.setCapacity(45);
  assert.deepEqual(evicted, ['b', 'c']);
  assert.deepEqual(keysOf(store), ['d', 'a']);
});
