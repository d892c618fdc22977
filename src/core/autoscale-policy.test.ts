import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decide,
  growTarget,
  type Outcome,
  type PolicyInput,
  shrinkTarget,
} from './autoscale-policy.ts';

const NOW = 1_700_000_000_000;
const WINDOW = 60_000;

/** An automatic-mode pool of `size` nodes, idle resizer, no recent resize, thresholds 0.6/0.4. */
const input = (over: Partial<PolicyInput> = {}): PolicyInput => ({
  mode: 'automatic',
  params: { maxMissRate: 0.6, minMissRate: 0.4, expandRatio: 2, shrinkRatio: 0.5 },
  size: 2,
  minSize: 1,
  maxSize: 8,
  resizing: false,
  queued: 0,
  lastResizeAt: 0,
  now: NOW,
  windowMs: WINDOW,
  gets: 100,
  misses: 50,
  ...over,
});
const params = (over: Partial<PolicyInput['params']>) => ({ ...input().params, ...over });

const table: { name: string; input: PolicyInput; outcome: Outcome; target: number }[] = [
  // Thresholds, strict.
  { name: 'a miss rate above max grows', input: input({ misses: 61 }), outcome: 'grow', target: 4 },
  {
    name: 'a miss rate equal to max holds',
    input: input({ misses: 60 }),
    outcome: 'hold',
    target: 2,
  },
  {
    name: 'a miss rate below min shrinks',
    input: input({ misses: 39 }),
    outcome: 'shrink',
    target: 1,
  },
  {
    name: 'a miss rate equal to min holds',
    input: input({ misses: 40 }),
    outcome: 'hold',
    target: 2,
  },
  { name: 'a miss rate between min and max holds', input: input(), outcome: 'hold', target: 2 },
  // Ratios with guaranteed progress.
  {
    name: 'expand 1.2 at n=1 still grows by one (round(1.2) = 1 never grew)',
    input: input({ size: 1, misses: 90, params: params({ expandRatio: 1.2 }) }),
    outcome: 'grow',
    target: 2,
  },
  {
    name: 'expand 1.5 at n=3 grows to ceil(4.5) = 5',
    input: input({ size: 3, misses: 90, params: params({ expandRatio: 1.5 }) }),
    outcome: 'grow',
    target: 5,
  },
  {
    name: 'shrink 0.9 at n=4 still shrinks by one (floor(3.6) = 3)',
    input: input({ size: 4, misses: 0, params: params({ shrinkRatio: 0.9 }) }),
    outcome: 'shrink',
    target: 3,
  },
  {
    name: 'expand 1 (refused by the manager, yet) still grows by one: the n+1 floor',
    input: input({ size: 3, misses: 90, params: params({ expandRatio: 1 }) }),
    outcome: 'grow',
    target: 4,
  },
  {
    name: 'shrink 1 (refused by the manager, yet) still shrinks by one: the n−1 ceiling',
    input: input({ size: 3, misses: 0, params: params({ shrinkRatio: 1 }) }),
    outcome: 'shrink',
    target: 2,
  },
  {
    name: 'shrink 0.5 at n=8 halves the pool',
    input: input({ size: 8, misses: 10 }),
    outcome: 'shrink',
    target: 4,
  },
  // Bounds.
  {
    name: 'a grow past 8 is clamped to 8',
    input: input({ size: 5, misses: 100, params: params({ expandRatio: 3 }) }),
    outcome: 'grow',
    target: 8,
  },
  {
    name: 'a full pool with a high miss rate reports at-max and stays',
    input: input({ size: 8, misses: 100 }),
    outcome: 'at-max',
    target: 8,
  },
  {
    name: 'shrink 0.5 at n=1 (the originals’ 0, clipped) reports at-min and stays',
    input: input({ size: 1, misses: 0 }),
    outcome: 'at-min',
    target: 1,
  },
  {
    name: 'a shrink below 1 is clamped to 1',
    input: input({ size: 3, misses: 0, params: params({ shrinkRatio: 0.1 }) }),
    outcome: 'shrink',
    target: 1,
  },
  // No gets: no action, whatever min says (the originals shrank idle pools).
  {
    name: 'no gets leaves a pool alone even with min > 0',
    input: input({ size: 4, gets: 0, misses: 0 }),
    outcome: 'no-gets',
    target: 4,
  },
  // Cooldown and one change at a time.
  {
    name: 'a running resize blocks any decision',
    input: input({ resizing: true, misses: 100 }),
    outcome: 'resizing',
    target: 2,
  },
  {
    name: 'a queued resize blocks any decision',
    input: input({ queued: 1, misses: 0 }),
    outcome: 'resizing',
    target: 2,
  },
  {
    name: 'less than one window after the last resize ended: cooldown',
    input: input({ lastResizeAt: NOW - WINDOW + 1, misses: 100 }),
    outcome: 'cooldown',
    target: 2,
  },
  {
    name: 'exactly one window after the last resize ended: decides again',
    input: input({ lastResizeAt: NOW - WINDOW, misses: 100 }),
    outcome: 'grow',
    target: 4,
  },
  {
    name: 'a resize before the manager started (lastResizeAt 0) is no cooldown',
    input: input({ lastResizeAt: 0, misses: 100 }),
    outcome: 'grow',
    target: 4,
  },
  {
    name: 'cooldown wins over an idle window',
    input: input({ lastResizeAt: NOW - 1000, gets: 0, misses: 0 }),
    outcome: 'cooldown',
    target: 2,
  },
  // Manual mode.
  {
    name: 'manual mode never acts',
    input: input({ mode: 'manual', misses: 100 }),
    outcome: 'manual',
    target: 2,
  },
  {
    name: 'manual mode wins over a running resize',
    input: input({ mode: 'manual', resizing: true }),
    outcome: 'manual',
    target: 2,
  },
];

