/**
 * Runs the manager as a process: opens storage, resumes (or starts) the pool through its node
 * provider, listens, and on SIGTERM/SIGINT stops taking requests, then stops the nodes it started.
 *
 * The stop, in order: the pool drains (no new resizes; a running one gets RESIZE_DRAIN_MS, after
 * which its waiting caller is answered 503), the server closes once every request is answered,
 * then the pool, the provider (which stops the nodes, 5 s each at most, in parallel) and storage
 * close. So the process bound is the usual 10 s for requests plus the nodes' own stop.
 */
import { totalmem } from 'node:os';
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import { createNodeAdmin } from '../clients/node-admin.ts';
import { capacityLimitMb } from '../core/cache-config.ts';
import { nodeUrl } from '../core/node-address.ts';
import type { Assignment } from '../core/pool-map.ts';
import { freePort, isLoopback, urlFor } from '../http/listen.ts';
import { NO_TLS, type Tls } from '../http/tls.ts';
import type { LogLevel } from '../process/flags.ts';
import { closeOnSignals, DEFAULT_GRACE_MS } from '../process/signals.ts';
import { openStorage, type Storage, type StorageOptions } from '../storage/open.ts';
import { buildManager } from './app.ts';
import type { SinkLog } from './cloudwatch.ts';
import { DAY_MS, DEFAULT_RETENTION } from './housekeeping.ts';
import { DEFAULT_POOL_NAME } from './providers/ec2-options.ts';
import {
  createEngineProvider,
  type EngineProviderName,
  type EngineProviderOptions,
} from './providers/engines.ts';
import { createLocalProvider } from './providers/local.ts';
import type { NodeProvider } from './providers/provider.ts';
import { createStaticProvider } from './providers/static.ts';

/** On a stop, how long a running resize may go on before its caller is answered (503). */
const RESIZE_DRAIN_MS = DEFAULT_GRACE_MS - 2000;
/** The whole stop's bound: the requests' 10 s, then the nodes' stop (5 s SIGTERM grace). */
export const STOP_GRACE_MS = DEFAULT_GRACE_MS + 6000;

/** Where nodes come from: the provider and its settings (`pixpool manager` and `delete-pool`). */
export interface ProviderChoice extends Omit<EngineProviderOptions, 'provider'> {
  provider: 'local' | 'static' | EngineProviderName;
  /** For the static provider: the node URLs it may use. */
  nodeUrls: string[];
}

export interface ManagerOptions extends StorageOptions, ProviderChoice {
  host: string;
  port: number;
  secret?: string | undefined;
  adminToken?: string | undefined;
  assignment: Assignment;
  /** Extra arguments for nodes the local provider starts. */
  nodeArgs?: string[];
  logLevel: LogLevel;
  /** Storage already open in this process (pixpool up shares it with the frontend). */
  storage?: Storage;
  /** Let the caller handle signals (pixpool up). */
  handleSignals?: boolean;
  /** Days the pool log, old maps and silent frontends are kept (default 30). */
  historyDays?: number | undefined;
  /** How long a node may serve under its view without a renewal, ms (default 3000). */
  viewLeaseMs?: number | undefined;
  /** HTTPS, and the CA its clients verify peers with (http/tls.ts); the local nodes get it too. */
  tls?: Tls | undefined;
  /** Publish the statistics to CloudWatch too (cloudwatch.ts); the region from the SDK's chain if unset. */
  cloudwatch?: { namespace: string; region?: string | undefined } | undefined;
}

const managerLine = (message: string) => console.error(`manager: ${message}`);

