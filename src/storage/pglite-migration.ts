/**
 * Moves a data folder written before pixpool used SQLite (its metadata in a PGlite database,
 * `<dataDir>/db/`) into `<dataDir>/pixpool.db`, once, when storage opens.
 *
 * Every row is copied: images with their versions (the new version counter starts above the old
 * sequence, so caches never see a version go back), pool nodes, maps, settings, events (ids
 * kept), frontends and statistics samples. The copy is one SQLite transaction in a temp file,
 * renamed to pixpool.db only once complete, and only then is `db/` renamed to
 * `db.pglite-migrated/`: a crash at any point leaves the old folder as it was and no half
 * database (a leftover temp file is thrown away by the next attempt).
 *
 * Several processes may start on one folder at once (`pixpool up` runs several): one migrates,
 * holding `<dataDir>/migrate.lock` (created exclusively, holding its pid), the others wait for
 * it and then open the result. A lock whose process is gone (a crash mid-migration) is taken
 * over. PGlite is loaded only here, and only when there is something to migrate.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { applyMigrations, migrations } from './migrations.ts';
import { once, type SqlDriver, type SqlExecutor, type SqlResult } from './sql-driver.ts';
import { createSqliteDriver } from './sqlite-driver.ts';

/** The folder name PGlite data lived in, and what it is renamed to once migrated. */
export const PGLITE_DIR = 'db';
export const MIGRATED_PGLITE_DIR = 'db.pglite-migrated';

/**
 * A SqlDriver over a PGlite data folder, as pixpool used before SQLite. Its kind is 'postgres':
 * PGlite is PostgreSQL (compiled to WebAssembly), so the stores' PostgreSQL statements run on it.
 */
export async function openPgliteDriver(dir: string): Promise<SqlDriver> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create(dir);
  const toResult = <R>(result: { rows: R[]; affectedRows?: number }): SqlResult<R> => ({
    rows: result.rows,
    rowCount: Math.max(result.affectedRows ?? 0, result.rows.length),
  });
  return {
    kind: 'postgres',
    query: async <R>(text: string, params: readonly unknown[] = []) =>
      toResult(await db.query<R>(text, params as unknown[])),
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: async <R>(text: string, params: readonly unknown[] = []) =>
            toResult(await tx.query<R>(text, params as unknown[])),
        }),
      ),
    close: once(async () => {
      if (!db.closed) await db.close();
    }),
  };
}

export interface MigrationCounts {
  images: number;
  nodes: number;
  maps: number;
  settings: number;
  events: number;
  frontends: number;
  samples: number;
}

const PAGE = 10_000;
const ms = (value: unknown) => (value instanceof Date ? value.getTime() : Number(value));

type Row = Record<string, unknown>;

/**
 * Copies one table page by page: `read` answers the page after `last` (or after `offset` rows)
 * in a stable order.
 */
async function copy(
  read: (offset: number, last: Row | undefined) => Promise<Row[]>,
  write: (row: Row) => Promise<unknown>,
): Promise<number> {
  let copied = 0;
  let last: Row | undefined;
  for (;;) {
    const rows = await read(copied, last);
    for (const row of rows) await write(row);
    copied += rows.length;
    last = rows.at(-1);
    if (rows.length < PAGE) return copied;
  }
}

