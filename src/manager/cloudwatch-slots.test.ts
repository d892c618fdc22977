import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quietSample, type Sample } from '../core/stats.ts';
import { createSlots } from './cloudwatch-slots.ts';

const T = 1_700_000_000_000; // a multiple of 5 s
const sample = (fields: Partial<Sample>): Sample => quietSample(T, fields);

describe('pool slots', () => {
  const slots = (graceMs = 10_000) => createSlots({ slotMs: 5000, graceMs });

  it('close once every pool member reported, with counts summed and last gauges per node', () => {
    const s = slots();
    const members = ['a', 'b'];
    const first = s.add(
      'a',
      sample({ at: T + 100, gets: 4, hits: 1, misses: 3, items: 5 }),
      members,
      0,
    );
    assert.deepEqual(first, { late: false, closed: [] });
    const last = s.add(
      'b',
      sample({ at: T + 4000, gets: 6, hits: 6, puts: 2, items: 7, bytes: 9 }),
      members,
      1,
    );
    assert.deepEqual(last.closed, [
      { start: T, nodes: 2, gets: 10, hits: 7, misses: 3, puts: 2, items: 12, bytes: 9 },
    ]);
    assert.equal(s.open, 0);
  });

  it('wait for a node sampling faster than the slot until its last sample of it', () => {
    const s = slots();
    const fast = (at: number, items: number) =>
      s.add('a', sample({ at, intervalMs: 1000, gets: 1, hits: 1, items }), ['a'], 0);
    assert.deepEqual(fast(T + 500, 1).closed, []);
    assert.deepEqual(fast(T + 2500, 2).closed, []);
    const closed = fast(T + 4200, 3).closed;
    assert.equal(closed.length, 1);
    assert.deepEqual([closed[0]?.gets, closed[0]?.items], [3, 3]);
  });

  it('close after the grace from the first arrival when a member never reports', () => {
    const s = slots(10_000);
    s.add('a', sample({ at: T + 10, gets: 1, hits: 1 }), ['a', 'gone'], 50_000);
    assert.deepEqual(s.due(59_999), []);
    const due = s.due(60_000);
    assert.deepEqual(
      due.map((d) => [d.start, d.nodes, d.gets]),
      [[T, 1, 1]],
    );
  });

  it('call a sample of a closed slot late and leave the closed sums alone', () => {
    const s = slots();
    s.add('a', sample({ at: T, gets: 1 }), ['a'], 0);
    const late = s.add('a', sample({ at: T + 10, gets: 5 }), ['a'], 1);
    assert.deepEqual(late, { late: true, closed: [] });
    assert.equal(s.open, 0);
  });

  it('forget the oldest closed slots past their memory, and call older samples late', () => {
    const s = createSlots({ slotMs: 5000, graceMs: 1, memory: 2 });
    for (let i = 0; i < 3; i++) s.add('a', sample({ at: T + i * 5000 }), ['a'], 0);
    assert.equal(s.add('a', sample({ at: T - 5000 }), ['a'], 0).late, true);
    assert.equal(s.add('a', sample({ at: T + 15_000 }), ['a'], 0).late, false);
  });

  it('close everything on request, oldest first', () => {
    const s = slots();
    s.add('a', sample({ at: T + 5000 }), ['a', 'b'], 0);
    s.add('a', sample({ at: T }), ['a', 'b'], 0);
    assert.deepEqual(
      s.closeAll().map((d) => d.start),
      [T, T + 5000],
    );
  });
});
