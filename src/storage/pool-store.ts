/**
 * PoolStore: the manager's persistent state, one implementation over either driver (PostgreSQL or
 * SQLite; the statements that differ come from dialect.ts): pool membership, the versioned pool maps, settings (cache config, mode, autoscaler
 * parameters), the resize/decision log, the frontends to push maps to, and the cache nodes' 5-s
 * statistics samples.
 *
 * Why in the database: a restart of any service must lose nothing (the originals kept pool state
 * and statistics in process memory), and there must be one authoritative registry with versioned
 * maps instead of several diverging copies (the originals' manager, autoscaler and frontend each
 * kept their own node list). Samples are keyed by a stable node id (not a list position, which
 * shifts when a node leaves) and carry interval deltas, so a window's miss rate is Σmisses / Σgets
 * over exactly that window, summed by SQL, never an average of ratios or a diff of lifetime
 * counters, and an idle window reports zero gets rather than a zero miss rate (the caller must not
 * act on it: the originals shrank idle pools).
 *
 * Limits: retention is the caller's job (pruneSamples and pruneHistory delete what they are
 * told to); a re-sent sample (same node, same `at`) is ignored, so a publisher may retry safely. By default the store owns its driver
 * (close() closes it); with `ownsDriver: false` it shares one (openStorage does) and close() is
 * a no-op.
 */
import { conflict, notFound } from '../core/errors.ts';
import { type PoolMap, parsePoolMap } from '../core/pool-map.ts';
import type { Sample } from '../core/stats.ts';
import { dialectOf } from './dialect.ts';
import { prepareStore } from './migrations.ts';
import { type SqlDriver, toSafeInteger } from './sql-driver.ts';

export type NodeState = 'starting' | 'active' | 'draining' | 'stopped' | 'failed';

export const NODE_STATES: readonly NodeState[] = [
  'starting',
  'active',
  'draining',
  'stopped',
  'failed',
];

export interface PoolNodeRecord {
  id: string;
  address: string;
  state: NodeState;
  provider: string;
  addedAt: Date;
  updatedAt: Date;
}

export interface PoolEvent {
  id: number;
  at: Date;
  kind: string;
  message: string;
  /** The JSON given to addEvent, or null when none was. */
  details: unknown;
}

export interface StatBucket {
  start: Date;
  /** Distinct nodes that sent a sample in this bucket. */
  nodes: number;
  /** Nodes in the pool map in force at the bucket's end (0 before the first map). */
  poolSize: number;
  gets: number;
  hits: number;
  misses: number;
  puts: number;
  evictions: number;
  /** Sum over nodes of each node's last sample in the bucket. */
  items: number;
  bytes: number;
}

export interface WindowTotals {
  gets: number;
  hits: number;
  misses: number;
  samples: number;
  nodes: number;
}

export interface PoolStore {
  // Membership.
  /** Inserts the node, or updates its address, state and provider (its addedAt stays). */
  upsertNode(node: {
    id: string;
    address: string;
    state: NodeState;
    provider: string;
  }): Promise<void>;
  /** A 404 PixpoolError when no node has this id. */
  setNodeState(id: string, state: NodeState): Promise<void>;
  /** Ordered by addedAt, then id. An empty `states` list matches nothing. */
  listNodes(options?: { states?: NodeState[] }): Promise<PoolNodeRecord[]>;

  // Versioned pool maps.
  /** Saves a validated map; a 409 PixpoolError when its version is already saved. */
  saveMap(map: PoolMap): Promise<void>;
  /** The map with the highest version, or undefined before the first. */
  currentMap(): Promise<PoolMap | undefined>;

  // Settings: small JSON values by name.
  getSetting<T>(name: string): Promise<T | undefined>;
  /** Any JSON-serialisable value (null included; undefined is refused). */
  setSetting(name: string, value: unknown): Promise<void>;

  // The resize/decision log.
  addEvent(event: { kind: string; message: string; details?: unknown }): Promise<PoolEvent>;
  /** Newest first; `limit` 1..1000. An empty `kinds` list matches nothing. */
  listEvents(options: { limit: number; kinds?: string[] }): Promise<PoolEvent[]>;

  // Frontends that want pool maps pushed to them.
  /** Upsert by URL (http or https, kept as given); refreshes its last-seen time. */
  registerFrontend(url: string): Promise<void>;
  /** Ordered by URL; with `seenSince`, only those seen at or after it. */
  listFrontends(options?: { seenSince?: Date }): Promise<{ url: string; lastSeen: Date }[]>;

