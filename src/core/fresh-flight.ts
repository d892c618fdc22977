/**
 * Fresh flight: concurrent calls for one key share an execution that *started after they were
 * made*. While a call runs, later callers queue for the next one, which starts when the running
 * one settles; so at most one runs per key and at most one waits.
 *
 * Unlike single flight, no caller ever gets an answer computed before it asked. That is what a
 * freshness check needs: a read that starts after an upload was acknowledged must not be
 * answered by a check that started before it. The price is up to two round trips of latency;
 * the gain, under load, is one check per round trip instead of one per request.
 *
 * An execution starts on setImmediate rather than at once: the callers whose requests were parsed
 * in the same event-loop turn (a burst from many connections) then all share the first one, which
 * still starts after each of them asked, instead of all but the first waiting for a second.
 */
interface Slot<T> {
  running: Promise<T> | undefined;
  /** Whether `running` has not called its function yet: a caller may still join it. */
  unstarted: boolean;
  /** The calls sharing `running`, and those sharing `queued`. */
  runningCalls: number;
  queued: Promise<T> | undefined;
  queuedCalls: number;
}

/** `fn()` on the next setImmediate: after every call made in this event-loop turn. */
function startSoon<T>(fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    setImmediate(() => {
      try {
        fn().then(resolve, reject);
      } catch (error) {
        reject(error);
      }
    });
  });
}

export function createFreshFlight<T>() {
  const slots = new Map<string, Slot<T>>();
  const ignore = () => {};

  /**
   * `fn`'s result, shared with the calls for `key` made before it starts; `fn` is told how many
   * calls share it (final once it starts: later calls wait for the next execution).
   */
  function join(key: string, fn: (sharers: number) => Promise<T>, calls: number): Promise<T> {
    let slot = slots.get(key);
    if (!slot) {
      slot = {
        running: undefined,
        unstarted: false,
        runningCalls: 0,
        queued: undefined,
        queuedCalls: 0,
      };
      slots.set(key, slot);
    }
    const s = slot;
    if (!s.running) {
      s.unstarted = true;
      s.runningCalls = calls;
      s.running = startSoon(() => {
        s.unstarted = false;
        return fn(s.runningCalls);
      }).finally(() => {
        s.running = undefined;
        if (!s.queued) slots.delete(key);
      });
      return s.running;
    }
    if (s.unstarted) {
      s.runningCalls += calls;
      return s.running;
    }
    if (!s.queued) {
      s.queuedCalls = 0;
      s.queued = s.running.then(ignore, ignore).then(() => {
        s.queued = undefined;
        slots.set(key, s);
        return join(key, fn, s.queuedCalls);
      });
    }
    s.queuedCalls += calls;
    return s.queued;
  }

  return {
    run: (key: string, fn: (sharers: number) => Promise<T>) => join(key, fn, 1),
    get size() {
      return slots.size;
    },
  };
}
