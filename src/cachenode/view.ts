/**
 * What this node knows of the pool: the latest view the manager pushed, and the fence that
 * follows from it.
 *
 * Fence: a request tagged with an older map version than the node's was routed with a view
 * that no longer holds; the node turns it away (421) so the sender refreshes its view, instead of
 * letting it read or invalidate the wrong node (a stale read after someone else's upload).
 *
 * On each new view the node drops the entries of regions it no longer serves, and of regions it
 * starts to serve again: those are left from an earlier time it owned them, and uploads since
 * then invalidated another node. The hand-over then brings that region's current entries.
 *
 * Leases (leases.ts) follow the view: a node leases only regions it owns with no hand-over in
 * progress, and fences each region that becomes leasable.
 *
 * Membership: once in a pool, a node hands entries only to the nodes its current view names
 * (`isMember`), so a move order (move_keys) cannot send cached images to an arbitrary address,
 * whoever holds the secret. Before any view the node is standalone (the seed API's users, whose
 * managers never push views) and any well-formed node address is accepted.
 */
import type { NodeId } from '../core/pool-map.ts';
import { type PoolView, regionsLeasableBy, regionsServedBy } from '../core/pool-view.ts';
import { REGION_COUNT } from '../core/regions.ts';
import type { Leases } from './leases.ts';
import type { NodeCache } from './node-cache.ts';

export function createNodeView(ownId: NodeId, cache: NodeCache, leases?: Leases) {
  // The manager names nodes itself (a node started elsewhere does not know its pool id): a push
  // says which id is this node's, and that name wins over the node's own.
  let nodeId = ownId;
  let version = 0;
  // Before any view the node serves everything (a standalone node, or the seed API's users).
  let served = new Set(Array.from({ length: REGION_COUNT }, (_, r) => r));
  // The origins of the nodes the current view names (parsePoolView normalised them).
  let members = new Set<string>();

  return {
    get version() {
      return version;
    },
    /** Whether a request routed with map `tagged` may be served (undefined: untagged). */
    admits(tagged: number | undefined): boolean {
      return tagged === undefined || tagged >= version;
    },
    /** Whether this node may hand entries to `origin` (a normalised node URL). */
    isMember(origin: string): boolean {
      return version === 0 || members.has(origin);
    },
    /** Adopts a newer view; returns the entries dropped, or undefined when it was not newer. */
    adopt(view: PoolView, self?: NodeId): number | undefined {
      if (view.map.version <= version) return undefined;
      if (self) nodeId = self;
      const next = regionsServedBy(view, nodeId);
      // Only regions served under the last view and under this one keep their entries.
      const drop = new Set<number>();
      for (let region = 0; region < REGION_COUNT; region++) {
        const kept = version > 0 && served.has(region) && next.has(region);
        if (!kept) drop.add(region);
      }
      version = view.map.version;
      served = next;
      leases?.adopt(regionsLeasableBy(view, nodeId));
      members = new Set(Object.values(view.addresses));
      return cache.dropRegions(drop);
    },
  };
}

export type NodeView = ReturnType<typeof createNodeView>;