  // Statistics.
  /** Stores one node sample; a second sample of the node at the same `at` is ignored. */
  addSample(nodeId: string, sample: Sample): Promise<void>;
  /** Deletes samples taken before `olderThan`; returns how many. */
  pruneSamples(olderThan: Date): Promise<number>;
  /**
   * Deletes the history older than `olderThan`: events, maps no longer in force by then (the
   * map in force at `olderThan` and every later one stay, so the current map always does), and
   * frontends not seen since. Returns how many of each.
   */
  pruneHistory(olderThan: Date): Promise<{ events: number; maps: number; frontends: number }>;
  /**
   * One bucket per `bucketMs` from `from` (inclusive) to `to` (exclusive), oldest first, every
   * bucket present even when empty (zeros, nodes 0); the last one is cut short at `to` when the
   * span is not a whole number of buckets. Counts are summed over nodes; `nodes` is the number
   * of distinct nodes that reported in the bucket; items/bytes are the sum over nodes of each
   * node's last sample in the bucket. A sample belongs to the bucket containing its `at`.
   */
  aggregate(options: { from: Date; to: Date; bucketMs: number }): Promise<StatBucket[]>;
  /** Sums over [from, to) across all nodes (the autoscaler's window). */
  windowTotals(options: { from: Date; to: Date }): Promise<WindowTotals>;

  close(): Promise<void>;
}

export interface PoolStoreOptions {
  /** Whether close() closes the driver (default true); false when the driver is shared. */
  ownsDriver?: boolean | undefined;
}

export const MAX_EVENT_LIMIT = 1000;
export const MAX_BUCKETS = 10_000;
// Long enough for any URL, id or kind a person would use; short enough to refuse garbage early.
const MAX_NAME_LENGTH = 2048;
// The latest instant an ISO timestamp (and so this store) can carry: 9999-12-31T23:59:59.999Z.
const MAX_TIME_MS = 253_402_300_799_999;

const SAMPLE_COUNTS = [
  'intervalMs',
  'gets',
  'hits',
  'misses',
  'puts',
  'evictions',
  'imports',
  'items',
  'bytes',
] as const;

interface NodeRow {
  id: string;
  address: string;
  state: NodeState;
  provider: string;
  added_at: Date | string | number;
  updated_at: Date | string | number;
}

interface EventRow {
  id: unknown;
  at: Date | string | number;
  kind: string;
  message: string;
  details: string | null;
}

type CountRow = Record<'gets' | 'hits' | 'misses' | 'puts' | 'evictions', unknown>;

const toNode = (row: NodeRow): PoolNodeRecord => ({
  id: row.id,
  address: row.address,
  state: row.state,
  provider: row.provider,
  addedAt: new Date(row.added_at),
  updatedAt: new Date(row.updated_at),
});

// JSON columns travel as text both ways, so both drivers see the same JSON.parse'd values.
const toEvent = (row: EventRow): PoolEvent => ({
  id: toSafeInteger(row.id, 'id'),
  at: new Date(row.at),
  kind: row.kind,
  message: row.message,
  details: row.details === null ? null : JSON.parse(row.details),
});

/** A non-empty string PostgreSQL text can hold (no NUL), of bounded length. */
function name(value: unknown, what: string, { empty = false } = {}): string {
  if (typeof value !== 'string' || (!empty && value === '')) {
    throw new TypeError(`${what} must be a ${empty ? '' : 'non-empty '}string`);
  }
  if (value.length > MAX_NAME_LENGTH) {
    throw new TypeError(`${what} must be at most ${MAX_NAME_LENGTH} characters`);
  }
  if (value.includes('\0')) throw new TypeError(`${what} must not contain a NUL character`);
  return value;
}

function nodeState(value: unknown): NodeState {
  if (!NODE_STATES.includes(value as NodeState)) {
    throw new TypeError(`state must be one of ${NODE_STATES.join(', ')} (got ${String(value)})`);
  }
  return value as NodeState;
}

