/**
 * What every pixpool service's Fastify instance starts with: quiet per-request logging, the
 * envelope error handler, shared-secret auth, GET /health (public) and GET /metrics, the
 * connection limits below, and an inventory of its routes (test/security walks it, so a route
 * added later is fuzzed and auth-checked without anyone remembering to list it).
 *
 * Limits, and why these values:
 * - headers must arrive within 20 s and a whole request within 120 s (a 10 MB upload at
 *   ~100 KB/s), checked every 5 s: a client that drips bytes (slowloris) is cut, and meanwhile it
 *   holds one socket, not a worker. No idle-socket timeout (`connectionTimeout`): a resize asked
 *   with wait=true or a long hand-over legitimately answers after minutes of silence.
 * - header size is Node's default (16 KiB): larger headers get a 431 envelope.
 * - at most `maxConnections` (default 2048) open sockets; more are dropped at accept, before any
 *   file descriptor exhaustion hurts the clients already connected. No per-socket request cap:
 *   frontends keep a few connections to each node alive for the binary path on purpose.
 * - bodies: Fastify's 1 MiB unless the service says otherwise (uploads and node values).
 * - over HTTPS (`https`, from http/tls.ts), a TLS handshake must end within the headers' 20 s:
 *   Node's own bound is 120 s, long for a socket that never says anything.
 */

import { createServer, type Server, STATUS_CODES } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { Registry } from 'prom-client';
import { failure } from '../core/errors.ts';
import { installAdminToken, installSharedSecret } from './auth.ts';
import { installErrorHandling } from './errors.ts';
import { keepResponsesOnClose } from './keep-responses.ts';
import { createRegistry, installMetrics } from './metrics.ts';
import { installSocketLane, type LaneWrites, type SocketLane } from './socket-lane.ts';

export interface ServiceTimeouts {
  /** Time for a request's headers to arrive, ms. */
  headersMs: number;
  /** Time for a whole request (headers and body) to arrive, ms. */
  requestMs: number;
  /** How often Node checks the two above, ms. */
  checkEveryMs: number;
}

export const DEFAULT_TIMEOUTS: ServiceTimeouts = {
  headersMs: 20_000,
  requestMs: 120_000,
  checkEveryMs: 5_000,
};
export const DEFAULT_MAX_CONNECTIONS = 2048;

export interface ServiceOptions {
  /** Name in logs, metrics labels and /health. */
  service: string;
  secret?: string | undefined;
  /** Whether every route needs the secret (internal services) or only those that ask for it. */
  secretByDefault?: boolean;
  /** Token for routes marked `admin` (the manager's API and dashboard). */
  adminToken?: string | undefined;
  /** Without a token: why `admin` routes are refused (403); unset, they are open (auth.ts). */
  adminClosed?: string | undefined;
  bodyLimit?: number;
  timeouts?: Partial<ServiceTimeouts>;
  maxConnections?: number;
  logger?: FastifyServerOptions['logger'];
  /** A logger made elsewhere (pino), shared with code that runs before the app exists. */
  loggerInstance?: FastifyBaseLogger | undefined;
  /** Renders a 404 page for browsers (services with pages). */
  notFoundPage?: Parameters<typeof installErrorHandling>[1];
  /** Extra fields for /health. */
  health?: () => Record<string, unknown>;
  /**
   * The hottest requests, answered on the socket before node:http parses them (socket-lane.ts);
   * whatever it does not answer goes to node:http and Fastify's routes and hooks as usual. Only
   * for a hot path whose answers a route registered in Fastify gives too.
   */
  socketLane?: SocketLane;
  /** Writes the socket lane takes too: PUTs with their bodies, DELETEs (socket-lane.ts). */
  socketLaneWrites?: LaneWrites | undefined;
  /** A registry made before the app (for parts built before it); default: a new one. */
  registry?: Registry;
  /** Serve HTTPS with this certificate and key (Tls.server, http/tls.ts); plain HTTP without. */
  https?: { cert: Buffer; key: Buffer } | undefined;
}

/** A route as registered, with the auth it needs: what test/security checks every route by. */
export interface RouteRecord {
  method: string;
  url: string;
  /** public: anyone; secret: the pool's shared secret; admin: the operator's token. */
  access: 'public' | 'secret' | 'admin';
  bodyLimit: number | undefined;
}

const inventories = new WeakMap<FastifyInstance, RouteRecord[]>();

const twins = new WeakMap<FastifyInstance, () => Server>();

