/**
 * Opens the storage a service runs on, from configuration: embedded by default (a SQLite database
 * in `<dataDir>/pixpool.db`, objects in `<dataDir>/objects`), PostgreSQL when a databaseUrl is
 * given, S3 when a bucket is given; each choice independent of the other.
 *
 * The metadata store (frontend) and the pool store (manager) share one driver, so a process has
 * one connection to its database. Several processes may open the same embedded database at
 * once (SQLite in WAL mode: readers run alongside, writers take turns), and the first to open a
 * data folder written by an older pixpool (PGlite, in `<dataDir>/db`) migrates it while the
 * others wait (see pglite-migration.ts). Neither store owns the driver; close() closes it
 * exactly once, after both.
 *
 * The caller (a main.ts) reads the environment and passes plain options. The PostgreSQL and S3
 * clients are imported only when configured: each costs every process that loads it tens of MB
 * (bench case embedded-footprint), and the embedded default uses neither.
 */
import { join } from 'node:path';
import { PixpoolError } from '../core/errors.ts';
import { createFsObjectStore } from './fs-object-store.ts';
import { createMetadataStore, type MetadataStore } from './metadata-store.ts';
import type { ObjectStore } from './object-store.ts';
import { migratePgliteFolder } from './pglite-migration.ts';
import { createPoolStore, type PoolStore } from './pool-store.ts';
import type { S3ObjectStoreOptions } from './s3-object-store.ts';
import { once, type SqlDriver } from './sql-driver.ts';
import { createSqliteDriver } from './sqlite-driver.ts';

export interface StorageOptions {
  /** Where embedded data lives (`pixpool.db`, `objects/`). */
  dataDir: string;
  /** PostgreSQL connection string; the embedded database when undefined. */
  databaseUrl?: string | undefined;
  /** An S3 bucket for the objects; the folder `<dataDir>/objects` when undefined. */
  s3?: S3ObjectStoreOptions | undefined;
  /** Told what happened to the data folder when it needed migrating (default: stderr). */
  log?: ((line: string) => void) | undefined;
}

export interface Storage {
  metadata: MetadataStore;
  objects: ObjectStore;
  /** The manager's state, on the same database connection(s) as `metadata`. */
  pool: PoolStore;
  /** The database connection(s) both stores use (for checks and tools; the stores own the SQL). */
  driver: SqlDriver;
  /** Where things are, for a start-up log line; never includes a password. */
  description: string;
  close(): Promise<void>;
}

export async function openStorage(options: StorageOptions): Promise<Storage> {
  const dbPath = join(options.dataDir, 'pixpool.db');
  const objectsDir = join(options.dataDir, 'objects');
  if (!options.databaseUrl) {
    await migratePgliteFolder({
      dataDir: options.dataDir,
      dbPath,
      log: options.log ?? ((line) => console.error(line)),
    });
  }
  const pg = options.databaseUrl ? await import('./pg-driver.ts') : undefined;
  const driver =
    pg && options.databaseUrl
      ? pg.createPgDriver({ connectionString: options.databaseUrl })
      : createSqliteDriver({ path: dbPath });
  let metadata: MetadataStore;
  let pool: PoolStore;
  try {
    // One after the other: the second finds the migrations applied and does nothing.
    metadata = await createMetadataStore(driver, { ownsDriver: false });
    pool = await createPoolStore(driver, { ownsDriver: false });
  } catch (error) {
    await driver.close().catch(() => {});
    // Nothing listens yet: this failure is the operator's to read (the CLI prints the message),
    // so it names the database, which an answer to a client would leave to the detail.
    if (error instanceof PixpoolError && error.detail !== undefined) {
      throw new Error(error.detail, { cause: error });
    }
    throw error;
  }
  const objects = options.s3
    ? (await import('./s3-object-store.ts')).createS3ObjectStore(options.s3)
    : createFsObjectStore({ dir: objectsDir });
  const where = [
    pg && options.databaseUrl
      ? pg.describePgServer(options.databaseUrl)
      : `embedded SQLite in ${dbPath}`,
    options.s3 ? `S3 bucket ${options.s3.bucket}` : `objects in ${objectsDir}`,
  ];
  return {
    metadata,
    objects,
    pool,
    driver,
    description: where.join(', '),
    close: once(async () => {
      await Promise.allSettled([metadata.close(), pool.close(), objects.close()]);
      await driver.close();
    }),
  };
}
