/**
 * The database schema as an ordered, append-only list of migrations, the same SQL on PostgreSQL
 * and PGlite, applied at start by whichever service opens the database first.
 *
 * All pending migrations run in one transaction holding an advisory lock for the current schema,
 * so concurrent starters apply each migration once (the others wait, then find nothing to do),
 * and a failing migration leaves nothing half-applied (PostgreSQL DDL is transactional). Never
 * edit or reorder a shipped migration: add a new one with the next version.
 */
import type { SqlDriver } from './sql-driver.ts';

export interface Migration {
  version: number;
  name: string;
  /** One statement per entry: PGlite's parameterised queries take one statement at a time. */
  statements: readonly string[];
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'images',
    statements: [
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
  },
];

// First half of the advisory lock key, 'pxpl'; the second half is the schema name's hash.
const LOCK_CLASS = 0x7078706c;

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
  return driver.transaction(async (tx) => {
    await tx.query(
      `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(coalesce(current_schema(), '')))`,
    );
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((row) => Number(row.version)));
    const applied: number[] = [];
    for (const migration of list) {
      if (done.has(migration.version)) continue;
      for (const statement of migration.statements) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    return applied;
  });
}
