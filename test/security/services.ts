/**
 * The whole system for the security suites, on real sockets in this process: a frontend with
 * embedded storage (SQLite in memory, objects in a temp folder) in front of cache node F, a
 * manager (same database, static provider) whose pool is cache node M, and an autoscaler reading that
 * manager, to which the frontend relays the course test API. Every service runs with the shared
 * secret, the manager and the frontend with an admin token, and the Fastify instances are kept so tests can read their route inventories (src/http/service.ts).
 *
 * `snapshot()` is what "stored data is unchanged" means here: the seeded images (rows, object
 * bytes), the seeded node entries (bytes, versions) and both nodes' configs, and the manager's
 * pool (size, map version, addresses), config, mode, autoscaler parameters and registered
 * frontends. Seeded keys are long and random, so no fuzzed key can name one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildAutoscaler } from '../../src/autoscaler/app.ts';
import { createManagerSource } from '../../src/autoscaler/manager-source.ts';
import { buildCacheNode } from '../../src/cachenode/app.ts';
import { createNodeCache, type NodeCache } from '../../src/cachenode/node-cache.ts';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { createNodeClient } from '../../src/clients/node-client.ts';
import { buildFrontend } from '../../src/frontend/app.ts';
import { createManagerRelay } from '../../src/frontend/course-api.ts';
import { createRouting, staticPoolView } from '../../src/frontend/routing.ts';
import { buildManager } from '../../src/manager/app.ts';
import type { Pool } from '../../src/manager/pool/pool.ts';
import { createStaticProvider } from '../../src/manager/providers/static.ts';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { createPoolStore, type PoolStore } from '../../src/storage/pool-store.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { SECRET, socketLanes } from '../helpers/nodes.ts';
import { startRenewer } from '../helpers/renewer.ts';

export { SECRET };
/** Same length as SECRET ('test-secret'), so a length check alone could not tell them apart. */
export const WRONG_SECRET = 'test-secreT';
export const ADMIN_TOKEN = 'admin-token-for-tests';
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export type ServiceName = 'frontend' | 'cache-node' | 'manager' | 'autoscaler';

export interface Running {
  app: FastifyInstance;
  url: string;
}

export interface System {
  services: Record<ServiceName, Running>;
  nodeF: Running & { cache: NodeCache };
  nodeM: Running & { cache: NodeCache };
  metadata: MetadataStore;
  objects: ObjectStore;
  pool: Pool;
  store: PoolStore;
  /** Seeded image keys (frontend) and entry keys (node F). */
  seeded: { images: string[]; entries: string[] };
  snapshot(): Promise<string>;
  close(): Promise<void>;
}

