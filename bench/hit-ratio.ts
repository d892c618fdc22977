/**
 * The hit-ratio simulator (issue 7): a seeded Zipf trace over objects with image-like sizes,
 * replayed against pixpool's real stores (src/core/stores) and against Belady's furthest-next-use
 * rule as a reference. Pure and in-process: no server, no I/O, so the figures are exact and
 * reproducible from the seed (only the time taken varies).
 *
 * - Popularity: Zipf(alpha) over `objects` ranks, P(rank k) ∝ 1/k^alpha, sampled by binary search
 *   in the cumulative weights; ranks are mapped to object ids by a seeded shuffle, so an object's
 *   id says nothing about its popularity or its size.
 * - Sizes: log-normal (median and sigma given), clipped to [min, max], drawn per object
 *   independently of popularity.
 * - Replay: demand fill — a get that misses inserts the object (set); the first `warmup` requests
 *   fill the cache and are not counted.
 * - The stores hold real Buffers: views of one shared backing buffer, so 100k objects of ~150 KB
 *   cost no memory, while the stores see the values' true lengths.
 * - Belady: on a miss, evict the cached object whose next use is furthest away (never again
 *   first) until the new one fits. Optimal when all sizes are equal; with varied sizes exact OPT
 *   is NP-hard and this size-unaware rule is an upper reference, not a proven bound.
 */
import type { CacheEntry, CacheStore } from '../src/core/stores/store.ts';
import type { FetchedImage } from '../src/frontend/fetched-image.ts';
import { createNearCache } from '../src/frontend/near-cache.ts';

export type Random = () => number;

export interface SizeModel {
  /** Median size in bytes (the log-normal's e^mu). */
  median: number;
  /** Standard deviation of ln(size). */
  sigma: number;
  min: number;
  max: number;
}

export interface TraceOptions {
  objects: number;
  requests: number;
  alpha: number;
  sizes: SizeModel;
  random: Random;
}

export interface Trace {
  /** Bytes of each object, by object id. */
  sizes: Uint32Array;
  /** The object id of each request. */
  requests: Uint32Array;
}

export interface HitCounts {
  requests: number;
  hits: number;
  bytes: number;
  hitBytes: number;
}

export const objectHitRatio = (c: HitCounts) => c.hits / c.requests;
export const byteHitRatio = (c: HitCounts) => c.hitBytes / c.bytes;

