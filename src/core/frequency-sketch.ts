/**
 * How often each key was seen lately, in a few kilobytes: the frequency sketch of TinyLFU
 * (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy"), laid out as
 * Caffeine's FrequencySketch. A count-min sketch of 4 rows of 4-bit counters: a key's estimate is
 * the least of its 4 counters, so collisions can only raise it, and it saturates at 15. Aging:
 * after `sampleSize` increments every counter is halved, so the estimate follows what is popular
 * now rather than what ever was.
 *
 * Written here because no npm package has it small and kept: count-min sketches there have
 * unbounded counters and no aging, and a TinyLFU cache package would replace lru-cache and its
 * byte budget rather than advise it.
 *
 * Limits: the hash is not keyed, so whoever picks keys can pick colliding ones; the damage is an
 * overestimate of at most 15, halved at each aging.
 */

const ROWS = 4;
const MAX_COUNT = 15;
/** Per-row hash seeds (odd, unrelated), so the rows' collisions are independent. */
const SEEDS = [0x97cb3127, 0xc3a5c85d, 0xb492b66f, 0x9ae16a3b];

export interface FrequencySketchOptions {
  /** Counters per row: a power of two, ≥ 8. About the number of distinct keys per sample. */
  width: number;
  /** Increments between two halvings (a function: it may follow the cache's entry count). */
  sampleSize: number | (() => number);
}

export interface FrequencySketch {
  /** The estimated count of `key` since aging last caught up with it (0–15, never under). */
  frequency(key: string): number;
  /** Counts one occurrence of `key`; halves every counter once `sampleSize` were counted. */
  increment(key: string): void;
  /** Halves every counter (aging; increment does it on its own every `sampleSize`). */
  halve(): void;
}

/** FNV-1a over the UTF-16 code units, then MurmurHash3's finalizer per row. */
function hashString(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h;
}

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function createFrequencySketch(options: FrequencySketchOptions): FrequencySketch {
  const { width } = options;
  if (!Number.isInteger(width) || width < 8 || (width & (width - 1)) !== 0) {
    throw new TypeError(`width must be a power of two of at least 8, not ${width}`);
  }
  const given = options.sampleSize;
  if (typeof given === 'number' && !(Number.isInteger(given) && given > 0)) {
    throw new TypeError(`sampleSize must be a positive integer, not ${given}`);
  }
  const sampleSize = typeof given === 'number' ? () => given : given;
  // 8 counters of 4 bits per word; row r holds counters r·width … (r+1)·width − 1.
  const table = new Uint32Array((ROWS * width) >>> 3);
  const mask = width - 1;
  // The counter indices of the key last located: reused, so a read allocates nothing.
  const at = new Int32Array(ROWS);
  let additions = 0;

  function locate(key: string): void {
    const h = hashString(key);
    for (let r = 0; r < ROWS; r++) at[r] = r * width + (mix(h ^ (SEEDS[r] as number)) & mask);
  }
  const counter = (i: number) => ((table[i >>> 3] as number) >>> ((i & 7) << 2)) & 0xf;
  function least(): number {
    let min = MAX_COUNT;
    for (let r = 0; r < ROWS; r++) min = Math.min(min, counter(at[r] as number));
    return min;
  }

  function halve(): void {
    // Each counter shifts right by one; the mask drops the bit each shifted into its neighbour.
    for (let w = 0; w < table.length; w++) table[w] = ((table[w] as number) >>> 1) & 0x77777777;
    additions >>>= 1;
  }

  return {
    frequency(key) {
      locate(key);
      return least();
    },
    increment(key) {
      locate(key);
      const min = least();
      if (min === MAX_COUNT) return;
      // Conservative update: only the counters at the minimum grow, which keeps the others from
      // collecting more than their own keys' counts.
      for (let r = 0; r < ROWS; r++) {
        const i = at[r] as number;
        if (counter(i) === min) table[i >>> 3] = (table[i >>> 3] as number) + (1 << ((i & 7) << 2));
      }
      if (++additions >= sampleSize()) halve();
    },
    halve,
  };
}
