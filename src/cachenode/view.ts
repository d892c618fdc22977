/**
 * What this node knows of the pool: the latest view the manager pushed, the fence that follows
 * from it, and how long the node may still act on it.
 *
 * Fence: a request tagged with an older map version than the node's was routed with a view
 * that no longer holds; the node turns it away (421) so the sender refreshes its view, instead of
 * letting it read or invalidate the wrong node (a stale read after someone else's upload).
 *
 * View lease: once in a pool, the node serves reads (and takes fills, and grants read leases)
 * only while a lease on its view runs. The manager grants one on each renewal the node asks for
 * (view-renewal.ts), and the node counts it from when it *sent* that request, a margin short, so
 * it always ends before the manager's record of it. A manager that must give this node's regions
 * to another node and cannot tell it so waits until that record has passed (src/manager/pool/
 * view-leases.ts). So a node cut off from the manager stops answering for regions that may have
 * moved, however it is cut off, and frontends read those keys from storage. Invalidations are
 * always applied (they only delete, and the node keeps their versions for when it serves again)
 * but answered 503 without a lease: the sender's view may be as old as this node's, the key
 * owned by another node by now, so the upload must not be acknowledged on this node's word.
 * A push does not extend the lease (it may arrive late); the node asks for a renewal at once.
 *
 * On each new view the node drops the entries of regions it no longer serves, and of regions it
 * starts to serve again: those are left from an earlier time it owned them, and uploads since
 * then invalidated another node. The hand-over then brings that region's current entries. A view
 * pushed with `self: null` says the node is no longer in the pool: it serves nothing.
 *
 * Leases (leases.ts) follow the view: a node leases only regions it owns with no hand-over in
 * progress, fences each region that becomes leasable, and no read lease outlasts the view's.
 *
 * Membership: once in a pool, a node hands entries only to the nodes its current view names
 * (`isMember`), so a move order (move_keys) cannot send cached images to an arbitrary address,
 * whoever holds the secret. Before any view the node is standalone (the seed API's users, whose
 * managers never push views): it serves everything, with no view lease, and any well-formed node
 * address is accepted.
 */
import type { NodeId } from '../core/pool-map.ts';
import { type PoolView, regionsLeasableBy, regionsServedBy } from '../core/pool-view.ts';
import { REGION_COUNT } from '../core/regions.ts';
import type { Leases } from './leases.ts';
import type { NodeCache } from './node-cache.ts';

/** The share of a view lease a node gives up early, for clocks that run at different rates. */
export const VIEW_LEASE_MARGIN = 0.05;

export function createNodeView(
  ownId: NodeId,
  cache: NodeCache,
  leases?: Leases,
  now: () => number = () => performance.now(),
) {
  // The manager names nodes itself (a node started elsewhere does not know its pool id): a push
  // says which id is this node's, and that name wins over the node's own.
  let nodeId = ownId;
  let version = 0;
  // Before any view the node serves everything (a standalone node, or the seed API's users).
  let served = new Set(Array.from({ length: REGION_COUNT }, (_, r) => r));
  // The origins of the nodes the current view names (parsePoolView normalised them).
  let members = new Set<string>();
  /** Whether the latest view names this node (a view pushed with `self: null` does not). */
  let inPool = true;
  /** Whether the view must be leased: a manager's pushes say so (tests may push bare views). */
  let leased = false;
  /** Until when (now()) the view's lease runs; none before the first renewal. */
  let expiresAt = Number.NEGATIVE_INFINITY;
  const limit = () =>
    !inPool ? Number.NEGATIVE_INFINITY : leased ? expiresAt : Number.POSITIVE_INFINITY;
  const renewListeners: (() => void)[] = [];

  return {
    get version() {
      return version;
    },
    /** The id the pool knows this node by. */
    get nodeId() {
      return nodeId;
    },
    /** Whether the latest view names this node (true before any view: standalone). */
    get inPool(): boolean {
      return inPool;
    },
    /** Whether the node holds a view that names it and must be leased: it renews the lease. */
    get pooled(): boolean {
      return version > 0 && inPool && leased;
    },
    /** Whether reads may be answered now: standalone, or in a pool with its view leased. */
    serving(): boolean {
      return version === 0 || now() < limit();
    },
    /** ms the view's lease still runs (Infinity standalone or unleased, 0 when expired). */
    leaseLeft(): number {
      return version === 0 ? Number.POSITIVE_INFINITY : Math.max(0, limit() - now());
    },
    /** Whether a request routed with map `tagged` may be served (undefined: untagged). */
    admits(tagged: number | undefined): boolean {
      return tagged === undefined || tagged >= version;
    },
    /** Whether this node may hand entries to `origin` (a normalised node URL). */
    isMember(origin: string): boolean {
      return version === 0 || members.has(origin);
    },
    /**
     * Adopts a newer view; returns the entries dropped, or undefined when it was not newer.
     * `self`: the id the pool gives this node; null when the view leaves it out of the pool.
     * `mustLease`: the view is served only under a lease (a manager's push says so).
     */
    adopt(view: PoolView, self?: NodeId | null, mustLease = false): number | undefined {
      if (view.map.version <= version) return undefined;
      if (self) nodeId = self;
      inPool = self !== null;
      leased = mustLease;
      const next = inPool ? regionsServedBy(view, nodeId) : new Set<number>();
      // Only regions served under the last view and under this one keep their entries.
      const drop = new Set<number>();
      for (let region = 0; region < REGION_COUNT; region++) {
        const kept = version > 0 && served.has(region) && next.has(region);
        if (!kept) drop.add(region);
      }
      version = view.map.version;
      served = next;
      leases?.adopt(inPool ? regionsLeasableBy(view, nodeId) : new Set());
      leases?.limit(limit());
      members = new Set(Object.values(view.addresses));
      for (const listener of renewListeners) listener();
      return cache.dropRegions(drop);
    },
    /**
     * The manager renewed the lease on view `renewedVersion` for `leaseMs`, asked at `sentAt`
     * (now()). Returns false when the view changed meanwhile (that answer vouches for no other).
     */
    renewed(renewedVersion: number, sentAt: number, leaseMs: number): boolean {
      if (renewedVersion !== version || !inPool) return false;
      expiresAt = Math.max(expiresAt, sentAt + leaseMs * (1 - VIEW_LEASE_MARGIN));
      leases?.limit(limit());
      return true;
    },
    /** Calls `listener` whenever a new view is adopted (the renewal asks at once). */
    onAdopt(listener: () => void): void {
      renewListeners.push(listener);
    },
  };
}

export type NodeView = ReturnType<typeof createNodeView>;