describe('decide', () => {
  for (const row of table) {
    it(row.name, () => {
      const decision = decide(row.input);
      assert.equal(decision.outcome, row.outcome, decision.reason);
      assert.equal(decision.target, row.target, decision.reason);
      assert.equal(decision.current, row.input.size);
      assert.ok(decision.reason.length > 10);
    });
  }

  it('the miss rate is Σmisses / Σgets of the window, reported with the decision', () => {
    assert.equal(decide(input({ gets: 200, misses: 150 })).missRate, 0.75);
    assert.equal(decide(input({ gets: 0, misses: 0 })).missRate, null);
  });

  it('only the window counts: the same lifetime history with a quiet window does nothing', () => {
    // The originals read lifetime counters: a pool that missed a lot an hour ago kept growing.
    // Here the caller hands in window sums; a quiet window is no-gets, however busy the past.
    const quiet = decide(input({ size: 3, gets: 0, misses: 0 }));
    assert.equal(quiet.outcome, 'no-gets');
    const hot = decide(input({ size: 3, gets: 1000, misses: 10 }));
    assert.equal(hot.outcome, 'shrink');
  });

  it('the reason names the numbers a person needs', () => {
    const { reason } = decide(input({ size: 2, gets: 200, misses: 150 }));
    assert.equal(reason, 'Miss rate 75 % over the last 60 s (200 gets) is above 60 %: grow 2 → 4.');
    assert.match(decide(input({ lastResizeAt: NOW - 12_000 })).reason, /ended 12 s ago/);
  });
});

describe('targets', () => {
  it('every ratio makes progress from every size, within 1..8', () => {
    for (let n = 1; n <= 8; n++) {
      for (const expand of [1.01, 1.1, 1.2, 1.5, 2, 3, 10]) {
        const t = growTarget(n, expand, 1, 8);
        assert.ok(n === 8 ? t === 8 : t > n && t <= 8, `grow ${n} × ${expand} → ${t}`);
      }
      for (const shrink of [0.01, 0.1, 0.5, 0.9, 0.99]) {
        const t = shrinkTarget(n, shrink, 1, 8);
        assert.ok(n === 1 ? t === 1 : t < n && t >= 1, `shrink ${n} × ${shrink} → ${t}`);
      }
    }
  });
});
