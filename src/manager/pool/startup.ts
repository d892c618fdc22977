/**
 * The start of the pool: a manager that finds a saved map resumes that pool (the provider adopts
 * the nodes that still run and starts the others again under their ids); one that finds none
 * starts the pool's first node. A node that cannot be brought back is taken out of the map, its
 * regions going cold to the others, so no view ever names a node without an address.
 */
import { randomUUID } from 'node:crypto';
import {
  type Assignment,
  createPoolMap,
  type NodeId,
  type PoolMap,
  resizePoolMap,
} from '../../core/pool-map.ts';
import type { PoolStore } from '../../storage/pool-store.ts';
import type { NodeProvider, ProvidedNode } from '../providers/provider.ts';
import type { Journal } from './journal.ts';
import type { NodeLifecycle } from './node-lifecycle.ts';
import type { PoolViews } from './views.ts';

export interface StartupDeps {
  store: Pick<PoolStore, 'currentMap' | 'listNodes'>;
  provider: Pick<NodeProvider, 'resume' | 'isGone'>;
  lifecycle: Pick<NodeLifecycle, 'bringUp' | 'record' | 'configure'>;
  views: PoolViews;
  journal: Journal;
  assignment: Assignment;
  newNodeId: () => NodeId;
}

export const newNodeId = (): NodeId => `node-${randomUUID().slice(0, 8)}`;

export async function startPool(deps: StartupDeps): Promise<void> {
  const saved = await deps.store.currentMap();
  if (saved) await resume(deps, saved);
  else await startFirst(deps);
}

async function startFirst(deps: StartupDeps): Promise<void> {
  const id = deps.newNodeId();
  const node = await deps.lifecycle.bringUp(id);
  deps.views.setAddress(id, node.url);
  await deps.lifecycle.record(node, 'active');
  await deps.views.adopt(createPoolMap([id], deps.assignment));
  await deps.journal.event('resize', `Started the pool with node ${id}`);
}

/**
 * The predecessor may have given a view lease to any node it recorded, whatever its state now
 * (a failed node may be hung, not dead), and the views wait such leases out before ownership
 * changes. A node that answers at its address (adopted) takes the next view, and one the
 * provider proves gone holds no lease: when that accounts for every recorded node, nothing is
 * left to wait out, which spares a restart of `pixpool up` the whole lease (3 s by default).
 */
async function accountForLeases(
  deps: StartupDeps,
  registry: { address: string }[],
  resumed: (ProvidedNode | undefined)[],
): Promise<void> {
  const { isGone } = deps.provider;
  if (!isGone) return;
  const answering = new Set(resumed.flatMap((node) => (node ? [node.url] : [])));
  const addresses = [...new Set(registry.map((n) => n.address).filter(Boolean))];
  const gone = await Promise.all(
    addresses.map(async (url) => (answering.has(url) ? false : isGone(url))),
  );
  for (const [i, url] of addresses.entries()) if (gone[i]) deps.views.gone(url);
  if (addresses.every((url, i) => answering.has(url) || gone[i])) deps.views.liftFloor();
}

async function resume(deps: StartupDeps, saved: PoolMap): Promise<void> {
  const { views, lifecycle, journal } = deps;
  const registry = await deps.store.listNodes();
  const known = new Map(registry.map((n) => [n.id, n.address]));
  views.resume(
    saved,
    saved.nodes.map((id) => ({ id, url: known.get(id) ?? '' })),
  );
  const resumed = await deps.provider.resume(
    saved.nodes.map((id) => ({ id, url: known.get(id) ?? '' })),
  );
  await accountForLeases(deps, registry, resumed);
  const back: NodeId[] = [];
  let moved = false;
  for (const [i, id] of saved.nodes.entries()) {
    let node: ProvidedNode | undefined = resumed[i];
    if (!node) {
      try {
        node = await lifecycle.bringUp(id);
      } catch (error) {
        journal.failed('resume-node', error, { node: id });
        await journal.event('node', `Node ${id} could not be brought back`);
        continue;
      }
    }
    back.push(id);
    if (node.url !== known.get(id)) moved = true;
    views.setAddress(id, node.url);
    await lifecycle.record(node, 'active');
    await lifecycle
      .configure(node.url)
      .catch((error) => journal.failed('configure-node', error, { node: id }));
  }
  if (back.length === 0) {
    throw new Error(`none of the pool's ${saved.nodes.length} node(s) could be brought back`);
  }
  // New addresses or fewer nodes need a new map version, or frontends would ignore the view.
  if (moved || back.length < saved.nodes.length) await views.adopt(resizePoolMap(saved, back));
  // Same nodes, same map: they still need to hear from this manager to renew their leases.
  else await views.pushAll();
  await journal.event(
    'node',
    `Resumed the pool: ${views.map.nodes.length} nodes, map version ${views.map.version}`,
  );
}
