/**
 * How many frontend processes `pixpool up` runs (`--workers`), kept apart from main.ts so that
 * the CLI can state the bound without loading the services.
 */
import { availableParallelism } from 'node:os';

/**
 * Beyond this, more frontends gain little: every request still crosses one cache node process
 * per region and one manager (README, "Frontends on every core").
 */
export const MAX_WORKERS = 8;

/**
 * Where the kernel spreads one port's connections over several listening processes
 * (SO_REUSEPORT on Linux, SO_REUSEPORT_LB on FreeBSD). Elsewhere (macOS, Windows) Node refuses
 * `reusePort`, so frontends cannot share a port.
 */
export const SHARED_PORTS = ['linux', 'freebsd'];

/**
 * The frontends to run: as asked, else one per core, at most MAX_WORKERS; one where ports
 * cannot be shared. Asking for more than one there is an error that says why.
 */
export function workerCount(
  options: { workers?: number | undefined },
  platform: string = process.platform,
): number {
  const shared = SHARED_PORTS.includes(platform);
  if (options.workers !== undefined && options.workers > 1 && !shared) {
    throw new Error(
      `--workers ${options.workers}: frontends share a port only on ${SHARED_PORTS.join(' and ')} (SO_REUSEPORT); this is ${platform}. Use --workers 1, or run more frontends on other ports behind a load balancer.`,
    );
  }
  return options.workers ?? (shared ? Math.min(availableParallelism(), MAX_WORKERS) : 1);
}
