import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createStats, rate } from './stats.ts';

const fakeClock = (start = 1_000) => {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
};

it('a sample holds the deltas since the previous sample plus the gauges', () => {
  const clock = fakeClock();
  const stats = createStats(clock);
  stats.hit();
  stats.miss();
  stats.put();
  clock.advance(5000);
  assert.deepEqual(stats.sample({ items: 3, bytes: 300 }), {
    gets: 2,
    hits: 1,
    misses: 1,
    puts: 1,
    evictions: 0,
    imports: 0,
    items: 3,
    bytes: 300,
    at: 6000,
    intervalMs: 5000,
  });
  stats.miss();
  stats.evicted();
  stats.imported(4);
  clock.advance(5000);
  const second = stats.sample({ items: 1, bytes: 100 });
  assert.equal(second.gets, 1);
  assert.equal(second.hits, 0);
  assert.equal(second.misses, 1);
  assert.equal(second.evictions, 1);
  assert.equal(second.imports, 4);
  assert.equal(stats.totals.gets, 3, 'totals keep counting across samples');
});

it('a reset zeroes totals and the next deltas', () => {
  const stats = createStats(fakeClock());
  stats.hit();
  stats.hit();
  stats.sample({ items: 0, bytes: 0 });
  stats.hit();
  stats.reset();
  assert.equal(stats.totals.gets, 0);
  stats.miss();
  const s = stats.sample({ items: 0, bytes: 0 });
  assert.equal(s.gets, 1);
  assert.equal(s.hits, 0);
});

it('a rate with no requests is undefined, not zero', () => {
  assert.equal(rate(0, 0), null);
  assert.equal(rate(1, 4), 0.25);
});
