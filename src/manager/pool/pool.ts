/**
 * The pool: which nodes serve, the versioned map of regions to nodes, and every change to them.
 * This module only puts the parts together and answers the routes; each part is its own module:
 *
 *   views.ts          the view in force, and how a new one is published
 *   view-leases.ts    until when each node may serve under the view it has
 *   resize-queue.ts   one change at a time; refusals and the time budget on shutdown
 *   resize.ts         a resize by one node, step by step
 *   hand-over.ts      the hand-over orders of a resize, and what they moved
 *   health-monitor.ts the loop that finds dead nodes a provider cannot see
 *   replacement.ts    what becomes of a dead node
 *   startup.ts        resuming the saved pool, or starting its first node
 *   node-lifecycle.ts a node's start, configuration and stop
 *   every-node.ts     commands to every node, and their live status
 *   journal.ts        the pool log, and failures logged and counted
 *
 * createPool does no I/O; start() resumes (or starts) the pool and its health monitor. Resizes
 * are checked against the size the queue will reach, so the bounds hold however many requests
 * arrive at once. State lives in the database (maps, nodes, settings, when the last resize
 * ended), so a restarted manager resumes the same pool and the same autoscaler cooldown.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { NodeAdmin } from '../../clients/node-admin.ts';
import type { CacheConfig } from '../../core/cache-config.ts';
import { type Clock, systemClock } from '../../core/clock.ts';
import { conflict, unavailable } from '../../core/errors.ts';
import { type Assignment, MAX_NODES, MIN_NODES, type NodeId } from '../../core/pool-map.ts';
import type { PoolView } from '../../core/pool-view.ts';
import type { PoolStore } from '../../storage/pool-store.ts';
import type { NodeProvider } from '../providers/provider.ts';
import { DEFAULT_CACHE_CONFIG, type Mode } from '../settings.ts';
import { everyNode } from './every-node.ts';
import { createHealthMonitor } from './health-monitor.ts';
import { createJournal, type Journal } from './journal.ts';
import { createPoolMetrics } from './metrics.ts';
import { createNodeLifecycle } from './node-lifecycle.ts';
import { createReplacement } from './replacement.ts';
import { resizeByOne } from './resize.ts';
import { createResizeQueue } from './resize-queue.ts';
import { newNodeId, startPool } from './startup.ts';
import { createViewLeases, DEFAULT_VIEW_LEASE_MS, type RenewAnswer } from './view-leases.ts';
import { createPoolViews } from './views.ts';

/** What the pool keeps in the database. */
export type PoolRegistry = Pick<
  PoolStore,
  | 'upsertNode'
  | 'setNodeState'
  | 'listNodes'
  | 'saveMap'
  | 'currentMap'
  | 'getSetting'
  | 'setSetting'
  | 'addEvent'
>;

export interface PoolDeps {
  store: PoolRegistry;
  provider: NodeProvider;
  admin: NodeAdmin;
  assignment: Assignment;
  log: FastifyBaseLogger;
  /** Pushes a new view to every registered frontend (notifier.ts). */
  publish: (view: PoolView) => Promise<void>;
  /** Where the pool's metrics go (the manager's /metrics). */
  registry?: Registry | undefined;
  /** Where events and failures go; default: a journal of its own on `store`, `log`, `registry`. */
  journal?: Journal;
  clock?: Clock;
  /** Between health checks of every node, ms (default 1000). */
  healthIntervalMs?: number | undefined;
  /** Failed health checks in a row that make a node dead (default 2). */
  healthFailures?: number | undefined;
  /** How long a new node has to answer /health, ms (default 20 s). */
  healthWaitMs?: number | undefined;
  newNodeId?: (() => NodeId) | undefined;
  /** How long a node may serve under its view without a renewal, ms (default 3000). */
  viewLeaseMs?: number | undefined;
}

/** The setting that keeps when the last resize ended (ms), for the autoscaler's cooldown. */
export const LAST_RESIZE_SETTING = 'last_resize_end_ms';
const HAND_OVER_TIMEOUT_MS = 120_000;

