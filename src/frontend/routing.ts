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

export function createRouting(initial: PoolView) {
  let view = initial;
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
    /** The URL of the node that owns `key`'s region. */
    ownerOf(key: string): string {
      const id = view.map.owner[regionOfKey(key)] as NodeId;
      return view.addresses[id] as string;
    },
    /** The owner's URL, then the previous owner's while a resize hands the region over. */
    ownersOf(key: string): string[] {
      const region = regionOfKey(key);
      const owner = view.map.owner[region] as NodeId;
      const previous = view.previous?.[region];
      const urls = [view.addresses[owner] as string];
      if (previous && previous !== owner) urls.push(view.addresses[previous] as string);
      return urls;
    },
    /** Adopts `next` if it is newer; returns whether it did. */
    update(next: PoolView): boolean {
      if (next.map.version <= view.map.version) return false;
      view = next;
      return true;
    },
  };
}

export type Routing = ReturnType<typeof createRouting>;
