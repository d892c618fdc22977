/**
 * Runs the autoscaler as a process, or within `pixpool up`'s: reads and applies through the
 * manager's HTTP API with the admin token, ticks every `intervalS` seconds, listens for /health,
 * /status and /metrics, and on SIGTERM/SIGINT stops ticking, lets a tick in progress end, and
 * exits (up stops it itself).
 */
import { isLoopback } from '../http/listen.ts';
import { NO_TLS, type Tls } from '../http/tls.ts';
import type { LogLevel } from '../process/flags.ts';
import { closeOnSignals } from '../process/signals.ts';
import { buildAutoscaler } from './app.ts';
import { createManagerSource } from './manager-source.ts';

export interface AutoscalerOptions {
  host: string;
  port: number;
  managerUrl: string;
  adminToken?: string | undefined;
  /** Seconds between ticks (AUTOSCALE_INTERVAL_S). */
  intervalS: number;
  /** Seconds of statistics per decision, and the cooldown after a resize (AUTOSCALE_WINDOW_S). */
  windowS: number;
  dryRun?: boolean | undefined;
  logLevel: LogLevel;
  /** HTTPS, and the CA it verifies the manager with (http/tls.ts); none by default. */
  tls?: Tls | undefined;
  /** Let the caller handle signals (pixpool up, which runs it in its own process). */
  handleSignals?: boolean;
}

export async function runAutoscaler(options: AutoscalerOptions) {
  if (!isLoopback(options.host) && !options.adminToken) {
    throw new Error(`Refusing to listen on ${options.host} without PIXPOOL_ADMIN_TOKEN.`);
  }
  const tls = options.tls ?? NO_TLS;
  tls.guard(options.managerUrl, 'the admin token (--manager-url)');
  const { app, loop } = buildAutoscaler({
    source: createManagerSource({
      managerUrl: options.managerUrl,
      adminToken: options.adminToken || undefined,
      fetch: tls.fetch,
    }),
    https: tls.server,
    intervalS: options.intervalS,
    windowS: options.windowS,
    dryRun: options.dryRun ?? false,
    logger: { level: options.logLevel },
  });
  const address = await app.listen({ host: options.host, port: options.port });
  loop.start();
  // app.close() stops the loop and waits for a tick in progress.
  if (options.handleSignals !== false) {
    closeOnSignals(
      () => app.close(),
      (message) => app.log.info(message),
    );
  }
  // Printed at every log level: supervisors (pixpool up) wait for this line and
  // may stop us as soon as they read it, so it comes after the signal handlers.
  console.log(
    `autoscaler listening on ${address} (every ${options.intervalS} s over a ${options.windowS} s window, from the manager at ${options.managerUrl}${options.dryRun ? '; dry run' : ''})`,
  );
  return { app, address, loop };
}
