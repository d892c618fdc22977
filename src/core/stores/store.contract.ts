/**
 * The behaviour every CacheStore must have, whatever its policy: one suite, run by each policy's
 * test file (keyv's pattern). Policy-specific eviction order is tested beside each policy.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSeededRandom as seededRandom } from '../seeded-random.ts';
import type { CacheEntry, CacheStore, StoreOptions } from './store.ts';

export { seededRandom };

export type StoreFactory = (options: StoreOptions) => CacheStore;

export const entry = (bytes: number, version = 1, fill = 1): CacheEntry => ({
  value: Buffer.alloc(bytes, fill),
  contentType: 'image/png',
  version,
});

function sumOfValues(store: CacheStore): number {
  let total = 0;
  for (const [, e] of store.entries()) total += e.value.length;
  return total;
}

export function storeContract(name: string, create: StoreFactory): void {
  describe(`${name} store contract`, () => {
    it('returns what was stored and forgets what was deleted', () => {
      const store = create({ capacity: 100 });
      const e = entry(10);
      assert.equal(store.set('a', e), true);
      assert.equal(store.get('a'), e);
      assert.equal(store.peek('a'), e);
      assert.equal(store.count, 1);
      assert.equal(store.size, 10);
      assert.equal(store.delete('a'), true);
      assert.equal(store.delete('a'), false);
      assert.equal(store.get('a'), undefined);
      assert.equal(store.count, 0);
      assert.equal(store.size, 0);
    });

    it('counts a replaced key once, with its new size', () => {
      const store = create({ capacity: 100 });
      store.set('a', entry(10, 1));
      store.set('b', entry(20, 1));
      store.set('a', entry(30, 2));
      assert.equal(store.count, 2);
      assert.equal(store.size, 50);
      assert.equal(store.peek('a')?.version, 2);
    });

    it('refuses a value larger than the capacity and changes nothing', () => {
      const evicted: string[] = [];
      const store = create({ capacity: 100, onEvict: (k) => evicted.push(k) });
      store.set('a', entry(60));
      store.set('b', entry(40));
      assert.equal(store.set('a', entry(101)), false);
      assert.equal(store.set('c', entry(101)), false);
      assert.equal(store.peek('a')?.value.length, 60);
      assert.equal(store.size, 100);
      assert.deepEqual(evicted, []);
    });

    it('fits a value of exactly the capacity by evicting everything else', () => {
      const store = create({ capacity: 100 });
      store.set('a', entry(30));
      store.set('b', entry(30));
      assert.equal(store.set('c', entry(100)), true);
      assert.deepEqual(
        [...store.entries()].map(([k]) => k),
        ['c'],
      );
      assert.equal(store.size, 100);
    });

    it('never lets a replaced key be its own eviction victim', () => {
      const store = create({ capacity: 100, random: () => 0 });
      store.set('a', entry(50));
      store.set('b', entry(50));
      assert.equal(store.set('a', entry(60, 2)), true);
      assert.equal(store.peek('a')?.version, 2);
      assert.equal(store.peek('b'), undefined);
      assert.equal(store.size, 60);
    });

    it('reports evictions only, not deletes, replacements or clears', () => {
      const evicted: [string, number][] = [];
      const store = create({
        capacity: 100,
        onEvict: (k, e) => evicted.push([k, e.value.length]),
      });
      store.set('a', entry(40));
      store.set('a', entry(45));
      store.set('b', entry(10));
      store.delete('b');
      store.set('c', entry(50));
      assert.equal(evicted.length, 0);
      store.set('d', entry(60));
      assert.ok(evicted.length >= 1);
      for (const [k] of evicted) assert.equal(store.peek(k), undefined);
      assert.ok(store.size <= 100);
      const before = evicted.length;
      store.clear();
      assert.equal(evicted.length, before);
      assert.equal(store.count, 0);
      assert.equal(store.size, 0);
    });

    it('keeps byte accounting exact and within capacity under a random workload', () => {
      const random = seededRandom(7);
      let evictions = 0;
      const store = create({ capacity: 5000, random, onEvict: () => evictions++ });
      const keys = Array.from({ length: 80 }, (_, i) => `k${i}`);
      for (let step = 0; step < 5000; step++) {
        const key = keys[Math.floor(random() * keys.length)] as string;
        const op = random();
        if (op < 0.6) store.set(key, entry(1 + Math.floor(random() * 400), step));
        else if (op < 0.9) store.get(key);
        else store.delete(key);
        assert.ok(store.size <= store.capacity);
      }
      assert.equal(store.size, sumOfValues(store));
      assert.equal(store.count, [...store.entries()].length);
      assert.ok(evictions > 0);
    });

    it('shrinks to a smaller capacity by evicting and keeps content when it grows', () => {
      const evicted: string[] = [];
      const store = create({ capacity: 100, onEvict: (k) => evicted.push(k) });
      for (const k of ['a', 'b', 'c', 'd']) store.set(k, entry(25));
      store.setCapacity(200);
      assert.equal(store.count, 4);
      assert.deepEqual(evicted, []);
      store.setCapacity(60);
      assert.equal(store.capacity, 60);
      assert.equal(store.count, 2);
      assert.equal(store.size, 50);
      assert.equal(evicted.length, 2);
      assert.equal(store.set('e', entry(61)), false);
    });

    it('rejects bad options and empty values with a TypeError', () => {
      for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(() => create({ capacity }), TypeError);
      }
      const store = create({ capacity: 10 });
      assert.throws(() => store.set('a', entry(0)), TypeError);
      assert.throws(() => store.setCapacity(0), TypeError);
      assert.equal(store.capacity, 10);
    });
  });
}
