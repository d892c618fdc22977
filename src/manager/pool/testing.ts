/**
 * Test doubles for the pool's unit tests beside this file (no production module imports it): a
 * clock the test moves, cache nodes and a provider in memory that log every call in order, an
 * in-memory registry, and a journal that keeps what it is told. The real-process tests in
 * test/manager/ prove the same parts against real nodes and databases.
 */
import type { HandOverAnswer, HandOverOrder, NodeAdmin } from '../../clients/node-admin.ts';
import { NodeRequestError } from '../../clients/node-transport.ts';
import type { CacheConfig } from '../../core/cache-config.ts';
import type { Clock } from '../../core/clock.ts';
import { createPoolMap, type PoolMap } from '../../core/pool-map.ts';
import type { PoolView } from '../../core/pool-view.ts';
import type { NodeState, PoolEvent, PoolNodeRecord } from '../../storage/pool-store.ts';
import type { NodeProvider, ProvidedNode } from '../providers/provider.ts';
import type { Journal, Operation } from './journal.ts';
import { createNodeLifecycle } from './node-lifecycle.ts';
import type { PoolRegistry } from './pool.ts';
import { createViewLeases } from './view-leases.ts';
import { createPoolViews } from './views.ts';

/** A clock that moves only when told: sleeps resolve as `advance` passes their time. */
export function createManualClock(start = 1_000_000) {
  let now = start;
  const sleepers: { at: number; wake: () => void }[] = [];
  const clock: Clock & { advance(ms: number): Promise<void>; sleepers(): number } = {
    now: () => now,
    sleep(ms) {
      return new Promise<void>((resolve) => {
        sleepers.push({ at: now + ms, wake: resolve });
      });
    },
    /** Moves time on by `ms`, waking each sleeper due on the way and letting it run. */
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        await settle();
        sleepers.sort((a, b) => a.at - b.at);
        const next = sleepers[0];
        if (!next || next.at > end) break;
        sleepers.shift();
        now = Math.max(now, next.at);
        next.wake();
      }
      now = end;
      await settle();
    },
    sleepers: () => sleepers.length,
  };
  return clock;
}

/** Lets every promise chain that can run, run (a few turns of the event loop). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

export interface FakeNode {
  url: string;
  healthy: boolean;
  views: PoolView[];
  config?: CacheConfig;
  /** Bytes cached per region, as /api/cache/regions reports them. */
  regionBytes: number[];
  cleared: number;
  /** The hand-over answers to give (default: every order succeeds with 1 entry per region). */
  handOver?: (orders: HandOverOrder[]) => HandOverAnswer[] | Promise<HandOverAnswer[]>;
  /** Makes every command but /health fail as if the node did not answer. */
  unreachable?: boolean;
}

