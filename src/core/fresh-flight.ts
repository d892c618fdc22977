/**
 * Fresh flight: concurrent calls for one key share an execution that *started after they were
 * made*. While a call runs, later callers queue for the next one, which starts when the running
 * one settles; so at most one runs per key and at most one waits.
 *
 * Unlike single flight, no caller ever gets an answer computed before it asked. That is what a
 * freshness check needs: a read that starts after an upload was acknowledged must not be
 * answered by a check that started before it. The price is up to two round trips of latency;
 * the gain, under load, is one check per round trip instead of one per request.
 */
interface Slot<T> {
  running: Promise<T> | undefined;
  queued: Promise<T> | undefined;
}

export function createFreshFlight<T>() {
  const slots = new Map<string, Slot<T>>();
  const ignore = () => {};

  function run(key: string, fn: () => Promise<T>): Promise<T> {
    let slot = slots.get(key);
    if (!slot) {
      slot = { running: undefined, queued: undefined };
      slots.set(key, slot);
    }
    const s = slot;
    if (!s.running) {
      s.running = fn().finally(() => {
        s.running = undefined;
        if (!s.queued) slots.delete(key);
      });
      return s.running;
    }
    if (!s.queued) {
      s.queued = s.running.then(ignore, ignore).then(() => {
        s.queued = undefined;
        slots.set(key, s);
        return run(key, fn);
      });
    }
    return s.queued;
  }

  return {
    run,
    get size() {
      return slots.size;
    },
  };
}
