/**
 * The frontend's near cache: recently served images kept in this process, so a hot image does
 * not cross the frontend → node hop on every request.
 *
 * It never answers on its own authority. A use either asks the owning node "is version V still
 * current?" (a bodiless 304 when it is), or, within a read lease the node granted on its last
 * answer (src/cachenode/leases.ts), trusts the copy because the node will not acknowledge an
 * invalidation of the key until the lease has run out. The node is where uploads invalidate, so
 * an upload acknowledged by any frontend is seen by the next read through every frontend; what
 * the near cache saves is the transfer of the bytes, and within a lease the question too. A
 * failing node makes a near entry unusable once its lease ends (the read goes to storage).
 * Bounded by bytes, LRU.
 *
 * Admission by frequency (TinyLFU, core/frequency-sketch.ts): every read is counted (`record`),
 * and once the cache is full a new key gets in only if it was read more often lately than each
 * entry it would evict, coldest first. Under uniform reads over more than the cache holds, LRU
 * alone admits a key on nearly every read and evicts it unread; this keeps the held ones. A key
 * already held is always replaced (a newer version never waits behind admission), and an image
 * that is not admitted leaves nothing behind, so admission cannot make an old copy servable.
 *
 * An entry may also carry its image's POST /api/key answer (the base64 data URL as JSON, 4/3 of
 * the bytes), encoded once on the first such request and counted in the entry's size. It belongs
 * to the entry's version: a newer version is a new entry, so it can never be served stale.
 */
import { LRUCache } from 'lru-cache';
import { memoryOf } from '../core/buffer-pool.ts';
import { createFrequencySketch } from '../core/frequency-sketch.ts';
import type { FetchedImage } from './fetched-image.ts';

interface Count {
  inc(): void;
}

export interface NearCacheOptions {
  /** false: admit every key, as LRU alone does (the bench's "before"). Default true. */
  admission?: boolean;
  /** Counts new keys let in and new keys kept out (the frontend's metrics). */
  admitted?: Count;
  rejected?: Count;
}

/** Sketch counters per row for a byte budget: room for entries averaging 4 KiB. */
const BYTES_PER_COUNTER = 4096;
const MIN_WIDTH = 256;
const MAX_WIDTH = 1 << 20;
/** Aging period per entry held (Caffeine's 10 × the maximum size), and its floor. */
const SAMPLES_PER_ENTRY = 10;
const MIN_ENTRIES = 64;

const sizeOf = (image: FetchedImage) =>
  Math.max(1, memoryOf(image.bytes) + (image.dataUrlJson?.length ?? 0));

const none = { inc() {} };

export function createNearCache(maxBytes: number, options: NearCacheOptions = {}) {
  if (maxBytes <= 0) {
    return {
      record: (_key: string) => {},
      get: (_key: string) => undefined,
      set: (_key: string, _image: FetchedImage) => false,
      delete: (_key: string) => {},
      attach: (_key: string, _image: FetchedImage, _body: Buffer) => {},
    };
  }
  const { admission = true, admitted = none, rejected = none } = options;
  const cache = new LRUCache<string, FetchedImage>({ maxSize: maxBytes, sizeCalculation: sizeOf });
  let width = MIN_WIDTH;
  while (width < MAX_WIDTH && width * BYTES_PER_COUNTER < maxBytes) width *= 2;
  const sketch = createFrequencySketch({
    width,
    sampleSize: () => SAMPLES_PER_ENTRY * Math.max(MIN_ENTRIES, cache.size),
  });

  /** Whether `key` (not held, `size` bytes) is read more often than every entry it would evict. */
  function admits(key: string, size: number): boolean {
    let free = maxBytes - cache.calculatedSize;
    if (!admission || size <= free) return true;
    const frequency = sketch.frequency(key);
    // rkeys() goes coldest first, the order lru-cache evicts in.
    for (const victim of cache.rkeys()) {
      if (sketch.frequency(victim) >= frequency) return false;
      const held = cache.peek(victim);
      free += held ? sizeOf(held) : 0;
      if (size <= free) return true;
    }
    return true;
  }

  return {
    /** Counts a read of `key` (once per read, whether the near cache holds it or not). */
    record: (key: string) => {
      if (admission) sketch.increment(key);
    },
    get: (key: string) => cache.get(key),
    /** Keeps `image` as `key`'s copy if admitted; whether it is kept. */
    set(key: string, image: FetchedImage): boolean {
      const size = sizeOf(image);
      if (cache.has(key)) {
        // A held key is replaced, whatever admission would say; one too large is dropped.
        if (size <= maxBytes) cache.set(key, image);
        else cache.delete(key);
        return size <= maxBytes;
      }
      if (size > maxBytes) return false;
      if (!admits(key, size)) {
        rejected.inc();
        return false;
      }
      admitted.inc();
      cache.set(key, image);
      return true;
    },
    delete: (key: string) => {
      cache.delete(key);
    },
    /** Adds the encoded answer to `image` if it is still the entry for `key` (and fits). */
    attach(key: string, image: FetchedImage, body: Buffer) {
      if (cache.peek(key) !== image || image.bytes.length + body.length > maxBytes) return;
      // A new object for the same version (lru-cache recounts the size only for a new value).
      cache.set(key, { ...image, dataUrlJson: body });
    },
  };
}

export type NearCache = ReturnType<typeof createNearCache>;
