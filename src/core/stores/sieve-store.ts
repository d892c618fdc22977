/**
 * SIEVE replacement (Zhang et al., "SIEVE is Simpler than LRU", NSDI '24), over a byte budget.
 *
 * Entries sit in one FIFO queue, newest at the head, each with a `visited` bit. A hit only sets
 * the bit — no list surgery, unlike LRU. To make room, a "hand" walks from the tail towards the
 * head: a visited entry has its bit cleared and is passed over (it stays where it is), the first
 * unvisited one is evicted, and the hand stays there for the next eviction; past the head it wraps
 * to the tail. New entries therefore have to earn a hit before the hand comes round (quick
 * demotion of one-hit wonders, so a scan does not flush the hot set), and entries that keep being
 * hit stay put (lazy promotion). Every bit the hand clears was set by a hit, so eviction is O(1)
 * amortized.
 *
 * Sizes vary, so one insert may evict several entries; the hand simply keeps going until the new
 * value fits. Replacing a key removes the old entry first (it is never its own victim) and keeps
 * its visited bit: a new version of a hot image is still hot. `entries()` lists the entries in the
 * order SIEVE would evict them if nothing else happened: the unvisited ones in the hand's order,
 * then the visited ones in the same order (the hand clears them on its first lap).
 */
import {
  type CacheEntry,
  type CacheStore,
  checkCapacity,
  checkEntry,
  checkStoreOptions,
  type StoreOptions,
} from './store.ts';

interface Node {
  readonly key: string;
  entry: CacheEntry;
  visited: boolean;
  /** Towards the head (inserted later); undefined at the head. */
  newer: Node | undefined;
  /** Towards the tail (inserted earlier); undefined at the tail. */
  older: Node | undefined;
}

export function createSieveStore(options: StoreOptions): CacheStore {
  checkStoreOptions(options);
  const { onEvict } = options;
  let capacity = options.capacity;
  const nodes = new Map<string, Node>();
  let head: Node | undefined;
  let tail: Node | undefined;
  /** The next entry the hand looks at; undefined means "start again at the tail". */
  let hand: Node | undefined;
  let size = 0;

  function unlink(node: Node): void {
    // The hand never points at a removed node: it moves on to the next one it would look at.
    if (hand === node) hand = node.newer;
    if (node.newer) node.newer.older = node.older;
    else head = node.older;
    if (node.older) node.older.newer = node.newer;
    else tail = node.newer;
    node.newer = undefined;
    node.older = undefined;
    nodes.delete(node.key);
    size -= node.entry.value.length;
  }

  function pushHead(node: Node): void {
    node.older = head;
    if (head) head.newer = node;
    else tail = node;
    head = node;
    nodes.set(node.key, node);
    size += node.entry.value.length;
  }

  function evictOne(): void {
    let node = hand ?? tail;
    // Ends within one lap and a step: every visited bit passed over is cleared.
    while (node?.visited) {
      node.visited = false;
      node = node.newer ?? tail;
    }
    if (!node) return; // empty: callers never ask, since size > 0 when they do
    hand = node;
    unlink(node); // moves the hand on to node.newer
    onEvict?.(node.key, node.entry);
  }

  function* inEvictionOrder(visited: boolean): Generator<[string, CacheEntry]> {
    const start = hand ?? tail;
    if (!start) return;
    let node: Node | undefined = start;
    do {
      if (node.visited === visited) yield [node.key, node.entry];
      node = node.newer ?? tail;
    } while (node !== start && node);
  }

  return {
    policy: 'SIEVE',
    get capacity() {
      return capacity;
    },
    get size() {
      return size;
    },
    get count() {
      return nodes.size;
    },
    get(key) {
      const node = nodes.get(key);
      if (!node) return undefined;
      node.visited = true;
      return node.entry;
    },
    peek: (key) => nodes.get(key)?.entry,
    set(key, entry) {
      checkEntry(entry);
      const bytes = entry.value.length;
      if (bytes > capacity) return false;
      const old = nodes.get(key);
      if (old) unlink(old);
      while (size + bytes > capacity) evictOne();
      pushHead({ key, entry, visited: old?.visited ?? false, newer: undefined, older: undefined });
      return true;
    },
    delete(key) {
      const node = nodes.get(key);
      if (!node) return false;
      unlink(node);
      return true;
    },
    clear() {
      nodes.clear();
      head = tail = hand = undefined;
      size = 0;
    },
    setCapacity(bytes) {
      checkCapacity(bytes);
      capacity = bytes;
      while (size > capacity) evictOne();
    },
    *entries() {
      yield* inEvictionOrder(false);
      yield* inEvictionOrder(true);
    },
  };
}
