/**
 * Runs the frontend as a process: opens storage (embedded by default, PostgreSQL and S3 when
 * configured), routes to the configured nodes, listens, and closes gracefully on SIGTERM/SIGINT.
 */

import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createNodeClient } from '../clients/node-client.ts';
import { isLoopback, urlFor } from '../http/listen.ts';
import { secondServer } from '../http/service.ts';
import { NO_TLS, type Tls } from '../http/tls.ts';
import type { LogLevel } from '../process/flags.ts';
import { closeOnSignals } from '../process/signals.ts';
import { openStorage, type Storage, type StorageOptions } from '../storage/open.ts';
import { buildFrontend } from './app.ts';
import { createManagerRelay } from './course-api.ts';
import { createManagerLink } from './manager-link.ts';
import { createRouting, staticPoolView } from './routing.ts';
import type { FrontendTuning } from './tuning.ts';

/** What tunes a frontend beyond where it listens: `pixpool frontend` and `pixpool up` alike. */

export interface FrontendOptions extends StorageOptions, FrontendTuning {
  host: string;
  port: number;
  /** Cache node URLs: a static pool, used when there is no manager. */
  nodes: string[];
  /** The manager that owns the pool: its views replace the static node list. */
  managerUrl?: string | undefined;
  /** How the manager reaches this frontend (default: from host and port). */
  advertiseUrl?: string | undefined;
  /** Storage already open in this process (pixpool up shares it with the manager). */
  storage?: Storage;
  /** Let the caller handle signals (pixpool up). */
  handleSignals?: boolean;
  /** Whether image reads are answered on the socket (http/socket-lane.ts); default true. */
  socketLanes?: boolean | undefined;
  secret?: string | undefined;
  /** The operators' token: the course test API needs it, and it goes on to the manager. */
  adminToken?: string | undefined;
  /** Open the course test API to anyone who reaches this frontend, token or not (a grader). */
  openCourseApi?: boolean | undefined;
  /** HTTPS, and the CA its clients verify peers with (http/tls.ts); none by default. */
  tls?: Tls | undefined;
  logLevel: LogLevel;
  /**
   * Share host:port with other frontends on this machine (SO_REUSEPORT: the kernel spreads new
   * connections over them; `pixpool up --workers`). A push to the shared port would reach one of
   * them at random, so each also listens on an address of its own (`ownPort`), which it
   * registers with the manager unless `advertiseUrl` says otherwise.
   */
  reusePort?: boolean | undefined;
  /** With `reusePort`: the port only this frontend listens on; 0 (default) picks a free one. */
  ownPort?: number | undefined;
  /**
   * Exit (gracefully, as on SIGTERM) when stdin ends: the process that started us with a pipe
   * there (`pixpool up`) is gone, and nothing else would stop us sharing its port.
   */
  exitWithParent?: boolean | undefined;
}

const seconds = (s: number | undefined) => (s === undefined ? undefined : s * 1000);

/**
 * Who may call the relayed course test API (course-api.ts): the manager's rule for its own
 * (manager/main.ts), the admin token, optional only on loopback. A manager beyond loopback without
 * a token does not start; a frontend does (its users need it), with those four routes closed. The
 * operator may open them to anyone for a course grader, whose clients send no token: warned.
 */
function courseApiAccess(options: FrontendOptions) {
  if (options.openCourseApi) {
    console.error(
      `frontend: warning: --open-course-api: POST /api/delete_all (which deletes every image), /api/configure_cache, /api/getNumNodes and /api/getRate answer anyone who reaches ${options.host}, without the admin token. Use it only while a course grader runs.`,
    );
    return { adminToken: undefined, adminClosed: undefined };
  }
  return {
    adminToken: options.adminToken || undefined,
    adminClosed:
      options.adminToken || isLoopback(options.host)
        ? undefined
        : 'The course test API (delete_all, configure_cache, getNumNodes, getRate) is closed on a frontend that listens beyond loopback without PIXPOOL_ADMIN_TOKEN: set it (and send it as Authorization: Bearer …), or start the frontend with --open-course-api for a course grader.',
  };
}

