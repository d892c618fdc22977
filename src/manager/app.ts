/**
 * buildManager(deps): the manager as a Fastify instance that never listens by itself. The pool
 * (registry, queue, provider) is created by the caller and passed in, so tests can drive it.
 */
import type { FastifyBaseLogger } from 'fastify';
import { createService } from '../http/service.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { PoolStore } from '../storage/pool-store.ts';
import { autoscalerRoutes } from './autoscaler-routes.ts';
import { registerDashboard } from './dashboard/index.ts';
import type { Pool } from './pool.ts';
import { managerRoutes } from './routes.ts';

export interface ManagerDeps {
  pool: Pool;
  store: PoolStore;
  metadata: MetadataStore;
  objects: ObjectStore;
  /** The pool's shared secret (nodes publish statistics, frontends register with it). */
  secret?: string | undefined;
  /** Operators' token for the API and dashboard; optional only on loopback. */
  adminToken?: string | undefined;
  maxCapacityMb: number;
  logger?: FastifyBaseLogger;
}

export async function buildManager(deps: ManagerDeps) {
  const { app } = createService({
    service: 'manager',
    secret: deps.secret,
    secretByDefault: false,
    adminToken: deps.adminToken,
    loggerInstance: deps.logger,
    health: () => ({ nodes: deps.pool.size }),
  });
  managerRoutes(app, deps);
  autoscalerRoutes(app, deps);
  registerDashboard(app, { title: 'pixpool manager' });
  return app;
}
