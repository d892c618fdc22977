/**
 * The autoscaler's policy: one pure function from what the manager reports to what the pool should
 * do. No I/O and no clock of its own, so every rule is a row in a table test, and the manager can
 * re-derive a reported decision from its inputs.
 *
 * Rules, in order (the first that applies wins):
 *   1. manual mode                          → `manual`   (the operator sizes the pool)
 *   2. a resize runs or is queued           → `resizing` (one change at a time)
 *   3. the last resize ended < 1 window ago → `cooldown` (the window must show the new pool only)
 *   4. no gets in the window                → `no-gets`  (an idle pool is not a well-served one)
 *   5. miss rate > max (strict)             → `grow` to clamp(max(n+1, ceil(n·expand)))
 *   6. miss rate < min (strict)             → `shrink` to clamp(min(n−1, floor(n·shrink)))
 *   7. otherwise                            → `hold`
 * A grow or shrink whose clamped target is n is reported as `at-max` / `at-min`.
 *
 * Why these, against the originals: the miss rate is Σmisses/Σgets over the window's interval
 * deltas, never lifetime counters; no gets means no action, never a miss rate of 0 (which shrank
 * idle pools); the n±1 floor guarantees progress where round() or int() stalled (round(1 × 1.2) = 1
 * never grows). Limits: the window's counts are trusted as given; the bounds come from the caller
 * (the manager's 1..8).
 */

export type AutoscaleMode = 'manual' | 'automatic';

export interface AutoscaleParams {
  /** Grow when the miss rate is above this fraction (0..1). */
  maxMissRate: number;
  /** Shrink when the miss rate is below this fraction (0..1). */
  minMissRate: number;
  /** > 1: the factor a grow multiplies the pool by (at least one node more). */
  expandRatio: number;
  /** In (0, 1): the factor a shrink multiplies the pool by (at least one node fewer). */
  shrinkRatio: number;
}

export interface PolicyInput {
  mode: AutoscaleMode;
  params: AutoscaleParams;
  /** Nodes in the pool now. */
  size: number;
  minSize: number;
  maxSize: number;
  /** A resize job is running. */
  resizing: boolean;
  /** Resize jobs waiting behind the running one. */
  queued: number;
  /** When the last resize ended, ms since the epoch; 0 when none has. */
  lastResizeAt: number;
  /** The clock the window and lastResizeAt were read with, ms since the epoch. */
  now: number;
  windowMs: number;
  /** Sums over the window [now − windowMs, now), across the pool. */
  gets: number;
  misses: number;
}

export const OUTCOMES = [
  'grow',
  'shrink',
  'hold',
  'at-max',
  'at-min',
  'no-gets',
  'cooldown',
  'resizing',
  'manual',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

export interface Decision {
  outcome: Outcome;
  /** Pool size the decision started from. */
  current: number;
  /** Pool size it asks for; equal to `current` unless the outcome is grow or shrink. */
  target: number;
  /** Σmisses / Σgets over the window; null with no gets (or when not looked at). */
  missRate: number | null;
  /** One sentence for a person reading the log. */
  reason: string;
}

const clamp = (n: number, min: number, max: number) => Math.min(max, Math.max(min, n));

export function growTarget(n: number, expand: number, min: number, max: number): number {
  return clamp(Math.max(n + 1, Math.ceil(n * expand)), min, max);
}

export function shrinkTarget(n: number, shrink: number, min: number, max: number): number {
  return clamp(Math.min(n - 1, Math.floor(n * shrink)), min, max);
}

const percent = (f: number) => `${(Math.round(f * 1000) / 10).toString()} %`;
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
const nodes = (n: number) => `${n} node${n === 1 ? '' : 's'}`;

export function decide(input: PolicyInput): Decision {
  const { params, size: n, minSize, maxSize } = input;
  const none = (outcome: Outcome, reason: string, missRate: number | null = null): Decision => ({
    outcome,
    current: n,
    target: n,
    missRate,
    reason,
  });
  if (input.mode === 'manual') return none('manual', 'Manual mode: the pool is sized by hand.');
  if (input.resizing || input.queued > 0) {
    return none('resizing', `A resize is running or queued: keep ${nodes(n)} until it ends.`);
  }
  const sinceResize = input.now - input.lastResizeAt;
  if (input.lastResizeAt > 0 && sinceResize < input.windowMs) {
    return none(
      'cooldown',
      `Cooling down: the last resize ended ${seconds(Math.max(0, sinceResize))} ago; the next decision waits for one full ${seconds(input.windowMs)} window after it.`,
    );
  }
  const over = `over the last ${seconds(input.windowMs)}`;
  if (input.gets <= 0) {
    return none('no-gets', `No gets ${over}: keep ${nodes(n)} (an idle pool is left alone).`);
  }
  const missRate = input.misses / input.gets;
  const observed = `Miss rate ${percent(missRate)} ${over} (${input.gets} gets)`;
  if (missRate > params.maxMissRate) {
    const target = growTarget(n, params.expandRatio, minSize, maxSize);
    const above = `${observed} is above ${percent(params.maxMissRate)}`;
    if (target <= n) {
      return none('at-max', `${above}, but the pool is at its maximum of ${nodes(n)}.`, missRate);
    }
    return {
      outcome: 'grow',
      current: n,
      target,
      missRate,
      reason: `${above}: grow ${n} → ${target}.`,
    };
  }
  if (missRate < params.minMissRate) {
    const target = shrinkTarget(n, params.shrinkRatio, minSize, maxSize);
    const below = `${observed} is below ${percent(params.minMissRate)}`;
    if (target >= n) {
      return none('at-min', `${below}, but the pool is at its minimum of ${nodes(n)}.`, missRate);
    }
    return {
      outcome: 'shrink',
      current: n,
      target,
      missRate,
      reason: `${below}: shrink ${n} → ${target}.`,
    };
  }
  return none(
    'hold',
    `${observed} is within ${percent(params.minMissRate)}–${percent(params.maxMissRate)}: keep ${nodes(n)}.`,
    missRate,
  );
}
