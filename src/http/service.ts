/**
 * What every pixpool service's Fastify instance starts with: quiet per-request logging, the
 * envelope error handler, shared-secret auth, GET /health (public) and GET /metrics.
 */
import Fastify, { type FastifyBaseLogger, type FastifyServerOptions, LogController } from 'fastify';
import type { Registry } from 'prom-client';
import { installAdminToken, installSharedSecret } from './auth.ts';
import { installErrorHandling } from './errors.ts';
import { createRegistry, installMetrics } from './metrics.ts';

export interface ServiceOptions {
  /** Name in logs, metrics labels and /health. */
  service: string;
  secret?: string | undefined;
  /** Whether every route needs the secret (internal services) or only those that ask for it. */
  secretByDefault?: boolean;
  /** Token for routes marked `admin` (the manager's API and dashboard). */
  adminToken?: string | undefined;
  bodyLimit?: number;
  logger?: FastifyServerOptions['logger'];
  /** A logger made elsewhere (pino), shared with code that runs before the app exists. */
  loggerInstance?: FastifyBaseLogger | undefined;
  /** Renders a 404 page for browsers (services with pages). */
  notFoundPage?: Parameters<typeof installErrorHandling>[1];
  /** Extra fields for /health. */
  health?: () => Record<string, unknown>;
}

export function createService(options: ServiceOptions) {
  const app = Fastify({
    ...(options.loggerInstance
      ? { loggerInstance: options.loggerInstance }
      : { logger: options.logger ?? false }),
    // Per-request log lines cost more than serving a cached image; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    ...(options.bodyLimit !== undefined && { bodyLimit: options.bodyLimit }),
    keepAliveTimeout: 65_000,
    // A 128-character key, percent-encoded, can be 128 × 12 bytes long in a URL path.
    routerOptions: { maxParamLength: 2048 },
  });
  installErrorHandling(app, options.notFoundPage);
  installSharedSecret(app, options.secret, options.secretByDefault ?? true);
  installAdminToken(app, options.adminToken);
  app.get('/health', { config: { public: true } }, async () => ({
    success: 'true',
    service: options.service,
    status: 'ok',
    ...options.health?.(),
  }));
  const registry: Registry = createRegistry(options.service);
  installMetrics(app, registry);
  return { app, registry };
}
