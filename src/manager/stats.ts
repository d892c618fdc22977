/**
 * The dashboard's six pool-wide series: for the last 30 minutes at 1-minute granularity, nodes,
 * miss rate, hit rate, items, total size and requests per minute.
 *
 * Rates come from counts summed over the pool in each minute, never from averaged ratios or
 * lifetime counters (the originals did one or both), and a minute without gets has no rate (null: a
 * gap in the chart, not the 0 the originals showed and shrank the pool on).
 */
import type { StatBucket } from '../storage/pool-store.ts';

export const MINUTE = 60_000;

export interface Series {
  minutes: string[];
  number_of_nodes: number[];
  miss_rate: (number | null)[];
  hit_rate: (number | null)[];
  number_of_items_in_cache: number[];
  total_size_of_items_in_cache: number[];
  number_of_requests_served_per_minute: number[];
}

const percent = (part: number, whole: number) =>
  whole > 0 ? Math.round((part / whole) * 10_000) / 100 : null;

export function toSeries(buckets: StatBucket[]): Series {
  return {
    minutes: buckets.map((b) => b.start.toISOString()),
    // The pool's size, from the map in force: nodes that were slow to report still count.
    number_of_nodes: buckets.map((b) => b.poolSize),
    miss_rate: buckets.map((b) => percent(b.misses, b.gets)),
    hit_rate: buckets.map((b) => percent(b.hits, b.gets)),
    number_of_items_in_cache: buckets.map((b) => b.items),
    total_size_of_items_in_cache: buckets.map((b) => Math.round((b.bytes / 1048576) * 100) / 100),
    number_of_requests_served_per_minute: buckets.map((b) => b.gets + b.puts),
  };
}

/** The window [from, to) of the last `minutes` whole minutes, the current one included. */
export function lastMinutes(now: number, minutes = 30): { from: Date; to: Date } {
  const to = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  return { from: new Date(to - minutes * MINUTE), to: new Date(to) };
}
