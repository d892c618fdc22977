/**
 * MetadataStore: the key → object mapping, one SQL implementation over either driver
 * (PostgreSQL or PGlite).
 *
 * Every commit takes its version from one global sequence, so a key's versions only grow, even
 * across delete-all (caches compare versions to refuse stale fills). A commit returns the object
 * it replaced exactly once, even when uploads of one key race: it inserts the row (the primary
 * key deciding between racing inserts) or replaces it with a statement that locks the row, never
 * the table; each statement is atomic alone, so a commit is one or two round trips without an
 * explicit transaction. The store owns its driver (close() closes it) unless created with
 * `ownsDriver: false`, for a driver shared with other stores.
 *
 * Limits: listKeys pages by key (keyset), so a page is consistent with its neighbours only as
 * far as concurrent uploads allow; keys sort by code point (the column is COLLATE "C").
 */
import { prepareStore } from './migrations.ts';
import { type SqlDriver, type SqlExecutor, toSafeInteger } from './sql-driver.ts';

export interface ImageRecord {
  key: string;
  object: string;
  contentType: string;
  size: number;
  sha256: string;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ImageUpload {
  key: string;
  object: string;
  contentType: string;
  size: number;
  sha256: string;
}

export interface KeyFilter {
  /** Keys starting with this text, taken literally (`%` and `_` are not wildcards). */
  prefix?: string | undefined;
  /** Keys containing this text, taken literally. */
  contains?: string | undefined;
}

export interface MetadataStore {
  get(key: string): Promise<ImageRecord | undefined>;
  /** Insert or replace the key's row; returns the new row and the object it replaced (to delete after). */
  commit(upload: ImageUpload): Promise<{ record: ImageRecord; previousObject: string | undefined }>;
  /** Keyset pagination ordered by key; `after` is the last key of the previous page. */
  listKeys(
    options: KeyFilter & { limit: number; after?: string | undefined },
  ): Promise<{ keys: string[]; next: string | undefined }>;
  countKeys(options?: KeyFilter): Promise<number>;
  /** Every object name a row points to (for garbage collection later). */
  referencedObjects(): AsyncIterable<string>;
  /**
   * Deletes every row; returns how many, and the objects they pointed to (to delete after).
   * Delete-alls from any number of processes run one after another; commits go on meanwhile.
   */
  deleteAll(): Promise<{ rows: number; objects: string[] }>;
  /**
   * Housekeeping a database server would do by itself: on PGlite, VACUUM (ANALYZE) of the images
   * table when it is due (see maintainEmbedded); nothing on PostgreSQL (autovacuum). Returns
   * whether it vacuumed.
   */
  maintain(): Promise<boolean>;
  close(): Promise<void>;
}

export const MAX_LIST_LIMIT = 1000;
const COLUMNS = 'key, object, content_type, size, sha256, version, created_at, updated_at';

interface ImageRow {
  key: string;
  object: string;
  content_type: string;
  size: unknown;
  sha256: string;
  version: unknown;
  created_at: Date | string;
  updated_at: Date | string;
}

const toRecord = (row: ImageRow): ImageRecord => ({
  key: row.key,
  object: row.object,
  contentType: row.content_type,
  size: toSafeInteger(row.size, 'size'),
  sha256: row.sha256,
  version: toSafeInteger(row.version, 'version'),
  createdAt: new Date(row.created_at),
  updatedAt: new Date(row.updated_at),
});

const escapeLike = (text: string) => text.replace(/[\\%_]/g, '\\$&');

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new TypeError(`${name} must be a string`);
}

/** WHERE conditions and their parameters for a key filter, numbered from $1. */
function filterClauses(filter: KeyFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const prefix = optionalString(filter.prefix, 'prefix');
  const contains = optionalString(filter.contains, 'contains');
  for (const pattern of [
    prefix && `${escapeLike(prefix)}%`,
    contains && `%${escapeLike(contains)}%`,
  ]) {
    if (!pattern) continue;
    // PostgreSQL text cannot hold NUL (sending one is an error), so no key can match it.
    if (pattern.includes('\0')) {
      where.push('false');
      continue;
    }
    params.push(pattern);
    where.push(`key LIKE $${params.length} ESCAPE '\\'`);
  }
  return { where, params };
}

const whereSql = (where: string[]) => (where.length ? `WHERE ${where.join(' AND ')}` : '');

