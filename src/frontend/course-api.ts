/**
 * The later course test API on the frontend's port: POST /api/delete_all, /api/configure_cache,
 * /api/getNumNodes and /api/getRate?rate=…, relayed to the manager, which owns them. The
 * course's test clients send every call to the frontend (:5000) and compare whole bodies, so the
 * manager's answer, status and JSON body, goes back byte for byte; the query goes on as sent.
 *
 * They are operator endpoints (`admin`), held to the manager's own rule by the service's admin
 * hook (http/auth.ts): the admin token when one is set, open when none is and the frontend
 * listens on loopback only, refused beyond it unless the operator opened them (main.ts). The
 * frontend calls the manager with its own admin token, the manager's.
 *
 * Without a manager (a frontend with a fixed list of nodes) they answer 404 saying why. A
 * manager that cannot be reached is a 503. configure_cache may wait for resizes (a node's start
 * on a cloud engine takes minutes), hence the relay's long answer timeout.
 */
import type { FastifyInstance } from 'fastify';
import { createNodeTransport } from '../clients/node-transport.ts';
import { notFound, unavailable } from '../core/errors.ts';
import type { Tls } from '../http/tls.ts';

export const COURSE_API_PATHS = [
  '/api/delete_all',
  '/api/configure_cache',
  '/api/getNumNodes',
  '/api/getRate',
] as const;

/** How long the manager may take to answer a relayed call: resizes included, ms. */
const ANSWER_TIMEOUT_MS = 15 * 60_000;
/** How long connecting to the manager may take, ms. */
const CONNECT_TIMEOUT_MS = 5000;

export interface ManagerRelayOptions {
  managerUrl: string;
  /** The manager's admin token, sent on every relayed call. */
  adminToken?: string | undefined;
  /** The process's TLS (its CA for an https manager); none: Node's defaults. */
  tls?: Pick<Tls, 'connect' | 'guard'> | undefined;
  answerTimeoutMs?: number;
}

export interface RelayedAnswer {
  status: number;
  /** The manager's JSON, as it sent it. */
  body: string;
}

/** Relays one POST (path and query string) to the manager; a 503 PixpoolError when it fails. */
export function createManagerRelay(options: ManagerRelayOptions) {
  const { managerUrl, answerTimeoutMs = ANSWER_TIMEOUT_MS } = options;
  // The node protocol's undici transport: kept-alive connections, the CA, per-call timeouts.
  const transport = createNodeTransport({
    timeoutMs: CONNECT_TIMEOUT_MS,
    connections: 2,
    tls: options.tls,
  });
  const headers: Record<string, string> = options.adminToken
    ? { authorization: `Bearer ${options.adminToken}` }
    : {};
  const away = (cause: unknown) =>
    unavailable('The manager does not answer, so this frontend cannot relay the call; try again.', {
      detail: `relaying to the manager at ${managerUrl}`,
      cause,
    });

  return {
    async relay(pathAndQuery: string): Promise<RelayedAnswer> {
      let body: string;
      let status: number;
      let type: unknown;
      try {
        const response = await transport.call(
          managerUrl,
          'POST',
          pathAndQuery,
          headers,
          undefined,
          answerTimeoutMs,
        );
        ({ statusCode: status } = response);
        type = response.headers['content-type'];
        body = await response.body.text();
      } catch (error) {
        throw away(error);
      }
      // Not the manager's envelope (a proxy's error page, say): nothing a client could compare.
      if (typeof type !== 'string' || !type.startsWith('application/json')) {
        throw away(
          new Error(`HTTP ${status} answered with ${String(type)}: ${body.slice(0, 200)}`),
        );
      }
      return { status, body };
    },
    close: () => transport.close(),
  };
}

export type ManagerRelay = Pick<ReturnType<typeof createManagerRelay>, 'relay'>;

export function courseApiRoutes(app: FastifyInstance, relay: ManagerRelay | undefined): void {
  for (const path of COURSE_API_PATHS) {
    app.post(path, { config: { admin: true } }, async (request, reply) => {
      if (!relay) {
        throw notFound(
          `${path} is the manager's, and this frontend has none (it routes to a fixed list of cache nodes): ask the manager, or start the frontend with --manager-url.`,
        );
      }
      const query = request.url.indexOf('?');
      const answer = await relay.relay(query < 0 ? path : path + request.url.slice(query));
      return reply.code(answer.status).type('application/json; charset=utf-8').send(answer.body);
    });
  }
}
