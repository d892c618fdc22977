/**
 * Prometheus text metrics at GET /metrics, from a registry owned by the service instance (never
 * prom-client's global one, so one process can run several services in tests).
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // The event-loop delay is sampled every 100 ms: prom-client's default 10 ms sampling was most of
  // an idle process's CPU (bench/RESULTS.md, "Idle cost of a process").
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
