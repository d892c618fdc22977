/**
 * GET /ready: whether this frontend can really serve now, for orchestrators' readiness checks
 * (Kubernetes probes, load balancers). /health stays liveness: the process answers at all.
 *
 * Ready means: it holds a pool view, and its metadata store answers a query. The view is there
 * from the start (main.ts asks the manager for one before it listens) and is only ever replaced
 * by a newer one, so a frontend cut off from the manager stays ready: it keeps serving with its
 * last view, and taking every frontend out of a load balancer because the manager restarts would
 * turn a manager's outage into everyone's. Without its database, though, a frontend can serve
 * only what its nodes hold and must refuse every upload, so it is not ready.
 *
 * The query is one primary-key lookup of a key no upload can have (keys hold no `/`). Checks
 * that arrive while one runs share it, and a check gives up after `timeoutMs`, so probes cost
 * the database one query at a time however often they come and however long it hangs. A 503
 * carries the envelope but is not logged: a probe asks every few seconds during an outage, and
 * the storage layer logs the outage itself.
 */
import type { FastifyInstance } from 'fastify';
import { failure } from '../core/errors.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { Routing } from './routing.ts';

export interface ReadyRouteOptions {
  routing: Routing;
  metadata: Pick<MetadataStore, 'get'>;
  /** How long the metadata query may take before the frontend counts as not ready, ms. */
  timeoutMs?: number;
}

const PROBE_KEY = '/ready';

export function readyRoute(app: FastifyInstance, options: ReadyRouteOptions): void {
  const { routing, metadata, timeoutMs = 2000 } = options;
  let running: Promise<void> | undefined;
  const query = (): Promise<void> => {
    running ??= metadata
      .get(PROBE_KEY)
      .then(() => undefined)
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  /** Why the frontend cannot serve now; undefined when it can. */
  async function notReadyReason(): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`its metadata store did not answer within ${timeoutMs} ms`),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([
        query().then(
          () => undefined,
          () => 'its metadata store does not answer',
        ),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  app.get('/ready', { config: { public: true } }, async (_request, reply) => {
    const reason = await notReadyReason();
    if (reason !== undefined) {
      return reply.code(503).send(failure(503, `This frontend is not ready: ${reason}.`));
    }
    return { success: 'true', status: 'ready', view_version: routing.view.map.version };
  });
}
