/**
 * The frontend's view of the pool: the current versioned pool map plus each node's address, and
 * the key → node lookup every request makes.
 *
 * A view only ever moves forward: an update with an older or equal map version is ignored, so a
 * late push cannot roll routing back. Until the manager exists the view comes from a static list
 * of node URLs (ids = URLs); the manager will push views to POST /api/notify.
 */
import { nodeUrl } from '../clients/node-client.ts';
import { badRequest } from '../core/errors.ts';
import { createPoolMap, type NodeId, type PoolMap, parsePoolMap } from '../core/pool-map.ts';
import { regionOf } from '../core/regions.ts';

export interface PoolView {
  map: PoolMap;
  /** Base URL of every node in map.nodes. */
  addresses: Record<NodeId, string>;
}

/** A view for a fixed list of node URLs, `balanced`, version 1. */
export function staticPoolView(urls: string[]): PoolView {
  const addresses = Object.fromEntries(urls.map((url) => [nodeUrl(url), nodeUrl(url)]));
  return { map: createPoolMap(Object.keys(addresses), 'balanced'), addresses };
}

/** Validates an untrusted view (a manager's push) with messages a person can act on. */
export function parsePoolView(body: unknown): PoolView {
  const { map, addresses } = (body ?? {}) as { map?: unknown; addresses?: unknown };
  let parsed: PoolMap;
  try {
    parsed = parsePoolMap(map);
  } catch (error) {
    throw badRequest(`The pool map is not valid: ${(error as Error).message}.`);
  }
  if (typeof addresses !== 'object' || addresses === null || Array.isArray(addresses)) {
    throw badRequest('addresses must map every node id of the map to its URL.');
  }
  const known: Record<NodeId, string> = {};
  for (const id of parsed.nodes) {
    const address = (addresses as Record<string, unknown>)[id];
    if (typeof address !== 'string') throw badRequest(`Node ${JSON.stringify(id)} has no address.`);
    known[id] = nodeUrl(address);
  }
  return { map: parsed, addresses: known };
}

export function createRouting(initial: PoolView) {
  let view = initial;
  return {
    get view(): PoolView {
      return view;
    },
    /** The URL of the node that owns `key`'s region. */
    ownerOf(key: string): string {
      const id = view.map.owner[regionOf(key)] as NodeId;
      return view.addresses[id] as string;
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