async function copyAll(from: SqlDriver, to: SqlExecutor): Promise<MigrationCounts> {
  // Small tables page by offset; images, possibly millions of rows, by key.
  const page = (sql: string) => async (offset: number) =>
    (await from.query<Row>(`${sql} LIMIT ${PAGE} OFFSET $1`, [offset])).rows;
  const images = await copy(
    async (_, last) =>
      (
        await from.query<Row>(
          `SELECT key, object, content_type, size, sha256, version, created_at, updated_at
           FROM images WHERE key > $1 ORDER BY key LIMIT ${PAGE}`,
          [last?.key ?? ''],
        )
      ).rows,
    (r) =>
      to.query(
        `INSERT INTO images (key, object, content_type, size, sha256, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          r.key,
          r.object,
          r.content_type,
          r.size,
          r.sha256,
          r.version,
          ms(r.created_at),
          ms(r.updated_at),
        ],
      ),
  );
  // Above both the sequence and every row: a new commit's version beats every old one.
  const { rows } = await from.query<{ last: unknown; highest: unknown }>(
    `SELECT (SELECT last_value FROM image_versions) AS last,
       (SELECT coalesce(max(version), 0) FROM images) AS highest`,
  );
  const counter = Math.max(Number(rows[0]?.last ?? 0), Number(rows[0]?.highest ?? 0));
  await to.query('UPDATE image_versions SET value = $1', [counter]);

  const nodes = await copy(
    page('SELECT id, address, state, provider, added_at, updated_at FROM pool_nodes ORDER BY id'),
    (r) =>
      to.query(
        `INSERT INTO pool_nodes (id, address, state, provider, added_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [r.id, r.address, r.state, r.provider, ms(r.added_at), ms(r.updated_at)],
      ),
  );
  const maps = await copy(
    page('SELECT version, map::text AS map, created_at FROM pool_maps ORDER BY version'),
    (r) =>
      to.query('INSERT INTO pool_maps (version, map, created_at) VALUES ($1, $2, $3)', [
        r.version,
        r.map,
        ms(r.created_at),
      ]),
  );
  const settings = await copy(
    page('SELECT name, value::text AS value, updated_at FROM pool_settings ORDER BY name'),
    (r) =>
      to.query('INSERT INTO pool_settings (name, value, updated_at) VALUES ($1, $2, $3)', [
        r.name,
        r.value,
        ms(r.updated_at),
      ]),
  );
  // Ids kept; AUTOINCREMENT then continues above the highest.
  const events = await copy(
    page('SELECT id, at, kind, message, details::text AS details FROM pool_events ORDER BY id'),
    (r) =>
      to.query(
        'INSERT INTO pool_events (id, at, kind, message, details) VALUES ($1, $2, $3, $4, $5)',
        [r.id, ms(r.at), r.kind, r.message, r.details],
      ),
  );
  const frontends = await copy(
    page('SELECT url, first_seen, last_seen FROM pool_frontends ORDER BY url'),
    (r) =>
      to.query('INSERT INTO pool_frontends (url, first_seen, last_seen) VALUES ($1, $2, $3)', [
        r.url,
        ms(r.first_seen),
        ms(r.last_seen),
      ]),
  );
  const samples = await copy(
    page(
      `SELECT at, node_id, interval_ms, gets, hits, misses, puts, evictions, imports, items, bytes
       FROM pool_samples ORDER BY at, node_id`,
    ),
    (r) =>
      to.query(
        `INSERT INTO pool_samples
           (at, node_id, interval_ms, gets, hits, misses, puts, evictions, imports, items, bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (at, node_id) DO NOTHING`,
        [
          ms(r.at),
          r.node_id,
          ...['interval_ms', 'gets', 'hits', 'misses', 'puts', 'evictions', 'imports'].map(
            (c) => r[c],
          ),
          r.items,
          r.bytes,
        ],
      ),
  );
  return { images, nodes, maps, settings, events, frontends, samples };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dataDir>/migrate.lock`, or waits while another live process holds it. Resolves with
 * a release function, or undefined when `done()` became true while waiting.
 */
async function lock(
  path: string,
  done: () => boolean,
  timeoutMs: number,
): Promise<(() => Promise<void>) | undefined> {
  const started = Date.now();
  for (;;) {
    if (done()) return undefined;
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => unlink(path).catch(() => {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = Number.NaN;
    let age = 0;
    try {
      holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
      age = Date.now() - (await stat(path)).mtimeMs;
    } catch {}
    // No pid yet is a lock being written right now, unless it has stayed so for long.
    const stale = Number.isInteger(holder) ? !alive(holder) : age > 10_000;
    if (stale) {
      await unlink(path).catch(() => {});
      continue;
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `${path} is held by process ${holder}, migrating the PGlite database; still there after ${timeoutMs / 1000} s`,
      );
    }
    await sleep(100);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface PgliteMigrationOptions {
  dataDir: string;
  /** Where the SQLite database goes (`<dataDir>/pixpool.db`). */
  dbPath: string;
  /** Told one line when a migration happened. */
  log: (line: string) => void;
  /** How long to wait for another process's migration (default 10 minutes). */
  waitMs?: number | undefined;
}

/**
 * Migrates `<dataDir>/db/` when there is no SQLite database yet and it holds a PGlite database;
 * otherwise does nothing. Returns the counts when this call migrated.
 */
export async function migratePgliteFolder(
  options: PgliteMigrationOptions,
): Promise<MigrationCounts | undefined> {
  const { dataDir, dbPath } = options;
  const oldDir = join(dataDir, PGLITE_DIR);
  const due = () => !existsSync(dbPath) && existsSync(join(oldDir, 'PG_VERSION'));
  if (!due()) return undefined;
  const release = await lock(
    join(dataDir, 'migrate.lock'),
    () => !due(),
    options.waitMs ?? 600_000,
  );
  if (!release) return undefined;
  try {
    if (!due()) return undefined;
    const temp = `${dbPath}.migrating`;
    for (const suffix of ['', '-wal', '-shm', '-journal'])
      await rm(`${temp}${suffix}`, { force: true });

    const source = await openPgliteDriver(oldDir);
    let counts: MigrationCounts;
    try {
      const { rows } = await source.query<{ version: unknown }>(
        'SELECT coalesce(max(version), 0) AS version FROM schema_migrations',
      );
      if (Number(rows[0]?.version) > migrations.length) {
        throw new Error(`${oldDir} was written by a newer pixpool (schema ${rows[0]?.version})`);
      }
      const target = createSqliteDriver({ path: temp });
      try {
        await applyMigrations(target);
        counts = await target.transaction((tx) => copyAll(source, tx));
        // Back to a rollback journal: everything is in the one file that gets renamed.
        await target.query('PRAGMA journal_mode = DELETE');
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
    await rename(temp, dbPath);
    fsyncDir(dataDir);
    let kept = join(dataDir, MIGRATED_PGLITE_DIR);
    if (existsSync(kept)) kept = `${kept}-${Date.now()}`;
    await rename(oldDir, kept);
    const counted = Object.entries(counts)
      .map(([table, n]) => `${n} ${table}`)
      .join(', ');
    options.log(
      `pixpool: moved the PGlite database in ${oldDir} to SQLite in ${dbPath} (${counted}); the old folder is kept as ${kept}`,
    );
    return counts;
  } finally {
    await release();
  }
}
