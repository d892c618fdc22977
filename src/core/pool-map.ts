// Versioned pool maps: which cache node owns each of the 16 key regions, and how the map changes
// when the pool is resized. Pure functions; the caller persists and publishes maps.
// Two assignments:
// - 'modulo' reproduces the original system (owner[r] = nodes[r % n]) so the rebalance tables it
//   logged come out exactly (pool-map.test.ts), at the price of moving most regions on every
//   resize.
// - 'balanced' moves the fewest regions that leave every node with floor or ceil of 16/n.
// Limits: at most MAX_NODES (8) nodes; node ids are opaque non-empty strings.

import { REGION_COUNT } from './regions.ts';

export type NodeId = string;
export type Assignment = 'modulo' | 'balanced';

export interface PoolMap {
  version: number;
  assignment: Assignment;
  /** Pool order: survivors keep their relative order, new nodes are appended. */
  nodes: NodeId[];
  /** owner[region], always REGION_COUNT long; every entry is in `nodes`. */
  owner: NodeId[];
}

export interface RegionMove {
  region: number;
  from: NodeId;
  to: NodeId;
}

export const ASSIGNMENTS: readonly Assignment[] = ['modulo', 'balanced'];
/** A pool's size bounds; a map never names more nodes (and never more than its 16 regions). */
export const MIN_NODES = 1;
export const MAX_NODES = 8;

/** A node list or pool map that cannot be used. A TypeError, so it reads as bad input. */
export class PoolMapError extends TypeError {
  override readonly name = 'PoolMapError';
}

/** The first map of a pool: round-robin for both assignments, which is already balanced. */
export function createPoolMap(nodes: NodeId[], assignment: Assignment, version = 1): PoolMap {
  checkVersion(version);
  checkAssignment(assignment);
  checkNodes(nodes);
  return { version, assignment, nodes: [...nodes], owner: moduloOwner(nodes) };
}

/** The next map (version + 1) for the new pool order `nodes`, keeping prev's assignment. */
export function resizePoolMap(prev: PoolMap, nodes: NodeId[]): PoolMap {
  checkNodes(nodes);
  checkPoolOrder(prev.nodes, nodes);
  const version = prev.version + 1;
  checkVersion(version);
  const owner =
    prev.assignment === 'modulo' ? moduloOwner(nodes) : balancedOwner(prev.owner, nodes);
  return { version, assignment: prev.assignment, nodes: [...nodes], owner };
}

/** The regions whose owner differs between two maps, by ascending region. */
export function planMoves(prev: PoolMap, next: PoolMap): RegionMove[] {
  if (prev.owner.length !== REGION_COUNT || next.owner.length !== REGION_COUNT) {
    throw new PoolMapError(`owner must list ${REGION_COUNT} node ids`);
  }
  const moves: RegionMove[] = [];
  for (const [region, from] of prev.owner.entries()) {
    const to = next.owner[region];
    if (to !== undefined && to !== from) moves.push({ region, from, to });
  }
  return moves;
}

/** Validates an untrusted map (e.g. from HTTP) and returns a copy holding only known fields. */
export function parsePoolMap(x: unknown): PoolMap {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    throw new PoolMapError(`pool map must be an object (got ${show(x)})`);
  }
  const { version, assignment, nodes, owner } = x as Record<string, unknown>;
  checkVersion(version);
  checkAssignment(assignment);
  checkNodes(nodes);
  checkOwner(owner, nodes);
  return { version, assignment, nodes: [...nodes], owner: [...owner] };
}

function moduloOwner(nodes: readonly NodeId[]): NodeId[] {
  return Array.from({ length: REGION_COUNT }, (_, r) => nodes[r % nodes.length] ?? unreachable());
}

// Each survivor keeps min(held, target) of its regions (its lowest-numbered ones); everything
// else (removed nodes' regions and the surplus above target) is dealt to nodes under target.
// Since targets go to the nodes holding most, 16 - Σ min(held, target) is the fewest possible.
function balancedOwner(prevOwner: readonly NodeId[], nodes: readonly NodeId[]): NodeId[] {
  const kept = new Map<NodeId, number[]>(nodes.map((id) => [id, []]));
  const givenBy = new Map<NodeId, number[]>();
  for (const [region, id] of prevOwner.entries()) {
    (kept.get(id) ?? listIn(givenBy, id)).push(region);
  }
  const target = targetsFor(nodes, kept);
  for (const [id, regions] of kept) {
    const surplus = regions.splice(target.get(id) ?? 0);
    if (surplus.length > 0) listIn(givenBy, id).push(...surplus);
  }
  // Interleaving donors before filling recipients one at a time means a new node takes a few
  // regions from each donor rather than all from one, and a removed node's regions spread out.
  // Donor order (removed nodes by first region, then survivors in pool order) fixes the output.
  const freed = interleave([...givenBy.values()]);
  const owner = [...prevOwner];
  let next = 0;
  for (const [id, regions] of kept) {
    for (let need = (target.get(id) ?? 0) - regions.length; need > 0; need--) {
      owner[freed[next++] ?? unreachable()] = id;
    }
  }
  return owner;
}

