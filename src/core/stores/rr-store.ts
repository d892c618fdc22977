/**
 * Random replacement: to make room, evict a uniformly random resident entry.
 *
 * The keys live in a dense array beside a Map from key to slot; eviction picks a random slot,
 * moves the last key into it and pops, so every operation is O(1). `random` is injected so tests
 * can choose the victims.
 */
import {
  type CacheEntry,
  type CacheStore,
  checkCapacity,
  checkEntry,
  checkStoreOptions,
  type StoreOptions,
} from './store.ts';

interface Slot {
  entry: CacheEntry;
  index: number;
}

export function createRrStore(options: StoreOptions): CacheStore {
  checkStoreOptions(options);
  const { onEvict, random = Math.random } = options;
  let capacity = options.capacity;
  const slots = new Map<string, Slot>();
  const keys: string[] = [];
  let size = 0;

  function remove(key: string, slot: Slot): void {
    const last = keys.pop() as string;
    if (last !== key) {
      keys[slot.index] = last;
      (slots.get(last) as Slot).index = slot.index;
    }
    slots.delete(key);
    size -= slot.entry.value.length;
  }

  function evictOne(): void {
    const index = Math.min(keys.length - 1, Math.floor(random() * keys.length));
    const key = keys[index] as string;
    const slot = slots.get(key) as Slot;
    remove(key, slot);
    onEvict?.(key, slot.entry);
  }

  return {
    policy: 'RR',
    get capacity() {
      return capacity;
    },
    get size() {
      return size;
    },
    get count() {
      return keys.length;
    },
    get: (key) => slots.get(key)?.entry,
    peek: (key) => slots.get(key)?.entry,
    set(key, entry) {
      checkEntry(entry);
      const bytes = entry.value.length;
      if (bytes > capacity) return false;
      const old = slots.get(key);
      // Replacing is remove-then-insert, so the old value's bytes never count twice and the
      // key being written is never its own eviction victim.
      if (old) remove(key, old);
      while (size + bytes > capacity) evictOne();
      slots.set(key, { entry, index: keys.length });
      keys.push(key);
      size += bytes;
      return true;
    },
    delete(key) {
      const slot = slots.get(key);
      if (!slot) return false;
      remove(key, slot);
      return true;
    },
    clear() {
      slots.clear();
      keys.length = 0;
      size = 0;
    },
    setCapacity(bytes) {
      checkCapacity(bytes);
      capacity = bytes;
      while (size > capacity) evictOne();
    },
    *entries() {
      for (const key of keys) yield [key, (slots.get(key) as Slot).entry];
    },
  };
}
