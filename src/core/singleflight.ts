/**
 * Single flight: concurrent calls for the same key share one execution (groupcache's
 * singleflight). The entry is removed when the call settles, so a later call starts afresh.
 */
export function createSingleFlight<T>() {
  const flights = new Map<string, Promise<T>>();
  return {
    run(key: string, fn: () => Promise<T>): Promise<T> {
      const running = flights.get(key);
      if (running) return running;
      const flight = fn().finally(() => flights.delete(key));
      flights.set(key, flight);
      return flight;
    },
    get size() {
      return flights.size;
    },
  };
}
