/**
 * Runs one cache node as a process: takes parsed options (cli.ts reads flags and environment),
 * refuses an unsafe setup, listens, and closes gracefully on SIGTERM/SIGINT.
 */
import { randomUUID } from 'node:crypto';
import { hostname, totalmem } from 'node:os';
import { capacityLimitMb } from '../core/cache-config.ts';
import { DEFAULT_LEASE_MS } from '../core/node-protocol.ts';
import { isLoopback } from '../http/listen.ts';
import { closeOnSignals } from '../process/signals.ts';
import { buildCacheNode } from './app.ts';
import { parseLeaseMs } from './leases.ts';
import { createNodeCache, MB, parseCapacityMb, parsePolicy } from './node-cache.ts';
import { createPublisher } from './publisher.ts';

export interface CacheNodeOptions {
  host: string;
  port: number;
  capacityMb: string | number;
  policy: string;
  nodeId?: string | undefined;
  secret?: string | undefined;
  logLevel: string;
  maxBodyMb: string | number;
  /** Where to publish statistics every 5 s; none when undefined. */
  managerUrl?: string | undefined;
  /** Seconds between statistics samples (default 5; tests of the autoscaler use 1). */
  statsIntervalS?: number | undefined;
  /** Read leases for frontends, ms (leases.ts); default 100, 0 for none. */
  leaseMs?: string | number | undefined;
}

export async function runCacheNode(options: CacheNodeOptions) {
  const maxCapacityMb = capacityLimitMb(totalmem());
  const capacityMb = parseCapacityMb(options.capacityMb, maxCapacityMb);
  const policy = parsePolicy(options.policy);
  const leaseMs = parseLeaseMs(options.leaseMs ?? DEFAULT_LEASE_MS);
  const secret = options.secret || undefined;
  if (!secret && !isLoopback(options.host)) {
    throw new Error(
      `Refusing to listen on ${options.host} without a shared secret: set PIXPOOL_SECRET (or --secret), or bind to 127.0.0.1.`,
    );
  }
  // host:port names a node well, but a port picked by the OS (0) is not known yet.
  const nodeId =
    options.nodeId ||
    (options.port ? `${hostname()}:${options.port}` : `${hostname()}-${randomUUID().slice(0, 8)}`);
  const cache = createNodeCache({ policy, capacityMb, maxCapacityMb });
  const app = await buildCacheNode({
    nodeId,
    cache,
    secret,
    bodyLimit: Math.floor(Number(options.maxBodyMb) * MB),
    leaseMs,
    logger: { level: options.logLevel },
  });
  const publisher = options.managerUrl
    ? createPublisher({
        nodeId,
        managerUrl: options.managerUrl.replace(/\/+$/, ''),
        secret,
        sample: () => cache.stats.sample(),
        intervalMs: Math.round((options.statsIntervalS ?? 5) * 1000),
        log: app.log,
      })
    : undefined;
  app.addHook('onClose', async () => publisher?.stop());
  const address = await app.listen({ host: options.host, port: options.port });
  publisher?.start();
  closeOnSignals(
    () => app.close(),
    (message) => app.log.info(message),
  );
  // Printed at every log level: supervisors (pixpool up, the manager) wait for this line and
  // may stop us as soon as they read it, so it comes after the signal handlers.
  console.log(`cache node ${nodeId} listening on ${address} (${policy}, ${capacityMb} MB)`);
  return { app, address };
}
