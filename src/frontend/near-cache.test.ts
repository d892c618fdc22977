import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSeededRandom } from '../core/seeded-random.ts';
import type { FetchedImage } from './fetched-image.ts';
import { createNearCache, type NearCacheOptions } from './near-cache.ts';

const image = (size: number, version = 1): FetchedImage => ({
  bytes: Buffer.alloc(size),
  contentType: 'image/png',
  version,
  modifiedAt: undefined,
  source: 'cache',
});

/** A near cache with counted admissions, and a read as the image service does one. */
function nearCache(maxBytes: number, options: NearCacheOptions = {}) {
  const counts = { admitted: 0, rejected: 0 };
  const near = createNearCache(maxBytes, {
    admitted: { inc: () => counts.admitted++ },
    rejected: { inc: () => counts.rejected++ },
    ...options,
  });
  const read = (key: string, size = 100) => {
    near.record(key);
    const held = near.get(key);
    if (!held) near.set(key, image(size));
    return held !== undefined;
  };
  return { near, counts, read };
}

describe('near cache admission', () => {
  it('a one-hit wonder does not evict a frequent entry', () => {
    const { near, counts, read } = nearCache(200);
    for (let i = 0; i < 3; i++) {
      read('a');
      read('b');
    }
    assert.equal(read('once'), false);
    assert.equal(near.get('once'), undefined, 'not held');
    assert.ok(near.get('a') && near.get('b'), 'both frequent entries stay');
    assert.deepEqual(counts, { admitted: 2, rejected: 1 });
  });

  it('a key that becomes frequent gets in, in place of the coldest entry', () => {
    const { near, counts, read } = nearCache(200);
    for (let i = 0; i < 3; i++) {
      read('a');
      read('b');
    }
    read('a'); // b is now the least recently used
    let reads = 0;
    while (!near.get('rising')) {
      assert.ok(++reads <= 5, 'admitted within a few reads');
      read('rising');
    }
    assert.equal(reads, 4, 'once read more often than b (3 reads)');
    assert.equal(near.get('b'), undefined);
    assert.ok(near.get('a'));
    assert.equal(counts.admitted, 3);
  });

  it('admits anything while there is room, and every key without admission', () => {
    const { near, read } = nearCache(200, { admission: false });
    for (let i = 0; i < 3; i++) {
      read('a');
      read('b');
    }
    read('once');
    assert.ok(near.get('once'), 'LRU alone lets it in');
  });

  it('replaces a held key with its new version whatever its frequency, or drops it', () => {
    const { near, read } = nearCache(200);
    for (let i = 0; i < 3; i++) read('a');
    read('b');
    const v2 = image(100, 2);
    near.set('b', v2);
    assert.equal(near.get('b'), v2);
    // A new version too large to hold must not leave the old one to be served.
    near.set('b', image(300, 3));
    assert.equal(near.get('b'), undefined);
  });

  it('keeps uniform reads over 4× its size from churning, without losing hits', () => {
    const run = (admission: boolean) => {
      const { counts, read } = nearCache(10 * 100, { admission });
      const random = createSeededRandom(23);
      let hits = 0;
      const reads = 20_000;
      for (let i = 0; i < reads; i++) {
        if (i === 2_000) counts.admitted = 0;
        if (read(`k${Math.floor(random() * 40)}`) && i >= 2_000) hits++;
      }
      return {
        hitRatio: hits / (reads - 2_000),
        admissionsPerRead: counts.admitted / (reads - 2_000),
      };
    };
    const lru = run(false);
    const tinyLfu = run(true);
    assert.ok(lru.admissionsPerRead > 0.7, `LRU ${lru.admissionsPerRead}`);
    assert.ok(tinyLfu.admissionsPerRead < 0.25, `TinyLFU ${tinyLfu.admissionsPerRead}`);
    assert.ok(tinyLfu.hitRatio > lru.hitRatio - 0.02, `${tinyLfu.hitRatio} vs ${lru.hitRatio}`);
  });
});
