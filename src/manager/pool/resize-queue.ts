/**
 * The queue every change of the pool goes through (resizes, replacements of failed nodes), one
 * job at a time, so no two changes ever interleave their views.
 *
 * A job's failure goes to its caller and never stalls the queue. Shutdown: `drain(budgetMs)`
 * stops it taking work (a job queued but not started is refused at once with a 503) and gives
 * the running job `budgetMs`; then `gaveUp` resolves, so whoever waits on that job can be
 * answered before the process exits. A job cut that way is safe: every view it published was
 * saved first, and the next start resumes from the last one.
 */
import type { Clock } from '../../core/clock.ts';
import { unavailable } from '../../core/errors.ts';

const SHUTTING_DOWN =
  'The manager is shutting down: it starts no new pool changes. Ask again once it is back.';

export interface ResizeQueueDeps {
  clock: Clock;
  /** Told once the budget is spent with a job still running. */
  onGiveUp?: () => void;
}

export function createResizeQueue(deps: ResizeQueueDeps) {
  let tail: Promise<unknown> = Promise.resolve();
  let running = 0;
  let waiting = 0;
  let draining = false;
  /** Refusals of the jobs queued but not started, for drain(). */
  const notStarted = new Set<(error: Error) => void>();
  let giveUp = () => {};
  const gaveUp = new Promise<void>((resolve) => {
    giveUp = resolve;
  });

  return {
    /** Runs `job` after every job queued before it. */
    run<T>(job: () => Promise<T>): Promise<T> {
      if (draining) return Promise.reject(unavailable(SHUTTING_DOWN));
      waiting++;
      let refuse = (_error: Error) => {};
      const refused = new Promise<never>((_resolve, reject) => {
        refuse = reject;
      });
      refused.catch(() => {}); // raced below; its rejection is the caller's answer
      notStarted.add(refuse);
      const result = tail.then(async () => {
        waiting--;
        notStarted.delete(refuse);
        if (draining) throw unavailable(SHUTTING_DOWN);
        running++;
        try {
          return await job();
        } finally {
          running--;
        }
      });
      tail = result.catch(() => {}); // the caller gets the failure; the queue goes on
      return Promise.race([result, refused]);
    },

    get running(): boolean {
      return running > 0;
    },
    /** Jobs waiting behind the one running. */
    get waiting(): number {
      return waiting;
    },
    get draining(): boolean {
      return draining;
    },
    /** Resolves once drain()'s budget is spent. */
    gaveUp,
    /** Resolves when every job queued so far has ended. */
    idle: (): Promise<void> => tail.then(() => {}),

    /** No new jobs; queued ones are refused now; the running one gets `budgetMs`. */
    drain(budgetMs: number): void {
      if (draining) return;
      draining = true;
      for (const refuse of notStarted) refuse(unavailable(SHUTTING_DOWN));
      notStarted.clear();
      void deps.clock.sleep(budgetMs, { ref: false }).then(() => {
        if (running > 0) deps.onGiveUp?.();
        giveUp();
      });
    },

    /** Waits for the running job, or, after drain(), no longer than its budget. */
    async close(): Promise<void> {
      await Promise.race([tail, gaveUp]);
    },
  };
}

export type ResizeQueue = ReturnType<typeof createResizeQueue>;
