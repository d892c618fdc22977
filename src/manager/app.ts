/**
 * buildManager(deps): the manager as a Fastify instance that never listens by itself, with the
 * pool, the notifier and the housekeeping it runs. Building does no I/O: `start()` resumes (or
 * starts) the pool and the housekeeping; closing the app drains the pool (a running resize gets
 * `drainMs`), then stops it, the provider's nodes and the clients.
 */
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import type { NodeAdmin } from '../clients/node-admin.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import type { Assignment } from '../core/pool-map.ts';
import { createRegistry } from '../http/metrics.ts';
import { createService } from '../http/service.ts';
import type { Tls } from '../http/tls.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { PoolStore } from '../storage/pool-store.ts';
import { autoscalerRoutes } from './autoscaler-routes.ts';
import type { SampleSink, SinkLog } from './cloudwatch.ts';
import { registerDashboard } from './dashboard/index.ts';
import { createHousekeeping, DEFAULT_RETENTION, type Retention } from './housekeeping.ts';
import { createNotifier } from './notifier.ts';
import { createJournal } from './pool/journal.ts';
import { createPool } from './pool/pool.ts';
import type { NodeProvider } from './providers/provider.ts';
import { managerRoutes } from './routes.ts';

export interface ManagerDeps {
  store: PoolStore;
  metadata: MetadataStore;
  objects: ObjectStore;
  provider: NodeProvider;
  admin: NodeAdmin;
  assignment: Assignment;
  /** The pool's shared secret (nodes publish statistics, frontends register with it). */
  secret?: string | undefined;
  /** Operators' token for the API and dashboard; optional only on loopback. */
  adminToken?: string | undefined;
  maxCapacityMb: number;
  logger?: FastifyBaseLogger;
  clock?: Clock;
  retention?: Retention;
  /** On close, how long a running resize may go on before its caller is answered 503, ms. */
  drainMs?: number;
  /** How long a node may serve under its view without a renewal, ms (pool/view-leases.ts). */
  viewLeaseMs?: number | undefined;
  /** Closes what else the manager owns (its storage), last, once its nodes are stopped. */
  closeLast?: () => Promise<void>;
  /** HTTPS to serve, and what pushes to frontends verify them with (http/tls.ts). */
  tls?: Tls | undefined;
  /** Where stored statistics samples also go (CloudWatch); made with the manager's registry. */
  createSampleSink?: ((context: { registry: Registry; log: SinkLog }) => SampleSink) | undefined;
}

export const DEFAULT_DRAIN_MS = 8000;

export function buildManager(deps: ManagerDeps) {
  const log = deps.logger ?? pino({ level: 'silent' });
  const clock = deps.clock ?? systemClock;
  const registry = createRegistry('manager');
  const journal = createJournal({ store: deps.store, log, registry });
  const pool = createPool({
    store: deps.store,
    provider: deps.provider,
    admin: deps.admin,
    assignment: deps.assignment,
    log,
    journal,
    registry,
    clock,
    viewLeaseMs: deps.viewLeaseMs,
    publish: createNotifier({ store: deps.store, secret: deps.secret, journal, tls: deps.tls }),
  });
  const housekeeping = createHousekeeping({
    store: deps.store,
    clock,
    journal,
    retention: deps.retention ?? DEFAULT_RETENTION,
  });
  const { app } = createService({
    service: 'manager',
    secret: deps.secret,
    secretByDefault: false,
    adminToken: deps.adminToken,
    loggerInstance: log,
    registry,
    https: deps.tls?.server,
    health: () => ({ nodes: pool.size }),
  });
  const sampleSink = deps.createSampleSink?.({
    registry,
    log: { warn: (m) => log.warn(m), info: (m) => log.info(m) },
  });
  managerRoutes(app, { ...deps, pool, sampleSink });
  autoscalerRoutes(app, { pool, store: deps.store, clock });
  registerDashboard(app, { title: 'pixpool manager' });
  // Before the server closes: it waits for requests in flight, so a resize must not outlast them.
  app.addHook('preClose', async () => pool.drain(deps.drainMs ?? DEFAULT_DRAIN_MS));
  app.addHook('onClose', async () => {
    await sampleSink?.stop();
    await housekeeping.stop();
    await pool.close();
    await deps.provider.close();
    await deps.admin.close();
    await deps.closeLast?.();
  });
  return {
    app,
    pool,
    /** Resumes (or starts) the pool, then the housekeeping. */
    async start(): Promise<void> {
      await pool.start();
      housekeeping.start();
    },
  };
}