export async function runFrontend(options: FrontendOptions) {
  if (options.nodes.length === 0 && !options.managerUrl) {
    throw new Error('The frontend needs a manager (--manager-url) or cache nodes (--nodes …).');
  }
  if (!options.secret && !isLoopback(options.host)) {
    throw new Error(
      `Refusing to listen on ${options.host} without a shared secret: set PIXPOOL_SECRET, or bind to 127.0.0.1.`,
    );
  }
  const tls = options.tls ?? NO_TLS;
  const managerUrl = options.managerUrl?.replace(/\/+$/, '');
  // Checked before anything starts; node URLs from a manager's views are checked as they come.
  for (const url of managerUrl ? [managerUrl] : options.nodes) {
    tls.guard(url, `the shared secret (${managerUrl ? '--manager-url' : '--nodes'})`);
  }
  const storage = options.storage ?? (await openStorage(options));
  const link = managerUrl
    ? createManagerLink({
        managerUrl,
        secret: options.secret,
        fetch: tls.fetch,
        // Before the app (and its logger) exists: the first view decides the routing.
        log: { warn: (m: string) => console.error(`frontend: ${m}`), info: () => {} },
      })
    : undefined;
  const routing = createRouting(link ? await link.firstView() : staticPoolView(options.nodes));
  const relay = managerUrl
    ? createManagerRelay({ managerUrl, adminToken: options.adminToken || undefined, tls })
    : undefined;
  // Every entry request carries our map version, so a node with a newer view can turn it away.
  const nodes = createNodeClient({
    secret: options.secret,
    timeoutMs: 1000,
    tls,
    mapVersion: () => routing.view.map.version,
  });
  const app = await buildFrontend({
    metadata: storage.metadata,
    objects: storage.objects,
    nodes,
    routing,
    refreshView: link ? () => link.refresh(routing) : undefined,
    secret: options.secret,
    maxUploadMb: options.maxUploadMb,
    nearCacheMb: options.nearCacheMb,
    socketLanes: options.socketLanes ?? true,
    https: tls.server,
    courseApi: relay,
    ...courseApiAccess(options),
    gc:
      options.gcIntervalS === 0
        ? undefined
        : {
            // Unset: gc.ts's defaults.
            intervalMs: seconds(options.gcIntervalS),
            graceMs: seconds(options.gcGraceS),
          },
    logger: { level: options.logLevel },
    variants: {
      sizes: options.variantSizes,
      maxPixels: options.variantMaxPixels,
      concurrency: options.variantConcurrency,
    },
  });
  app.addHook('onClose', async () => {
    link?.stop();
    await nodes.close();
    await relay?.close();
    if (!options.storage) await storage.close();
  });
  // With a shared port, the address only this process answers on: the same app, closed with it.
  const own = options.reusePort ? secondServer(app) : undefined;
  if (own) {
    app.addHook('onClose', async () => {
      const closed = new Promise((resolve) => own.close(resolve));
      own.closeAllConnections();
      await closed;
    });
  }
  const address = await app.listen({
    host: options.host,
    port: options.port,
    ...(options.reusePort && { reusePort: true }),
  });
  const port = (app.server.address() as AddressInfo).port;
  const ownUrl = own
    ? await listen(own, options.host, options.ownPort ?? 0, tls.scheme).catch(async (error) => {
        await app.close();
        throw error;
      })
    : urlFor(options.host, port, tls.scheme);
  link?.start(options.advertiseUrl ?? ownUrl, routing);
  if (options.handleSignals !== false) {
    closeOnSignals(
      () => app.close(),
      (message) => app.log.info(message),
    );
  }
  if (options.exitWithParent) {
    process.stdin.once('end', () => {
      console.error('frontend: the process that started this one is gone; stopping');
      process.kill(process.pid, 'SIGTERM');
    });
    process.stdin.resume();
  }
  // Printed at every log level: supervisors (pixpool up) wait for this line and
  // may stop us as soon as they read it, so it comes after the signal handlers.
  const ownNote = own ? `; own address ${ownUrl}` : '';
  console.log(`frontend listening on ${address} (${storage.description}${ownNote})`);
  return { app, address, ownUrl };
}

/** Listens on host:port; resolves with the URL (rejects with the listen error). */
async function listen(
  server: Server,
  host: string,
  port: number,
  scheme: 'http' | 'https',
): Promise<string> {
  server.listen({ host, port });
  await once(server, 'listening');
  return urlFor(host, (server.address() as AddressInfo).port, scheme);
}
