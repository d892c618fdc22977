/**
 * Starts a real manager on port 0 with embedded storage (SQLite in memory, objects in a temp
 * folder) and its local provider: cache nodes as real `pixpool cache-node` processes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import type { Assignment } from '../../src/core/pool-map.ts';
import { freePort, urlFor } from '../../src/http/listen.ts';
import { NO_TLS, type Tls } from '../../src/http/tls.ts';
import { buildManager } from '../../src/manager/app.ts';
import type { Pool } from '../../src/manager/pool/pool.ts';
import { createLocalProvider } from '../../src/manager/providers/local.ts';
import type { NodeProvider } from '../../src/manager/providers/provider.ts';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { createPoolStore, type PoolStore } from '../../src/storage/pool-store.ts';
import type { SqlDriver } from '../../src/storage/sql-driver.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { SECRET } from './nodes.ts';

export interface TestManager {
  url: string;
  pool: Pool;
  store: PoolStore;
  metadata: MetadataStore;
  objects: ObjectStore;
  provider: NodeProvider;
  /** Stops the manager (and its nodes unless `keepNodes`), keeping the database for a restart. */
  close(options?: { keepStorage?: boolean }): Promise<void>;
}

export async function startManager(
  options: {
    assignment?: Assignment;
    adminToken?: string;
    /** Reuse a database (to test a restart); a new in-memory one otherwise. */
    driver?: SqlDriver;
    provider?: NodeProvider;
    /** Extra `pixpool cache-node` arguments for the nodes (e.g. --stats-interval-s 1). */
    nodeArgs?: string[];
    /** HTTPS for the manager and its nodes, and the CA its clients verify them with. */
    tls?: Tls;
    /** A port picked beforehand (a provider whose nodes announce themselves needs the URL). */
    port?: number;
  } = {},
): Promise<TestManager> {
  const tls = options.tls ?? NO_TLS;
  const dir = await mkdtemp(join(tmpdir(), 'pixpool-manager-'));
  const driver = options.driver ?? createSqliteDriver();
  const store = await createPoolStore(driver, { ownsDriver: false });
  const metadata = await createMetadataStore(driver, { ownsDriver: false });
  const objects = createFsObjectStore({ dir: join(dir, 'objects') });
  const port = options.port ?? (await freePort('127.0.0.1'));
  const url = urlFor('127.0.0.1', port, tls.scheme);
  const log = pino({ level: 'warn' });
  const admin = createNodeAdmin({ secret: SECRET, timeoutMs: 5000, tls });
  const provider =
    options.provider ??
    createLocalProvider({
      secret: SECRET,
      managerUrl: url,
      args: ['--capacity', '32', ...(options.nodeArgs ?? [])],
      tls,
    });
  const { app, pool, start } = buildManager({
    store,
    metadata,
    objects,
    provider,
    admin,
    assignment: options.assignment ?? 'balanced',
    secret: SECRET,
    adminToken: options.adminToken,
    maxCapacityMb: 4096,
    logger: log,
    tls,
  });
  // Nodes an engine starts announce themselves, so such a manager listens first (as main.ts).
  if (provider.register) await app.listen({ host: '127.0.0.1', port }).then(start);
  else await start().then(() => app.listen({ host: '127.0.0.1', port }));
  return {
    url,
    pool,
    store,
    metadata,
    objects,
    provider,
    async close(closeOptions = {}) {
      // Stops the pool, its nodes and the node clients too (the app's onClose).
      await app.close();
      if (!closeOptions.keepStorage) {
        await store.close();
        await metadata.close();
        if (!options.driver) await driver.close();
      }
      await objects.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON request to the manager; returns status and parsed body. */
export async function managerCall(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(url + path, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
  return { status: response.status, body: (await response.json()) as any };
}
