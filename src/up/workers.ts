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

/** The frontends to run: as asked, else one per core, at most MAX_WORKERS. */
export function workerCount(options: { workers?: number | undefined }): number {
  return options.workers ?? Math.min(availableParallelism(), MAX_WORKERS);
}
