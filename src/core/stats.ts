/**
 * A cache node's counters and the samples it publishes.
 *
 * Counters only grow (until an explicit reset); a sample carries the *deltas* since the previous
 * sample plus the gauges at sampling time, so whoever aggregates them can sum counts over any
 * window instead of averaging ratios or diffing lifetime totals (the originals' bug). Hit rate is
 * hits / gets and undefined (null) when there were no gets.
 */

export interface Counters {
  gets: number;
  hits: number;
  misses: number;
  puts: number;
  evictions: number;
  /** Entries received from another node during a hand-over. */
  imports: number;
}

export interface Gauges {
  items: number;
  bytes: number;
}

export interface Sample extends Counters, Gauges {
  /** Sampling time, ms since the epoch. */
  at: number;
  /** Length of the interval the deltas cover, in ms. */
  intervalMs: number;
}

const zero = (): Counters => ({ gets: 0, hits: 0, misses: 0, puts: 0, evictions: 0, imports: 0 });

/** A sample of an interval with nothing in it, with `fields` over it (tests, fillers). */
export function quietSample(at: number, fields: Partial<Sample> = {}): Sample {
  return { at, intervalMs: 5000, ...zero(), items: 0, bytes: 0, ...fields };
}

export function rate(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

export interface Stats {
  readonly totals: Readonly<Counters>;
  hit(): void;
  miss(): void;
  put(): void;
  evicted(): void;
  imported(count: number): void;
  /** Zero the counters (an operator's reset); the next sample's deltas restart from zero. */
  reset(): void;
  /** Deltas since the previous sample (or creation), with the given gauges. */
  sample(gauges: Gauges): Sample;
}

export function createStats(clock: { now(): number } = Date): Stats {
  let totals = zero();
  let last = zero();
  let lastAt = clock.now();
  return {
    get totals() {
      return totals;
    },
    hit() {
      totals.gets++;
      totals.hits++;
    },
    miss() {
      totals.gets++;
      totals.misses++;
    },
    put() {
      totals.puts++;
    },
    evicted() {
      totals.evictions++;
    },
    imported(count) {
      totals.imports += count;
    },
    reset() {
      totals = zero();
      last = zero();
    },
    sample(gauges) {
      const at = clock.now();
      const deltas = zero();
      for (const name of Object.keys(deltas) as (keyof Counters)[]) {
        deltas[name] = totals[name] - last[name];
      }
      const sample = { ...deltas, ...gauges, at, intervalMs: at - lastAt };
      last = { ...totals };
      lastAt = at;
      return sample;
    },
  };
}
