/**
 * One interface for a cache node's content: a byte-capacity store of key → image entry, with a
 * replacement policy chosen by name.
 *
 * Capacity counts value bytes only; keys and metadata are not counted, which keeps a node's "size"
 * equal to the image bytes a person uploaded. An entry larger than the capacity is refused (set
 * returns false) and leaves the store untouched. Stores are not thread-safe and need not be: a node
 * runs on one event loop.
 */

export interface CacheEntry {
  readonly value: Buffer;
  readonly contentType: string;
  /** The image's version from the metadata store; 0 when a client gave none (seed API). */
  readonly version: number;
  /** When the image was uploaded, ms since the epoch, if the writer knows (Last-Modified). */
  readonly modifiedAt?: number | undefined;
}

export type PolicyName = 'LRU' | 'RR' | 'SIEVE';
export const POLICIES: readonly PolicyName[] = ['LRU', 'RR', 'SIEVE'];

export interface StoreOptions {
  /** Capacity in bytes; a positive safe integer. */
  capacity: number;
  /** Called for every entry evicted to make room (not for delete, replace or clear). */
  onEvict?: (key: string, entry: CacheEntry) => void;
  /** Uniform in [0, 1); injected so random replacement is testable. */
  random?: () => number;
}

export interface CacheStore {
  readonly policy: PolicyName;
  /** Capacity in bytes. */
  readonly capacity: number;
  /** Bytes of all values held. */
  readonly size: number;
  readonly count: number;
  /** A use of the entry: the policy may record it (LRU moves it to the most recent end, SIEVE
   * marks it visited). */
  get(key: string): CacheEntry | undefined;
  /** A look that does not count as a use. */
  peek(key: string): CacheEntry | undefined;
  /** Insert or replace, evicting others as the policy says; false if the value cannot fit. */
  set(key: string, entry: CacheEntry): boolean;
  delete(key: string): boolean;
  clear(): void;
  /** Change the capacity, evicting as the policy says until the content fits. */
  setCapacity(bytes: number): void;
  /** Every entry, coldest first where the policy has an order. Do not mutate while iterating. */
  entries(): IterableIterator<[string, CacheEntry]>;
}

export function checkCapacity(capacity: number): void {
  if (!Number.isSafeInteger(capacity) || capacity <= 0) {
    throw new TypeError('capacity must be a positive safe integer number of bytes');
  }
}

export function checkStoreOptions(options: StoreOptions): void {
  const { capacity, random } = options;
  checkCapacity(capacity);
  if (random !== undefined && typeof random !== 'function') {
    throw new TypeError('random must be a function returning a number in [0, 1)');
  }
}

export function checkEntry(entry: CacheEntry): void {
  if (!Buffer.isBuffer(entry.value) || entry.value.length === 0) {
    throw new TypeError('an entry value must be a non-empty Buffer');
  }
}