// floor(16/n) for everyone, and the 16 % n ceil targets for the nodes that hold most now, so
// that as few of them as possible have to give regions up. The sort is stable: ties go by
// pool order.
function targetsFor(nodes: readonly NodeId[], kept: Map<NodeId, number[]>): Map<NodeId, number> {
  const base = Math.floor(REGION_COUNT / nodes.length);
  const extra = REGION_COUNT % nodes.length;
  const held = (id: NodeId) => kept.get(id)?.length ?? 0;
  const byHeld = [...nodes].sort((a, b) => held(b) - held(a));
  return new Map(byHeld.map((id, i) => [id, i < extra ? base + 1 : base]));
}

function interleave(groups: readonly number[][]): number[] {
  const out: number[] = [];
  const longest = Math.max(0, ...groups.map((g) => g.length));
  for (let i = 0; i < longest; i++) {
    for (const g of groups) {
      const region = g[i];
      if (region !== undefined) out.push(region);
    }
  }
  return out;
}

function listIn(map: Map<NodeId, number[]>, id: NodeId): number[] {
  const list = map.get(id) ?? [];
  map.set(id, list);
  return list;
}

function checkVersion(v: unknown): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new PoolMapError(`version must be a positive safe integer (got ${show(v)})`);
  }
}

function checkAssignment(a: unknown): asserts a is Assignment {
  if (!ASSIGNMENTS.includes(a as Assignment)) {
    throw new PoolMapError(`assignment must be 'modulo' or 'balanced' (got ${show(a)})`);
  }
}

function checkNodes(nodes: unknown): asserts nodes is NodeId[] {
  if (!Array.isArray(nodes) || nodes.length < MIN_NODES || nodes.length > MAX_NODES) {
    const got = Array.isArray(nodes) ? `${nodes.length} ids` : show(nodes);
    throw new PoolMapError(`nodes must list ${MIN_NODES} to ${MAX_NODES} node ids (got ${got})`);
  }
  const seen = new Set<unknown>();
  for (let i = 0; i < nodes.length; i++) {
    const id: unknown = nodes[i];
    if (typeof id !== 'string' || id === '') {
      throw new PoolMapError(`nodes[${i}] must be a non-empty string (got ${show(id)})`);
    }
    if (seen.has(id)) throw new PoolMapError(`nodes lists node ${show(id)} more than once`);
    seen.add(id);
  }
}

function checkOwner(owner: unknown, nodes: readonly NodeId[]): asserts owner is NodeId[] {
  if (!Array.isArray(owner) || owner.length !== REGION_COUNT) {
    const got = Array.isArray(owner) ? `${owner.length} entries` : show(owner);
    throw new PoolMapError(`owner must list ${REGION_COUNT} node ids (got ${got})`);
  }
  const known = new Set<unknown>(nodes);
  for (let r = 0; r < REGION_COUNT; r++) {
    const id: unknown = owner[r];
    if (typeof id !== 'string') {
      throw new PoolMapError(`owner[${r}] must be a node id string (got ${show(id)})`);
    }
    if (!known.has(id)) {
      throw new PoolMapError(`owner[${r}] names node ${show(id)} that is not in nodes`);
    }
  }
}

// The rebalance relies on this order (and the seeds' modulo tables assume it); a reordered list
// would silently reshuffle regions between survivors.
function checkPoolOrder(prev: readonly NodeId[], nodes: readonly NodeId[]): void {
  const inNext = new Set(nodes);
  const survivors = prev.filter((id) => inNext.has(id));
  // Ids are unique, so survivors forming the prefix leaves only new ids after them.
  if (!survivors.every((id, i) => nodes[i] === id)) {
    throw new PoolMapError(
      `nodes must keep surviving nodes in their previous order (${survivors.join(', ')}) ` +
        `and append new ones after them (got ${nodes.join(', ')})`,
    );
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

function unreachable(): never {
  throw new Error('pool-map: internal invariant broken');
}

/**
 * The fewest regions any assignment must move to go from `prevOwner` to a balanced map over
 * `nodes` (every node within one region of 16/n): 16 minus the most regions survivors can keep,
 * which is reached by giving the ceil targets to the nodes that hold the most. The manager
 * reports it beside what a resize really moved (`balanced` moves exactly this many).
 */
export function minimumRegionMoves(prevOwner: readonly NodeId[], nodes: readonly NodeId[]): number {
  const held = nodes.map((id) => prevOwner.filter((owner) => owner === id).length);
  const base = Math.floor(REGION_COUNT / nodes.length);
  const extra = REGION_COUNT % nodes.length;
  const kept = [...held]
    .sort((a, b) => b - a)
    .reduce((sum, h, i) => sum + Math.min(h, i < extra ? base + 1 : base), 0);
  return REGION_COUNT - kept;
}
