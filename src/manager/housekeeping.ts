/**
 * Keeps the manager's tables bounded: every `intervalMs` it deletes the nodes' statistics
 * samples older than `samplesMs` (the charts show at most a day) and the history (the pool log's
 * events and decisions, maps no longer in force, frontends gone silent) older than `historyMs`.
 * A round that fails is reported and the next one tries again.
 */
import type { Clock } from '../core/clock.ts';
import type { PoolStore } from '../storage/pool-store.ts';
import type { Journal } from './pool/journal.ts';

export interface Retention {
  /** How long statistics samples are kept, ms. */
  samplesMs: number;
  /** How long events, old maps and silent frontends are kept, ms. */
  historyMs: number;
}

export const DAY_MS = 86_400_000;
export const DEFAULT_RETENTION: Retention = { samplesMs: 25 * 3_600_000, historyMs: 30 * DAY_MS };

export interface HousekeepingDeps {
  store: Pick<PoolStore, 'pruneSamples' | 'pruneHistory'>;
  clock: Clock;
  journal: Pick<Journal, 'failed'>;
  retention: Retention;
  /** Between rounds, ms (default: an hour). */
  intervalMs?: number;
}

export function createHousekeeping(deps: HousekeepingDeps) {
  const { store, clock, journal, retention } = deps;
  const intervalMs = deps.intervalMs ?? 3_600_000;
  let stopped = true;
  let round: Promise<void> | undefined;

  /** One round; resolves with what it deleted, or undefined when it failed (reported). */
  async function run() {
    const now = clock.now();
    try {
      const samples = await store.pruneSamples(new Date(now - retention.samplesMs));
      return { samples, ...(await store.pruneHistory(new Date(now - retention.historyMs))) };
    } catch (error) {
      journal.failed('prune', error);
      return undefined;
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      round = run().then(() => {});
      await round;
      await clock.sleep(intervalMs, { ref: false });
    }
  }

  return {
    run,
    /** A round now, then one every interval. */
    start(): void {
      if (!stopped) return;
      stopped = false;
      void loop();
    },
    /** No more rounds; waits for one in progress. */
    async stop(): Promise<void> {
      stopped = true;
      await round;
    },
  };
}
