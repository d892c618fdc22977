/**
 * The pool's view (the versioned map, every node's address and, during a resize, the owners
 * before it) and how a new one is put in force.
 *
 * Order of a publication: the map is saved (a map not saved is never shown to anyone, so a
 * restarted manager resumes from what nodes and frontends last saw, or newer); then every node
 * it names takes it, so a node turns away requests routed with an older map before any frontend
 * can route with the new one; then it becomes the view frontends poll; then it is pushed to them.
 * A node or frontend that misses a push is reported and the publication goes on: frontends also
 * poll, and a node that keeps missing pushes fails its health checks.
 */
import type { NodeAdmin } from '../../clients/node-admin.ts';
import type { NodeId, PoolMap } from '../../core/pool-map.ts';
import type { PoolView } from '../../core/pool-view.ts';
import type { PoolStore } from '../../storage/pool-store.ts';
import type { Journal } from './journal.ts';

export interface ViewDeps {
  store: Pick<PoolStore, 'saveMap'>;
  admin: Pick<NodeAdmin, 'pushView'>;
  /** Pushes a view to every registered frontend (notifier.ts). */
  publish: (view: PoolView) => Promise<void>;
  journal: Journal;
}

/** Tries per node before a view push counts as missed. */
const PUSH_ATTEMPTS = 3;

export function createPoolViews(deps: ViewDeps) {
  let map: PoolMap | undefined;
  /** The owners before the resize in progress (a transitional view), else undefined. */
  let previous: NodeId[] | undefined;
  const addresses: Record<NodeId, string> = {};

  const current = (): PoolMap => {
    if (!map) throw new Error('the pool has no map yet: start() it first');
    return map;
  };

  const viewOf = (next: PoolMap, before?: NodeId[]): PoolView => ({
    map: next,
    addresses: { ...addresses },
    ...(before && { previous: [...before] }),
  });

  async function push(id: NodeId, view: PoolView): Promise<void> {
    const url = addresses[id];
    if (!url) return;
    for (let attempt = 1; attempt <= PUSH_ATTEMPTS; attempt++) {
      try {
        await deps.admin.pushView(url, view, id);
        return;
      } catch (error) {
        if (attempt === PUSH_ATTEMPTS) {
          deps.journal.failed('push-view', error, { node: id, mapVersion: view.map.version });
        }
      }
    }
  }

  return {
    /** The view in force (a copy). */
    view: (): PoolView => viewOf(current(), previous),
    get map(): PoolMap {
      return current();
    },
    get started(): boolean {
      return map !== undefined;
    },
    /** Nodes in the map in force (0 before start). */
    get size(): number {
      return map?.nodes.length ?? 0;
    },
    address: (id: NodeId): string | undefined => addresses[id],
    /** Records where a node listens; it reaches nodes and frontends with the next view. */
    setAddress(id: NodeId, url: string): void {
      addresses[id] = url;
    },
    forget(id: NodeId): void {
      delete addresses[id];
    },

    /** Saves `next`, has every node take it, then puts it in force and tells the frontends. */
    async adopt(next: PoolMap, before?: NodeId[]): Promise<void> {
      await deps.store.saveMap(next);
      const candidate = viewOf(next, before);
      const named = new Set([...next.nodes, ...(before ?? [])]);
      await Promise.all([...named].map((id) => push(id, candidate)));
      map = next;
      previous = before;
      try {
        await deps.publish(viewOf(next, before));
      } catch (error) {
        deps.journal.failed('publish-view', error, { mapVersion: next.version });
      }
    },

    /** Puts a saved map back in force at start, before any node or frontend is told. */
    resume(saved: PoolMap): void {
      map = saved;
      previous = undefined;
    },
  };
}

export type PoolViews = ReturnType<typeof createPoolViews>;
