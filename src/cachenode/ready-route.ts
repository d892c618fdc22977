/**
 * GET /ready: whether this node can really serve reads now, for orchestrators' readiness checks
 * (Kubernetes probes, load balancers). /health stays liveness: the process answers at all.
 *
 * A node run with --manager-url is ready only while it holds a pool view that names it, that the
 * manager gave under a lease, and whose lease still runs (view.ts): before its first view, once
 * a view leaves it out, and whenever the manager has not renewed the lease in time, its reads
 * answer 503, so it says so here too. A stand-alone node (no --manager-url) serves everything
 * once it listens, unless someone pushed it a leased view it cannot renew.
 *
 * Public (probes carry no secret) and cheap: it reads the view's state, nothing else. A 503 is
 * answered with the envelope but not logged: a probe asks every few seconds for as long as the
 * node waits, and the view's changes are logged where they happen.
 */
import type { FastifyInstance } from 'fastify';
import { failure } from '../core/errors.ts';
import type { NodeView } from './view.ts';

/** Why the node cannot serve now; undefined when it can. */
export function notReadyReason(view: NodeView, managed: boolean): string | undefined {
  if (!managed) {
    return view.serving()
      ? undefined
      : 'it was given a pool view that must be leased, but it has no --manager-url to renew it from';
  }
  if (view.version === 0) return 'the manager has not given it a pool view yet';
  if (!view.inPool) return "the manager's latest pool view leaves it out of the pool";
  if (!view.pooled) return 'its pool view was not given under a lease by the manager';
  if (!view.serving()) return "its pool view's lease ran out: the manager has not renewed it";
  return undefined;
}

export function readyRoute(app: FastifyInstance, view: NodeView, managed: boolean): void {
  app.get('/ready', { config: { public: true } }, async (_request, reply) => {
    const reason = notReadyReason(view, managed);
    if (reason !== undefined) {
      return reply.code(503).send(failure(503, `This cache node is not ready: ${reason}.`));
    }
    return { success: 'true', status: 'ready', node_id: view.nodeId, view_version: view.version };
  });
}