/** A sampler of Zipf(alpha) ranks 0..n-1 (rank 0 the most popular). */
export function zipfSampler(n: number, alpha: number, random: Random): () => number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError('n must be a positive integer');
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    total += 1 / (k + 1) ** alpha;
    cdf[k] = total;
  }
  return () => {
    const u = random() * total;
    // The first rank whose cumulative weight exceeds u.
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/** A standard normal deviate (Box–Muller). */
function normal(random: Random): number {
  const u = 1 - random(); // (0, 1]: log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

export function logNormalSizes(n: number, model: SizeModel, random: Random): Uint32Array {
  const sizes = new Uint32Array(n);
  const mu = Math.log(model.median);
  for (let i = 0; i < n; i++) {
    const size = Math.round(Math.exp(mu + model.sigma * normal(random)));
    sizes[i] = Math.min(model.max, Math.max(model.min, size));
  }
  return sizes;
}

export function generateTrace(options: TraceOptions): Trace {
  const { objects, requests, alpha, random } = options;
  const sizes = logNormalSizes(objects, options.sizes, random);
  // rank → object id: a Fisher–Yates shuffle.
  const idOfRank = new Uint32Array(objects);
  for (let i = 0; i < objects; i++) idOfRank[i] = i;
  for (let i = objects - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = idOfRank[i] as number;
    idOfRank[i] = idOfRank[j] as number;
    idOfRank[j] = t;
  }
  const rank = zipfSampler(objects, alpha, random);
  const trace = new Uint32Array(requests);
  for (let i = 0; i < requests; i++) trace[i] = idOfRank[rank()] as number;
  return { sizes, requests: trace };
}

/** The same trace with every object of `size` bytes (the unit-size variant). */
export function withUniformSize(trace: Trace, size = 1): Trace {
  return { sizes: new Uint32Array(trace.sizes.length).fill(size), requests: trace.requests };
}

export const totalBytes = (trace: Trace) => trace.sizes.reduce((sum, s) => sum + s, 0);

/**
 * Replays `trace` on `store` (demand fill); counts the requests from index `warmup` on. Returns
 * the counts and the mean number of entries held over the measured requests.
 */
export function replayOnStore(
  store: CacheStore,
  trace: Trace,
  warmup: number,
): HitCounts & { meanCount: number } {
  const { sizes, requests } = trace;
  let largest = 0;
  for (const s of sizes) largest = Math.max(largest, s);
  const backing = Buffer.alloc(largest);
  const keys: string[] = [];
  const entries: CacheEntry[] = [];
  for (let id = 0; id < sizes.length; id++) {
    keys.push(`o${id}`);
    entries.push({
      value: backing.subarray(0, sizes[id]),
      contentType: 'image/jpeg',
      version: 1,
    });
  }
  const counts = { requests: 0, hits: 0, bytes: 0, hitBytes: 0, meanCount: 0 };
  let countSum = 0;
  for (let i = 0; i < requests.length; i++) {
    const id = requests[i] as number;
    const key = keys[id] as string;
    const hit = store.get(key) !== undefined;
    if (!hit) store.set(key, entries[id] as CacheEntry);
    if (i < warmup) continue;
    const size = sizes[id] as number;
    counts.requests++;
    counts.bytes += size;
    if (hit) {
      counts.hits++;
      counts.hitBytes += size;
    }
    countSum += store.count;
  }
  counts.meanCount = counts.requests > 0 ? countSum / counts.requests : 0;
  return counts;
}

export interface NearCacheCounts extends HitCounts {
  /** New keys the near cache let in, and kept out, over the measured requests. */
  admitted: number;
  rejected: number;
}

/**
 * Replays `trace` on the frontend's near cache (src/frontend/near-cache.ts) as the image service
 * drives it: each request is recorded, a held copy is a hit (as within a lease), and a miss offers
 * the node's answer to the cache. `admission: false` is LRU alone, as before admission.
 */
export function replayOnNearCache(
  trace: Trace,
  capacity: number,
  warmup: number,
  admission: boolean,
): NearCacheCounts {
  const { sizes, requests } = trace;
  let largest = 0;
  for (const s of sizes) largest = Math.max(largest, s);
  const backing = Buffer.alloc(largest);
  const keys: string[] = [];
  for (let id = 0; id < sizes.length; id++) keys.push(`o${id}`);
  let measuring = false;
  const counts = { requests: 0, hits: 0, bytes: 0, hitBytes: 0, admitted: 0, rejected: 0 };
  const near = createNearCache(capacity, {
    admission,
    admitted: { inc: () => measuring && counts.admitted++ },
    rejected: { inc: () => measuring && counts.rejected++ },
  });
  for (let i = 0; i < requests.length; i++) {
    measuring = i >= warmup;
    const id = requests[i] as number;
    const key = keys[id] as string;
    near.record(key);
    const hit = near.get(key) !== undefined;
    if (!hit) {
      // A fresh object per answer, as the image service builds one per node answer.
      const image: FetchedImage = {
        bytes: backing.subarray(0, sizes[id]),
        contentType: 'image/jpeg',
        version: 1,
        modifiedAt: undefined,
        source: 'cache',
      };
      near.set(key, image);
    }
    if (!measuring) continue;
    const size = sizes[id] as number;
    counts.requests++;
    counts.bytes += size;
    if (hit) {
      counts.hits++;
      counts.hitBytes += size;
    }
  }
  return counts;
}

/** "Never used again", as a next-use index. */
const NEVER = 0x7fffffff;

/** For each request, the index of the next request for the same object, or NEVER. */
export function nextUses(requests: Uint32Array, objects: number): Int32Array {
  const next = new Int32Array(requests.length);
  const seen = new Int32Array(objects).fill(NEVER);
  for (let i = requests.length - 1; i >= 0; i--) {
    const id = requests[i] as number;
    next[i] = seen[id] as number;
    seen[id] = i;
  }
  return next;
}

/**
 * Belady's rule with demand fill over a byte capacity: on a miss, evict the cached object used
 * furthest in the future (never-used-again ones first) until the new object fits, then insert it.
 * A max-heap of (next use, id) with lazy deletion: an entry is current only while the object is
 * cached and its next use is still that one.
 */
export function replayBelady(trace: Trace, capacity: number, warmup: number): HitCounts {
  const { sizes, requests } = trace;
  const next = nextUses(requests, sizes.length);
  const cachedNext = new Int32Array(sizes.length).fill(-1); // -1: not cached
  // At most one push per request, so the heap never needs to grow.
  const heapKey = new Int32Array(requests.length + 1);
  const heapId = new Uint32Array(requests.length + 1);
  let heapSize = 0;

  const swap = (a: number, b: number) => {
    const k = heapKey[a] as number;
    heapKey[a] = heapKey[b] as number;
    heapKey[b] = k;
    const v = heapId[a] as number;
    heapId[a] = heapId[b] as number;
    heapId[b] = v;
  };
  const push = (key: number, id: number) => {
    let i = heapSize++;
    heapKey[i] = key;
    heapId[i] = id;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heapKey[parent] as number) >= (heapKey[i] as number)) break;
      swap(i, parent);
      i = parent;
    }
  };
  const pop = () => {
    heapSize--;
    swap(0, heapSize);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < heapSize && (heapKey[l] as number) > (heapKey[top] as number)) top = l;
      if (r < heapSize && (heapKey[r] as number) > (heapKey[top] as number)) top = r;
      if (top === i) break;
      swap(i, top);
      i = top;
    }
  };

  let used = 0;
  const counts = { requests: 0, hits: 0, bytes: 0, hitBytes: 0 };
  for (let i = 0; i < requests.length; i++) {
    const id = requests[i] as number;
    const size = sizes[id] as number;
    const hit = (cachedNext[id] as number) >= 0;
    // A miss larger than the whole capacity cannot be cached, as in the stores.
    if (hit || size <= capacity) {
      while (!hit && used + size > capacity) {
        const victim = heapId[0] as number;
        const key = heapKey[0] as number;
        pop();
        if (cachedNext[victim] !== key) continue; // stale
        cachedNext[victim] = -1;
        used -= sizes[victim] as number;
      }
      if (!hit) used += size;
      cachedNext[id] = next[i] as number;
      push(next[i] as number, id);
    }
    if (i < warmup) continue;
    counts.requests++;
    counts.bytes += size;
    if (hit) {
      counts.hits++;
      counts.hitBytes += size;
    }
  }
  return counts;
}