/** JSON text for a jsonb column; refuses what JSON cannot hold and what jsonb refuses (\u0000). */
function json(value: unknown, what: string): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${what} must be a JSON value (got ${typeof value})`);
  if (/(?<!\\)(?:\\\\)*\\u0000/.test(text)) {
    throw new TypeError(`${what} must not contain a NUL character`);
  }
  return text;
}

function time(value: unknown, what: string): Date {
  if (!(value instanceof Date) || !(value.getTime() >= 0 && value.getTime() <= MAX_TIME_MS)) {
    throw new TypeError(`${what} must be a valid Date between 1970 and 9999`);
  }
  return value;
}

/** `$n, $m, …` placeholders for a list, numbered after `params`, which receives the values. */
function placeholders(values: readonly unknown[], params: unknown[]): string {
  return values.map((value) => `$${params.push(value)}`).join(', ');
}

function checkList<T>(value: unknown, what: string, check: (item: unknown) => T): T[] {
  if (!Array.isArray(value) || value.length > 100) {
    throw new TypeError(`${what} must be an array of at most 100 entries`);
  }
  return value.map(check);
}

function checkSample(sample: Sample): void {
  if (typeof sample !== 'object' || sample === null) {
    throw new TypeError('sample must be an object');
  }
  const { at } = sample;
  if (typeof at !== 'number' || !(at >= 0 && at <= MAX_TIME_MS)) {
    throw new TypeError('sample.at must be a time in ms since the epoch, between 1970 and 9999');
  }
  for (const field of SAMPLE_COUNTS) {
    const n = sample[field];
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new TypeError(`sample.${field} must be a whole number ≥ 0 (got ${String(n)})`);
    }
  }
}

/** Checks a [from, to) window: valid Dates, from strictly before to. */
function checkWindow(options: { from: Date; to: Date }): { from: Date; to: Date } {
  if (typeof options !== 'object' || options === null) throw new TypeError('options are required');
  const from = time(options.from, 'from');
  const to = time(options.to, 'to');
  if (from.getTime() >= to.getTime()) throw new TypeError('from must be before to');
  return { from, to };
}

/** Applies pending migrations, then returns the store; closes an owned driver if that fails. */
export async function createPoolStore(
  driver: SqlDriver,
  options: PoolStoreOptions = {},
): Promise<PoolStore> {
  const ownsDriver = options.ownsDriver ?? true;
  await prepareStore(driver, ownsDriver);
  const sql = dialectOf(driver).pool;
  // Times go to SQL as the dialect wants them: ISO text cast to timestamptz on PostgreSQL (pg
  // would render a Date in the process's local zone), milliseconds on SQLite.
  const { time: at } = dialectOf(driver);

  return {
    async upsertNode(node) {
      if (typeof node !== 'object' || node === null) throw new TypeError('node must be an object');
      const values = [
        name(node.id, 'node id'),
        name(node.address, 'node address'),
        nodeState(node.state),
        name(node.provider, 'node provider'),
      ];
      await driver.query(sql.upsertNode, values);
    },

    async setNodeState(id, state) {
      const values = [name(id, 'node id'), nodeState(state)];
      const { rowCount } = await driver.query(sql.setNodeState, values);
      if (rowCount === 0) throw notFound(`No pool node has the id ${JSON.stringify(id)}.`);
    },

    async listNodes(options = {}) {
      const params: unknown[] = [];
      let where = '';
      if (options.states !== undefined) {
        const states = checkList(options.states, 'states', nodeState);
        where = states.length ? `WHERE state IN (${placeholders(states, params)})` : 'WHERE false';
      }
      const { rows } = await driver.query<NodeRow>(
        `SELECT id, address, state, provider, added_at, updated_at FROM pool_nodes ${where}
         ORDER BY added_at, id`,
        params,
      );
      return rows.map(toNode);
    },

    async saveMap(map) {
      // Only known fields, checked: a map read back must always parse.
      const checked = parsePoolMap(map);
      const { rows } = await driver.query(sql.saveMap, [checked.version, json(checked, 'map')]);
      if (rows.length === 0) {
        throw conflict(
          `Pool map version ${checked.version} is already saved; a saved map is never replaced.`,
        );
      }
    },

    async currentMap() {
      const { rows } = await driver.query<{ map: string }>(sql.currentMap);
      return rows[0] && parsePoolMap(JSON.parse(rows[0].map));
    },

    async getSetting<T>(settingName: string) {
      const { rows } = await driver.query<{ value: string }>(sql.getSetting, [
        name(settingName, 'setting name'),
      ]);
      return rows[0] && (JSON.parse(rows[0].value) as T);
    },

    async setSetting(settingName, value) {
      await driver.query(sql.setSetting, [
        name(settingName, 'setting name'),
        json(value, `setting ${settingName}`),
      ]);
    },

    async addEvent(event) {
      if (typeof event !== 'object' || event === null)
        throw new TypeError('event must be an object');
      const details = event.details === undefined ? null : json(event.details, 'event details');
      const { rows } = await driver.query<EventRow>(sql.addEvent, [
        name(event.kind, 'event kind'),
        name(event.message, 'event message', { empty: true }),
        details,
      ]);
      const row = rows[0];
      if (!row) throw new Error('INSERT … RETURNING returned no event row');
      return toEvent(row);
    },

    async listEvents(options) {
      const limit = options?.limit;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENT_LIMIT) {
        throw new TypeError(`limit must be a whole number from 1 to ${MAX_EVENT_LIMIT}`);
      }
      const params: unknown[] = [];
      let where = '';
      if (options.kinds !== undefined) {
        const kinds = checkList(options.kinds, 'kinds', (kind) => name(kind, 'event kind'));
        where = kinds.length ? `WHERE kind IN (${placeholders(kinds, params)})` : 'WHERE false';
      }
      params.push(limit);
      const { rows } = await driver.query<EventRow>(
        `SELECT ${sql.eventColumns} FROM pool_events ${where}
         ORDER BY id DESC LIMIT $${params.length}`,
        params,
      );
      return rows.map(toEvent);
    },

    async registerFrontend(url) {
      name(url, 'frontend url');
      let protocol: string;
      try {
        protocol = new URL(url).protocol;
      } catch {
        throw new TypeError(`frontend url is not a URL: ${JSON.stringify(url)}`);
      }
      if (protocol !== 'http:' && protocol !== 'https:') {
        throw new TypeError(`frontend url must be http or https (got ${protocol})`);
      }
      await driver.query(sql.registerFrontend, [url]);
    },

    async listFrontends(options = {}) {
      const params: unknown[] = [];
      let where = '';
      if (options.seenSince !== undefined) {
        params.push(at(time(options.seenSince, 'seenSince')));
        where = sql.seenSince;
      }
      const { rows } = await driver.query<{ url: string; last_seen: Date | string | number }>(
        `SELECT url, last_seen FROM pool_frontends ${where} ORDER BY url`,
        params,
      );
      return rows.map((row) => ({ url: row.url, lastSeen: new Date(row.last_seen) }));
    },

    async addSample(nodeId, sample) {
      name(nodeId, 'node id');
      checkSample(sample);
      await driver.query(sql.addSample, [
        at(new Date(sample.at)),
        nodeId,
        ...SAMPLE_COUNTS.map((field) => sample[field]),
      ]);
    },

    async pruneSamples(olderThan) {
      const { rowCount } = await driver.query(sql.pruneSamples, [at(time(olderThan, 'olderThan'))]);
      return rowCount;
    },

    async pruneHistory(olderThan) {
      const params = [at(time(olderThan, 'olderThan'))];
      const events = await driver.query(sql.pruneEvents, params);
      const maps = await driver.query(sql.pruneMaps, params);
      const frontends = await driver.query(sql.pruneFrontends, params);
      return { events: events.rowCount, maps: maps.rowCount, frontends: frontends.rowCount };
    },

    async aggregate(options) {
      const { from, to } = checkWindow(options);
      const { bucketMs } = options;
      if (!Number.isSafeInteger(bucketMs) || bucketMs < 1) {
        throw new TypeError('bucketMs must be a positive whole number of milliseconds');
      }
      const span = to.getTime() - from.getTime();
      const count = Math.ceil(span / bucketMs);
      if (count > MAX_BUCKETS) {
        throw new TypeError(
          `from..to holds ${count} buckets of ${bucketMs} ms; at most ${MAX_BUCKETS} are allowed`,
        );
      }
      // A sample's bucket is floor((at - from) / bucketMs); items and bytes are each node's
      // last sample in the bucket (see dialect.ts).
      const { rows } = await driver.query<
        CountRow & {
          i: unknown;
          nodes: unknown;
          items: unknown;
          bytes: unknown;
          pool_size: unknown;
        }
      >(sql.aggregate, [from.getTime(), bucketMs, at(from), at(to), count]);
      return rows.map((row) => ({
        start: new Date(from.getTime() + toSafeInteger(row.i, 'bucket') * bucketMs),
        nodes: toSafeInteger(row.nodes, 'nodes'),
        poolSize: toSafeInteger(row.pool_size, 'pool size'),
        gets: toSafeInteger(row.gets, 'gets'),
        hits: toSafeInteger(row.hits, 'hits'),
        misses: toSafeInteger(row.misses, 'misses'),
        puts: toSafeInteger(row.puts, 'puts'),
        evictions: toSafeInteger(row.evictions, 'evictions'),
        items: toSafeInteger(row.items, 'items'),
        bytes: toSafeInteger(row.bytes, 'bytes'),
      }));
    },

    async windowTotals(options) {
      const { from, to } = checkWindow(options);
      const { rows } = await driver.query<Record<keyof WindowTotals, unknown>>(sql.windowTotals, [
        at(from),
        at(to),
      ]);
      const row = rows[0];
      return {
        gets: toSafeInteger(row?.gets, 'gets'),
        hits: toSafeInteger(row?.hits, 'hits'),
        misses: toSafeInteger(row?.misses, 'misses'),
        samples: toSafeInteger(row?.samples, 'samples'),
        nodes: toSafeInteger(row?.nodes, 'nodes'),
      };
    },

    close: ownsDriver ? () => driver.close() : async () => {},
  };
}
