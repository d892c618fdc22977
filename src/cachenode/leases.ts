/**
 * Read leases: how a frontend may serve its near copy of an image without asking this node on
 * every request, and still never serve it after an upload of a newer version was acknowledged.
 *
 * A frontend that revalidates a key asks for a lease (LEASE_HEADER); the node grants `leaseMs`
 * and remembers, per key, until when the latest lease it granted runs. The frontend counts its
 * lease from the moment it *sent* the request, so it always ends before the node's record of it.
 * An invalidation (the upload path: DELETE /v1/entries/:key) removes the entry and its version at
 * once, then answers only when every lease on that key has run out, so the upload is acknowledged
 * after no frontend trusts the old copy any more. The wait is bounded by `leaseMs` and happens
 * only for keys read in the last `leaseMs`.
 *
 * What the per-key records cannot cover is held in fences, per region, that invalidations wait
 * for like for a lease:
 * - at start: a node replacing one that died (same place in the pool, new address) has no record
 *   of what the old one granted, so every region is fenced for `leaseMs` from the start;
 * - when the pool changes: a region is leased only by a node that owns it with no hand-over in
 *   progress (no other previous owner), and a region that becomes leasable on a node (gained, or
 *   its hand-over finished) is fenced for `leaseMs` from then, which covers the leases the
 *   region's former owner granted before it adopted the view that took the region away.
 *
 * Clearing a node (the data of every key deleted) waits for every lease and fence.
 *
 * A lease on an image variant (entry key `key/variant`) is recorded on its key: invalidating the
 * key removes its variants too, so it waits for the leases on them as well.
 */
import { baseKey } from '../core/keys.ts';
import { MAX_LEASE_MS } from '../core/node-protocol.ts';
import { REGION_COUNT, regionOf as regionOfKey } from '../core/regions.ts';

export function parseLeaseMs(value: unknown): number {
  const ms = Number(value);
  if (value === '' || !Number.isInteger(ms) || ms < 0 || ms > MAX_LEASE_MS) {
    throw new Error(
      `The lease must be a whole number of milliseconds from 0 (no leases) to ${MAX_LEASE_MS}; got ${JSON.stringify(value)}.`,
    );
  }
  return ms;
}

export function createLeases(options: {
  leaseMs: number;
  now?: () => number;
  /** A key's region; the node passes its cache's, which knows a cached key's without an MD5. */
  regionOf?: (key: string) => number;
}) {
  const { leaseMs, regionOf = regionOfKey } = options;
  const now = options.now ?? (() => performance.now());
  /** key (a variant's base key) → when the latest lease granted on it or a variant ends. */
  const granted = new Map<string, number>();
  /** region → until when invalidations of its keys wait (see the module comment). */
  const fences = new Float64Array(REGION_COUNT).fill(now() + leaseMs);
  let leasable: ReadonlySet<number> = new Set(Array.from({ length: REGION_COUNT }, (_, r) => r));
  let latest = now() + leaseMs;
  /** No lease runs past this (the node's view lease, view.ts); none standalone. */
  let limit = Number.POSITIVE_INFINITY;

  /** Forgets leases that have run out, once the map has grown (kept bounded by recent reads). */
  let sweepAt = 1024;
  const sweep = (t: number) => {
    for (const [key, until] of granted) if (until <= t) granted.delete(key);
    sweepAt = Math.max(1024, granted.size * 2);
  };

  /**
   * Resolves once `left()` is 0. A timer can fire early by as much as the event loop's cached
   * time is behind (a long turn), so the time left is read again after each one.
   */
  const until0 = async (left: () => number) => {
    for (let ms = left(); ms > 0; ms = left()) {
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(ms)));
    }
  };
  const remaining = (key: string) =>
    Math.max(0, Math.max(granted.get(baseKey(key)) ?? 0, fences[regionOf(key)] ?? 0) - now());
  const remainingAll = () => Math.max(0, latest - now());

  return {
    /** Grants a lease on `key`; returns its length in ms, 0 when none is granted. */
    grant(key: string): number {
      if (leaseMs === 0 || !leasable.has(regionOf(key))) return 0;
      const t = now();
      // Whole ms, rounded down, so the holder's count never ends past the view's lease.
      const ms = Math.min(leaseMs, Math.floor(limit - t));
      if (ms <= 0) return 0;
      const until = t + ms;
      const base = baseKey(key);
      granted.set(base, Math.max(until, granted.get(base) ?? 0));
      if (until > latest) latest = until;
      if (granted.size >= sweepAt) sweep(t);
      return ms;
    },

    /** No lease granted from now on runs past `until` (the node's view lease). */
    limit(until: number): void {
      limit = until;
    },

    /** How long, ms, a lease on `key` or a fence of its region may still be trusted. */
    remaining,
    remainingAll,
    /**
     * Resolves once no lease on `key` and no fence of its region can still be trusted; with
     * `grantedSoFar`, only the leases on `key` granted until now (see invalidated() in
     * binary-routes.ts for when that is enough).
     */
    settle(key: string, grantedSoFar = false) {
      if (!grantedSoFar) return until0(() => remaining(key));
      const until = granted.get(baseKey(key)) ?? 0;
      return until0(() => Math.max(0, Math.max(until, fences[regionOf(key)] ?? 0) - now()));
    },
    /** Resolves once every lease and fence has run out. */
    settleAll: () => until0(remainingAll),
    /** Keys whose lease record is kept (expired ones are swept as the map grows). */
    get size() {
      return granted.size;
    },

    /**
     * A new pool view: `next` are the regions this node may lease now. Each that it could not
     * lease before is fenced for `leaseMs`.
     */
    adopt(next: ReadonlySet<number>): void {
      const until = now() + leaseMs;
      for (const region of next) {
        if (leasable.has(region)) continue;
        fences[region] = Math.max(fences[region] ?? 0, until);
        latest = Math.max(latest, until);
      }
      leasable = next;
    },
  };
}

export type Leases = ReturnType<typeof createLeases>;