export function createPool(deps: PoolDeps) {
  const { store, provider, admin, log } = deps;
  const clock = deps.clock ?? systemClock;
  const journal = deps.journal ?? createJournal({ store, log, registry: deps.registry });
  // Leases count on a monotonic clock; a test's own clock stands in for it.
  const leases = createViewLeases({
    leaseMs: deps.viewLeaseMs ?? DEFAULT_VIEW_LEASE_MS,
    now: clock === systemClock ? () => performance.now() : clock.now,
    sleep: (ms) => clock.sleep(ms),
  });
  const views = createPoolViews({
    store,
    admin,
    publish: deps.publish,
    journal,
    leases,
    sleep: (ms) => clock.sleep(ms),
  });
  const metrics = createPoolMetrics(deps.registry, {
    size: () => views.size,
    queued: () => queue.waiting,
  });
  const queue = createResizeQueue({
    clock,
    onGiveUp: () =>
      log.warn(
        `shutting down: a pool change still runs; leaving it (the next start resumes from map version ${views.map.version})`,
      ),
  });
  const cacheConfig = async (): Promise<CacheConfig> =>
    (await store.getSetting<CacheConfig>('cache_config')) ?? DEFAULT_CACHE_CONFIG;
  const mode = async (): Promise<Mode> => (await store.getSetting<Mode>('mode')) ?? 'manual';
  const lifecycle = createNodeLifecycle({
    provider,
    admin,
    store,
    cacheConfig,
    clock,
    journal,
    ...(deps.healthWaitMs !== undefined && { healthWaitMs: deps.healthWaitMs }),
  });
  const replacement = createReplacement({ views, queue, provider, admin, lifecycle, journal });
  const monitor = createHealthMonitor({
    nodes: () =>
      views.started
        ? views.map.nodes.flatMap((id) => {
            const url = views.address(id);
            return url && !replacement.isReplacing(id) ? [{ id, url }] : [];
          })
        : [],
    // A node that answers and missed a view (or is a new process) is brought up to date.
    probe: async (node) => {
      const healthy = await admin.healthy(node.url);
      if (healthy) await views.sync(node.id);
      return healthy;
    },
    onDead: (node, reason) => void replacement.nodeFailed(node.id, reason),
    // Two in a row: a hung node is known dead within ~3 s, and one slow answer is not enough.
    intervalMs: deps.healthIntervalMs ?? 1000,
    failuresToDead: deps.healthFailures ?? 2,
    clock,
    logger: log,
    metrics: { tick: metrics.healthTick, check: metrics.healthCheck },
  });
  const nodes = everyNode({ views, admin, store, journal });
  const nextNodeId = deps.newNodeId ?? newNodeId;
  /** Resizes queued or running, and the size the pool has once they are done. */
  let pendingResizes = 0;
  let plannedSize = 0;
  let lastResizeAt = 0;

  function resizeEnded(): void {
    lastResizeAt = clock.now();
    store
      .setSetting(LAST_RESIZE_SETTING, lastResizeAt)
      .catch((error) => journal.failed('save-resize-end', error));
  }

  return {
    /** Resumes the saved pool (or starts its first node), then watches its nodes. */
    async start(): Promise<void> {
      provider.onFailed?.(
        (id, reason) => void replacement.nodeFailed(id, reason, { exited: true }),
      );
      provider.onReplaced((node) => void replacement.nodeReplaced(node));
      await queue.run(async () => {
        await startPool({
          store,
          provider,
          lifecycle,
          views,
          journal,
          assignment: deps.assignment,
          newNodeId: nextNodeId,
        });
        lastResizeAt = (await store.getSetting<number>(LAST_RESIZE_SETTING)) ?? 0;
      });
      monitor.start();
    },

    view: (): PoolView => views.view(),

    /**
     * A node asks to renew the lease on its view (view-leases.ts), once the push to it under
     * way, if any, has answered.
     */
    async renewViewLease(id: NodeId, instance: string, version: number): Promise<RenewAnswer> {
      await views.settled(id);
      return leases.renew(id, instance, version);
    },
    /** Nodes in the map in force (0 before start). */
    get size(): number {
      return views.size;
    },
    get resizing(): boolean {
      return queue.running;
    },
    /** When the last resize ended, ms since the epoch (0: never), kept across restarts. */
    get lastResizeAt(): number {
      return lastResizeAt;
    },
    /** Changes waiting behind the one running. */
    get queued(): number {
      return queue.waiting;
    },
    mode,
    cacheConfig,

    /**
     * Queues a resize by one node. Refused (409) in automatic mode when `source` is manual, and
     * when the size the queue will reach would leave the bounds. `done` settles when it ends
     * (503 if the manager shuts down first); a failure is also logged and counted.
     */
    async resize(change: 1 | -1, source: 'manual' | 'automatic' = 'manual') {
      if (queue.draining) throw unavailable('The manager is shutting down: it starts no resizes.');
      if (source === 'manual' && (await mode()) === 'automatic') {
        throw conflict(
          'The pool is in automatic mode: switch to manual mode to resize it by hand.',
        );
      }
      // While resizes are pending, the size they will reach; the map's size once none is.
      const base = pendingResizes > 0 ? plannedSize : views.map.nodes.length;
      const target = base + change;
      if (target < MIN_NODES || target > MAX_NODES) {
        throw conflict(
          `The pool ${pendingResizes ? 'will have' : 'has'} ${base} node(s); it must stay between ${MIN_NODES} and ${MAX_NODES}.`,
        );
      }
      plannedSize = target;
      pendingResizes++;
      const direction = change > 0 ? 'grow' : 'shrink';
      const job = queue
        .run(() =>
          resizeByOne(
            {
              views,
              lifecycle,
              admin,
              journal,
              clock,
              newNodeId: nextNodeId,
              handOverTimeoutMs: HAND_OVER_TIMEOUT_MS,
            },
            change,
          ),
        )
        .then(
          () => metrics.resize(direction, 'done'),
          (error: unknown) => {
            metrics.resize(direction, 'failed');
            journal.failed('resize', error, { direction });
            throw error;
          },
        )
        .finally(() => {
          pendingResizes--;
          resizeEnded();
        });
      const cut = queue.gaveUp.then(() => {
        throw unavailable(
          `The manager is shutting down and this resize did not finish in time; it resumes the pool from map version ${views.map.version} when it starts again.`,
        );
      });
      return { target, done: Promise.race([job, cut]) };
    },

    async setMode(next: Mode): Promise<void> {
      await store.setSetting('mode', next);
      await journal.event('mode', `Resizing mode is now ${next}`);
    },

    /** Stores the config and pushes it to every node; says which nodes failed. */
    async configure(config: CacheConfig) {
      await store.setSetting('cache_config', config);
      const results = await nodes.configure(config);
      const failed = results.filter((r) => !r.ok).length;
      await journal.event(
        'config',
        `Cache config set to ${config.capacity} MB, ${config.replacement_policy}${failed ? ` (${failed} node(s) failed)` : ''}`,
      );
      return results;
    },

    /** Empties every node; says which failed. */
    async clearAll(reason = 'Cleared every node’s cache', kind = 'clear') {
      const results = await nodes.clear();
      await journal.event(kind, reason, { failed: results.filter((r) => !r.ok).length });
      return results;
    },

    nodeStatuses: () => nodes.statuses(),

    /** Waits for every queued change (tests, shutdown). */
    idle: () => queue.idle(),

    /**
     * First step of a shutdown: no new changes (queued ones are refused now), no more health
     * checks, and the running change gets `budgetMs` before its waiting caller is answered 503.
     */
    drain(budgetMs: number): void {
      replacement.close();
      void monitor.stop();
      queue.drain(budgetMs);
    },

    /** Stops watching nodes and waits for the running change (after drain(): its budget). */
    async close(): Promise<void> {
      replacement.close();
      await monitor.stop();
      await queue.close();
    },
  };
}

export type Pool = ReturnType<typeof createPool>;
