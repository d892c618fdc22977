/**
 * How many frontend processes `pixpool up` runs (`--workers`), kept apart from main.ts so that
 * the CLI can check the flag without loading the services.
 */
import { availableParallelism } from 'node:os';

/**
 * Beyond this, more frontends gain little: every request still crosses one cache node process
 * per region and one manager (README, "Frontends on every core").
 */
export const MAX_WORKERS = 8;

/**
 * Whether the embedded database can be opened by several processes at once. PGlite cannot: with
 * it, frontends beyond the first need PostgreSQL (`--database-url`).
 */
const EMBEDDED_SHARED = false;

/**
 * The frontends to run: as asked, if the storage can take them; by default one per core, at
 * most MAX_WORKERS, or one on a store that one process only can open.
 */
export function workerCount(options: {
  workers?: number | undefined;
  databaseUrl?: string | undefined;
}): number {
  const shared = EMBEDDED_SHARED || options.databaseUrl !== undefined;
  if (options.workers === undefined) {
    return shared ? Math.min(availableParallelism(), MAX_WORKERS) : 1;
  }
  if (options.workers > 1 && !shared) {
    throw new Error(
      `--workers ${options.workers} needs a database several processes can open, and the embedded one (PGlite) opens in one process only: use --database-url, or --workers 1.`,
    );
  }
  return options.workers;
}
