/**
 * The manager's side of the autoscaler: what its loop reads every tick, and where it sends what it
 * decided. Operator (admin-token) endpoints like the rest of the manager API:
 *
 *   GET  /api/manager/autoscaler/state?window_s=60   mode, parameters, pool, window totals
 *   POST /api/manager/autoscaler/decisions           {state, outcome, target_size}: record, apply
 *   GET  /api/manager/autoscaler/decisions?limit=20  the recorded decisions, newest first
 *
 * Why the loop reads everything from here each tick: mode and parameters live in the database,
 * so a change made on the dashboard takes effect on the next tick, with no restart (the originals
 * kept them in the scaler's memory). The window is summed from the nodes' interval samples over
 * [now − window, now), never lifetime counters (the originals' "last minute" miss rate was one
 * since the last reset).
 *
 * A posted decision is re-derived from the state it came with (core policy), so the log can never
 * show a decision its numbers do not support; a grow or shrink is applied only if the pool is still
 * what the loop saw (same size, nothing running or queued, same last resize, automatic mode), else
 * 409 and the next tick decides again. Resizes are queued one node at a time through the pool's
 * queue. No-action decisions are recorded only when they differ from the last one recorded, so a
 * quiet pool logs "hold" once rather than every minute.
 */
import type { FastifyInstance } from 'fastify';
import { decide, OUTCOMES, type Outcome } from '../core/autoscale-policy.ts';
import {
  type AutoscaleState,
  parseAutoscaleState,
  parseWindowSeconds,
  toPolicyInput,
} from '../core/autoscale-state.ts';
import { badRequest, conflict } from '../core/errors.ts';
import { MAX_NODES, MIN_NODES } from '../core/pool-map.ts';
import type { PoolStore } from '../storage/pool-store.ts';
import type { Pool } from './pool/pool.ts';
import { type AutoscalerParams, DEFAULT_AUTOSCALER } from './settings.ts';

export interface AutoscalerRouteDeps {
  pool: Pool;
  store: PoolStore;
  /** The pool's clock: its lastResizeAt is measured on it. */
  clock?: { now(): number };
}

const admin = { config: { admin: true } };
const ok = (content: unknown) => ({ success: 'true', content });
const DEFAULT_WINDOW_S = 60;

type Fields = Record<string, unknown>;

function body(value: unknown): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('Send a JSON object: {"state": …, "outcome": …, "target_size": …}.');
  }
  return value as Fields;
}

/** What the decision event keeps: every input and the outcome, flat, for people and charts. */
function details(state: AutoscaleState, outcome: Outcome, target: number, missRate: number | null) {
  return {
    at: new Date(state.now_ms).toISOString(),
    window_s: state.window.seconds,
    gets: state.window.gets,
    misses: state.window.misses,
    miss_rate: missRate,
    ...state.parameters,
    current_size: state.pool.size,
    target_size: target,
    outcome,
    resizing: state.pool.resizing,
    queued: state.pool.queued,
    last_resize_at: state.pool.last_resize_at_ms
      ? new Date(state.pool.last_resize_at_ms).toISOString()
      : null,
  };
}

