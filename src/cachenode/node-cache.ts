/**
 * A cache node's content and counters, without HTTP: the store of the configured policy and
 * capacity, the statistics, the version rule for writes, and enumeration by region.
 *
 * Version rule: a write that carries a version never replaces a newer cached version of its key
 * (a late fill or a hand-over must not undo a newer upload); a write without a version (the seed
 * API) replaces whatever is there. Hand-overs are stricter still: an equal version is kept as it is.
 *
 * Tombstones: an invalidation that carries the new version V (an upload just committed V) leaves
 * "key: V" behind for a while, so a fill or hand-over of an older version that was already in
 * flight cannot put the old image back after the invalidation. They are bounded in number and
 * time (far longer than any request timeout); clear() keeps them.
 *
 * Image variants: an entry key `key/variant` (core/keys.ts) is a variant of `key`, made from the
 * original's version and carrying it. Versions and tombstones count per key: a write older than
 * the key's tombstone, or than any entry of the key (original or variant), is refused, and
 * storing a version forgets the key's entries of older ones. Invalidating a key forgets its
 * original and every variant at once, through an index of each key's variant entries kept with
 * the store (so it costs the variants of that key, not a scan).
 *
 * Regions: each cached key's region is worked out once, when it is stored, and remembered until
 * it leaves the store. A resize goes over every key up to four times on each node (the census,
 * each view's drop, the hand-over's selection), inside the resize's window; an MD5 per key per
 * pass cost more the more keys a node holds (bench/RESULTS.md, issue 23's hand-over).
 */
import { LRUCache } from 'lru-cache';
import { MB, parseCapacityMb, parsePolicy } from '../core/cache-config.ts';
import { tooLarge } from '../core/errors.ts';
import { baseKey } from '../core/keys.ts';
import { REGION_COUNT, regionOf } from '../core/regions.ts';
import { createStats, rate, type Sample, type Stats } from '../core/stats.ts';
import {
  type CacheEntry,
  type CacheStore,
  createStore,
  type PolicyName,
  reconfigureStore,
} from '../core/stores/index.ts';

export { MB, parseCapacityMb, parsePolicy } from '../core/cache-config.ts';

export interface NodeConfig {
  policy: PolicyName;
  /** Capacity in MB (MiB); may be fractional. */
  capacityMb: number;
}

export interface NodeCacheOptions extends NodeConfig {
  /** Upper bound for a configured capacity; larger requests are refused as absurd. */
  maxCapacityMb: number;
  /** A key's region (core/regions.ts's, unless a test counts the calls). */
  regionOf?: (key: string) => number;
  random?: () => number;
  clock?: { now(): number };
  /** How long an invalidation's version is remembered, ms (default 10 minutes). */
  tombstoneTtlMs?: number;
}

const MAX_TOMBSTONES = 100_000;

export type PutOutcome = 'stored' | 'stale';

export interface RegionSummary {
  region: number;
  items: number;
  bytes: number;
}

