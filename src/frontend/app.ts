/**
 * buildFrontend(deps): the public service (API, images, pages) as a Fastify instance that never
 * listens by itself. Storage, the node client and the pool view come in through deps.
 */
import multipart from '@fastify/multipart';
import type { FastifyServerOptions } from 'fastify';
import type { NodeClient } from '../clients/node-client.ts';
import { createService, type ServiceOptions } from '../http/service.ts';
import type { SocketLane } from '../http/socket-lane.ts';
import { describeGcReport, startGarbageCollector } from '../storage/gc.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { apiRoutes } from './api-routes.ts';
import { courseApiRoutes, type ManagerRelay } from './course-api.ts';
import { imageRoutes, imageSocketLane } from './image-routes.ts';
import { createImageService } from './images.ts';
import { createFrontendMetrics } from './metrics.ts';
import { registerPages, sendPageNotFound } from './pages/index.ts';
import { readyRoute } from './ready-route.ts';
import type { Routing } from './routing.ts';
import { createTransformer, type Transformer } from './variants/transform.ts';

export interface FrontendDeps {
  metadata: MetadataStore;
  objects: ObjectStore;
  nodes: NodeClient;
  routing: Routing;
  /** The pool's shared secret, needed for POST /api/notify. */
  secret?: string | undefined;
  /** Largest image accepted, MB (MAX_UPLOAD_MB, default 10). */
  maxUploadMb?: number;
  logger?: FastifyServerOptions['logger'];
  /** MB of hot images kept in this frontend (revalidated, or leased: images.ts); 0: off. */
  nearCacheMb?: number | undefined;
  /** Fetches the current pool view into `routing` when a node says ours is outdated. */
  refreshView?: (() => Promise<unknown>) | undefined;
  /**
   * Whether GET /images/:key and bodiless POST /api/key/:key are answered on the socket
   * (http/socket-lane.ts); default on.
   */
  socketLanes?: boolean | undefined;
  /** Sweep orphan objects periodically while the app runs (src/storage/gc.ts); off when undefined. */
  gc?: { intervalMs?: number | undefined; graceMs?: number | undefined } | undefined;
  /** Serve HTTPS with this certificate and key (http/tls.ts). */
  https?: ServiceOptions['https'];
  /** Where the course test API goes (course-api.ts); none: those routes say there is no manager. */
  courseApi?: ManagerRelay | undefined;
  /** The admin token the course test API needs; none: open, unless `adminClosed` (main.ts). */
  adminToken?: string | undefined;
  /** Without a token: why the course test API is refused (a frontend beyond loopback). */
  adminClosed?: string | undefined;
  /** Image variants (GET /images/:key?w=…): sizes allowed, limits; a transformer of one's own. */
  variants?: VariantOptions | undefined;
}

export interface VariantOptions {
  /** Widths and heights allowed (--variant-sizes); default variants/spec.ts's. */
  sizes?: readonly number[] | undefined;
  /** Largest original a variant is made of, pixels (--variant-max-pixels). */
  maxPixels?: number | undefined;
  /** Variants made at once (--variant-concurrency). */
  concurrency?: number | undefined;
  /** Instead of one made from the options above (a test counting transforms). */
  transformer?: Transformer | undefined;
}

export async function buildFrontend(deps: FrontendDeps) {
  const maxUploadMb = deps.maxUploadMb ?? 10;
  const maxUploadBytes = Math.floor(maxUploadMb * 1024 * 1024);
  // The lane needs the image service, which needs the service's metrics registry: bound below.
  let lane: SocketLane = () => undefined;
  const { app, registry } = createService({
    service: 'frontend',
    secret: deps.secret,
    secretByDefault: false,
    adminToken: deps.adminToken,
    adminClosed: deps.adminClosed,
    notFoundPage: sendPageNotFound,
    bodyLimit: 1024 * 1024,
    logger: deps.logger,
    https: deps.https,
    // Which process answered: with `pixpool up --workers`, several share one port.
    health: () => ({ pid: process.pid }),
    socketLane: deps.socketLanes === false ? undefined : (request) => lane(request),
  });
  await app.register(multipart, {
    limits: { fileSize: maxUploadBytes, files: 1, fields: 4, parts: 6, fieldSize: 4096 },
  });
  const metrics = createFrontendMetrics(registry, () => deps.nodes.idleReadBytes);
  const variants = deps.variants ?? {};
  const transformer =
    variants.transformer ??
    createTransformer({
      ...(variants.maxPixels !== undefined && { maxPixels: variants.maxPixels }),
      ...(variants.concurrency !== undefined && { concurrency: variants.concurrency }),
    });
  const images = createImageService({
    ...deps,
    transformer,
    metrics,
    log: app.log,
    ...(deps.nearCacheMb !== undefined && {
      nearCacheBytes: Math.floor(deps.nearCacheMb * 1048576),
    }),
  });
  apiRoutes(app, { images, metadata: deps.metadata, routing: deps.routing, maxUploadBytes });
  imageRoutes(app, { images, metrics, variantSizes: variants.sizes });
  courseApiRoutes(app, deps.courseApi);
  readyRoute(app, { routing: deps.routing, metadata: deps.metadata });
  lane = imageSocketLane({ images, metrics, variantSizes: variants.sizes });
  if (deps.gc) {
    const gcOptions = deps.gc;
    let gc: ReturnType<typeof startGarbageCollector> | undefined;
    app.addHook('onReady', async () => {
      gc = startGarbageCollector({
        objects: deps.objects,
        metadata: deps.metadata,
        ...gcOptions,
        onReport: (report) => {
          metrics.gcSweeps.inc({ outcome: 'ok' });
          metrics.gcDeleted.inc({ kind: 'orphan' }, report.deleted);
          metrics.gcDeleted.inc({ kind: 'leftover' }, report.leftovers ?? 0);
          app.log.info({ gc: { ...report, sample: undefined } }, describeGcReport(report));
        },
        onError: (error) => {
          metrics.gcSweeps.inc({ outcome: 'error' });
          app.log.warn({ err: error }, 'garbage collection failed; retrying at the next sweep');
        },
      });
    });
    app.addHook('onClose', async () => gc?.stop());
  }
  registerPages(app, {
    getImage: (key) => deps.metadata.get(key),
    listKeys: (options) => deps.metadata.listKeys(options),
    countKeys: (options) => deps.metadata.countKeys(options),
    maxUploadMb,
    variantSizes: variants.sizes,
  });
  return app;
}
