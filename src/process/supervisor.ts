/**
 * Keeps one child service running (`pixpool up`'s frontend workers): started once by the caller,
 * started again whenever it exits on its own, after a backoff that doubles from `initialMs` up to
 * `maxMs` while it keeps dying, and starts over from `initialMs` once a run lasted `resetAfterMs`
 * (a crash loop is slowed down; a rare crash is healed quickly). A restart that fails to start
 * (its port taken, say) is retried the same way. Each exit and restart is logged.
 *
 * stop() ends the supervision first (no restart after it, a pending one is cancelled), then stops
 * the running child, or the one being started, with SIGTERM and its own graceful stop, SIGKILL
 * after `graceMs`. killNow() is for a forced exit of the owner: SIGKILL, nothing awaited.
 */
import type { ChildProcess } from 'node:child_process';
import { type ChildService, stopChildProcess } from './child-service.ts';

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** A run at least this long resets the backoff to `initialMs`. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 10_000, resetAfterMs: 30_000 };

/** The wait before the next start, after a wait of `previousMs` (0: none yet) and a run of `ranMs`. */
export function nextDelay(backoff: Backoff, previousMs: number, ranMs: number): number {
  if (previousMs === 0 || ranMs >= backoff.resetAfterMs) return backoff.initialMs;
  return Math.min(previousMs * 2, backoff.maxMs);
}

export interface SupervisedChild {
  /** The live child's pid; undefined while none runs. */
  readonly pid: number | undefined;
  /** Starts it the first time; rejects (and supervises nothing) if that start fails. */
  start(): Promise<ChildService>;
  stop(graceMs?: number): Promise<void>;
  killNow(): void;
}

export function superviseChild(options: {
  /** Names the child in logs, e.g. "frontend worker 2". */
  label: string;
  /** Starts the child; calls `onSpawn` as soon as the process exists (startChildService's). */
  start: (onSpawn: (child: ChildProcess) => void) => Promise<ChildService>;
  log: (message: string) => void;
  backoff?: Backoff;
}): SupervisedChild {
  const { label, log } = options;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  let current: ChildProcess | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let delayMs = 0;

  const run = async (): Promise<ChildService> => {
    const startedAt = performance.now();
    const service = await options.start((child) => {
      current = child;
    });
    const { child } = service;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (current === child) current = undefined;
      if (stopped) return;
      const ranMs = performance.now() - startedAt;
      delayMs = nextDelay(backoff, delayMs, ranMs);
      log(
        `${label} (pid ${child.pid}) exited (${signal ?? `code ${code}`}) after ${(ranMs / 1000).toFixed(1)} s; starting it again in ${delayMs / 1000} s`,
      );
      schedule();
    };
    if (child.exitCode !== null || child.signalCode !== null)
      onExit(child.exitCode, child.signalCode);
    else child.once('exit', onExit);
    return service;
  };

  const schedule = () => {
    timer = setTimeout(() => {
      timer = undefined;
      if (stopped) return;
      run().then(
        (service) => log(`${label} started again (pid ${service.child.pid})`),
        (error: unknown) => {
          if (stopped) return;
          delayMs = nextDelay(backoff, delayMs, 0);
          log(
            `${label} did not start again (${(error as Error).message}); next try in ${delayMs / 1000} s`,
          );
          schedule();
        },
      );
    }, delayMs);
  };

  return {
    get pid() {
      return current?.pid;
    },
    start: run,
    async stop(graceMs) {
      stopped = true;
      clearTimeout(timer);
      if (current) await stopChildProcess(current, graceMs);
    },
    killNow() {
      stopped = true;
      clearTimeout(timer);
      current?.kill('SIGKILL');
    },
  };
}
