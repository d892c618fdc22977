/**
 * Every statement of the metadata and pool stores that is not the same text on PostgreSQL and on
 * SQLite, side by side, so the differences between the two dialects are in one place (the
 * schema's are in migrations.ts, each migration holding both). The stores keep one copy of their
 * logic (validation, retries, row mapping) and take from here the text for their driver's kind.
 *
 * The SQLite side's choices: timestamps are INTEGER milliseconds since the epoch (the stores turn
 * them into Dates like PostgreSQL's timestamptz), jsonb is TEXT, the global image version
 * sequence is a one-row table bumped inside the commit's transaction, and keys compare with
 * SQLite's default BINARY collation, which orders UTF-8 by bytes, i.e. by code point, as
 * COLLATE "C" does on PostgreSQL. Row locks (FOR UPDATE), LOCK TABLE and advisory locks have no
 * SQLite version: every SQLite write transaction starts with BEGIN IMMEDIATE, which holds the
 * database's one write lock (across processes) until it ends, so writers are serialised anyway.
 */
import type { SqlDriver } from './sql-driver.ts';

/** Now in whole milliseconds since the epoch, SQLite's time column type here. */
export const SQLITE_NOW = `CAST(round(unixepoch('subsec') * 1000) AS INTEGER)`;

const escapeLike = (text: string) => text.replace(/[\\%_]/g, '\\$&');
// GLOB is case-sensitive (SQLite's LIKE is not, for ASCII) and can use the key's index for a
// prefix; a bracketed character is taken literally.
const escapeGlob = (text: string) => text.replace(/[[*?]/g, '[$&]');

export interface Dialect {
  /** A Date as a statement parameter: ISO text for timestamptz, milliseconds for SQLite. */
  time(date: Date): string | number;
  /** Statements applyMigrations runs first, in its transaction. */
  migrationsPrologue: readonly string[];
  images: ImageStatements;
  pool: PoolStatements;
  /** Periodic housekeeping the database does not do by itself (none on PostgreSQL). */
  maintenance: string | undefined;
}

interface ImageStatements {
  /** How a commit takes its version and writes its row (see metadata-store.ts). */
  commit:
    | { kind: 'two statements'; insert: string; replace: string }
    | { kind: 'transaction'; previous: string; nextVersion: string; upsert: string };
  /** Run first in delete-all's transaction (PostgreSQL only). */
  deleteAllLock: string | undefined;
  /** A key filter: the parameter for a literal prefix or substring, and its condition. */
  prefixPattern(prefix: string): string;
  containsPattern(text: string): string;
  keyMatches(parameter: number): string;
}

interface PoolStatements {
  upsertNode: string;
  setNodeState: string;
  saveMap: string;
  currentMap: string;
  getSetting: string;
  setSetting: string;
  addEvent: string;
  /** The event columns, as listEvents selects them. */
  eventColumns: string;
  registerFrontend: string;
  seenSince: string;
  addSample: string;
  pruneSamples: string;
  pruneEvents: string;
  pruneMaps: string;
  pruneFrontends: string;
  aggregate: string;
  windowTotals: string;
}

const postgres: Dialect = {
  time: (date) => date.toISOString(),
  migrationsPrologue: [
    // First half of the advisory lock key, 'pxpl' (0x7078706c); the second half is the schema
    // name's hash: concurrent starters in one schema wait here, then find nothing to do.
    `SELECT pg_advisory_xact_lock(${0x7078706c}, hashtext(coalesce(current_schema(), '')))`,
    `CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`,
  ],
  images: {
    commit: {
      kind: 'two statements',
      insert: `
  INSERT INTO images (key, object, content_type, size, sha256, version)
  VALUES ($1, $2, $3, $4, $5, nextval('image_versions'))
  ON CONFLICT (key) DO NOTHING
  RETURNING version, created_at, updated_at`,
      // The subquery locks the row first (FOR UPDATE: a concurrent commit of the key makes it
      // wait, then read the newest row), so the object it reports is the one this commit really
      // replaces, and the version, taken after the lock, is higher than the one it replaces.
      // PostgreSQL 15 has no `RETURNING old.*`, hence the self-join.
      replace: `
  UPDATE images AS i SET object = $2, content_type = $3, size = $4, sha256 = $5,
    version = nextval('image_versions'), updated_at = now()
  FROM (SELECT key, object FROM images WHERE key = $1 FOR UPDATE) AS old
  WHERE i.key = old.key
  RETURNING i.version, i.created_at, i.updated_at, old.object AS previous`,
    },
    // Two bare `DELETE FROM images` at once can deadlock: each locks the rows it deletes in the
    // order its scan meets them, and a row a commit moved (a new version elsewhere in the table)
    // is met early by a delete whose snapshot predates the move and late by one whose snapshot
    // does not. So delete-alls queue on a table lock first, in every process: SHARE UPDATE
    // EXCLUSIVE conflicts with itself but not with the ROW EXCLUSIVE that commits take, so
    // uploads go on (it also conflicts with VACUUM: an autovacuum in the way is cancelled). The
    // DELETE takes its snapshot once the lock is held, so it returns exactly the rows that the
    // delete-all before it left.
    deleteAllLock: 'LOCK TABLE images IN SHARE UPDATE EXCLUSIVE MODE',
    prefixPattern: (prefix) => `${escapeLike(prefix)}%`,
    containsPattern: (text) => `%${escapeLike(text)}%`,
    keyMatches: (n) => `key LIKE $${n} ESCAPE '\\'`,
  },
  pool: {
    upsertNode: `INSERT INTO pool_nodes (id, address, state, provider) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, state = excluded.state,
           provider = excluded.provider, updated_at = now()`,
    setNodeState: 'UPDATE pool_nodes SET state = $2, updated_at = now() WHERE id = $1',
    // jsonb travels as text both ways (`::text`), so pg never turns a JS array parameter into a
    // PostgreSQL array and the store JSON.parses what it reads.
    saveMap: `INSERT INTO pool_maps (version, map) VALUES ($1, $2::text::jsonb)
         ON CONFLICT (version) DO NOTHING RETURNING version`,
    currentMap: 'SELECT map::text AS map FROM pool_maps ORDER BY version DESC LIMIT 1',
    getSetting: 'SELECT value::text AS value FROM pool_settings WHERE name = $1',
    setSetting: `INSERT INTO pool_settings (name, value) VALUES ($1, $2::text::jsonb)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()`,
    addEvent: `INSERT INTO pool_events (kind, message, details) VALUES ($1, $2, $3::text::jsonb)
         RETURNING id, at, kind, message, details::text AS details`,
    eventColumns: 'id, at, kind, message, details::text AS details',
    registerFrontend: `INSERT INTO pool_frontends (url) VALUES ($1)
         ON CONFLICT (url) DO UPDATE SET last_seen = now()`,
    seenSince: 'WHERE last_seen >= $1::timestamptz',
    addSample: `INSERT INTO pool_samples
           (at, node_id, interval_ms, gets, hits, misses, puts, evictions, imports, items, bytes)
         VALUES ($1::timestamptz, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (at, node_id) DO NOTHING`,
    pruneSamples: 'DELETE FROM pool_samples WHERE at < $1::timestamptz',
    pruneEvents: 'DELETE FROM pool_events WHERE at < $1::timestamptz',
    pruneMaps: `DELETE FROM pool_maps WHERE version <
           (SELECT max(version) FROM pool_maps WHERE created_at < $1::timestamptz)`,
    pruneFrontends: 'DELETE FROM pool_frontends WHERE last_seen < $1::timestamptz',
    // Parameters: $1 from (ms), $2 bucketMs, $3 from, $4 to (times), $5 bucket count. A sample's
    // bucket is floor((at - from) / bucketMs), in numeric (exact: `at` has microseconds,
    // extract(epoch) is numeric), so a sample exactly on a boundary opens the later bucket.
    // Items and bytes are gauges: the node's last sample in the bucket counts, never a sum of its
    // samples. generate_series supplies the empty buckets.
    aggregate: `WITH s AS (
           SELECT node_id, at, gets, hits, misses, puts, evictions, items, bytes,
             floor((extract(epoch FROM at) * 1000 - $1::numeric) / $2::numeric)::int AS i
           FROM pool_samples
           WHERE at >= $3::timestamptz AND at < $4::timestamptz
         ),
         counts AS (
           SELECT i, count(DISTINCT node_id) AS nodes, sum(gets) AS gets, sum(hits) AS hits,
             sum(misses) AS misses, sum(puts) AS puts, sum(evictions) AS evictions
           FROM s GROUP BY i
         ),
         last AS (
           SELECT DISTINCT ON (i, node_id) i, items, bytes FROM s ORDER BY i, node_id, at DESC
         ),
         gauges AS (SELECT i, sum(items) AS items, sum(bytes) AS bytes FROM last GROUP BY i)
         SELECT b.i, coalesce(c.nodes, 0) AS nodes, coalesce(c.gets, 0) AS gets,
           coalesce(c.hits, 0) AS hits, coalesce(c.misses, 0) AS misses,
           coalesce(c.puts, 0) AS puts, coalesce(c.evictions, 0) AS evictions,
           coalesce(g.items, 0) AS items, coalesce(g.bytes, 0) AS bytes,
           coalesce((SELECT jsonb_array_length(m.map -> 'nodes') FROM pool_maps m
             WHERE m.created_at < to_timestamp(($1::numeric + (b.i + 1) * $2::numeric) / 1000)
             ORDER BY m.version DESC LIMIT 1), 0) AS pool_size
         FROM generate_series(0, $5::int - 1) AS b(i)
         LEFT JOIN counts c ON c.i = b.i
         LEFT JOIN gauges g ON g.i = b.i
         ORDER BY b.i`,
    windowTotals: `SELECT coalesce(sum(gets), 0) AS gets, coalesce(sum(hits), 0) AS hits,
           coalesce(sum(misses), 0) AS misses, count(*) AS samples,
           count(DISTINCT node_id) AS nodes
         FROM pool_samples WHERE at >= $1::timestamptz AND at < $2::timestamptz`,
  },
  maintenance: undefined,
};

const sqlite: Dialect = {
  time: (date) => date.getTime(),
  // No lock statement: the transaction's BEGIN IMMEDIATE already excludes other starters.
  migrationsPrologue: [
    `CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL DEFAULT (${SQLITE_NOW})
    ) STRICT`,
  ],
  images: {
    // One transaction, holding the write lock: the row read is the row replaced, and the
    // version bumped now is higher than any committed before, in any process.
    commit: {
      kind: 'transaction',
      previous: 'SELECT object FROM images WHERE key = $1',
      nextVersion: 'UPDATE image_versions SET value = value + 1 RETURNING value',
      upsert: `INSERT INTO images (key, object, content_type, size, sha256, version)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (key) DO UPDATE SET object = excluded.object,
    content_type = excluded.content_type, size = excluded.size, sha256 = excluded.sha256,
    version = excluded.version, updated_at = ${SQLITE_NOW}
  RETURNING version, created_at, updated_at`,
    },
    deleteAllLock: undefined,
    prefixPattern: (prefix) => `${escapeGlob(prefix)}*`,
    containsPattern: (text) => `*${escapeGlob(text)}*`,
    keyMatches: (n) => `key GLOB $${n}`,
  },
  pool: {
    upsertNode: `INSERT INTO pool_nodes (id, address, state, provider) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, state = excluded.state,
           provider = excluded.provider, updated_at = ${SQLITE_NOW}`,
    setNodeState: `UPDATE pool_nodes SET state = $2, updated_at = ${SQLITE_NOW} WHERE id = $1`,
    saveMap: `INSERT INTO pool_maps (version, map) VALUES ($1, $2)
         ON CONFLICT (version) DO NOTHING RETURNING version`,
    currentMap: 'SELECT map FROM pool_maps ORDER BY version DESC LIMIT 1',
    getSetting: 'SELECT value FROM pool_settings WHERE name = $1',
    setSetting: `INSERT INTO pool_settings (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = ${SQLITE_NOW}`,
    addEvent: `INSERT INTO pool_events (kind, message, details) VALUES ($1, $2, $3)
         RETURNING id, at, kind, message, details`,
    eventColumns: 'id, at, kind, message, details',
    registerFrontend: `INSERT INTO pool_frontends (url) VALUES ($1)
         ON CONFLICT (url) DO UPDATE SET last_seen = ${SQLITE_NOW}`,
    seenSince: 'WHERE last_seen >= $1',
    addSample: `INSERT INTO pool_samples
           (at, node_id, interval_ms, gets, hits, misses, puts, evictions, imports, items, bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (at, node_id) DO NOTHING`,
    pruneSamples: 'DELETE FROM pool_samples WHERE at < $1',
    pruneEvents: 'DELETE FROM pool_events WHERE at < $1',
    pruneMaps: `DELETE FROM pool_maps WHERE version <
           (SELECT max(version) FROM pool_maps WHERE created_at < $1)`,
    pruneFrontends: 'DELETE FROM pool_frontends WHERE last_seen < $1',
    // The same parameters and answer as PostgreSQL's. Times are whole ms, so the bucket is an
    // integer division (at >= from: it rounds down). A window function stands in for DISTINCT
    // ON, a recursive CTE for generate_series.
    aggregate: `WITH RECURSIVE b(i) AS (
           SELECT 0 WHERE $5 > 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < $5
         ),
         s AS (
           SELECT node_id, at, gets, hits, misses, puts, evictions, items, bytes,
             (at - $1) / $2 AS i
           FROM pool_samples
           WHERE at >= $3 AND at < $4
         ),
         counts AS (
           SELECT i, count(DISTINCT node_id) AS nodes, sum(gets) AS gets, sum(hits) AS hits,
             sum(misses) AS misses, sum(puts) AS puts, sum(evictions) AS evictions
           FROM s GROUP BY i
         ),
         last AS (
           SELECT i, items, bytes FROM (
             SELECT i, items, bytes,
               row_number() OVER (PARTITION BY i, node_id ORDER BY at DESC) AS n
             FROM s
           ) WHERE n = 1
         ),
         gauges AS (SELECT i, sum(items) AS items, sum(bytes) AS bytes FROM last GROUP BY i)
         SELECT b.i, coalesce(c.nodes, 0) AS nodes, coalesce(c.gets, 0) AS gets,
           coalesce(c.hits, 0) AS hits, coalesce(c.misses, 0) AS misses,
           coalesce(c.puts, 0) AS puts, coalesce(c.evictions, 0) AS evictions,
           coalesce(g.items, 0) AS items, coalesce(g.bytes, 0) AS bytes,
           coalesce((SELECT json_array_length(m.map, '$.nodes') FROM pool_maps m
             WHERE m.created_at < $1 + (b.i + 1) * $2
             ORDER BY m.version DESC LIMIT 1), 0) AS pool_size
         FROM b
         LEFT JOIN counts c ON c.i = b.i
         LEFT JOIN gauges g ON g.i = b.i
         ORDER BY b.i`,
    windowTotals: `SELECT coalesce(sum(gets), 0) AS gets, coalesce(sum(hits), 0) AS hits,
           coalesce(sum(misses), 0) AS misses, count(*) AS samples,
           count(DISTINCT node_id) AS nodes
         FROM pool_samples WHERE at >= $1 AND at < $2`,
  },
  maintenance: 'PRAGMA optimize',
};

export function dialectOf(driver: Pick<SqlDriver, 'kind'>): Dialect {
  return driver.kind === 'sqlite' ? sqlite : postgres;
}