function checkUpload(upload: ImageUpload): void {
  for (const field of ['key', 'object', 'contentType', 'sha256'] as const) {
    if (typeof upload[field] !== 'string' || upload[field] === '') {
      throw new TypeError(`commit needs a non-empty ${field}`);
    }
  }
  if (!Number.isSafeInteger(upload.size) || upload.size < 0) {
    throw new TypeError('commit needs a size that is a whole number of bytes');
  }
}

// A commit is at most two statements, each atomic by itself, so no explicit transaction (and no
// BEGIN/COMMIT round trips): on PGlite every statement is WebAssembly on the event loop, and
// measured there, one single statement doing both (a CTE) cost more than these two. The insert
// comes first because most uploads are of new keys: then it is the only statement. On a key
// that exists, the insert still draws a version it does not use: versions have gaps, which is
// fine (they are only ever compared).
const INSERT_SQL = `
  INSERT INTO images (key, object, content_type, size, sha256, version)
  VALUES ($1, $2, $3, $4, $5, nextval('image_versions'))
  ON CONFLICT (key) DO NOTHING
  RETURNING version, created_at, updated_at`;
// Replaces the row and returns the object it held. The subquery locks the row first (FOR
// UPDATE: a concurrent commit of the key makes it wait, then read the newest row), so the object
// it reports is the one this commit really replaces, and the version, taken after the lock, is
// higher than the one it replaces. PostgreSQL 15 has no `RETURNING old.*`, hence the self-join.
const REPLACE_SQL = `
  UPDATE images AS i SET object = $2, content_type = $3, size = $4, sha256 = $5,
    version = nextval('image_versions'), updated_at = now()
  FROM (SELECT key, object FROM images WHERE key = $1 FOR UPDATE) AS old
  WHERE i.key = old.key
  RETURNING i.version, i.created_at, i.updated_at, old.object AS previous`;

// Two bare `DELETE FROM images` at once can deadlock: each locks the rows it deletes in the
// order its scan meets them, and a row a commit moved (a new version elsewhere in the table) is
// met early by a delete whose snapshot predates the move (it follows the update to the new
// version) and late by one whose snapshot does not. So delete-alls queue on a table lock first,
// in every process: SHARE UPDATE EXCLUSIVE conflicts with itself but not with the ROW EXCLUSIVE
// that commits take, so uploads go on (it also conflicts with VACUUM: an autovacuum in the way is
// cancelled, as for any lock it blocks). The DELETE takes its snapshot once the lock is held, so
// it returns exactly the rows that the delete-all before it left.
const DELETE_ALL_LOCK_SQL = 'LOCK TABLE images IN SHARE UPDATE EXCLUSIVE MODE';

type Stamp = Pick<ImageRow, 'version' | 'created_at' | 'updated_at'>;

async function commitIn(db: SqlExecutor, upload: ImageUpload) {
  const { key, object, contentType, size, sha256 } = upload;
  const values = [key, object, contentType, size, sha256];
  const record = (stamp: Stamp) =>
    toRecord({ key, object, content_type: contentType, size, sha256, ...stamp });
  // The insert finds the key taken → replace it. The replace finds no row (a delete-all came in
  // between) → insert again. Each step only fails because another writer committed meanwhile.
  for (let round = 0; round < 5; round++) {
    const inserted = await db.query<Stamp>(INSERT_SQL, values);
    if (inserted.rows[0]) return { record: record(inserted.rows[0]), previousObject: undefined };
    const replaced = await db.query<Stamp & { previous: string }>(REPLACE_SQL, values);
    const row = replaced.rows[0];
    if (!row) continue;
    // Re-committing the same object (a retried request) replaces nothing worth deleting.
    const previousObject = row.previous === object ? undefined : row.previous;
    return { record: record(row), previousObject };
  }
  throw new Error(`the commit of ${JSON.stringify(key)} kept racing with other writers`);
}

/**
 * PGlite runs PostgreSQL in single-user mode, where no autovacuum runs: without this, re-uploads
 * and delete-alls would leave dead rows forever, and no page would ever be marked all-visible, so
 * every listing reads the table beside its index, which slows every page of list_keys
 * (bench/RESULTS.md, "list_keys — PGlite gets vacuumed"). VACUUM is due when pages are not marked
 * all-visible (a table filled before or elsewhere) or when this process has written as many rows as
 * 10 % of the table (at least 1,000) since it last vacuumed. It blocks the process while it runs,
 * so it runs at open and with the garbage collector's sweeps.
 */
