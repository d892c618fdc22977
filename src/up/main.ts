/**
 * Runs `pixpool up`, the whole system on this machine: the manager and the frontend in this
 * process on one storage (an embedded database can be opened by one process only), the
 * autoscaler as a child process, and the pool's cache nodes as the manager's children. Prints
 * where to open each, and stops everything on SIGTERM/SIGINT. Takes parsed options (cli.ts
 * reads flags and environment).
 */
import { randomBytes } from 'node:crypto';
import { runFrontend } from '../frontend/main.ts';
import { type FrontendTuning, frontendTuning } from '../frontend/tuning.ts';
import { NO_TLS, type Tls } from '../http/tls.ts';
import { runManager, STOP_GRACE_MS } from '../manager/main.ts';
import { startChildService } from '../process/child-service.ts';
import type { LogLevel } from '../process/flags.ts';
import { closeOnSignals } from '../process/signals.ts';
import { openStorage, type StorageOptions } from '../storage/open.ts';

export interface UpOptions extends StorageOptions, FrontendTuning {
  /** The frontend's port; 0 for any free one, as for the two below. */
  port: number;
  managerPort: number;
  autoscalerPort: number;
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
}

export async function runUp(options: UpOptions): Promise<void> {
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
  // otherwise outlive us. The order: the autoscaler stops asking for resizes, uploads finish,
  // then the manager (which drains a running resize and stops the nodes), then storage.
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
  const storage = await openStorage(storageOptions);
  started.push(() => storage.close());
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
  const frontend = await runFrontend({
    ...common,
    host: '127.0.0.1',
    port: options.port,
    nodes: [],
    managerUrl: manager.address,
    ...frontendTuning(options),
    socketLanes: options.socketLanes,
    openCourseApi: options.openCourseApi,
  }).catch(abandon);
  started.push(() => frontend.app.close());
  const autoscaler = await startChildService({
    args: [
      'autoscaler',
      '--port',
      String(options.autoscalerPort),
      '--manager-url',
      manager.address,
      '--log-level',
      'warn',
    ],
    // Its manager's https URL needs the CA too.
    env: tls.childEnv(),
    label: 'autoscaler',
  }).catch(abandon);
  started.push(() => autoscaler.stop());
  // Bounded like the manager alone.
  closeOnSignals(stopAll, (message) => console.error(message), {
    graceMs: STOP_GRACE_MS,
    onForcedExit: () => manager.provider.killNow?.(),
  });
  process.once('exit', () => autoscaler.child.kill('SIGTERM'));
  const { map, addresses } = manager.pool.view();
  console.log(`
pixpool is up: open ${frontend.address}

  frontend    ${frontend.address}    upload, browse and fetch images (API: /api/…)
  manager     ${manager.address}    dashboard: pool, charts, config, resizing
  autoscaler  ${autoscaler.url}    resizes the pool in automatic mode (/status)
  cache nodes ${map.nodes.map((id) => addresses[id]).join(', ')}
  storage     ${storage.description}
  secret      ${generated ? `Authorization: Bearer ${secret}   (generated; set PIXPOOL_SECRET to choose one)` : 'from PIXPOOL_SECRET'}

Stop with Ctrl-C.`);
}