export function createNodeCache(options: NodeCacheOptions) {
  const { maxCapacityMb, random } = options;
  const stats: Stats = createStats(options.clock);
  let config: NodeConfig = {
    policy: options.policy,
    capacityMb: parseCapacityMb(options.capacityMb, maxCapacityMb),
  };
  const regionOfKey = options.regionOf ?? regionOf;
  /** Every cached entry key → its region. */
  const regions = new Map<string, number>();
  const regionOfCached = (key: string): number => {
    let region = regions.get(key);
    if (region === undefined) {
      region = regionOfKey(key);
      regions.set(key, region);
    }
    return region;
  };
  /** key → the entry keys of its variants that the store holds. */
  const variants = new Map<string, Set<string>>();
  const indexVariant = (entryKey: string) => {
    const base = baseKey(entryKey);
    if (base === entryKey) return;
    const set = variants.get(base);
    if (set) set.add(entryKey);
    else variants.set(base, new Set([entryKey]));
  };
  const forgetVariant = (entryKey: string) => {
    const base = baseKey(entryKey);
    if (base === entryKey) return;
    const set = variants.get(base);
    set?.delete(entryKey);
    if (set?.size === 0) variants.delete(base);
  };
  const storeOptions = (capacityMb: number) => ({
    capacity: Math.floor(capacityMb * MB),
    onEvict: (key: string) => {
      forgetVariant(key);
      regions.delete(key);
      stats.evicted();
    },
    ...(random && { random }),
  });
  let store: CacheStore = createStore(config.policy, storeOptions(config.capacityMb));
  /** Every entry key of `base`: the original's, then its variants'. */
  function* entryKeysOf(base: string): Generator<string> {
    yield base;
    yield* variants.get(base) ?? [];
  }
  /** The store's delete, keeping the variant index. */
  const remove = (key: string): boolean => {
    forgetVariant(key);
    regions.delete(key);
    return store.delete(key);
  };
  /**
   * The store's set, keeping the variant index; a stored version forgets the key's entries of
   * older versions (variants of a replaced original are never served beside the new one).
   */
  const setEntry = (key: string, entry: CacheEntry): boolean => {
    if (!store.set(key, entry)) return false;
    indexVariant(key);
    regionOfCached(key);
    const base = baseKey(key);
    // An original without variants, the common case: nothing else of the key to compare.
    if (base === key && !variants.has(base)) return true;
    for (const other of [...entryKeysOf(base)]) {
      if (other !== key && (store.peek(other)?.version ?? entry.version) < entry.version) {
        remove(other);
      }
    }
    return true;
  };
  const rebuildIndex = () => {
    variants.clear();
    const kept = new Map<string, number>();
    for (const [key] of store.entries()) {
      indexVariant(key);
      kept.set(key, regionOfCached(key));
    }
    regions.clear();
    for (const [key, region] of kept) regions.set(key, region);
  };
  const tombstones = new LRUCache<string, number>({
    max: MAX_TOMBSTONES,
    ttl: options.tombstoneTtlMs ?? 10 * 60_000,
    // Read the clock on every check (lru-cache otherwise caches "now" behind a timer).
    ttlResolution: 0,
    ...(options.clock && { perf: options.clock }),
  });
  /**
   * Whether `version` of `key` is older than what is cached (of `key`: `orEqual` refuses an
   * equal version too; of its base key's other entries) or than the key's invalidation.
   */
  const outdated = (key: string, version: number, orEqual: boolean) => {
    const current = store.peek(key)?.version;
    if (current !== undefined && (orEqual ? current >= version : current > version)) return true;
    const base = baseKey(key);
    if (version < (tombstones.get(base) ?? 0)) return true;
    for (const other of entryKeysOf(base)) {
      if (other !== key && (store.peek(other)?.version ?? 0) > version) return true;
    }
    return false;
  };

  function refuseIfTooLarge(key: string, bytes: number): void {
    if (bytes > store.capacity) {
      throw tooLarge(
        `The value for ${JSON.stringify(key)} is ${bytes} bytes, larger than this node's whole capacity (${store.capacity} bytes).`,
      );
    }
  }

  return {
    get config(): NodeConfig {
      return { ...config };
    },
    get items() {
      return store.count;
    },
    get bytes() {
      return store.size;
    },
    get capacityBytes() {
      return store.capacity;
    },

    /** `key`'s region: remembered while it is cached, else worked out (and not remembered). */
    regionOf(key: string): number {
      return regions.get(key) ?? regionOfKey(key);
    },

    /** A client's read: counts a hit or a miss and tells the policy. */
    get(key: string): CacheEntry | undefined {
      const entry = store.get(key);
      if (entry) stats.hit();
      else stats.miss();
      return entry;
    },

    peek: (key: string) => store.peek(key),

    /** A client's write; `version` undefined means unconditional (seed API). */
    put(key: string, entry: CacheEntry, conditional: boolean): PutOutcome {
      refuseIfTooLarge(key, entry.value.length);
      if (conditional && outdated(key, entry.version, false)) return 'stale';
      setEntry(key, entry);
      stats.put();
      return 'stored';
    },

    /** Entries handed over by another node; never replaces an equal or newer version. */
    import(entries: Iterable<[string, CacheEntry]>): { accepted: number; refused: number } {
      let accepted = 0;
      let refused = 0;
      for (const [key, entry] of entries) {
        if (outdated(key, entry.version, true) || !setEntry(key, entry)) refused++;
        else accepted++;
      }
      stats.imported(accepted);
      return { accepted, refused };
    },

    /**
     * Forget `key` (a key: its original and every variant of it); with the version that replaced
     * it, refuse older versions of the key for a while.
     */
    invalidate(key: string, version?: number): boolean {
      const base = baseKey(key);
      if (version !== undefined) tombstones.set(base, Math.max(version, tombstones.get(base) ?? 0));
      if (base !== key) return remove(key);
      let removed = false;
      for (const entryKey of [...entryKeysOf(base)]) removed = remove(entryKey) || removed;
      return removed;
    },

    /** Delete `key` only if the cached entry is still `version` (after handing it over). */
    deleteIfVersion(key: string, version: number): boolean {
      return store.peek(key)?.version === version && remove(key);
    },

    clear: () => {
      store.clear();
      variants.clear();
      regions.clear();
    },

    /** Forgets every entry of the given regions; returns how many. */
    dropRegions(dropped: ReadonlySet<number>): number {
      if (dropped.size === 0) return 0;
      const doomed = [...store.entries()].filter(([key]) => dropped.has(regionOfCached(key)));
      for (const [key] of doomed) remove(key);
      return doomed.length;
    },

    /**
     * Validate everything first, then apply at once (the originals applied a new capacity before
     * refusing a bad policy in the same request).
     */
    configure(change: { policy?: unknown; capacityMb?: unknown }): { evicted: number } {
      const policy = change.policy === undefined ? config.policy : parsePolicy(change.policy);
      const capacityMb =
        change.capacityMb === undefined
          ? config.capacityMb
          : parseCapacityMb(change.capacityMb, maxCapacityMb);
      const before = stats.totals.evictions;
      store = reconfigureStore(store, policy, storeOptions(capacityMb));
      // A new store calls onEvict too, but one index from its content is simplest to trust.
      rebuildIndex();
      config = { policy, capacityMb };
      return { evicted: stats.totals.evictions - before };
    },

    /** Entries of the given regions (a hand-over's source), without touching recency. */
    *entriesOfRegions(wanted: ReadonlySet<number>): Generator<[string, CacheEntry]> {
      for (const [key, entry] of store.entries()) {
        if (wanted.has(regionOfCached(key))) yield [key, entry];
      }
    },

    keys(region?: number): string[] {
      const keys: string[] = [];
      for (const [key] of store.entries()) {
        if (region === undefined || regionOfCached(key) === region) keys.push(key);
      }
      return keys;
    },

    regions(): RegionSummary[] {
      const summary = Array.from({ length: REGION_COUNT }, (_, region) => ({
        region,
        items: 0,
        bytes: 0,
      }));
      for (const [key, entry] of store.entries()) {
        const s = summary[regionOfCached(key)] as RegionSummary;
        s.items++;
        s.bytes += entry.value.length;
      }
      return summary;
    },

    stats: {
      get totals() {
        return stats.totals;
      },
      reset: () => stats.reset(),
      sample: (): Sample => stats.sample({ items: store.count, bytes: store.size }),
      hitRate: () => rate(stats.totals.hits, stats.totals.gets),
      missRate: () => rate(stats.totals.misses, stats.totals.gets),
    },
  };
}

export type NodeCache = ReturnType<typeof createNodeCache>;
