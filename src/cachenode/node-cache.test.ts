import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PixpoolError } from '../core/errors.ts';
import { regionOf } from '../core/regions.ts';
import { createNodeCache, MB, parseCapacityMb, parsePolicy } from './node-cache.ts';

const entry = (bytes: number, version: number) => ({
  value: Buffer.alloc(bytes, version),
  contentType: 'image/png',
  version,
});
const node = (capacityMb = 1) => createNodeCache({ policy: 'LRU', capacityMb, maxCapacityMb: 100 });

describe('node cache', () => {
  it('a versioned write never replaces a newer cached version; an unversioned one always does', () => {
    const cache = node();
    assert.equal(cache.put('k', entry(10, 5), true), 'stored');
    assert.equal(cache.put('k', entry(10, 4), true), 'stale');
    assert.equal(cache.peek('k')?.version, 5);
    assert.equal(cache.put('k', entry(10, 5), true), 'stored', 'the same version may be rewritten');
    assert.equal(cache.put('k', entry(10, 1), false), 'stored');
    assert.equal(cache.peek('k')?.version, 1);
    assert.equal(cache.stats.totals.puts, 3);
  });

  it('a hand-over never replaces an equal or newer version', () => {
    const cache = node();
    cache.put('a', entry(10, 3), true);
    cache.put('b', entry(10, 3), true);
    const result = cache.import([
      ['a', entry(10, 2)],
      ['b', entry(10, 3)],
      ['c', entry(10, 1)],
      ['big', entry(2 * MB, 9)],
    ]);
    assert.deepEqual(result, { accepted: 1, refused: 3 });
    assert.equal(cache.peek('a')?.version, 3);
    assert.equal(cache.peek('c')?.version, 1);
    assert.equal(cache.stats.totals.imports, 1);
  });

  it('counts hits and misses, and has no hit rate before the first get', () => {
    const cache = node();
    assert.equal(cache.stats.hitRate(), null);
    cache.put('a', entry(10, 1), true);
    cache.get('a');
    cache.get('nope');
    cache.get('nope');
    assert.deepEqual(
      [cache.stats.totals.gets, cache.stats.totals.hits, cache.stats.totals.misses],
      [3, 1, 2],
    );
    assert.equal(cache.stats.hitRate(), 1 / 3);
  });

  it('refuses an item larger than the capacity with a 413 and keeps the old value', () => {
    const cache = node(1);
    cache.put('a', entry(100, 1), true);
    assert.throws(
      () => cache.put('a', entry(MB + 1, 2), true),
      (e: PixpoolError) =>
        e.status === 413 && /larger than this node's whole capacity/.test(e.message),
    );
    assert.equal(cache.peek('a')?.version, 1);
  });

  it('a config change is validated whole before any of it applies', () => {
    const cache = node(1);
    for (let i = 0; i < 8; i++) cache.put(`k${i}`, entry(100_000, 1), true);
    assert.throws(
      () => cache.configure({ capacityMb: 0.2, policy: 'FIFO' }),
      /Unknown replacement/,
    );
    assert.deepEqual(cache.config, { policy: 'LRU', capacityMb: 1 });
    assert.equal(cache.items, 8);
    assert.throws(() => cache.configure({ capacityMb: -1, policy: 'RR' }), /more than 0/);
    assert.deepEqual(cache.config, { policy: 'LRU', capacityMb: 1 });
    const { evicted } = cache.configure({ capacityMb: 0.25, policy: 'rr' });
    assert.deepEqual(cache.config, { policy: 'RR', capacityMb: 0.25 });
    assert.equal(evicted, 6);
    assert.equal(cache.items, 2);
    assert.ok(cache.bytes <= 0.25 * MB);
    assert.equal(cache.stats.totals.evictions, 6);
  });

  it('lists keys and sums bytes by region', () => {
    const cache = node();
    // Their regions (top 4 bits of MD5): test→0, test123→12, testabc→12, k1→11.
    for (const key of ['test', 'test123', 'testabc', 'k1']) cache.put(key, entry(10, 1), true);
    assert.deepEqual(cache.keys(12).sort(), ['test123', 'testabc']);
    const regions = cache.regions();
    assert.equal(regions.length, 16);
    assert.deepEqual(regions[12], { region: 12, items: 2, bytes: 20 });
    assert.deepEqual(regions[0], { region: 0, items: 1, bytes: 10 });
    assert.deepEqual([...cache.entriesOfRegions(new Set([0, 11]))].map(([k]) => k).sort(), [
      'k1',
      'test',
    ]);
  });

  it('works out a key’s region once while it is cached, again after it left', () => {
    const hashed: string[] = [];
    const cache = createNodeCache({
      policy: 'LRU',
      capacityMb: 0.01, // 10485 bytes
      maxCapacityMb: 100,
      regionOf: (key) => {
        hashed.push(key);
        return regionOf(key);
      },
    });
    for (const key of ['test', 'test123', 'k1']) cache.put(key, entry(1000, 1), true);
    cache.put('test', entry(1000, 2), true);
    cache.import([['k1', entry(1000, 3)]]);
    assert.deepEqual(hashed, ['test', 'test123', 'k1']);
    // A resize's passes over the keys: the census, the hand-over's selection, a view's drop.
    assert.deepEqual(cache.regions()[12], { region: 12, items: 1, bytes: 1000 });
    assert.deepEqual(
      [...cache.entriesOfRegions(new Set([0]))].map(([k]) => k),
      ['test'],
    );
    assert.deepEqual(cache.keys(11), ['k1']);
    assert.equal(cache.dropRegions(new Set([12])), 1);
    assert.equal(hashed.length, 3, 'no key hashed again');
    // Dropped, invalidated or evicted: forgotten, and worked out again when stored again.
    cache.invalidate('k1');
    for (let i = 0; i < 10; i++) cache.put(`fill${i}`, entry(1000, 1), true); // evicts 'test'
    assert.equal(cache.peek('test'), undefined);
    hashed.length = 0;
    for (const key of ['test', 'test123', 'k1']) cache.put(key, entry(1000, 1), true);
    assert.deepEqual(hashed, ['test', 'test123', 'k1']);
    assert.deepEqual(cache.keys(12), ['test123']);
    assert.deepEqual(cache.keys(0), ['test']);
  });
});

