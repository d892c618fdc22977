/**
 * SqlDriver over a real PostgreSQL (RDS or local), through a `pg` connection pool.
 *
 * Connecting is lazy: creating the driver never touches the network, so a service can start
 * while the database is down and recover without a restart. Losing the database (refused or
 * dropped connections, connect timeouts, server shutting down) becomes `unavailable` (503): its
 * message names no server, its detail (for the log) names it but never the password; SQL errors
 * stay pg's errors.
 *
 * `schema` puts every connection's search_path on that schema (created if missing), which lets
 * tests isolate themselves in a throw-away schema and lets deployments share a database.
 */
import pg from 'pg';
import { unavailable } from '../core/errors.ts';
import { NETWORK_ERROR_CODES } from './outage.ts';
import { once, type SqlDriver, type SqlExecutor, type SqlResult } from './sql-driver.ts';

export interface PgDriverOptions {
  /** `postgres://user:password@host:port/database`. */
  connectionString: string;
  /** A plain lower-case identifier (`[a-z_][a-z0-9_]*`); created when missing. */
  schema?: string | undefined;
  /** Pool size (default 10). */
  maxConnections?: number | undefined;
  /** How long to wait for a connection before answering 503 (default 5000 ms). */
  connectTimeoutMs?: number | undefined;
  /**
   * How long one statement may wait for its answer before it fails as 503 (default 30000 ms;
   * 0 = forever). Without it a black-holed connection (the peer gone without a FIN or RST) would
   * hold a request until TCP gives up, minutes later. Client-side: the server may still finish.
   */
  queryTimeoutMs?: number | undefined;
  /** Told about errors on idle connections (the pool drops such a connection by itself). */
  onIdleError?: ((error: Error) => void) | undefined;
}

// SQLSTATEs for "the server is not there for you right now", beyond class 08 (connection).
const outageStates = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
// pg's own messages for a lost or unreachable server (its errors carry no code for these).
const droppedConnection =
  /timeout exceeded when trying to connect|Connection terminated|Query read timeout|not queryable/i;

/** "PostgreSQL at host:port/database", for messages: never the user or the password. */
export function describePgServer(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `PostgreSQL at ${url.host}${url.pathname}`;
  } catch {
    return 'PostgreSQL';
  }
}

/**
 * Pool settings that start every connection with its search_path on `schema` (a startup
 * parameter, so no extra round trip and no race with the first query). Options already in the
 * URL would override the pool's own, so they are merged there instead.
 */
function connectionSettings(connectionString: string, schema: string | undefined) {
  if (schema === undefined) return { connectionString };
  const setting = `-c search_path=${schema}`;
  let url: URL | undefined;
  try {
    url = new URL(connectionString);
  } catch {}
  const existing = url?.searchParams.get('options');
  if (url && existing) {
    url.searchParams.set('options', `${existing} ${setting}`);
    return { connectionString: url.toString() };
  }
  return { connectionString, options: setting };
}

export function createPgDriver(options: PgDriverOptions): SqlDriver {
  const { schema } = options;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new TypeError(
      `schema must be a plain lower-case identifier, not ${JSON.stringify(schema)}`,
    );
  }
  const server = describePgServer(options.connectionString);
  const queryTimeoutMs = options.queryTimeoutMs ?? 30_000;
  const urlSets = (setting: string) => {
    try {
      return (new URL(options.connectionString).searchParams.get('options') ?? '').includes(
        setting,
      );
    } catch {
      return false;
    }
  };
  const pool = new pg.Pool({
    ...connectionSettings(options.connectionString, schema),
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    query_timeout: queryTimeoutMs,
    // The same bound on the server's side: a statement, or a transaction whose client vanished
    // mid-way (holding row locks), ends there too instead of committing or blocking much later.
    // Settings the URL's own `options` make win (a startup parameter would override them).
    ...(queryTimeoutMs > 0 &&
      !urlSets('statement_timeout') && { statement_timeout: queryTimeoutMs }),
    ...(queryTimeoutMs > 0 &&
      !urlSets('idle_in_transaction_session_timeout') && {
        idle_in_transaction_session_timeout: queryTimeoutMs,
      }),
    idleTimeoutMillis: 30_000,
    // TCP keepalive notices a vanished server on idle connections without waiting for a query.
    keepAlive: true,
  });
  // Without a listener an idle connection's error would crash the process.
  pool.on('error', (error) => options.onIdleError?.(error));

  function translate(error: unknown): unknown {
    const e = (error ?? {}) as { code?: string; message?: string };
    const code = e.code ?? '';
    const lost =
      NETWORK_ERROR_CODES.has(code) ||
      code.startsWith('08') ||
      outageStates.has(code) ||
      droppedConnection.test(e.message ?? '');
    if (!lost) return error;
    // pg's message may name the host too: both stay in the detail, for the log.
    return unavailable(
      'Image storage is unavailable: its database cannot be reached. Try again shortly.',
      {
        detail: `The metadata database (${server}) is unavailable: ${e.message || code}.`,
        cause: error,
      },
    );
  }

  let schemaReady: Promise<void> | undefined;
  function ensureSchema(): Promise<void> {
    if (schema === undefined) return Promise.resolve();
    schemaReady ??= (async () => {
      const found = await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (found.rowCount) return;
      try {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (error) {
        // Two starters creating it at once: the loser sees a duplicate, which is success.
        const code = (error as { code?: string }).code;
        if (code !== '42P06' && code !== '23505') throw error;
      }
    })().catch((error) => {
      schemaReady = undefined;
      throw translate(error);
    });
    return schemaReady;
  }

  async function run<R>(
    on: pg.Pool | pg.PoolClient,
    text: string,
    params: readonly unknown[] = [],
  ): Promise<SqlResult<R>> {
    try {
      const result = await on.query(text, params as unknown[]);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
    } catch (error) {
      throw translate(error);
    }
  }

  return {
    kind: 'postgres',

    async query<R>(text: string, params?: readonly unknown[]) {
      await ensureSchema();
      return run<R>(pool, text, params);
    },

    async transaction(fn) {
      await ensureSchema();
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw translate(error);
      }
      let broken: Error | undefined;
      // A checked-out client has no pool listener: a connection lost mid-transaction would emit
      // an unhandled 'error' and crash the process. The failing query rejects by itself.
      const onError = (error: Error) => {
        broken = error;
      };
      client.on('error', onError);
      try {
        await run(client, 'BEGIN');
        const tx: SqlExecutor = { query: (text, params) => run(client, text, params) };
        const result = await fn(tx);
        await run(client, 'COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken ??= rollbackError;
        });
        throw error;
      } finally {
        client.removeListener('error', onError);
        // A connection that failed or could not even roll back is destroyed instead of reused.
        client.release(broken);
      }
    },

    close: once(() => pool.end()),
  };
}
