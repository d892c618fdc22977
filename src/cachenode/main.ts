/**
 * Runs one cache node as a process: takes parsed options (cli.ts reads flags and environment),
 * refuses an unsafe setup, listens, and closes gracefully on SIGTERM/SIGINT.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { localCapacityLimitMb } from '../core/cache-config.ts';
import type { PolicyName } from '../core/stores/store.ts';
import { isLoopback } from '../http/listen.ts';
import { NO_TLS, type Tls } from '../http/tls.ts';
import type { LogLevel } from '../process/flags.ts';
import { closeOnSignals } from '../process/signals.ts';
import { createAnnouncer, engineClaim, type IdentityOptions } from './announce.ts';
import { buildCacheNode } from './app.ts';
import { createNodeCache, MB } from './node-cache.ts';
import { createPublisher } from './publisher.ts';

export interface CacheNodeOptions {
  host: string;
  port: number;
  /** MB of image bytes: above 0, at most localCapacityLimitMb() (createNodeCache checks). */
  capacityMb: number;
  policy: PolicyName;
  nodeId?: string | undefined;
  secret?: string | undefined;
  logLevel: LogLevel;
  maxBodyMb: number;
  /** Where to publish statistics every 5 s; none when undefined. */
  managerUrl?: string | undefined;
  /** Seconds between statistics samples (default 5; tests of the autoscaler use 1). */
  statsIntervalS?: number | undefined;
  /** Read leases for frontends, ms: 0 (none) to MAX_LEASE_MS (parseLeaseMs); default 100. */
  leaseMs?: number | undefined;
  /** Whether reads are answered on the socket (http/socket-lane.ts); default true. */
  socketLanes?: boolean | undefined;
  /** HTTPS, and the CA its clients verify peers with (http/tls.ts); none by default. */
  tls?: Tls | undefined;
  /** Started by an engine: announce this node to the manager (announce.ts). */
  announce?: Omit<IdentityOptions, 'port' | 'scheme'> | undefined;
}

export async function runCacheNode(options: CacheNodeOptions) {
  const maxCapacityMb = localCapacityLimitMb();
  const { capacityMb, policy } = options;
  const secret = options.secret || undefined;
  if (!secret && !isLoopback(options.host)) {
    throw new Error(
      `Refusing to listen on ${options.host} without a shared secret: set PIXPOOL_SECRET (or --secret), or bind to 127.0.0.1.`,
    );
  }
  const tls = options.tls ?? NO_TLS;
  const managerUrl = options.managerUrl?.replace(/\/+$/, '');
  if (managerUrl) tls.guard(managerUrl, 'the shared secret (--manager-url)');
  if (options.announce && !managerUrl) {
    throw new Error('--announce needs --manager-url: the manager this node announces itself to.');
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
    bodyLimit: Math.floor(options.maxBodyMb * MB),
    leaseMs: options.leaseMs,
    socketLanes: options.socketLanes ?? true,
    managerUrl: options.managerUrl,
    tls,
    logger: { level: options.logLevel },
  });
  const publisher = managerUrl
    ? createPublisher({
        nodeId,
        managerUrl,
        secret,
        fetch: tls.fetch,
        sample: () => cache.stats.sample(),
        intervalMs: Math.round((options.statsIntervalS ?? 5) * 1000),
        log: app.log,
      })
    : undefined;
  app.addHook('onClose', async () => publisher?.stop());
  // The port a claim names is known once we listen (port 0 picks one).
  let port = options.port;
  const identity = options.announce;
  const announcer =
    identity && managerUrl
      ? createAnnouncer({
          managerUrl,
          secret,
          fetch: tls.fetch,
          claim: () => engineClaim({ ...identity, port, scheme: tls.scheme }),
          log: app.log,
        })
      : undefined;
  app.addHook('onClose', async () => announcer?.stop());
  const address = await app.listen({ host: options.host, port: options.port });
  port = Number(new URL(address).port) || port;
  publisher?.start();
  void announcer?.start();
  closeOnSignals(
    () => app.close(),
    (message) => app.log.info(message),
  );
  // Printed at every log level: supervisors (pixpool up, the manager) wait for this line and
  // may stop us as soon as they read it, so it comes after the signal handlers.
  console.log(`cache node ${nodeId} listening on ${address} (${policy}, ${capacityMb} MB)`);
  return { app, address };
}
