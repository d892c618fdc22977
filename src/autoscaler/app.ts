/**
 * buildAutoscaler(deps): the autoscaler service as a Fastify instance that never listens by
 * itself (main.ts does): the control loop around the core policy, and what reports on it:
 * `GET /health`, `GET /status` (the loop's health and its last decision) and `GET /metrics`.
 *
 * The loop is created here but not started, so tests can drive its ticks by hand. Closing the app
 * stops the loop and waits for a tick in progress.
 */
import type { FastifyServerOptions } from 'fastify';
import { createService, type ServiceOptions } from '../http/service.ts';
import { type AutoscalerSource, createAutoscalerLoop } from './loop.ts';
import { createAutoscalerMetrics } from './metrics.ts';

export interface AutoscalerDeps {
  source: AutoscalerSource;
  intervalS: number;
  windowS: number;
  dryRun?: boolean;
  clock?: { now(): number };
  logger?: FastifyServerOptions['logger'];
  /** Serve HTTPS with this certificate and key (http/tls.ts). */
  https?: ServiceOptions['https'];
}

export function buildAutoscaler(deps: AutoscalerDeps) {
  // Read at request time, once the loop below exists.
  const status = () => loop.status();
  const { app, registry } = createService({
    service: 'autoscaler',
    // It holds no secret and serves only read-only status: every route is public, on purpose.
    secretByDefault: false,
    logger: deps.logger ?? false,
    https: deps.https,
    health: () => ({ running: status().running }),
  });
  const metrics = createAutoscalerMetrics(registry, () => status());
  const loop = createAutoscalerLoop({
    source: deps.source,
    intervalS: deps.intervalS,
    windowS: deps.windowS,
    dryRun: deps.dryRun ?? false,
    ...(deps.clock && { clock: deps.clock }),
    logger: {
      info: (m) => app.log.info(m),
      warn: (m) => app.log.warn(m),
      error: (m) => app.log.error(m),
    },
    metrics,
  });
  app.get('/status', async () => ({ success: 'true', ...loop.status() }));
  app.addHook('onClose', async () => loop.stop());
  return { app, loop };
}
