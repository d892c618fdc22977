/**
 * The autoscaler's view of the pool as JSON: what the manager answers at
 * `GET /api/manager/autoscaler/state`, and what the autoscaler echoes back with its decision at
 * `POST /api/manager/autoscaler/decisions`. One parser for both ends, so the manager refuses a
 * malformed decision with the same words the autoscaler would use about a malformed state.
 *
 * Limits: structure and ranges only; whether the numbers are true is the manager's to know.
 */
import type { PolicyInput } from './autoscale-policy.ts';
import { badRequest } from './errors.ts';

export interface AutoscaleState {
  /** The manager's clock when it read the pool, ms since the epoch. */
  now_ms: number;
  mode: 'manual' | 'automatic';
  parameters: {
    max_miss_rate_threshold: number;
    min_miss_rate_threshold: number;
    expand_ratio: number;
    shrink_ratio: number;
  };
  pool: {
    size: number;
    min_size: number;
    max_size: number;
    resizing: boolean;
    queued: number;
    /** When the last resize ended, ms since the epoch; 0 when none has since the manager started. */
    last_resize_at_ms: number;
  };
  window: {
    seconds: number;
    from_ms: number;
    to_ms: number;
    gets: number;
    hits: number;
    misses: number;
    samples: number;
    nodes: number;
  };
}

/** Windows the manager sums over: 1 s (tests) to an hour. */
export const MAX_WINDOW_S = 3600;

type Fields = Record<string, unknown>;

function object(value: unknown, name: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest(`${name} must be an object.`);
  }
  return value as Fields;
}

function count(o: Fields, key: string, at: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw badRequest(`${at}.${key} must be a whole number ≥ 0; got ${JSON.stringify(v)}.`);
  }
  return v;
}

function real(o: Fields, key: string, at: string, check: (n: number) => boolean, rule: string) {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) {
    throw badRequest(`${at}.${key} must be ${rule}; got ${JSON.stringify(v)}.`);
  }
  return v;
}

/** A window length in seconds, from a query string or JSON. */
export function parseWindowSeconds(value: unknown): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > MAX_WINDOW_S) {
    throw badRequest(
      `window_s must be a number of seconds above 0 and at most ${MAX_WINDOW_S}; got ${JSON.stringify(value)}.`,
    );
  }
  return n;
}

export function parseAutoscaleState(value: unknown): AutoscaleState {
  const s = object(value, 'state');
  const p = object(s.parameters, 'state.parameters');
  const pool = object(s.pool, 'state.pool');
  const w = object(s.window, 'state.window');
  if (s.mode !== 'manual' && s.mode !== 'automatic') {
    throw badRequest(`state.mode must be manual or automatic; got ${JSON.stringify(s.mode)}.`);
  }
  if (typeof pool.resizing !== 'boolean') {
    throw badRequest('state.pool.resizing must be true or false.');
  }
  const fraction = (n: number) => n >= 0 && n <= 1;
  const state: AutoscaleState = {
    now_ms: count(s, 'now_ms', 'state'),
    mode: s.mode,
    parameters: {
      max_miss_rate_threshold: real(
        p,
        'max_miss_rate_threshold',
        'state.parameters',
        fraction,
        'a fraction from 0 to 1',
      ),
      min_miss_rate_threshold: real(
        p,
        'min_miss_rate_threshold',
        'state.parameters',
        fraction,
        'a fraction from 0 to 1',
      ),
      expand_ratio: real(p, 'expand_ratio', 'state.parameters', (n) => n > 1, 'more than 1'),
      shrink_ratio: real(
        p,
        'shrink_ratio',
        'state.parameters',
        (n) => n > 0 && n < 1,
        'between 0 and 1',
      ),
    },
    pool: {
      size: count(pool, 'size', 'state.pool'),
      min_size: count(pool, 'min_size', 'state.pool'),
      max_size: count(pool, 'max_size', 'state.pool'),
      resizing: pool.resizing,
      queued: count(pool, 'queued', 'state.pool'),
      last_resize_at_ms: count(pool, 'last_resize_at_ms', 'state.pool'),
    },
    window: {
      seconds: parseWindowSeconds(w.seconds),
      from_ms: count(w, 'from_ms', 'state.window'),
      to_ms: count(w, 'to_ms', 'state.window'),
      gets: count(w, 'gets', 'state.window'),
      hits: count(w, 'hits', 'state.window'),
      misses: count(w, 'misses', 'state.window'),
      samples: count(w, 'samples', 'state.window'),
      nodes: count(w, 'nodes', 'state.window'),
    },
  };
  if (state.parameters.min_miss_rate_threshold >= state.parameters.max_miss_rate_threshold) {
    throw badRequest(
      'state.parameters: min_miss_rate_threshold must be below max_miss_rate_threshold.',
    );
  }
  const { size, min_size, max_size } = state.pool;
  if (min_size < 1 || min_size > max_size || size < min_size || size > max_size) {
    throw badRequest(
      `state.pool: size ${size} must lie within min_size ${min_size} ≤ max_size ${max_size}, and min_size ≥ 1.`,
    );
  }
  if (state.window.misses > state.window.gets || state.window.hits > state.window.gets) {
    throw badRequest('state.window: hits and misses cannot exceed gets.');
  }
  return state;
}

export function toPolicyInput(state: AutoscaleState): PolicyInput {
  return {
    mode: state.mode,
    params: {
      maxMissRate: state.parameters.max_miss_rate_threshold,
      minMissRate: state.parameters.min_miss_rate_threshold,
      expandRatio: state.parameters.expand_ratio,
      shrinkRatio: state.parameters.shrink_ratio,
    },
    size: state.pool.size,
    minSize: state.pool.min_size,
    maxSize: state.pool.max_size,
    resizing: state.pool.resizing,
    queued: state.pool.queued,
    lastResizeAt: state.pool.last_resize_at_ms,
    now: state.now_ms,
    windowMs: Math.round(state.window.seconds * 1000),
    gets: state.window.gets,
    misses: state.window.misses,
  };
}
