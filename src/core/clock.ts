/**
 * Time as loops and procedures see it, passed in so that their unit tests run in milliseconds on
 * a clock they move themselves.
 */
import { setTimeout as wait } from 'node:timers/promises';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; with `ref: false` the wait does not keep the process alive. */
  sleep(ms: number, options?: { ref?: boolean }): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, options) => wait(ms, undefined, { ref: options?.ref ?? true }),
};