/** Cache nodes in memory, and an admin client that talks to them; `calls` logs every command. */
export function createFakeNodes() {
  const nodes = new Map<string, FakeNode>();
  const calls: string[] = [];
  const node = (url: string): FakeNode => {
    const found = nodes.get(url);
    if (!found || found.unreachable) {
      throw new NodeRequestError(url, undefined, 'connect ECONNREFUSED');
    }
    return found;
  };
  const admin: NodeAdmin = {
    async healthy(url) {
      return nodes.get(url)?.healthy ?? false;
    },
    async pushView(url, view, self) {
      calls.push(`view ${self} v${view.map.version}${view.previous ? ' transitional' : ''}`);
      const target = node(url);
      const version = target.views.at(-1)?.map.version ?? 0;
      const adopted = view.map.version > version;
      if (adopted) target.views.push(view);
      return { adopted, version: Math.max(version, view.map.version), instance: `${url}#1` };
    },
    async configure(url, config) {
      calls.push(`configure ${url}`);
      node(url).config = config;
      return { ...config, capacity_bytes: config.capacity * 1048576, evicted: 0 };
    },
    async statistics(url) {
      node(url);
      return { items: 0, bytes: 0, capacity_bytes: 0, gets: 0, hits: 0, misses: 0, hit_rate: null };
    },
    async regions(url) {
      return node(url).regionBytes.map((bytes, region) => ({
        region,
        items: bytes ? 1 : 0,
        bytes,
      }));
    },
    async clear(url) {
      calls.push(`clear ${url}`);
      node(url).cleared++;
    },
    async handOver(url, orders, { keep }) {
      calls.push(
        `hand-over from ${url}${keep ? ' (keep)' : ''}: ${orders.map((o) => `${o.regions.join(',')} → ${o.to}`).join('; ')}`,
      );
      const n = node(url);
      if (n.handOver) return n.handOver(orders);
      return orders.map((o) => ({ to: o.to, entries: o.regions.length, bytes: 0 }));
    },
    async close() {},
  };
  return {
    admin,
    calls,
    nodes,
    add(url: string): FakeNode {
      const n: FakeNode = {
        url,
        healthy: true,
        views: [],
        regionBytes: Array(16).fill(0),
        cleared: 0,
      };
      nodes.set(url, n);
      return n;
    },
    get: (url: string) => nodes.get(url),
  };
}

export type FakeNodes = ReturnType<typeof createFakeNodes>;

/** A provider whose nodes are fake nodes at `http://<id>.<n>` (n counts restarts). */
export function createFakeProvider(fakes: FakeNodes, options: { canReplace?: boolean } = {}) {
  const failedListeners: ((id: string, reason: string) => void)[] = [];
  const replacedListeners: ((node: ProvidedNode) => void)[] = [];
  const starts = new Map<string, number>();
  const running = new Map<string, string>();
  /** Ids whose start fails. */
  const failing = new Set<string>();
  /** Addresses the provider can prove nothing listens at any more (isGone). */
  const gone = new Set<string>();
  const start = async (id: string): Promise<ProvidedNode> => {
    fakes.calls.push(`start ${id}`);
    if (failing.has(id)) throw new Error(`node ${id} would not start`);
    const n = (starts.get(id) ?? 0) + 1;
    starts.set(id, n);
    const url = `http://${id}.${n}`;
    fakes.add(url);
    running.set(id, url);
    return { id, url };
  };
  const provider: NodeProvider & {
    failing: Set<string>;
    gone: Set<string>;
    running: Map<string, string>;
    die(id: string): void;
    restartOnItsOwn(id: string): Promise<void>;
  } = {
    name: 'fake',
    failing,
    gone,
    running,
    start,
    async stop(id) {
      fakes.calls.push(`stop ${id}`);
      const url = running.get(id);
      if (url) fakes.nodes.delete(url);
      running.delete(id);
    },
    async resume(nodes) {
      return nodes.map((node) => (fakes.get(node.url) ? node : undefined));
    },
    isGone: async (url) => gone.has(url),
    ...(options.canReplace !== false && {
      async replace(id: string) {
        fakes.calls.push(`replace ${id}`);
        const url = running.get(id);
        if (url) fakes.nodes.delete(url);
        return start(id);
      },
    }),
    onFailed(listener) {
      failedListeners.push(listener);
    },
    onReplaced(listener) {
      replacedListeners.push(listener);
    },
    async close() {},
    /** The node's process dies: the provider says so at once. */
    die(id) {
      const url = running.get(id);
      if (url) fakes.nodes.delete(url);
      for (const listener of failedListeners) listener(id, 'exited (SIGKILL)');
    },
    /** The provider restarts a dead node by itself and says where it is now. */
    async restartOnItsOwn(id) {
      const node = await start(id);
      for (const listener of replacedListeners) listener(node);
    },
  };
  return provider;
}

