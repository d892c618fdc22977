/**
 * Runs `pixpool up`, the whole system on this machine: the manager, frontend #1 and the autoscaler
 * in this process on one storage, frontends #2..N as child processes that share frontend #1's
 * port (SO_REUSEPORT; `workers`), and the pool's cache nodes as the manager's children. Prints
 * where to open each, restarts a frontend worker that dies, and stops everything on
 * SIGTERM/SIGINT. Takes parsed options (cli.ts reads flags and environment).
 *
 * Workers are not a node:cluster primary's children: that primary would be one more Node process
 * of memory doing nothing but supervise, which this process does anyway. Each worker opens the
 * storage itself (the embedded database, like PostgreSQL, takes several processes at once).
 */
import { randomBytes } from 'node:crypto';
import { runAutoscaler } from '../autoscaler/main.ts';
import { runFrontend } from '../frontend/main.ts';
import { type FrontendTuning, frontendTuning } from '../frontend/tuning.ts';
import { freePort } from '../http/listen.ts';
import { NO_TLS, type Tls } from '../http/tls.ts';
import { runManager, STOP_GRACE_MS } from '../manager/main.ts';
import { startChildService } from '../process/child-service.ts';
import type { LogLevel } from '../process/flags.ts';
import { closeOnSignals, DEFAULT_GRACE_MS } from '../process/signals.ts';
import { type SupervisedChild, superviseChild } from '../process/supervisor.ts';
import { openStorage, type StorageOptions } from '../storage/open.ts';
import { workerCount } from './workers.ts';

export interface UpOptions extends StorageOptions, FrontendTuning {
  /** The frontends' port; 0 for any free one, as for the two below. */
  port: number;
  managerPort: number;
  autoscalerPort: number;
  /** Frontend processes sharing `port` (1 to 8); default one per core, at most 8. */
  workers?: number | undefined;
  /** Shared between the parts; generated (and printed) when unset. */
  secret?: string | undefined;
  logLevel: LogLevel;
  /** Whether the frontend and the nodes answer hot reads on the socket (default true). */
  socketLanes?: boolean | undefined;
  /** Days the manager keeps its history (default 30). */
  historyDays?: number;
  /** Open the frontend's course test API to anyone, token or not (frontend/main.ts). */
  openCourseApi?: boolean | undefined;
  /** HTTPS for every part, the CA they verify each other with (http/tls.ts); none by default. */
  tls?: Tls | undefined;
  /** The autoscaler's seconds between decisions and window (default 60 each), dry run. */
  autoscale?: { intervalS: number; windowS: number; dryRun?: boolean | undefined } | undefined;
}

export async function runUp(options: UpOptions): Promise<void> {
  const workers = workerCount(options);
  // A secret given through the environment stays out of the banner (and out of ps).
  const generated = !options.secret;
  const secret = options.secret || randomBytes(24).toString('base64url');
  const storageOptions: StorageOptions = {
    dataDir: options.dataDir,
    databaseUrl: options.databaseUrl,
    s3: options.s3,
  };
  // What has started so far, stopped last first: on a signal, and when a later part cannot
  // start (a port taken, say), since the manager's cache nodes are child processes that would
  // otherwise outlive us. The order: the autoscaler stops asking for resizes, uploads finish on
  // every frontend, then the manager (which drains a running resize and stops the nodes), then
  // storage.
  const started: (() => Promise<unknown>)[] = [];
  // Every part is stopped even if one fails to; the first failure is thrown afterwards.
  const stopAll = async () => {
    let failure: unknown;
    for (const stop of started.splice(0).reverse()) {
      await stop().catch((error: unknown) => {
        failure ??= error;
      });
    }
    if (failure !== undefined) throw failure;
  };
  const abandon = async (error: unknown): Promise<never> => {
    await stopAll().catch(() => {});
    throw error;
  };
  let stopping = false;
  /** Between start-up steps: after a signal, stop starting (and stop what has started). */
  const proceed = () => {
    if (stopping) throw new Error('stopped during start-up');
  };
  let managerRef: { provider: { killNow?: () => void } } | undefined;
  let others: SupervisedChild[] = [];
  const killWorkers = () => {
    for (const worker of others) worker.killNow();
  };
  const start = async () => {
    const storage = await openStorage(storageOptions);
    started.push(() => storage.close());
    proceed();
    const tls = options.tls ?? NO_TLS;
    const common = {
      ...storageOptions,
      storage,
      secret,
      tls,
      logLevel: options.logLevel,
      handleSignals: false,
    };
    const manager = await runManager({
      ...common,
      host: '127.0.0.1',
      port: options.managerPort,
      provider: 'local',
      nodeUrls: [],
      historyDays: options.historyDays,
      assignment: 'balanced',
      ...(options.socketLanes === false && { nodeArgs: ['--socket-lanes', 'off'] }),
    }).catch(abandon);
    started.push(() => manager.app.close());
    managerRef = manager;
    proceed();
    const frontend = await runFrontend({
      ...common,
      host: '127.0.0.1',
      port: options.port,
      nodes: [],
      managerUrl: manager.address,
      ...frontendTuning(options),
      socketLanes: options.socketLanes,
      openCourseApi: options.openCourseApi,
      reusePort: workers > 1,
    }).catch(abandon);
    const port = Number(new URL(frontend.address).port);
    others = Array.from({ length: workers - 1 }, (_, i) =>
      superviseWorker(i + 2, { ...options, port, secret, tls, managerUrl: manager.address }),
    );
    // The frontends drain side by side, so the whole stop keeps the bound of one.
    started.push(() =>
      Promise.all([
        frontend.app.close(),
        ...others.map((worker) => worker.stop(DEFAULT_GRACE_MS + 2000)),
      ]),
    );
    await Promise.all(others.map((worker) => worker.start())).catch(abandon);
    proceed();
    const autoscale = options.autoscale ?? { intervalS: 60, windowS: 60 };
    const autoscaler = await runAutoscaler({
      host: '127.0.0.1',
      port: options.autoscalerPort,
      managerUrl: manager.address,
      ...autoscale,
      logLevel: 'warn',
      tls,
      handleSignals: false,
    }).catch(abandon);
    started.push(() => autoscaler.app.close());
    return { storage, manager, frontend, autoscaler };
  };
  const startup = start();
  // Installed before anything has started: a Ctrl-C during start-up must stop what has (the
  // cache nodes and workers run in process groups of their own and would outlive us). It lets
  // the step under way finish, then stops everything; bounded like the manager alone.
  closeOnSignals(
    async () => {
      stopping = true;
      await startup.catch(() => {});
      await stopAll();
    },
    (message) => console.error(message),
    {
      graceMs: STOP_GRACE_MS,
      onForcedExit: () => {
        killWorkers();
        managerRef?.provider.killNow?.();
      },
    },
  );
  process.once('exit', killWorkers);
  // A start-up cut short by a signal: the handler above stops and exits.
  const { storage, manager, frontend, autoscaler } = await startup.catch((error: unknown) => {
    if (stopping) return new Promise<never>(() => {});
    throw error;
  });
  const { map, addresses } = manager.pool.view();
  const pids = [process.pid, ...others.map((worker) => worker.pid)].join(', ');
  const frontends =
    workers === 1
      ? ''
      : `\n              ${workers} frontend processes share this port (--workers): pids ${pids}`;
  console.log(`
pixpool is up: open ${frontend.address}

  frontend    ${frontend.address}    upload, browse and fetch images (API: /api/…)${frontends}
  manager     ${manager.address}    dashboard: pool, charts, config, resizing
  autoscaler  ${autoscaler.address}    resizes the pool in automatic mode (/status)
  cache nodes ${map.nodes.map((id) => addresses[id]).join(', ')}
  storage     ${storage.description}
  secret      ${generated ? `Authorization: Bearer ${secret}   (generated; set PIXPOOL_SECRET to choose one)` : 'from PIXPOOL_SECRET'}

Stop with Ctrl-C.`);
}

