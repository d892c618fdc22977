/**
 * The smallest SQL surface pixpool's stores need, so one set of queries runs on PostgreSQL (pg)
 * and on the embedded PostgreSQL (PGlite): parameterised queries, transactions, close.
 *
 * Both drivers speak the same dialect (PGlite is PostgreSQL compiled to WebAssembly), so there is
 * no translation layer; the differences a store can notice are value types (int8 arrives as a
 * string from pg and as a number or bigint from PGlite: use toSafeInteger) and concurrency
 * (PGlite is one connection: its transactions run one after another).
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
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction (READ COMMITTED), committed when it resolves, rolled back when it throws. */
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