export function autoscalerRoutes(app: FastifyInstance, deps: AutoscalerRouteDeps): void {
  const { pool, store } = deps;
  const clock = deps.clock ?? Date;
  // Decisions apply one at a time, so two autoscalers (or a retry) cannot both pass the checks
  // below and queue twice for the same reading.
  let applying: Promise<unknown> = Promise.resolve();

  async function readState(windowS: number): Promise<AutoscaleState> {
    const [mode, params] = await Promise.all([
      pool.mode(),
      store.getSetting<AutoscalerParams>('autoscaler'),
    ]);
    const now = clock.now();
    const from = now - Math.round(windowS * 1000);
    const totals = await store.windowTotals({ from: new Date(from), to: new Date(now) });
    return {
      now_ms: now,
      mode,
      parameters: { ...DEFAULT_AUTOSCALER, ...params },
      pool: {
        size: pool.size,
        min_size: MIN_NODES,
        max_size: MAX_NODES,
        resizing: pool.resizing,
        queued: pool.queued,
        last_resize_at_ms: pool.lastResizeAt,
      },
      window: { seconds: windowS, from_ms: from, to_ms: now, ...totals },
    };
  }

  /** Why the pool is no longer what `state` saw, or undefined when it still is. */
  async function staleness(state: AutoscaleState): Promise<string | undefined> {
    if ((await pool.mode()) !== 'automatic') return 'the pool is in manual mode now';
    if (pool.resizing || pool.queued > 0) return 'a resize is running or queued now';
    if (pool.size !== state.pool.size) return `the pool has ${pool.size} node(s) now`;
    if (pool.lastResizeAt !== state.pool.last_resize_at_ms) return 'the pool was resized since';
    return undefined;
  }

  async function lastRecorded(): Promise<Fields | undefined> {
    const [last] = await store.listEvents({ limit: 1, kinds: ['decision'] });
    const d = last?.details;
    return typeof d === 'object' && d !== null ? (d as Fields) : undefined;
  }

  async function apply(f: Fields) {
    const outcome = f.outcome;
    if (typeof outcome !== 'string' || !(OUTCOMES as readonly string[]).includes(outcome)) {
      throw badRequest(
        `outcome must be one of ${OUTCOMES.join(', ')}; got ${JSON.stringify(outcome)}.`,
      );
    }
    const state = parseAutoscaleState(f.state);
    const decision = decide(toPolicyInput(state));
    if (decision.outcome !== outcome || decision.target !== f.target_size) {
      throw badRequest(
        `The decision does not follow from its state: that state gives ${decision.outcome} to ${decision.target} node(s), not ${outcome} to ${JSON.stringify(f.target_size)}. (${decision.reason})`,
      );
    }
    const resizes = outcome === 'grow' || outcome === 'shrink';
    if (resizes) {
      const stale = await staleness(state);
      if (stale) {
        throw conflict(
          `Not applied: the pool changed since the autoscaler read it (${stale}); the next tick decides again.`,
        );
      }
    } else {
      const last = await lastRecorded();
      if (last?.outcome === outcome && last.current_size === decision.current) {
        return { ...summary(decision), recorded: false, queued_steps: 0 };
      }
    }
    const steps = Math.abs(decision.target - decision.current);
    await store.addEvent({
      kind: 'decision',
      message: `Autoscaler: ${decision.reason}`,
      details: details(state, decision.outcome, decision.target, decision.missRate),
    });
    let queued = 0;
    if (resizes) {
      // Called without awaiting in between: each call checks the bounds against the queue and
      // takes its place synchronously, so the steps go in back to back.
      const change = outcome === 'grow' ? 1 : -1;
      const results = await Promise.allSettled(
        Array.from({ length: steps }, () => pool.resize(change, 'automatic')),
      );
      for (const r of results) {
        if (r.status === 'fulfilled') {
          queued++;
          // The pool logs a failed resize as an event itself.
          r.value.done.catch(() => {});
        } else {
          app.log.warn({ err: r.reason }, 'an autoscaler resize step was refused');
        }
      }
    }
    return { ...summary(decision), recorded: true, queued_steps: queued };
  }

  const summary = (d: ReturnType<typeof decide>) => ({
    outcome: d.outcome,
    current_size: d.current,
    target_size: d.target,
    miss_rate: d.missRate,
    reason: d.reason,
  });

  app.get('/api/manager/autoscaler/state', admin, async (request) => {
    const q = request.query as Fields;
    return ok(await readState(parseWindowSeconds(q.window_s ?? DEFAULT_WINDOW_S)));
  });

  app.post('/api/manager/autoscaler/decisions', admin, async (request) => {
    const f = body(request.body);
    const result = applying.then(() => apply(f));
    applying = result.catch(() => {});
    return ok(await result);
  });

  app.get('/api/manager/autoscaler/decisions', admin, async (request) => {
    const limit = Number((request.query as Fields).limit ?? 20);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw badRequest('limit must be a whole number from 1 to 1000.');
    }
    const events = await store.listEvents({ limit, kinds: ['decision'] });
    return ok(
      events.map((e) => ({
        id: e.id,
        recorded_at: e.at.toISOString(),
        message: e.message,
        ...(e.details as Fields),
      })),
    );
  });
}
