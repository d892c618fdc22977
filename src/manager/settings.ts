/**
 * The manager's settings, validated: the cache config every node shares, the resizing mode, and the
 * autoscaler's parameters. Stored in the database so that a restart of any service loses nothing;
 * defaults here.
 */

import type { CacheConfig } from '../core/cache-config.ts';
import { badRequest } from '../core/errors.ts';

export type Mode = 'manual' | 'automatic';

export interface AutoscalerParams {
  max_miss_rate_threshold: number;
  min_miss_rate_threshold: number;
  expand_ratio: number;
  shrink_ratio: number;
}

export const DEFAULT_CACHE_CONFIG: CacheConfig = { capacity: 100, replacement_policy: 'LRU' };
// The originals' auto-scaler defaults.
export const DEFAULT_AUTOSCALER: AutoscalerParams = {
  max_miss_rate_threshold: 0.6,
  min_miss_rate_threshold: 0.4,
  expand_ratio: 1.5,
  shrink_ratio: 0.5,
};

const number = (value: unknown, name: string): number => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) {
    throw badRequest(`${name} must be a number; got ${JSON.stringify(value)}.`);
  }
  return n;
};

/**
 * A miss-rate threshold as a fraction; values above 1 are read as percents (the originals took one
 * or the other, depending on the group).
 */
export function fraction(value: unknown, name: string): number {
  const n = number(value, name);
  const f = n > 1 ? n / 100 : n;
  if (f < 0 || f > 1) throw badRequest(`${name} must be between 0 and 1 (or 0 and 100 %).`);
  return f;
}

export function parseAutoscalerParams(body: Record<string, unknown>, current = DEFAULT_AUTOSCALER) {
  const pick = (name: keyof AutoscalerParams) => body[name] ?? current[name];
  const params: AutoscalerParams = {
    max_miss_rate_threshold: fraction(pick('max_miss_rate_threshold'), 'max_miss_rate_threshold'),
    min_miss_rate_threshold: fraction(pick('min_miss_rate_threshold'), 'min_miss_rate_threshold'),
    expand_ratio: number(pick('expand_ratio'), 'expand_ratio'),
    shrink_ratio: number(pick('shrink_ratio'), 'shrink_ratio'),
  };
  if (params.min_miss_rate_threshold >= params.max_miss_rate_threshold) {
    throw badRequest('min_miss_rate_threshold must be below max_miss_rate_threshold.');
  }
  if (params.expand_ratio <= 1)
    throw badRequest('expand_ratio must be more than 1 (e.g. 2 doubles the pool).');
  if (params.shrink_ratio <= 0 || params.shrink_ratio >= 1) {
    throw badRequest('shrink_ratio must be between 0 and 1 (e.g. 0.5 halves the pool).');
  }
  return params;
}

export function parseMode(value: unknown): Mode {
  const mode = typeof value === 'string' ? value.trim().toLowerCase() : '';
  if (mode === 'manual') return 'manual';
  if (mode === 'automatic' || mode === 'auto') return 'automatic';
  throw badRequest(`mode must be manual or automatic; got ${JSON.stringify(value)}.`);
}