describe('config parsing', () => {
  it('accepts policy names in any case, and "random" for RR', () => {
    assert.equal(parsePolicy('lru'), 'LRU');
    assert.equal(parsePolicy('Random'), 'RR');
    assert.equal(parsePolicy(' rr '), 'RR');
    for (const bad of ['', 'fifo', 3, null, undefined])
      assert.throws(() => parsePolicy(bad), PixpoolError);
  });

  it('accepts capacities from just above 0 to the maximum, as numbers or numeric strings', () => {
    assert.equal(parseCapacityMb('64', 100), 64);
    assert.equal(parseCapacityMb(0.5, 100), 0.5);
    for (const bad of [0, -5, 'abc', '', 1e9, Number.NaN, null, true, 101]) {
      assert.throws(() => parseCapacityMb(bad, 100), PixpoolError, String(bad));
    }
  });
});

describe('tombstones', () => {
  it('after an invalidation with version V, older fills and hand-overs are refused', () => {
    let now = 1_000; // lru-cache treats a start time of 0 as "no TTL"
    const cache = createNodeCache({
      policy: 'LRU',
      capacityMb: 1,
      maxCapacityMb: 100,
      clock: { now: () => now },
      tombstoneTtlMs: 60_000,
    });
    cache.put('k', entry(10, 1), true);
    cache.invalidate('k', 2);
    assert.equal(cache.peek('k'), undefined);
    assert.equal(cache.put('k', entry(10, 1), true), 'stale', 'a late fill of v1');
    assert.deepEqual(cache.import([['k', entry(10, 1)]]), { accepted: 0, refused: 1 });
    assert.equal(cache.put('k', entry(10, 2), true), 'stored', 'v2 itself may be filled');
    cache.clear();
    assert.equal(cache.put('k', entry(10, 1), true), 'stale', 'clear keeps tombstones');
    now += 60_001;
    assert.equal(cache.put('k', entry(10, 1), true), 'stored', 'tombstones expire');
  });

  it('an invalidation without a version leaves no tombstone', () => {
    const cache = node();
    cache.put('k', entry(10, 5), true);
    cache.invalidate('k');
    assert.equal(cache.put('k', entry(10, 1), true), 'stored');
  });

  describe('image variants (key/variant entries)', () => {
    const v = (key: string, id: string) => `${key}/${id}`;

    it('a variant older than its key’s tombstone or newest entry is refused; a newer one drops the older', () => {
      const cache = node();
      assert.equal(cache.put('k', entry(10, 5), true), 'stored');
      assert.equal(cache.put(v('k', 'a'), entry(10, 4), true), 'stale', 'the original is newer');
      assert.equal(cache.put(v('k', 'a'), entry(10, 5), true), 'stored');
      assert.equal(cache.put('k', entry(10, 4), true), 'stale', 'a variant of 5 is cached');
      cache.invalidate('k', 7);
      assert.equal(cache.put(v('k', 'b'), entry(10, 6), true), 'stale', 'older than the tombstone');
      assert.equal(cache.put(v('k', 'b'), entry(10, 8), true), 'stored');
      assert.equal(cache.put('k', entry(10, 7), true), 'stale');
      assert.equal(cache.put('k', entry(10, 9), true), 'stored');
      assert.equal(cache.peek(v('k', 'b')), undefined, 'a newer original drops older variants');
      assert.deepEqual(
        cache.import([[v('k', 'c'), entry(10, 8)]]),
        { accepted: 0, refused: 1 },
        'a hand-over too',
      );
    });

    it('invalidating a key forgets its original and every variant, and no other key’s', () => {
      const cache = node();
      cache.put('k', entry(10, 1), true);
      for (const id of ['a', 'b', 'c']) cache.put(v('k', id), entry(10, 1), true);
      cache.put('kk', entry(10, 1), true);
      cache.put(v('kk', 'a'), entry(10, 1), true);
      assert.equal(cache.invalidate('k', 2), true);
      assert.deepEqual(cache.keys().sort(), ['kk', 'kk/a']);
      // Only variants left: the key's invalidation still finds them.
      cache.put(v('k', 'a'), entry(10, 2), true);
      assert.equal(cache.invalidate('k', 3), true);
      assert.deepEqual(cache.keys().sort(), ['kk', 'kk/a']);
    });

    it('the index follows evictions, clear, reconfiguration and dropped regions', () => {
      const cache = node(0.01); // 10485 bytes
      cache.put(v('k', 'a'), entry(4000, 1), true);
      cache.put(v('k', 'b'), entry(4000, 1), true);
      cache.put('other', entry(4000, 1), true); // evicts k/a
      assert.equal(cache.peek(v('k', 'a')), undefined);
      // Had the index kept k/a, this put would be refused, or the invalidation miss k/b.
      assert.equal(cache.put(v('k', 'a'), entry(1000, 2), true), 'stored');
      assert.equal(cache.peek(v('k', 'b')), undefined, 'k/b of version 1 was dropped');
      cache.configure({ policy: 'SIEVE' });
      cache.invalidate('k', 3);
      assert.deepEqual(cache.keys(), ['other']);
      cache.put(v('k', 'a'), entry(1000, 3), true);
      const region = cache.regions().find((r) => r.items === 1 && r.bytes === 1000)?.region;
      assert.notEqual(region, undefined, 'the variant counts in its key’s region');
      assert.deepEqual(
        [...cache.entriesOfRegions(new Set([region as number]))].map(([key]) => key),
        [v('k', 'a')],
      );
      assert.equal(cache.dropRegions(new Set([region as number])), 1);
      cache.clear();
      assert.equal(cache.put(v('k', 'a'), entry(1000, 3), true), 'stored');
    });
  });
});
