/**
 * Least-recently-used replacement over lru-cache.
 *
 * lru-cache fixes its `maxSize` at construction, but a node's capacity changes at run time, so
 * the byte budget is kept here: before an insert, `pop()` takes the least recently used entries
 * until the new value fits. lru-cache still does what it is best at, the O(1) recency list.
 */
import { LRUCache } from 'lru-cache';
import {
  type CacheEntry,
  type CacheStore,
  checkCapacity,
  checkEntry,
  checkStoreOptions,
  type StoreOptions,
} from './store.ts';

export function createLruStore(options: StoreOptions): CacheStore {
  checkStoreOptions(options);
  const { onEvict } = options;
  let capacity = options.capacity;
  const cache = new LRUCache<string, CacheEntry>({
    // The real budget is `capacity`, enforced below; this bound only enables size tracking.
    maxSize: Number.MAX_SAFE_INTEGER,
    ...(onEvict && {
      dispose: (entry, key, reason) => {
        if (reason === 'evict') onEvict(key, entry);
      },
    }),
  });

  function evictDownTo(bytes: number): void {
    while (cache.calculatedSize > bytes) cache.pop();
  }

  return {
    policy: 'LRU',
    get capacity() {
      return capacity;
    },
    get size() {
      return cache.calculatedSize;
    },
    get count() {
      return cache.size;
    },
    get: (key) => cache.get(key),
    peek: (key) => cache.peek(key),
    set(key, entry) {
      checkEntry(entry);
      const bytes = entry.value.length;
      if (bytes > capacity) return false;
      // Remove first: the old value's bytes must not count, and it must not be its own victim.
      cache.delete(key);
      evictDownTo(capacity - bytes);
      cache.set(key, entry, { size: bytes });
      return true;
    },
    delete: (key) => cache.delete(key),
    clear: () => cache.clear(),
    setCapacity(bytes) {
      checkCapacity(bytes);
      capacity = bytes;
      evictDownTo(capacity);
    },
    // lru-cache's rentries() walks from least to most recently used.
    entries: () => cache.rentries() as IterableIterator<[string, CacheEntry]>,
  };
}
