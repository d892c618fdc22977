/**
 * SqlDriver over SQLite, through Node's built-in `node:sqlite` (DatabaseSync): the embedded
 * database `pixpool up` uses, so one machine needs no database server.
 *
 * A file when `path` is given (WAL mode: several processes may open it at once, readers never
 * wait for the writer), in memory otherwise (tests). Durability: `synchronous=FULL`, so a commit
 * has fsynced the WAL before its statement returns (NORMAL may lose the last commits on power
 * loss, which would un-acknowledge an upload).
 *
 * node:sqlite is synchronous, so every statement runs on the event loop; they are short. The
 * driver never lets SQLite wait for a lock (busy_timeout 0, which would block the whole process):
 * when another process holds the write lock (SQLITE_BUSY), it retries after a short jittered
 * pause, then gives up as `unavailable` (503). One connection per driver: a transaction and the
 * statements outside it take turns through one in-process queue, so a plain statement never
 * lands inside someone else's transaction. Do not call the driver's own query() from inside
 * transaction(): it would wait for the transaction it is part of.
 *
 * Placeholders: the stores write `$1`; SQLite reads `$1` as a *named* parameter bound by order
 * of first appearance, so each distinct text is rewritten once to `?1` (bound by number) and its
 * prepared statement kept. JS numbers that are whole are bound as integers (node:sqlite binds
 * every number as a double, which would make `a / b` a float division).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import pLimit from 'p-limit';
import { unavailable } from '../core/errors.ts';
import { once, type SqlDriver, type SqlExecutor, type SqlResult } from './sql-driver.ts';

export interface SqliteDriverOptions {
  /** The database file (its folder is created if missing); in memory when undefined. */
  path?: string | undefined;
  /** How long to keep retrying while another process holds the write lock (default 5000 ms). */
  busyTimeoutMs?: number | undefined;
}

const SQLITE_BUSY = 5;

/** Whether an error is SQLite's "another connection holds the lock" (any extended BUSY code). */
export function isBusy(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' && (errcode & 0xff) === SQLITE_BUSY;
}

/**
 * `$n` → `?n`, outside string literals, quoted identifiers and comments. `$` followed by digits
 * is never anything else in the stores' SQL.
 */
export function numberedPlaceholders(text: string): string {
  return text.replace(
    /('(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\/)|\$(\d+)/g,
    (match, skipped: string | undefined, n: string | undefined) =>
      skipped === undefined ? `?${n}` : match,
  );
}

function bindable(value: unknown): SQLInputValue {
  if (value === undefined) return null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  return value as SQLInputValue;
}

export function createSqliteDriver(options: SqliteDriverOptions = {}): SqlDriver {
  const location = options.path ?? ':memory:';
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  // One turn at a time on the one connection: a whole transaction, or one plain statement.
  const turns = pLimit(1);
  /** Prepared statements by text, each with whether it hands back rows (asked once) */
  const statements = new LRUCache<string, { statement: StatementSync; rows: boolean }>({
    max: 256,
  });
  let db: DatabaseSync | undefined;
  let closed = false;

  /** Runs `step` (synchronous), retrying it while the database is locked by another process. */
  async function retryBusy<T>(step: () => T): Promise<T> {
    const started = Date.now();
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      try {
        return step();
      } catch (error) {
        if (!isBusy(error)) throw error;
        if (Date.now() - started >= busyTimeoutMs) {
          throw unavailable(
            'Image storage is busy: its database stays locked. Try again shortly.',
            {
              detail: `The metadata database (SQLite ${location}) stayed locked by another process for ${busyTimeoutMs} ms.`,
              cause: error,
            },
          );
        }
        await sleep(pause * (0.5 + Math.random()));
      }
    }
  }

  let opening: Promise<DatabaseSync> | undefined;
  function open(): Promise<DatabaseSync> {
    opening ??= (async () => {
      if (options.path !== undefined) mkdirSync(dirname(options.path), { recursive: true });
      const connection = new DatabaseSync(location, { timeout: 0, readBigInts: false });
      try {
        // Switching to WAL takes a lock a concurrent starter may hold for a moment.
        await retryBusy(() => connection.exec('PRAGMA journal_mode = WAL'));
        connection.exec('PRAGMA synchronous = FULL');
        connection.exec('PRAGMA busy_timeout = 0');
      } catch (error) {
        connection.close();
        throw error;
      }
      db = connection;
      return connection;
    })();
    // A failed open is retried by the next statement rather than remembered forever.
    opening.catch(() => {
      opening = undefined;
    });
    return opening;
  }

  function prepare(connection: DatabaseSync, text: string) {
    let prepared = statements.get(text);
    if (!prepared) {
      const statement = connection.prepare(numberedPlaceholders(text));
      statement.setReadBigInts(false);
      // Statements with result columns (SELECT, RETURNING, most PRAGMAs) hand back their rows.
      prepared = { statement, rows: statement.columns().length > 0 };
      statements.set(text, prepared);
    }
    return prepared;
  }

  function execute<R>(
    connection: DatabaseSync,
    text: string,
    params: readonly unknown[],
  ): SqlResult<R> {
    const { statement, rows: hasRows } = prepare(connection, text);
    const values = params.map(bindable);
    if (hasRows) {
      const rows = statement.all(...values) as R[];
      return { rows, rowCount: rows.length };
    }
    const { changes } = statement.run(...values);
    return { rows: [], rowCount: Number(changes) };
  }

  const live = async () => {
    if (closed) throw new Error(`the SQLite database ${location} is closed`);
    return open();
  };

  return {
    kind: 'sqlite',

    query<R>(text: string, params: readonly unknown[] = []) {
      // No turn running or waiting, so no transaction is open on the connection: the statement
      // runs now, as its turn would, without the queue's promises (every miss reads a row). A
      // BUSY goes to the queue, which retries it.
      if (db && !closed && turns.activeCount === 0 && turns.pendingCount === 0) {
        try {
          return Promise.resolve(execute<R>(db, text, params));
        } catch (error) {
          if (!isBusy(error)) return Promise.reject(error);
        }
      }
      return turns(async () => {
        const connection = await live();
        return retryBusy(() => execute<R>(connection, text, params));
      });
    },

    transaction(fn) {
      return turns(async () => {
        const connection = await live();
        // IMMEDIATE takes the write lock now, so the transaction never has to upgrade a read
        // lock later (which can fail with BUSY halfway through, or deadlock between processes).
        await retryBusy(() => connection.exec('BEGIN IMMEDIATE'));
        let active = true;
        const tx: SqlExecutor = {
          async query<R>(text: string, params: readonly unknown[] = []) {
            if (!active) throw new Error('this transaction has already ended');
            // Inside a transaction a BUSY is not retried statement by statement (SQLite's
            // advice); holding the write lock, there should be none.
            return execute<R>(connection, text, params);
          },
        };
        try {
          const result = await fn(tx);
          await retryBusy(() => connection.exec('COMMIT'));
          return result;
        } catch (error) {
          // Some errors (disk full, I/O) have rolled the transaction back already.
          if (connection.isTransaction) connection.exec('ROLLBACK');
          throw error;
        } finally {
          active = false;
        }
      });
    },

    close: once(async () => {
      await turns(async () => {
        closed = true;
        const connection = db ?? (await opening?.catch(() => undefined));
        if (!connection?.isOpen) return;
        statements.clear();
        // Refreshes the query planner's statistics where they are stale; cheap when nothing is.
        try {
          connection.exec('PRAGMA optimize');
        } catch {}
        connection.close();
      });
    }),
  };
}
