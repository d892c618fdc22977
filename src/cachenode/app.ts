/**
 * buildCacheNode(deps): the cache node as a Fastify instance that never listens by itself
 * (main.ts listens; tests use listen({port: 0})). Everything it needs comes in through deps.
 */

import { randomUUID } from 'node:crypto';
import formbody from '@fastify/formbody';
import type { FastifyServerOptions } from 'fastify';
import { DEFAULT_LEASE_MS } from '../core/node-protocol.ts';
import { connectionCheck } from '../http/auth.ts';
import { createService } from '../http/service.ts';
import { NO_TLS, type Tls } from '../http/tls.ts';
import { binaryRoutes, entrySocketLane, entryWrites } from './binary-routes.ts';
import { createLeases } from './leases.ts';
import { registerNodeMetrics } from './metrics.ts';
import type { NodeCache } from './node-cache.ts';
import { type BatchSender, createBatchSender, plainFetch } from './plain-http.ts';
import { readyRoute } from './ready-route.ts';
import { seedRoutes } from './seed-routes.ts';
import { createNodeView } from './view.ts';
import { createViewRenewal } from './view-renewal.ts';

export interface CacheNodeDeps {
  nodeId: string;
  cache: NodeCache;
  /** The pool's shared secret; undefined only on loopback (main.ts enforces that). */
  secret?: string | undefined;
  /** Sends hand-over batches to other nodes; defaults to one using `secret` (plain-http.ts). */
  client?: BatchSender;
  /** Largest request body, bytes (JSON values are base64, so ~4/3 of the image). */
  bodyLimit?: number;
  logger?: FastifyServerOptions['logger'];
  /** Read leases granted to frontends, ms (leases.ts; 0: none, every read revalidates). */
  leaseMs?: number;
  /** Whether entry reads are answered on the socket (http/socket-lane.ts); default on. */
  socketLanes?: boolean | undefined;
  /** The manager that renews this node's view lease (view-renewal.ts), once it is in a pool. */
  managerUrl?: string | undefined;
  /** HTTPS to serve, and what hand-overs to other nodes verify them with (http/tls.ts). */
  tls?: Tls | undefined;
}

export const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

export async function buildCacheNode(deps: CacheNodeDeps) {
  const { cache, nodeId, secret } = deps;
  const tls = deps.tls ?? NO_TLS;
  // Hand-overs to plain-http nodes go over node:http (plain-http.ts); the node client, and its
  // HTTP library, load only on the first hand-over to an https node.
  // Hand-over batches are up to 8 MiB: give them far more than an entry request's 2 s.
  const timeoutMs = 30_000;
  const client: BatchSender =
    deps.client ??
    createBatchSender({
      secret,
      timeoutMs,
      guard: (origin) => tls.guard(origin, 'the shared secret'),
      https: () =>
        import('../clients/node-client.ts').then(({ createNodeClient }) =>
          createNodeClient({ secret, timeoutMs, tls }),
        ),
    });
  const leases = createLeases({
    leaseMs: deps.leaseMs ?? DEFAULT_LEASE_MS,
    regionOf: cache.regionOf,
  });
  const view = createNodeView(nodeId, cache, leases);
  const instance = randomUUID();
  const admitted = secret ? connectionCheck(secret) : () => true;
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const { app, registry } = createService({
    service: 'cache-node',
    secret,
    bodyLimit,
    logger: deps.logger,
    https: tls.server,
    // The pid lets an operator (or a test) find the process behind a node URL.
    health: () => ({ node_id: nodeId, pid: process.pid }),
    socketLane:
      deps.socketLanes === false ? undefined : entrySocketLane(cache, view, leases, admitted),
    socketLaneWrites: entryWrites(view, admitted, bodyLimit),
  });
  await app.register(formbody);
  // Any other content type is a raw value (PUT /v1/entries) or an entry batch (POST /v1/import).
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  registerNodeMetrics(registry, cache);
  binaryRoutes(app, cache, view, leases, instance);
  seedRoutes(app, { cache, client, nodeId, view, leases });
  readyRoute(app, view, Boolean(deps.managerUrl));
  if (!deps.client) app.addHook('onClose', async () => client.close());
  if (deps.managerUrl) {
    const renewal = createViewRenewal({
      managerUrl: deps.managerUrl.replace(/\/+$/, ''),
      secret,
      // With a CA, the process's fetch verifies an https manager; else node:http (plain-http.ts).
      fetch: tls.files.ca ? tls.fetch : plainFetch(tls.fetch),
      view,
      instance,
      log: app.log,
    });
    app.addHook('onReady', async () => renewal.start());
    app.addHook('onClose', async () => renewal.stop());
  } else {
    view.onAdopt(() => {
      if (view.pooled) {
        app.log.error(
          'this node was given a pool view that must be leased, but it has no --manager-url to renew it from: it answers no reads',
        );
      }
    });
  }
  return app;
}
