/**
 * Picks a store by policy name, and rebuilds a store for a config change.
 *
 * A config change validates first, then builds the new content aside: same policy → the store
 * shrinks or grows in place (cannot fail once validated); another policy → the entries are copied,
 * coldest first, into a fresh store large enough for all of them, which then evicts down to the
 * new capacity with the new policy. The caller swaps the result in, so a change is atomic.
 */
import { createLruStore } from './lru-store.ts';
import { createRrStore } from './rr-store.ts';
import { createSieveStore } from './sieve-store.ts';
import type { CacheStore, PolicyName, StoreOptions } from './store.ts';

export * from './store.ts';

export function createStore(policy: PolicyName, options: StoreOptions): CacheStore {
  switch (policy) {
    case 'LRU':
      return createLruStore(options);
    case 'RR':
      return createRrStore(options);
    case 'SIEVE':
      return createSieveStore(options);
    default:
      throw new TypeError(`unknown replacement policy: ${String(policy)}`);
  }
}

/** `from`'s content under `policy` and `options.capacity`; may return `from` itself, resized. */
export function reconfigureStore(
  from: CacheStore,
  policy: PolicyName,
  options: StoreOptions,
): CacheStore {
  if (policy === from.policy) {
    from.setCapacity(options.capacity);
    return from;
  }
  const next = createStore(policy, {
    ...options,
    capacity: Math.max(options.capacity, from.size, 1),
  });
  for (const [key, entry] of from.entries()) next.set(key, entry);
  next.setCapacity(options.capacity);
  return next;
}
