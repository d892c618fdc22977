import assert from 'node:assert/strict';
import { it } from 'node:test';
import { lastMinutes, toSeries } from './stats.ts';

const bucket = (minute: number, fields: Partial<Record<string, number>>) => ({
  start: new Date(minute * 60_000),
  nodes: 0,
  poolSize: 0,
  gets: 0,
  hits: 0,
  misses: 0,
  puts: 0,
  evictions: 0,
  items: 0,
  bytes: 0,
  ...fields,
});

it('rates come from summed counts, and a minute without gets is a gap, not zero', () => {
  const series = toSeries([
    bucket(0, {
      nodes: 2,
      poolSize: 2,
      gets: 4,
      hits: 1,
      misses: 3,
      puts: 1,
      items: 5,
      bytes: 3 * 1048576,
    }),
    bucket(1, { nodes: 1, poolSize: 2, puts: 2, items: 7, bytes: 1048576 / 2 }),
  ]);
  assert.deepEqual(series.miss_rate, [75, null]);
  assert.deepEqual(series.hit_rate, [25, null]);
  assert.deepEqual(series.number_of_requests_served_per_minute, [5, 2]);
  assert.deepEqual(series.total_size_of_items_in_cache, [3, 0.5]);
  assert.deepEqual(series.number_of_nodes, [2, 2]);
  assert.deepEqual(series.minutes, ['1970-01-01T00:00:00.000Z', '1970-01-01T00:01:00.000Z']);
});

it('the last 30 minutes end after the current minute', () => {
  const { from, to } = lastMinutes(Date.UTC(2026, 0, 1, 12, 30, 15));
  assert.equal(to.toISOString(), '2026-01-01T12:31:00.000Z');
  assert.equal(from.toISOString(), '2026-01-01T12:01:00.000Z');
});