/** The pool's registry in memory, with a switch that makes saving maps fail. */
export function createMemoryRegistry() {
  const maps: PoolMap[] = [];
  const nodes = new Map<string, PoolNodeRecord>();
  const settings = new Map<string, unknown>();
  const events: PoolEvent[] = [];
  const registry: PoolRegistry & { maps: PoolMap[]; events: PoolEvent[]; failSaves: boolean } = {
    maps,
    events,
    failSaves: false,
    async upsertNode(node) {
      const at = new Date();
      nodes.set(node.id, { ...node, addedAt: nodes.get(node.id)?.addedAt ?? at, updatedAt: at });
    },
    async setNodeState(id: string, state: NodeState) {
      const node = nodes.get(id);
      if (!node) throw new Error(`no node ${id}`);
      node.state = state;
    },
    async listNodes() {
      return [...nodes.values()];
    },
    async saveMap(map) {
      if (registry.failSaves) throw new Error('the database is down');
      if (maps.some((m) => m.version === map.version)) throw new Error('version taken');
      maps.push(map);
    },
    async currentMap() {
      return maps.reduce<PoolMap | undefined>(
        (a, m) => (!a || m.version > a.version ? m : a),
        undefined,
      );
    },
    async getSetting<T>(name: string) {
      return settings.get(name) as T | undefined;
    },
    async setSetting(name, value) {
      settings.set(name, value);
    },
    async addEvent(event) {
      const recorded = { id: events.length + 1, at: new Date(), details: null, ...event };
      events.push(recorded);
      return recorded;
    },
  };
  return registry;
}

/** A journal that keeps events and failures for the test to read. */
export function createRecordingJournal() {
  const events: { kind: string; message: string; details?: unknown }[] = [];
  const failures: { operation: Operation; error: unknown; context?: Record<string, unknown> }[] =
    [];
  const journal: Journal & { events: typeof events; failures: typeof failures } = {
    events,
    failures,
    async event(kind, message, details) {
      events.push({ kind, message, details });
    },
    failed(operation, error, context) {
      failures.push({ operation, error, ...(context && { context }) });
    },
  };
  return journal;
}

/** A logger that drops everything (pino's shape, as far as the pool uses it). */
export const silentLog = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  trace() {},
  fatal() {},
  child() {
    return silentLog;
  },
  level: 'silent',
  silent() {},
} as never;

/**
 * The parts a resize or a replacement works with, wired to the doubles above, with a pool of
 * `size` nodes (`n0`, `n1`, …) already in force at map version 1.
 */
export async function createParts(size: number, options: { canReplace?: boolean } = {}) {
  const fakes = createFakeNodes();
  const provider = createFakeProvider(fakes, options);
  const registry = createMemoryRegistry();
  const journal = createRecordingJournal();
  const clock = createManualClock();
  const leases = createViewLeases({
    leaseMs: 3000,
    now: clock.now,
    sleep: (ms) => clock.sleep(ms),
  });
  /** Every view put in force, as frontends are told of it. */
  const published: PoolView[] = [];
  const views = createPoolViews({
    store: registry,
    admin: fakes.admin,
    publish: async (view) => {
      published.push(view);
    },
    journal,
    leases,
    sleep: (ms) => clock.sleep(ms),
  });
  const lifecycle = createNodeLifecycle({
    provider,
    admin: fakes.admin,
    store: registry,
    cacheConfig: async () => ({ capacity: 64, replacement_policy: 'LRU' }),
    clock,
    journal,
  });
  const ids = Array.from({ length: size }, (_, i) => `n${i}`);
  for (const id of ids) {
    const node = await provider.start(id);
    views.setAddress(id, node.url);
    await lifecycle.record(node, 'active');
  }
  await views.adopt(createPoolMap(ids, 'balanced'));
  fakes.calls.length = 0;
  published.length = 0;
  let next = size;
  return {
    fakes,
    published,
    provider,
    registry,
    journal,
    clock,
    views,
    leases,
    lifecycle,
    newNodeId: () => `n${next++}`,
  };
}
