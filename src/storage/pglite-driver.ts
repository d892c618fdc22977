/**
 * SqlDriver over PGlite, PostgreSQL compiled to WebAssembly and run in this process: what
 * `pixpool up` uses so one machine needs no database server.
 *
 * In memory when `dataDir` is undefined (tests), persisted in that folder otherwise. The driver
 * is returned at once and starts the database in the background; the first query waits for it.
 * Limits: one connection, so transactions run one at a time (correct, not concurrent), and one
 * process at a time may open a given dataDir.
 *
 * Durability: PGlite 0.5 reaches the disk through Emscripten's NODEFS, whose fsync and fdatasync
 * do nothing (strace shows WAL pwrites at every commit, never an fsync). A committed row is in
 * the kernel's page cache when the query resolves, so it survives pixpool crashing or being
 * killed, but not a power cut or a kernel crash, which may lose the last commits (the objects
 * themselves are fsynced: such a loss leaves orphan objects, and keys back at an older version).
 * `relaxedDurability` changes nothing here (it only defers syncToFs, a no-op for NODEFS). Where
 * that matters, run on PostgreSQL (DATABASE_URL).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PGlite, type Results } from '@electric-sql/pglite';
import { once, type SqlDriver, type SqlResult } from './sql-driver.ts';

export interface PgliteDriverOptions {
  /** Folder for the database files (created if missing); in memory when undefined. */
  dataDir?: string | undefined;
  /**
   * A database to start from, as `PGlite.dumpDataDir()` makes it (a backup, or a test template:
   * loading one skips initdb, most of an in-memory start).
   */
  loadDataDir?: Blob | undefined;
}

function toResult<R>(result: Results<R>): SqlResult<R> {
  // PGlite's affectedRows counts changed rows only; a SELECT's count is its rows.
  return { rows: result.rows, rowCount: Math.max(result.affectedRows ?? 0, result.rows.length) };
}

export function createPgliteDriver(options: PgliteDriverOptions = {}): SqlDriver {
  // PGlite creates the data folder itself but not its parents.
  if (options.dataDir !== undefined) mkdirSync(dirname(options.dataDir), { recursive: true });
  const db = new PGlite(options.dataDir ?? 'memory://', {
    ...(options.loadDataDir && { loadDataDir: options.loadDataDir }),
  });
  // A start-up failure reaches whoever queries first; this only stops it being "unhandled".
  db.waitReady.catch(() => {});

  return {
    kind: 'pglite',

    async query<R>(text: string, params: readonly unknown[] = []) {
      return toResult(await db.query<R>(text, params as unknown[]));
    },

    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: async <R>(text: string, params: readonly unknown[] = []) =>
            toResult(await tx.query<R>(text, params as unknown[])),
        }),
      ),

    close: once(async () => {
      await db.waitReady.catch(() => {});
      if (!db.closed) await db.close();
    }),
  };
}
