/**
 * MetadataStore: the key → object mapping, one implementation over either driver (PostgreSQL or
 * SQLite; the statements that differ come from dialect.ts).
 *
 * Every commit takes its version from one global sequence, so a key's versions only grow, even
 * across delete-all (caches compare versions to refuse stale fills). A commit returns the object
 * it replaced exactly once, even when uploads of one key race. On PostgreSQL it inserts the row
 * (the primary key deciding between racing inserts) or replaces it with a statement that locks
 * the row, never the table; each statement is atomic alone, so a commit is one or two round
 * trips without an explicit transaction. On SQLite, where writers take turns anyway, a commit is
 * one short transaction holding the write lock. The store owns its driver (close() closes it)
 * unless created with `ownsDriver: false`, for a driver shared with other stores.
 *
 * Limits: listKeys pages by key (keyset), so a page is consistent with its neighbours only as
 * far as concurrent uploads allow; keys sort by code point (COLLATE "C" on PostgreSQL, BINARY on
 * SQLite).
 */
import { type Dialect, dialectOf } from './dialect.ts';
import { prepareStore } from './migrations.ts';
import { type SqlDriver, toSafeInteger } from './sql-driver.ts';

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
   * Housekeeping a database server would do by itself: on SQLite, `PRAGMA optimize` (refreshes
   * the planner's statistics where they went stale); nothing on PostgreSQL (autovacuum).
   */
  maintain(): Promise<void>;
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
  created_at: Date | string | number;
  updated_at: Date | string | number;
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

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new TypeError(`${name} must be a string`);
}

/** WHERE conditions and their parameters for a key filter, numbered from $1. */
function filterClauses(
  sql: Dialect['images'],
  filter: KeyFilter,
): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const prefix = optionalString(filter.prefix, 'prefix');
  const contains = optionalString(filter.contains, 'contains');
  for (const pattern of [
    prefix && sql.prefixPattern(prefix),
    contains && sql.containsPattern(contains),
  ]) {
    if (!pattern) continue;
    // PostgreSQL text cannot hold NUL (sending one is an error), so no key can match it (and
    // no key holds one on SQLite either: keys come through the same checks).
    if (pattern.includes('\0')) {
      where.push('false');
      continue;
    }
    params.push(pattern);
    where.push(sql.keyMatches(params.length));
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

type Stamp = Pick<ImageRow, 'version' | 'created_at' | 'updated_at'>;
type Committed = { record: ImageRecord; previousObject: string | undefined };

/** The committed record, and the object replaced unless it is the one just committed. */
function committed(upload: ImageUpload, stamp: Stamp, previous: string | undefined): Committed {
  const { key, object, contentType, size, sha256 } = upload;
  const record = toRecord({ key, object, content_type: contentType, size, sha256, ...stamp });
  // Re-committing the same object (a retried request) replaces nothing worth deleting.
  return { record, previousObject: previous === object ? undefined : previous };
}

/**
 * PostgreSQL: at most two statements, each atomic by itself, so no explicit transaction (and no
 * BEGIN/COMMIT round trips). The insert comes first because most uploads are of new keys: then
 * it is the only statement. On a key that exists, the insert still draws a version it does not
 * use: versions have gaps, which is fine (they are only ever compared).
 */
async function commitInTwoStatements(
  driver: SqlDriver,
  sql: { insert: string; replace: string },
  upload: ImageUpload,
): Promise<Committed> {
  const { key, object, contentType, size, sha256 } = upload;
  const values = [key, object, contentType, size, sha256];
  // The insert finds the key taken → replace it. The replace finds no row (a delete-all came in
  // between) → insert again. Each step only fails because another writer committed meanwhile.
  for (let round = 0; round < 5; round++) {
    const inserted = await driver.query<Stamp>(sql.insert, values);
    if (inserted.rows[0]) return committed(upload, inserted.rows[0], undefined);
    const replaced = await driver.query<Stamp & { previous: string }>(sql.replace, values);
    const row = replaced.rows[0];
    if (row) return committed(upload, row, row.previous);
  }
  throw new Error(`the commit of ${JSON.stringify(key)} kept racing with other writers`);
}

/** SQLite: one transaction holding the write lock, so nothing can come in between its steps. */
function commitInTransaction(
  driver: SqlDriver,
  sql: { previous: string; nextVersion: string; upsert: string },
  upload: ImageUpload,
): Promise<Committed> {
  const { key, object, contentType, size, sha256 } = upload;
  return driver.transaction(async (tx) => {
    const old = await tx.query<{ object: string }>(sql.previous, [key]);
    const bumped = await tx.query<{ value: unknown }>(sql.nextVersion);
    const version = toSafeInteger(bumped.rows[0]?.value, 'version');
    const { rows } = await tx.query<Stamp>(sql.upsert, [
      key,
      object,
      contentType,
      size,
      sha256,
      version,
    ]);
    if (!rows[0]) throw new Error('INSERT … RETURNING returned no image row');
    return committed(upload, rows[0], old.rows[0]?.object);
  });
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
  const sql = dialectOf(driver);

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
      const { commit } = sql.images;
      return commit.kind === 'transaction'
        ? commitInTransaction(driver, commit, upload)
        : commitInTwoStatements(driver, commit, upload);
    },

    async listKeys(options) {
      const { limit } = options;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
        throw new TypeError(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
      }
      const { where, params } = filterClauses(sql.images, options);
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
      const { where, params } = filterClauses(sql.images, options);
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
      const lock = sql.images.deleteAllLock;
      const rows = await driver.transaction(async (tx) => {
        if (lock !== undefined) await tx.query(lock);
        return (await tx.query<{ object: string }>('DELETE FROM images RETURNING object')).rows;
      });
      return { rows: rows.length, objects: rows.map((row) => row.object) };
    },

    async maintain() {
      if (sql.maintenance !== undefined) await driver.query(sql.maintenance);
    },

    close: ownsDriver ? () => driver.close() : async () => {},
  };
}
