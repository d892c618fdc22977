/**
 * The smallest SQL surface pixpool's stores need, so one set of stores runs on PostgreSQL (pg)
 * and on the embedded SQLite (node:sqlite): parameterised queries, transactions, close.
 *
 * Both drivers take `$1`-style parameters (the SQLite driver renumbers them for SQLite). Where
 * the two dialects differ, the stores take the statement for `kind` from src/storage/dialect.ts
 * (the schema's two versions sit side by side in migrations.ts). Other differences a store can
 * notice: value types (int8 arrives as a string from pg and as a number from SQLite: use
 * toSafeInteger; timestamps are Dates from pg and milliseconds from SQLite) and concurrency
 * (SQLite is one connection per process: its transactions run one after another, and across
 * processes one writer at a time).
 */

export interface SqlResult<R> {
  rows: R[];
  /** Rows returned, inserted, updated or deleted by the statement. */
  rowCount: number;
}

export interface SqlExecutor {
  /** One statement with `$1`-style parameters. */
  query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<SqlResult<R>>;
}

export interface SqlDriver extends SqlExecutor {
  readonly kind: 'postgres' | 'sqlite';
  /**
   * Runs `fn` in one transaction, committed when it resolves, rolled back when it throws:
   * READ COMMITTED on PostgreSQL; on SQLite serializable (it holds the write lock throughout).
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Releases connections; safe to call twice. */
  close(): Promise<void>;
}

/** An int8/bigint column value as a JS number; throws when it is not a safe integer. */
export function toSafeInteger(value: unknown, column: string): number {
  const n = typeof value === 'string' || typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new RangeError(`${column} is not a safe integer: ${String(value)}`);
  }
  return n;
}

/** Memoises a close function so a second call waits for the first instead of failing. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= fn();
    return closing;
  };
}