const quiet = pino({ level: 'silent' });
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function startNode(nodeId: string, managerUrl?: string) {
  const cache = createNodeCache({ policy: 'LRU', capacityMb: 256, maxCapacityMb: 4096 });
  const app = await buildCacheNode({
    nodeId,
    cache,
    secret: SECRET,
    socketLanes: socketLanes(),
    managerUrl,
  });
  return { app, cache, url: await listen(app) };
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const seedPng = (i: number) => Buffer.concat([Buffer.from(PNG_MAGIC), randomBytes(500 + i)]);

export async function startSystem(): Promise<System> {
  const dir = await mkdtemp(join(tmpdir(), 'pixpool-security-'));
  // Node F's view lease is renewed by a stand-in: this manager does not run its pool.
  const renewer = await startRenewer(60_000);
  const [nodeF, nodeM] = await Promise.all([startNode('node-f', renewer.url), startNode('node-m')]);
  const admin = createNodeAdmin({ secret: SECRET, timeoutMs: 5000 });

  // Node F is in a pool of its own (so move_keys is held to its view); pushed before seeding,
  // since adopting a first view drops what was cached before it.
  const fView = staticPoolView([nodeF.url]);
  await admin.pushView(nodeF.url, fView, nodeF.url);
  await renewer.renewed(nodeF.url, fView.map.version);

  // One embedded database for the frontend and the manager, as in `pixpool up` (the manager's
  // delete-all works on the frontend's rows); PGlite takes seconds to start on a loaded machine.
  const driver = createSqliteDriver();
  const metadata = await createMetadataStore(driver, { ownsDriver: false });
  const objects = createFsObjectStore({ dir: join(dir, 'objects') });
  const routing = createRouting(fView);
  const frontendClient = createNodeClient({
    secret: SECRET,
    mapVersion: () => routing.view.map.version,
  });
  // The frontend relays the course test API to the manager, which starts below.
  let relay: ReturnType<typeof createManagerRelay> | undefined;
  const frontendApp = await buildFrontend({
    metadata,
    objects,
    nodes: frontendClient,
    routing,
    secret: SECRET,
    adminToken: ADMIN_TOKEN,
    courseApi: { relay: (path) => (relay as NonNullable<typeof relay>).relay(path) },
    maxUploadMb: 2,
    socketLanes: socketLanes(),
  });
  const frontendUrl = await listen(frontendApp);

  const store = await createPoolStore(driver, { ownsDriver: false });
  const managerAdmin = createNodeAdmin({ secret: SECRET, timeoutMs: 5000 });
  const provider = createStaticProvider({ urls: [nodeM.url], admin: managerAdmin });
  const {
    app: managerApp,
    pool,
    start,
  } = buildManager({
    store,
    metadata,
    objects,
    provider,
    admin: managerAdmin,
    assignment: 'balanced',
    secret: SECRET,
    adminToken: ADMIN_TOKEN,
    maxCapacityMb: 4096,
    logger: quiet,
  });
  await start();
  const managerUrl = await listen(managerApp);
  relay = createManagerRelay({ managerUrl, adminToken: ADMIN_TOKEN });
  await store.registerFrontend(frontendUrl);

  const { app: autoscalerApp } = buildAutoscaler({
    source: createManagerSource({ managerUrl, adminToken: ADMIN_TOKEN }),
    intervalS: 60,
    windowS: 60,
  });
  const autoscalerUrl = await listen(autoscalerApp);

  // Seed data the fuzzing must leave alone.
  const tag = randomBytes(6).toString('hex');
  const images = ['png', 'svg', 'gif'].map((kind) => `seeded-${tag}-${kind}`);
  const bodies = [
    seedPng(1),
    Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect/></svg>'),
    Buffer.concat([Buffer.from('GIF89a'), randomBytes(64)]),
  ];
  for (const [i, key] of images.entries()) {
    const form = new FormData();
    form.append('key', key);
    form.append('file', new Blob([new Uint8Array(bodies[i] as Buffer)]), 'seed');
    const response = await fetch(`${frontendUrl}/api/upload`, { method: 'POST', body: form });
    if (response.status !== 200) throw new Error(`seeding ${key}: ${await response.text()}`);
  }
  const entries = Array.from({ length: 20 }, (_, i) => `seeded-${tag}-entry-${i}`);
  entries.forEach((key, i) => {
    nodeF.cache.put(key, { value: seedPng(i), contentType: 'image/png', version: i + 1 }, true);
  });

  async function snapshot(): Promise<string> {
    const rows = [];
    for (const key of images) {
      const row = await metadata.get(key);
      const bytes = row && (await objects.get(row.object));
      rows.push([key, row?.version, row?.contentType, bytes && sha(bytes)]);
    }
    const entryDigests = entries.map((key) => {
      const e = nodeF.cache.peek(key);
      return [key, e?.version, e?.contentType, e && sha(e.value)];
    });
    const view = pool.view();
    return JSON.stringify({
      rows,
      entries: entryDigests,
      nodeConfigs: [nodeF.cache.config, nodeM.cache.config],
      pool: { size: pool.size, version: view.map.version, addresses: view.addresses },
      cacheConfig: await pool.cacheConfig(),
      mode: await pool.mode(),
      autoscaler: await store.getSetting('autoscaler'),
      frontends: (await store.listFrontends()).map((f) => f.url),
    });
  }

  return {
    services: {
      frontend: { app: frontendApp, url: frontendUrl },
      'cache-node': { app: nodeF.app, url: nodeF.url },
      manager: { app: managerApp, url: managerUrl },
      autoscaler: { app: autoscalerApp, url: autoscalerUrl },
    },
    nodeF,
    nodeM,
    metadata,
    objects,
    pool,
    store,
    seeded: { images, entries },
    snapshot,
    async close() {
      await autoscalerApp.close();
      await pool.idle();
      await managerApp.close();
      await frontendApp.close();
      await Promise.all([frontendClient.close(), admin.close(), relay?.close()]);
      await Promise.all([nodeF.app.close(), nodeM.app.close()]);
      await renewer.close();
      await Promise.all([store.close(), metadata.close()]);
      await driver.close();
      await objects.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A request on a real socket; the body is parsed as JSON when it is JSON. */
export async function send(
  url: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Uint8Array | FormData } = {},
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const response = await fetch(url + path, {
    method,
    headers: options.headers ?? {},
    ...(options.body !== undefined && method !== 'GET' && method !== 'HEAD'
      ? { body: options.body as RequestInit['body'] }
      : {}),
    redirect: 'manual',
  });
  const text = await response.text();
  let body: unknown = text;
  if (response.headers.get('content-type')?.includes('json')) {
    try {
      body = JSON.parse(text);
    } catch {}
  }
  return { status: response.status, headers: response.headers, body, text };
}

/**
 * Whether `answer` is the failure envelope, `{"success":"false","error":{"code":N,"message":…}}`,
 * with its status as N.
 */
export function isEnvelope(answer: { status: number; body: unknown }): boolean {
  const b = answer.body as { success?: unknown; error?: { code?: unknown; message?: unknown } };
  return (
    typeof b === 'object' &&
    b !== null &&
    b.success === 'false' &&
    b.error?.code === answer.status &&
    typeof b.error?.message === 'string' &&
    b.error.message.length > 0
  );
}
