/**
 * The database schema as an ordered, append-only list of migrations, each in PostgreSQL's and in
 * SQLite's words side by side (the same tables, columns and checks; SQLite's types: INTEGER
 * milliseconds for times, TEXT holding JSON for jsonb), applied at start by whichever process
 * opens the database first.
 *
 * All pending migrations run in one transaction, so concurrent starters apply each migration once
 * (the others wait, then find nothing to do): on PostgreSQL it holds an advisory lock for the
 * current schema, on SQLite the database's write lock (BEGIN IMMEDIATE). A failing migration
 * leaves nothing half-applied (DDL is transactional on both). Never edit or reorder a shipped
 * migration: add a new one with the next version.
 */
import { dialectOf, SQLITE_NOW } from './dialect.ts';
import type { SqlDriver } from './sql-driver.ts';

export interface Migration {
  version: number;
  name: string;
  /** One statement per entry (a parameterised query is one statement). */
  postgres: readonly string[];
  sqlite: readonly string[];
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'images',
    postgres: [
      // One global sequence, not a per-key counter: a key's version must keep growing even after
      // delete-all and a re-upload, or a cache still holding the old image would think it newer.
      'CREATE SEQUENCE image_versions AS bigint',
      // COLLATE "C": keys sort by code point on every server whatever its locale, so pages are
      // stable, and LIKE 'prefix%' can use the primary key's index.
      `CREATE TABLE images (
        key text COLLATE "C" PRIMARY KEY,
        object text NOT NULL UNIQUE,
        content_type text NOT NULL,
        size bigint NOT NULL CHECK (size >= 0),
        sha256 text NOT NULL,
        version bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
    sqlite: [
      // The sequence's stand-in: one row, bumped by each commit inside its transaction.
      `CREATE TABLE image_versions (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
      ) STRICT`,
      'INSERT INTO image_versions (id, value) VALUES (1, 0)',
      // BINARY, SQLite's default collation, compares UTF-8 bytes: code point order, as "C".
      // WITHOUT ROWID keeps the rows in key order, which is how they are listed.
      `CREATE TABLE images (
        key TEXT PRIMARY KEY,
        object TEXT NOT NULL UNIQUE,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL CHECK (size >= 0),
        sha256 TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (${SQLITE_NOW}),
        updated_at INTEGER NOT NULL DEFAULT (${SQLITE_NOW})
      ) STRICT, WITHOUT ROWID`,
    ],
  },
  {
    version: 2,
    name: 'pool',
    postgres: [
      // The manager's registry of cache nodes. Rows are kept after a node stops (state
      // 'stopped'), so the dashboard and the statistics can still name it.
      `CREATE TABLE pool_nodes (
        id text PRIMARY KEY,
        address text NOT NULL,
        state text NOT NULL
          CHECK (state IN ('starting', 'active', 'draining', 'stopped', 'failed')),
        provider text NOT NULL,
        added_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      // Every published map, never overwritten: the primary key refuses a second map with the
      // same version, which is what stops two managers publishing different maps as one version.
      `CREATE TABLE pool_maps (
        version bigint PRIMARY KEY CHECK (version > 0),
        map jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE pool_settings (
        name text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      // The id, not the time, orders events: two events in one millisecond keep their order.
      `CREATE TABLE pool_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        kind text NOT NULL,
        message text NOT NULL,
        details jsonb
      )`,
      'CREATE INDEX pool_events_kind_id ON pool_events (kind, id)',
      `CREATE TABLE pool_frontends (
        url text PRIMARY KEY,
        first_seen timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now()
      )`,
      // One row per 5-s node sample. The key (at, node_id) serves the time-range scans (its
      // leading column is at) and makes a re-sent sample a no-op instead of a double count.
      // No foreign key to pool_nodes: a sample may arrive before its node is registered, and
      // statistics outlive the node row's changes.
      `CREATE TABLE pool_samples (
        at timestamptz NOT NULL,
        node_id text NOT NULL,
        interval_ms bigint NOT NULL CHECK (interval_ms >= 0),
        gets bigint NOT NULL CHECK (gets >= 0),
        hits bigint NOT NULL CHECK (hits >= 0),
        misses bigint NOT NULL CHECK (misses >= 0),
        puts bigint NOT NULL CHECK (puts >= 0),
        evictions bigint NOT NULL CHECK (evictions >= 0),
        imports bigint NOT NULL CHECK (imports >= 0),
        items bigint NOT NULL CHECK (items >= 0),
        bytes bigint NOT NULL CHECK (bytes >= 0),
        PRIMARY KEY (at, node_id)
      )`,
    ],
    sqlite: [
      `CREATE TABLE pool_nodes (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        state TEXT NOT NULL
          CHECK (state IN ('starting', 'active', 'draining', 'stopped', 'failed')),
        provider TEXT NOT NULL,
        added_at INTEGER NOT NULL DEFAULT (${SQLITE_NOW}),
        updated_at INTEGER NOT NULL DEFAULT (${SQLITE_NOW})
      ) STRICT`,
      `CREATE TABLE pool_maps (
        version INTEGER PRIMARY KEY CHECK (version > 0),
        map TEXT NOT NULL CHECK (json_valid(map)),
        created_at INTEGER NOT NULL DEFAULT (${SQLITE_NOW})
      ) STRICT`,
      `CREATE TABLE pool_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL CHECK (json_valid(value)),
        updated_at INTEGER NOT NULL DEFAULT (${SQLITE_NOW})
      ) STRICT`,
      // AUTOINCREMENT: like an identity, an id is never handed out twice, even after pruning.
      `CREATE TABLE pool_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL DEFAULT (${SQLITE_NOW}),
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        details TEXT CHECK (details IS NULL OR json_valid(details))
      ) STRICT`,
      'CREATE INDEX pool_events_kind_id ON pool_events (kind, id)',
      `CREATE TABLE pool_frontends (
        url TEXT PRIMARY KEY,
        first_seen INTEGER NOT NULL DEFAULT (${SQLITE_NOW}),
        last_seen INTEGER NOT NULL DEFAULT (${SQLITE_NOW})
      ) STRICT`,
      `CREATE TABLE pool_samples (
        at INTEGER NOT NULL,
        node_id TEXT NOT NULL,
        interval_ms INTEGER NOT NULL CHECK (interval_ms >= 0),
        gets INTEGER NOT NULL CHECK (gets >= 0),
        hits INTEGER NOT NULL CHECK (hits >= 0),
        misses INTEGER NOT NULL CHECK (misses >= 0),
        puts INTEGER NOT NULL CHECK (puts >= 0),
        evictions INTEGER NOT NULL CHECK (evictions >= 0),
        imports INTEGER NOT NULL CHECK (imports >= 0),
        items INTEGER NOT NULL CHECK (items >= 0),
        bytes INTEGER NOT NULL CHECK (bytes >= 0),
        PRIMARY KEY (at, node_id)
      ) STRICT, WITHOUT ROWID`,
    ],
  },
];

/** Applies the migrations not yet recorded; returns the versions it applied (often none). */
export async function applyMigrations(
  driver: SqlDriver,
  list: readonly Migration[] = migrations,
): Promise<number[]> {
  list.forEach((migration, i) => {
    if (migration.version !== i + 1) {
      throw new TypeError(`migration ${migration.name} must have version ${i + 1}`);
    }
  });
  const dialect = dialectOf(driver);
  return driver.transaction(async (tx) => {
    for (const statement of dialect.migrationsPrologue) await tx.query(statement);
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((row) => Number(row.version)));
    const applied: number[] = [];
    for (const migration of list) {
      if (done.has(migration.version)) continue;
      for (const statement of migration[driver.kind]) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    return applied;
  });
}

/**
 * What a store does before it serves: apply pending migrations; if that fails, close the driver
 * when the store was to own it (a shared driver is its opener's to close), and rethrow.
 */
export async function prepareStore(driver: SqlDriver, ownsDriver: boolean): Promise<void> {
  try {
    await applyMigrations(driver);
  } catch (error) {
    if (ownsDriver) await driver.close().catch(() => {});
    throw error;
  }
}