/**
 * Another server for `app`: the same routes, hooks, limits and TLS (no socket lane), to listen on
 * a second address. A frontend that shares its port with others (SO_REUSEPORT) is reached by the
 * manager on one of its own (frontend/main.ts). The caller listens and closes it.
 */
export function secondServer(app: FastifyInstance): Server {
  const make = twins.get(app);
  if (!make) throw new TypeError('secondServer() takes an app made by createService()');
  return make();
}

/** Every route the service registered (HEAD twins of GET routes included). */
export function routeInventory(app: FastifyInstance): readonly RouteRecord[] {
  return inventories.get(app) ?? [];
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (oversized headers, a request
 * that took too long, malformed HTTP), answered in the envelope, then the socket is closed.
 */
function clientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'The request headers are larger than this service accepts (16 KiB).']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request took too long to arrive; the connection is closed.']
        : [400, 'The request is not valid HTTP.'];
  // An answer to HEAD has no body; the parser keeps the bytes it choked on, method first.
  const raw = (error as { rawPacket?: Buffer }).rawPacket;
  const body =
    raw?.subarray(0, 5).toString('latin1') === 'HEAD '
      ? ''
      : JSON.stringify(failure(status, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export function createService(options: ServiceOptions) {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  let closing = false;
  /** A server with this service's limits and TLS, unlistened. */
  const makeServer = (handler: Parameters<typeof createServer>[1]) => {
    const checking = { connectionsCheckingInterval: timeouts.checkEveryMs };
    const server = options.https
      ? createHttpsServer(
          { ...options.https, ...checking, handshakeTimeout: timeouts.headersMs },
          handler,
        )
      : createServer(checking, handler);
    server.keepAliveTimeout = 65_000;
    server.requestTimeout = timeouts.requestMs;
    server.headersTimeout = timeouts.headersMs;
    server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    return server;
  };
  const app = Fastify({
    ...(options.loggerInstance
      ? { loggerInstance: options.loggerInstance }
      : { logger: options.logger ?? false }),
    // Per-request log lines cost more than serving a cached image; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    ...(options.bodyLimit !== undefined && { bodyLimit: options.bodyLimit }),
    clientErrorHandler: clientError,
    // A URL the router cannot take apart (bad percent-encoding, an overlong parameter) is
    // answered before any route runs: in the envelope too.
    frameworkErrors: (error, _request, reply) => {
      const [status, message]: [number, string] =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? [414, 'A part of the URL path is longer than this service accepts.']
          : error.code === 'FST_ERR_BAD_URL'
            ? [400, 'The URL path is not valid (a broken percent-encoding?).']
            : [400, 'The request cannot be routed.'];
      return (reply as FastifyReply).code(status).send(failure(status, message));
    },
    // A 128-character key, percent-encoded, can be 128 × 12 bytes long in a URL path.
    routerOptions: { maxParamLength: 2048 },
    // Told to Fastify only so that the address listen() answers says https (the server itself
    // comes from the factory below; typed as plain HTTP, as its requests are).
    ...(options.https && ({ https: true } as object)),
    // The server Fastify would make (lib/server.js), with the socket lane in front when there is
    // one. Once closing, every request goes to Fastify, which answers 503 (Connection: close).
    serverFactory: (handler) => {
      const server = makeServer(handler);
      if (options.socketLane) {
        installSocketLane(server, options.socketLane, () => closing, options.socketLaneWrites);
      }
      return server;
    },
  });
  twins.set(app, () => makeServer(app.routing));
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });

  const routes: RouteRecord[] = [];
  inventories.set(app, routes);
  const secretByDefault = options.secretByDefault ?? true;
  app.addHook('onRoute', (route) => {
    const config = (route.config ?? {}) as { public?: boolean; secret?: boolean; admin?: boolean };
    const access = config.admin
      ? 'admin'
      : config.public || !(config.secret || secretByDefault)
        ? 'public'
        : 'secret';
    for (const method of [route.method].flat()) {
      routes.push({ method, url: route.url, access, bodyLimit: route.bodyLimit });
    }
  });
  // A graceful close (SIGTERM) must not cut a response still being written (keep-responses.ts).
  keepResponsesOnClose(app.server);
  installErrorHandling(app, options.notFoundPage);
  installSharedSecret(app, options.secret, secretByDefault);
  installAdminToken(app, options.adminToken, options.adminClosed);
  app.get('/health', { config: { public: true } }, async () => ({
    success: 'true',
    service: options.service,
    status: 'ok',
    ...options.health?.(),
  }));
  const registry: Registry = options.registry ?? createRegistry(options.service);
  installMetrics(app, registry);
  return { app, registry };
}
