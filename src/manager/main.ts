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
import { createNodeClient } from '../clients/node-client.ts';
import { MB } from '../core/cache-config.ts';
import type { Assignment } from '../core/pool-map.ts';
import { freePort, isLoopback, urlFor } from '../http/listen.ts';
import { closeOnSignals, DEFAULT_GRACE_MS } from '../process/signals.ts';
import { openStorage, type Storage, type StorageOptions } from '../storage/open.ts';
import { buildManager } from './app.ts';
import { createNotifier } from './notifier.ts';
import { createPool } from './pool.ts';
import { createLocalProvider } from './providers/local.ts';
import type { NodeProvider } from './providers/provider.ts';
import { createStaticProvider } from './providers/static.ts';

/** On a stop, how long a running resize may go on before its caller is answered (503). */
const RESIZE_DRAIN_MS = DEFAULT_GRACE_MS - 2000;
/** The whole stop's bound: the requests' 10 s, then the nodes' stop (5 s SIGTERM grace). */
export const STOP_GRACE_MS = DEFAULT_GRACE_MS + 6000;

export interface ManagerOptions extends StorageOptions {
  host: string;
  port: number;
  secret?: string | undefined;
  adminToken?: string | undefined;
  provider: 'local' | 'static';
  /** For the static provider: the node URLs it may use. */
  nodeUrls: string[];
  assignment: Assignment;
  /** Extra arguments for nodes the local provider starts. */
  nodeArgs?: string[];
  logLevel: string;
  /** Storage already open in this process (pixpool up shares it with the frontend). */
  storage?: Storage;
  /** Let the caller handle signals (pixpool up). */
  handleSignals?: boolean;
}

export async function runManager(options: ManagerOptions) {
  if (!isLoopback(options.host) && !(options.secret && options.adminToken)) {
    throw new Error(
      `Refusing to listen on ${options.host} without PIXPOOL_SECRET and PIXPOOL_ADMIN_TOKEN; or bind to 127.0.0.1.`,
    );
  }
  const storage = options.storage ?? (await openStorage(options));
  const port = options.port || (await freePort(options.host));
  const managerUrl = urlFor(options.host, port);
  const nodes = createNodeClient({ secret: options.secret, timeoutMs: 5000 });
  const provider: NodeProvider =
    options.provider === 'static'
      ? createStaticProvider({ urls: options.nodeUrls, nodes })
      : createLocalProvider({
          secret: options.secret,
          managerUrl,
          args: options.nodeArgs ?? [],
          log: (message) => console.error(`manager: ${message}`),
        });
  const maxCapacityMb = Math.floor((totalmem() / MB) * 0.9);
  // The pool needs a logger before the app exists, so the app gets this one.
  const log = pino({ level: options.logLevel });
  const pool = await createPool({
    store: storage.pool,
    provider,
    nodes,
    assignment: options.assignment,
    log,
    publish: createNotifier({ store: storage.pool, secret: options.secret, log }),
  });
  const app = await buildManager({
    pool,
    store: storage.pool,
    metadata: storage.metadata,
    objects: storage.objects,
    secret: options.secret,
    adminToken: options.adminToken,
    maxCapacityMb,
    logger: log,
  });
  const prune = setInterval(() => {
    void storage.pool.pruneSamples(new Date(Date.now() - 25 * 3600_000)).catch(() => {});
  }, 3600_000);
  prune.unref();
  // Before the server closes: it waits for in-flight requests, so a resize must not outlast them.
  app.addHook('preClose', async () => pool.drain(RESIZE_DRAIN_MS));
  app.addHook('onClose', async () => {
    clearInterval(prune);
    await pool.close();
    await provider.close();
    await nodes.close();
    if (!options.storage) await storage.close();
  });
  // A port taken: close the app all the same, so the nodes it started do not outlive us.
  const address = await app.listen({ host: options.host, port }).catch(async (error: unknown) => {
    await app.close();
    throw error;
  });
  if (options.handleSignals !== false) {
    // Closing the app also stops the nodes the local provider started (an onClose hook).
    closeOnSignals(
      () => app.close(),
      (message) => log.info(message),
      { graceMs: STOP_GRACE_MS },
    );
  }
  // Printed at every log level: supervisors (pixpool up) wait for this line and
  // may stop us as soon as they read it, so it comes after the signal handlers.
  console.log(`manager listening on ${address} (${pool.size} node(s), ${provider.name} provider)`);
  return { app, address, pool, storage };
}
