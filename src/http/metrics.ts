/**
 * Prometheus text metrics at GET /metrics, from a registry owned by the service instance (never
 * prom-client's global one, so one process can run several services in tests).
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // The event-loop delay is sampled every 100 ms, not prom-client's default 10 ms: at 10 ms the
  // sampling alone costs ~10 ms of CPU per second in every process, idle or busy; at 100 ms
  // ~1 ms (a bare process holding only the default metrics, 15 s idle).
  collectDefaultMetrics({
    register: registry,
    prefix: 'pixpool_',
    eventLoopMonitoringPrecision: 100,
  });
  return registry;
}

export function installMetrics(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
