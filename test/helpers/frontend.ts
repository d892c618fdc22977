/**
 * Starts a real frontend on port 0 with embedded storage (SQLite in memory, objects in a temp
 * folder) or given stores, in front of real cache nodes on real sockets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeClient } from '../../src/clients/node-client.ts';
import { buildFrontend, type VariantOptions } from '../../src/frontend/app.ts';
import { createManagerLink } from '../../src/frontend/manager-link.ts';
import { createRouting, staticPoolView } from '../../src/frontend/routing.ts';
import { NO_TLS, type Tls } from '../../src/http/tls.ts';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { SECRET, socketLanes, startNode, type TestNode } from './nodes.ts';

export interface TestFrontend {
  url: string;
  nodes: TestNode[];
  metadata: MetadataStore;
  objects: ObjectStore;
  routing: ReturnType<typeof createRouting>;
  close(): Promise<void>;
}

export async function startFrontend(
  options: {
    /** How many cache nodes to start, or nodes to share with another frontend. */
    nodes?: number | TestNode[];
    capacityMb?: number;
    maxUploadMb?: number;
    metadata?: MetadataStore;
    objects?: ObjectStore;
    /** Route with the pool of this manager (registered, pushed and polled) instead of own nodes. */
    managerUrl?: string;
    /** The frontend's near cache, MB (0: off, so every fetch asks a node). */
    nearCacheMb?: number;
    /** The frontend's socket lane (and its own nodes'); default: as PIXPOOL_SOCKET_LANES says. */
    socketLanes?: boolean;
    /** HTTPS for the frontend (and its own nodes), and the CA its clients verify peers with. */
    tls?: Tls;
    /** Image variants' sizes, limits, or a transformer of the test's own. */
    variants?: VariantOptions;
  } = {},
): Promise<TestFrontend> {
  const tls = options.tls ?? NO_TLS;
  const shared = Array.isArray(options.nodes) || options.managerUrl !== undefined;
  const nodes = options.managerUrl
    ? []
    : Array.isArray(options.nodes)
      ? options.nodes
      : await Promise.all(
          Array.from({ length: options.nodes ?? 1 }, () =>
            startNode({
              capacityMb: options.capacityMb ?? 64,
              ...(options.socketLanes !== undefined && { socketLanes: options.socketLanes }),
              tls,
            }),
          ),
        );
  const dir = await mkdtemp(join(tmpdir(), 'pixpool-frontend-'));
  const metadata = options.metadata ?? (await createMetadataStore(createSqliteDriver()));
  const objects = options.objects ?? createFsObjectStore({ dir: join(dir, 'objects') });
  const link = options.managerUrl
    ? createManagerLink({
        managerUrl: options.managerUrl,
        secret: SECRET,
        log: { warn: () => {}, info: () => {} },
        intervalMs: 1000,
        fetch: tls.fetch,
      })
    : undefined;
  const routing = createRouting(
    link ? await link.firstView() : staticPoolView(nodes.map((n) => n.url)),
  );
  const client = createNodeClient({
    secret: SECRET,
    tls,
    mapVersion: () => routing.view.map.version,
  });
  const app = await buildFrontend({
    metadata,
    objects,
    nodes: client,
    routing,
    secret: SECRET,
    refreshView: link ? () => link.refresh(routing) : undefined,
    ...(options.maxUploadMb !== undefined && { maxUploadMb: options.maxUploadMb }),
    ...(options.nearCacheMb !== undefined && { nearCacheMb: options.nearCacheMb }),
    socketLanes: options.socketLanes ?? socketLanes(),
    https: tls.server,
    variants: options.variants,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const url = `${tls.scheme}://127.0.0.1:${port}`;
  link?.start(url, routing);
  return {
    url,
    nodes,
    metadata,
    objects,
    routing,
    async close() {
      link?.stop();
      await app.close();
      await client.close();
      if (!shared) await Promise.all(nodes.map((n) => n.close()));
      if (!options.metadata) await metadata.close();
      if (!options.objects) await objects.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every field the frontend API's bodies may have; tests read them loosely. */
export interface ApiBody {
  success: string;
  key?: string;
  keys: string[];
  next?: string;
  content?: string;
  adopted?: boolean;
  version?: number;
  error: { code: number; message: string };
}

/** POST /api/upload as multipart, the way a browser or the originals' test clients send it. */
export async function upload(url: string, key: string | undefined, bytes?: Buffer, name = 'x.png') {
  const form = new FormData();
  if (key !== undefined) form.append('key', key);
  if (bytes) form.append('file', new Blob([new Uint8Array(bytes)]), name);
  const response = await fetch(`${url}/api/upload`, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as ApiBody };
}
