/**
 * A pool view: what a frontend or a node needs to know of the pool. The versioned map, every
 * node's address and, while a resize hands entries over, the owners before it (`previous`), so
 * reads can fall back to the node that still holds a moved region and uploads can invalidate both.
 *
 * `down` names nodes that hold nothing anyone can read (the process is gone, or its view lease
 * was waited out) while their replacement starts: frontends neither read from them nor need to
 * invalidate them, so uploads to their regions are not refused for as long as a replacement takes.
 */
import { badRequest } from './errors.ts';
import { nodeUrl } from './node-address.ts';
import { type NodeId, type PoolMap, parsePoolMap } from './pool-map.ts';
import { REGION_COUNT } from './regions.ts';

export interface PoolView {
  map: PoolMap;
  /** Base URL of every node the view names (map.nodes and previous owners). */
  addresses: Record<NodeId, string>;
  /** previous[region]: the owner before the resize in progress; absent when none is. */
  previous?: NodeId[] | undefined;
  /** Nodes of the map that hold nothing readable until their replacement takes the view. */
  down?: NodeId[] | undefined;
}

/** Validates an untrusted view (a manager's push) with messages a person can act on. */
export function parsePoolView(body: unknown): PoolView {
  const { map, addresses, previous, down } = (body ?? {}) as Record<string, unknown>;
  let parsed: PoolMap;
  try {
    parsed = parsePoolMap(map);
  } catch (error) {
    throw badRequest(`The pool map is not valid: ${(error as Error).message}.`);
  }
  if (typeof addresses !== 'object' || addresses === null || Array.isArray(addresses)) {
    throw badRequest('addresses must map every node id of the map to its URL.');
  }
  if (
    previous !== undefined &&
    previous !== null &&
    (!Array.isArray(previous) ||
      previous.length !== REGION_COUNT ||
      !previous.every((id) => typeof id === 'string'))
  ) {
    throw badRequest(`previous must list the ${REGION_COUNT} owners before the resize.`);
  }
  if (
    down !== undefined &&
    down !== null &&
    (!Array.isArray(down) || !down.every((id) => parsed.nodes.includes(id)))
  ) {
    throw badRequest('down must list node ids of the map.');
  }
  const named = new Set([...parsed.nodes, ...((previous as string[] | null) ?? [])]);
  const known: Record<NodeId, string> = {};
  for (const id of named) {
    const address = (addresses as Record<string, unknown>)[id];
    if (typeof address !== 'string') throw badRequest(`Node ${JSON.stringify(id)} has no address.`);
    known[id] = nodeUrl(address);
  }
  return {
    map: parsed,
    addresses: known,
    ...(previous ? { previous: previous as NodeId[] } : {}),
    ...(Array.isArray(down) && down.length > 0 ? { down: [...new Set(down as NodeId[])] } : {}),
  };
}

/** The regions a node serves under a view: those it owns, and those it owned before. */
export function regionsServedBy(view: PoolView, id: NodeId): Set<number> {
  const regions = new Set<number>();
  view.map.owner.forEach((owner, region) => {
    if (owner === id || view.previous?.[region] === id) regions.add(region);
  });
  return regions;
}

/**
 * The regions a node may grant read leases on (src/cachenode/leases.ts): those it owns with no
 * hand-over in progress, so no other node serves them too.
 */
export function regionsLeasableBy(view: PoolView, id: NodeId): Set<number> {
  const regions = new Set<number>();
  view.map.owner.forEach((owner, region) => {
    const previous = view.previous?.[region];
    if (owner === id && (previous === undefined || previous === id)) regions.add(region);
  });
  return regions;
}