async function maintainEmbedded(driver: SqlDriver, writesSince: number): Promise<boolean> {
  const { rows } = await driver.query<{ pages: unknown; visible: unknown; tuples: unknown }>(
    `SELECT relpages AS pages, relallvisible AS visible, reltuples AS tuples
       FROM pg_class WHERE oid = 'images'::regclass`,
  );
  const pages = Number(rows[0]?.pages ?? 0);
  const visible = Number(rows[0]?.visible ?? 0);
  const tuples = Math.max(0, Number(rows[0]?.tuples ?? 0));
  const unmarked = pages > 0 && visible < 0.9 * pages;
  const written = writesSince >= Math.max(1000, 0.1 * tuples);
  if (!unmarked && !written) return false;
  await driver.query('VACUUM (ANALYZE) images');
  return true;
}

export interface MetadataStoreOptions {
  /** Whether close() closes the driver (default true); false when the driver is shared. */
  ownsDriver?: boolean | undefined;
}

/** Applies pending migrations, then returns the store; closes an owned driver if that fails. */
export async function createMetadataStore(
  driver: SqlDriver,
  options: MetadataStoreOptions = {},
): Promise<MetadataStore> {
  const ownsDriver = options.ownsDriver ?? true;
  await prepareStore(driver, ownsDriver);
  // Rows written by this process since its last VACUUM (PGlite only; see maintainEmbedded).
  let writesSince = 0;
  const maintain = async () => {
    if (driver.kind !== 'pglite') return false;
    const written = writesSince;
    const vacuumed = await maintainEmbedded(driver, written);
    if (vacuumed) writesSince -= written;
    return vacuumed;
  };
  await maintain();

  return {
    async get(key) {
      const { rows } = await driver.query<ImageRow>(
        `SELECT ${COLUMNS} FROM images WHERE key = $1`,
        [key],
      );
      return rows[0] && toRecord(rows[0]);
    },

    async commit(upload) {
      checkUpload(upload);
      // Each of commitIn's statements is atomic alone: no BEGIN/COMMIT round trips around them.
      const committed = await commitIn(driver, upload);
      writesSince++;
      return committed;
    },

    async listKeys(options) {
      const { limit } = options;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
        throw new TypeError(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
      }
      const { where, params } = filterClauses(options);
      const after = optionalString(options.after, 'after');
      if (after !== undefined) {
        // Keys hold no NUL, so the keys after 'a\0…' are exactly the keys after 'a'.
        params.push(after.split('\0')[0]);
        where.push(`key > $${params.length}`);
      }
      params.push(limit + 1);
      const { rows } = await driver.query<{ key: string }>(
        `SELECT key FROM images ${whereSql(where)} ORDER BY key LIMIT $${params.length}`,
        params,
      );
      const keys = rows.slice(0, limit).map((row) => row.key);
      return { keys, next: rows.length > limit ? keys.at(-1) : undefined };
    },

    async countKeys(options = {}) {
      const { where, params } = filterClauses(options);
      const { rows } = await driver.query<{ n: unknown }>(
        `SELECT count(*) AS n FROM images ${whereSql(where)}`,
        params,
      );
      return toSafeInteger(rows[0]?.n, 'count');
    },

    async *referencedObjects() {
      let after: string | undefined;
      for (;;) {
        const { rows } = await driver.query<{ key: string; object: string }>(
          after === undefined
            ? 'SELECT key, object FROM images ORDER BY key LIMIT 1000'
            : 'SELECT key, object FROM images WHERE key > $1 ORDER BY key LIMIT 1000',
          after === undefined ? [] : [after],
        );
        for (const row of rows) yield row.object;
        if (rows.length < 1000) return;
        after = rows.at(-1)?.key;
      }
    },

    async deleteAll() {
      const rows = await driver.transaction(async (tx) => {
        await tx.query(DELETE_ALL_LOCK_SQL);
        return (await tx.query<{ object: string }>('DELETE FROM images RETURNING object')).rows;
      });
      writesSince += rows.length;
      return { rows: rows.length, objects: rows.map((row) => row.object) };
    },

    maintain,

    close: ownsDriver ? () => driver.close() : async () => {},
  };
}