/**
 * Frontend worker `n`: `pixpool frontend` on frontend #1's port with up's storage, tuning and
 * TLS, kept running (process/supervisor.ts). Secrets and the database URL go through the
 * environment, never argv (ps shows argv to everyone). It has a port of its own, kept across
 * restarts, so the manager's pushes reach it, and the same address after a restart.
 */
function superviseWorker(
  n: number,
  options: UpOptions & { port: number; secret: string; tls: Tls; managerUrl: string },
): SupervisedChild {
  const tuning = frontendTuning(options);
  const flags: [string, string | number | number[] | undefined][] = [
    ['--max-upload-mb', tuning.maxUploadMb],
    ['--near-cache-mb', tuning.nearCacheMb],
    // One sweeper per store is enough: frontend #1's.
    ['--gc-interval-s', 0],
    ['--variant-sizes', tuning.variantSizes],
    ['--variant-max-pixels', tuning.variantMaxPixels],
    ['--variant-concurrency', tuning.variantConcurrency],
    ['--socket-lanes', options.socketLanes === false ? 'off' : 'on'],
    ['--open-course-api', options.openCourseApi ? 'on' : 'off'],
  ];
  let ownPort: number | undefined;
  const label = `frontend worker ${n}`;
  return superviseChild({
    label,
    log: (message) => console.error(`up: ${message}`),
    start: async (onSpawn) => {
      ownPort ??= await freePort('127.0.0.1');
      const args = ['frontend', '--host', '127.0.0.1', '--port', String(options.port)];
      args.push('--reuse-port', '--own-port', String(ownPort), '--exit-with-parent');
      args.push('--manager-url', options.managerUrl, '--log-level', options.logLevel);
      args.push('--data-dir', options.dataDir);
      for (const [flag, value] of flags) {
        if (value !== undefined)
          args.push(flag, Array.isArray(value) ? value.join(',') : String(value));
      }
      return startChildService({
        args,
        env: {
          ...options.tls.childEnv(),
          PIXPOOL_SECRET: options.secret,
          DATABASE_URL: options.databaseUrl,
          S3_BUCKET: options.s3?.bucket,
          S3_ENDPOINT: options.s3?.endpoint,
          S3_REGION: options.s3?.region,
          S3_FORCE_PATH_STYLE: options.s3?.forcePathStyle ? '1' : undefined,
          // Its own V8 tuning (bin/pixpool.js): the marker up set for itself is not the worker's.
          PIXPOOL_FRONTEND_TUNED: undefined,
          // As frontend #1 runs: no admin token (up's manager has none), its own address.
          PIXPOOL_ADMIN_TOKEN: undefined,
          PIXPOOL_ADVERTISE_URL: undefined,
        },
        label,
        quiet: false,
        onSpawn,
        ownProcessGroup: true,
        stdinPipe: true,
      }).catch((error: unknown) => {
        // Its port may have been taken meanwhile: the next try picks another.
        ownPort = undefined;
        throw error;
      });
    },
  });
}