/** The CloudWatch sink's factory; the SDK is loaded only when one is asked for. */
async function cloudWatchSink(options: NonNullable<ManagerOptions['cloudwatch']>, pool: string) {
  const { CloudWatchClient } = await import('@aws-sdk/client-cloudwatch');
  const { createCloudWatchSink } = await import('./cloudwatch.ts');
  const client = new CloudWatchClient({ ...(options.region && { region: options.region }) });
  // Found now, or every call would fail: the SDK looks in AWS_REGION and ~/.aws/config.
  await client.config.region().catch(() => {
    throw new Error(
      'CloudWatch needs a region: set --cloudwatch-region (PIXPOOL_CLOUDWATCH_REGION) or AWS_REGION.',
    );
  });
  return (context: { registry: Registry; log: SinkLog }) => {
    const sink = createCloudWatchSink({ client, namespace: options.namespace, pool, ...context });
    return {
      add: sink.add,
      async stop() {
        await sink.stop();
        client.destroy();
      },
    };
  };
}

export async function runManager(options: ManagerOptions) {
  if (!isLoopback(options.host) && !(options.secret && options.adminToken)) {
    throw new Error(
      `Refusing to listen on ${options.host} without PIXPOOL_SECRET and PIXPOOL_ADMIN_TOKEN; or bind to 127.0.0.1.`,
    );
  }
  const tls = options.tls ?? NO_TLS;
  if (options.provider === 'static') {
    for (const url of options.nodeUrls) tls.guard(nodeUrl(url), 'the shared secret (--node-urls)');
  }
  const createSampleSink =
    options.cloudwatch &&
    (await cloudWatchSink(options.cloudwatch, options.poolName ?? DEFAULT_POOL_NAME));
  const storage = options.storage ?? (await openStorage(options));
  const port = options.port || (await freePort(options.host));
  const managerUrl = urlFor(options.host, port, tls.scheme);
  const admin = createNodeAdmin({ secret: options.secret, timeoutMs: 5000, tls });
  const provider: NodeProvider =
    options.provider === 'ec2' || options.provider === 'kubernetes'
      ? await createEngineProvider({ ...options, provider: options.provider }, managerLine)
      : options.provider === 'static'
        ? createStaticProvider({ urls: options.nodeUrls, admin, log: managerLine })
        : createLocalProvider({
            secret: options.secret,
            managerUrl,
            args: options.nodeArgs ?? [],
            log: managerLine,
            tls,
          });
  const log = pino({ level: options.logLevel });
  const { app, pool, start } = buildManager({
    store: storage.pool,
    metadata: storage.metadata,
    objects: storage.objects,
    provider,
    admin,
    assignment: options.assignment,
    secret: options.secret,
    adminToken: options.adminToken,
    // The machine's memory, not this process's limit: a manager's container is small, and the
    // nodes it configures check their own limit when they apply the capacity.
    maxCapacityMb: capacityLimitMb(totalmem()),
    logger: log,
    drainMs: RESIZE_DRAIN_MS,
    viewLeaseMs: options.viewLeaseMs,
    tls,
    createSampleSink,
    ...(options.historyDays !== undefined && {
      retention: { ...DEFAULT_RETENTION, historyMs: options.historyDays * DAY_MS },
    }),
    ...(!options.storage && { closeLast: () => storage.close() }),
  });
  // A pool that cannot start, or a port taken: close the app all the same, so the nodes it
  // started do not outlive us. Nodes an engine starts announce themselves to us, so for those
  // we listen before the pool starts.
  const listen = () => app.listen({ host: options.host, port });
  const address = await (provider.register
    ? listen().then(async (address) => {
        await start();
        return address;
      })
    : start().then(listen)
  ).catch(async (error: unknown) => {
    await app.close();
    throw error;
  });
  if (options.handleSignals !== false) {
    // Closing the app also stops the nodes the local provider started (an onClose hook).
    closeOnSignals(
      () => app.close(),
      (message) => log.info(message),
      { graceMs: STOP_GRACE_MS, onForcedExit: () => provider.killNow?.() },
    );
  }
  // Printed at every log level: supervisors (pixpool up) wait for this line and
  // may stop us as soon as they read it, so it comes after the signal handlers.
  console.log(`manager listening on ${address} (${pool.size} node(s), ${provider.name} provider)`);
  return { app, address, pool, storage, provider };
}
