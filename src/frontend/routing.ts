/**
 * The frontend's view of the pool: the current versioned pool map plus each node's address, and
 * the key → node lookup every request makes.
 *
 * A view only ever moves forward: an update with an older or equal map version is ignored, so a
 * late push cannot roll routing back. Until the manager exists the view comes from a static list
 * of node URLs (ids = URLs); the manager will push views to POST /api/notify.
 */
import { nodeUrl } from '../clients/node-client.ts';
import { createPoolMap, type NodeId } from '../core/pool-map.ts';
import type { PoolView } from '../core/pool-view.ts';
import { regionOf } from '../core/regions.ts';

export { type PoolView, parsePoolView } from '../core/pool-view.ts';

/** A view for a fixed list of node URLs, `balanced`, version 1. */
export function staticPoolView(urls: string[]): PoolView {
  const addresses = Object.fromEntries(urls.map((url) => [nodeUrl(url), nodeUrl(url)]));
  return { map: createPoolMap(Object.keys(addresses), 'balanced'), addresses };
}

/** Keys whose region is remembered: MD5 on every request showed in profiles of hot keys. */
const REMEMBERED_REGIONS = 10_000;

/** Where a region is read: its nodes that are up, the owner first; and the owner's URL. */
export interface Route {
  /** The owner's URL, then the previous owner's while a resize hands the region over. */
  owners: readonly string[];
  /** The owner's URL (where misses are filled); undefined while it is down. */
  owner: string | undefined;
}

function routesOf(view: PoolView): Route[] {
  const down = new Set(view.down);
  const up = (id: NodeId | undefined) =>
    id === undefined || down.has(id) ? undefined : (view.addresses[id] as string);
  return view.map.owner.map((owner, region) => {
    const previous = view.previous?.[region];
    const urls: string[] = [];
    const ownerUrl = up(owner);
    if (ownerUrl) urls.push(ownerUrl);
    const previousUrl = previous === owner ? undefined : up(previous);
    if (previousUrl) urls.push(previousUrl);
    return { owners: urls, owner: ownerUrl };
  });
}

export function createRouting(initial: PoolView) {
  let view = initial;
  let routes = routesOf(view);
  // A key's region never changes (only which node owns the region does), so it can be kept; the
  // map is simply emptied when full, which is cheap and keeps the hot keys' cost at one lookup.
  const regions = new Map<string, number>();
  const regionOfKey = (key: string): number => {
    let region = regions.get(key);
    if (region === undefined) {
      if (regions.size >= REMEMBERED_REGIONS) regions.clear();
      region = regionOf(key);
      regions.set(key, region);
    }
    return region;
  };
  return {
    get view(): PoolView {
      return view;
    },
    /**
     * Where `key` is read. Nodes that are down are left out: with none left, a read goes to
     * storage and an upload has no node to invalidate.
     */
    routeOf(key: string): Route {
      return routes[regionOfKey(key)] as Route;
    },
    /** Adopts `next` if it is newer; returns whether it did. */
    update(next: PoolView): boolean {
      if (next.map.version <= view.map.version) return false;
      view = next;
      routes = routesOf(next);
      return true;
    },
  };
}

export type Routing = ReturnType<typeof createRouting>;
