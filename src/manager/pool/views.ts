/**
 * The pool's view (the versioned map, every node's address and, during a resize, the owners
 * before it) and how a new one is put in force.
 *
 * Order of a publication: the map is saved (a map not saved is never shown to anyone, so a
 * restarted manager resumes from what nodes and frontends last saw, or newer); then every node
 * it names takes it, and every node that left it is told so (`self: null`), so a node turns away
 * requests routed with an older map before any frontend can route with the new one; then it
 * becomes the view frontends poll; then it is pushed to them.
 *
 * A node asks for a renewal of its view's lease as soon as it takes a view, usually before the
 * manager has read the push's answer that names its process; such a renewal waits for that answer
 * (settled), instead of being refused and asked again (each grow did that on every node, twice).
 *
 * A node that cannot be told (cut off, hung) may still serve reads under the view it has, for as
 * long as its view lease runs (view-leases.ts). So before the new view is put in force, such a
 * node's renewals stop and its lease is waited out, while the push is retried. A frontend that
 * misses a push is reported and the publication goes on: frontends also poll, and every node
 * fences requests routed with an older map.
 *
 * Publications run one at a time. Resizes and replacements are one at a time already (the pool's
 * queue); markDown is not, so that a dead node is down in the views at once, not after a resize
 * that holds the queue (a grow waits minutes for a cloud instance). It changes no owner, and a map
 * made before it is numbered after it when put in force.
 */
import type { NodeAdmin } from '../../clients/node-admin.ts';
import type { NodeId, PoolMap } from '../../core/pool-map.ts';
import type { PoolView } from '../../core/pool-view.ts';
import type { PoolStore } from '../../storage/pool-store.ts';
import type { Journal } from './journal.ts';
import type { ViewLeases } from './view-leases.ts';

export interface ViewDeps {
  store: Pick<PoolStore, 'saveMap'>;
  admin: Pick<NodeAdmin, 'pushView'>;
  /** Pushes a view to every registered frontend (notifier.ts). */
  publish: (view: PoolView) => Promise<void>;
  journal: Journal;
  leases: ViewLeases;
  sleep: (ms: number) => Promise<void>;
}

/** Tries per node before a view push counts as missed. */
const PUSH_ATTEMPTS = 3;
/** Between pushes to a node that missed one, while its lease is waited out, ms. */
const RETRY_MS = 500;

export function createPoolViews(deps: ViewDeps) {
  let map: PoolMap | undefined;
  /** The owners before the resize in progress (a transitional view), else undefined. */
  let previous: NodeId[] | undefined;
  const addresses: Record<NodeId, string> = {};
  /** Nodes that hold nothing readable until their replacement listens (core/pool-view.ts). */
  const down = new Set<NodeId>();
  /** A new view is being put in force (sync() leaves the nodes to it). */
  let adopting = false;
  /** Pushes under way by node URL, each settled once its answer is recorded (or it failed). */
  const pushing = new Map<string, Promise<void>>();
  /** The publication under way: they run one at a time (adopt, markDown). */
  let publishing: Promise<unknown> = Promise.resolve();
  const serially = <T>(job: () => Promise<T>): Promise<T> => {
    const run = publishing.then(job, job);
    publishing = run.catch(() => {});
    return run;
  };

  const current = (): PoolMap => {
    if (!map) throw new Error('the pool has no map yet: start() it first');
    return map;
  };

  const viewOf = (next: PoolMap, before?: NodeId[]): PoolView => {
    const gone = next.nodes.filter((id) => down.has(id));
    return {
      map: next,
      addresses: { ...addresses },
      ...(before && { previous: [...before] }),
      ...(gone.length > 0 && { down: gone }),
    };
  };

  /** Pushes `view` to the node at `url`; says whether it took it (failures are reported). */
  async function push(id: NodeId, url: string, view: PoolView, self: NodeId | null) {
    for (let attempt = 1; attempt <= PUSH_ATTEMPTS; attempt++) {
      const recorded = (async () => {
        const answer = await deps.admin.pushView(url, view, self);
        deps.leases.took(url, id, answer, self !== null);
      })();
      pushing.set(url, recorded);
      try {
        await recorded;
        return true;
      } catch (error) {
        if (attempt === PUSH_ATTEMPTS) {
          deps.journal.failed('push-view', error, { node: id, url, mapVersion: view.map.version });
        }
      } finally {
        if (pushing.get(url) === recorded) pushing.delete(url);
      }
    }
    return false;
  }

  /** A node that missed `view`: no more renewals, and its lease runs out or it takes the view. */
  async function outlast(id: NodeId, url: string, view: PoolView, self: NodeId | null) {
    deps.leases.revoke(url);
    for (let left = deps.leases.left(url); left > 0; left = deps.leases.left(url)) {
      await deps.sleep(Math.min(left, RETRY_MS));
      if (deps.leases.left(url) > 0 && (await push(id, url, view, self))) return;
    }
  }

  /** adopt(), once the publications before it are done. */
  async function adoptNow(made: PoolMap, before?: NodeId[]): Promise<PoolMap> {
    // A view put in force since `made` was made (markDown) took its version: number it after.
    const next = map && made.version <= map.version ? { ...made, version: map.version + 1 } : made;
    await deps.store.saveMap(next);
    // After a restart: whatever the manager before granted has run out.
    await deps.leases.startFloor();
    const candidate = viewOf(next, before);
    const named = [...new Set([...next.nodes, ...(before ?? [])])].flatMap((id) => {
      const url = addresses[id];
      return url && !down.has(id) ? [{ id, url, self: id as NodeId | null }] : [];
    });
    const left = deps.leases
      .live(new Set(named.map((n) => n.url)))
      .map((holder) => ({ ...holder, self: null }));
    const told = [...named, ...left];
    adopting = true;
    try {
      const took = await Promise.all(told.map((n) => push(n.id, n.url, candidate, n.self)));
      await Promise.all(
        told.map((n, i) => (took[i] ? undefined : outlast(n.id, n.url, candidate, n.self))),
      );
    } finally {
      adopting = false;
    }
    map = next;
    previous = before;
    try {
      await deps.publish(viewOf(next, before));
    } catch (error) {
      deps.journal.failed('publish-view', error, { mapVersion: next.version });
    }
    return next;
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
    /**
     * Resolves once the push to node `id` under way, if any, has its answer recorded
     * (view-leases.ts took) or has failed. A renewal waits for it (see the top of this file); for
     * one try only, so a node the manager cannot reach is refused as soon as that try fails.
     */
    async settled(id: NodeId): Promise<void> {
      const url = addresses[id];
      await (url === undefined ? undefined : pushing.get(url))?.catch(() => {});
    },
    /** Records where a node listens; it reaches nodes and frontends with the next view. */
    setAddress(id: NodeId, url: string): void {
      addresses[id] = url;
      down.delete(id);
    },
    forget(id: NodeId): void {
      delete addresses[id];
      down.delete(id);
    },
    /**
     * Node `id` holds nothing anyone can read (its process is gone, or its lease was waited out):
     * puts in force at once the view in force, numbered anew, saying so (core/pool-view.ts). Views
     * are not pushed to it from then on; a new address (setAddress) brings it back up. Safe beside
     * a resize: it changes no owner, and adopt() numbers a map made before it after it.
     */
    async markDown(id: NodeId): Promise<void> {
      if (down.has(id) || !map?.nodes.includes(id)) return;
      down.add(id);
      await serially(() => adoptNow({ ...current(), version: current().version + 1 }, previous));
    },

    /**
     * Saves `next`, has every node take it (and every node that left it hear so), waits out the
     * lease of any that could not be told, then puts it in force and tells the frontends; after
     * the publication under way, if any. Resolves with the map put in force: `next`, numbered
     * after the map in force if a publication since `next` was made took its version.
     */
    adopt(next: PoolMap, before?: NodeId[]): Promise<PoolMap> {
      return serially(() => adoptNow(next, before));
    },

    /**
     * Brings node `id` up to the view in force when its last push failed or it is a new process
     * at its address (the health monitor calls this for each node that answers). Not while a
     * new view is being put in force: that one is pushed (and waited for) by adopt().
     */
    async sync(id: NodeId): Promise<void> {
      const url = addresses[id];
      if (!map || !url || down.has(id) || adopting || deps.leases.current(url, map.version)) return;
      await push(id, url, viewOf(map, previous), id);
    },

    /** Pushes the view in force to every node it names (a resumed pool's nodes learn of us). */
    async pushAll(): Promise<void> {
      const view = viewOf(current(), previous);
      const named = [...new Set([...view.map.nodes, ...(previous ?? [])])];
      await Promise.all(
        named.map((id) =>
          addresses[id] && !down.has(id) ? push(id, addresses[id], view, id) : undefined,
        ),
      );
    },

    /**
     * Puts a saved map back in force at start, before any node or frontend is told; `known` are
     * the nodes' last addresses, whose leases from the manager before are assumed to run.
     */
    resume(saved: PoolMap, known: { id: NodeId; url: string }[] = []): void {
      map = saved;
      previous = undefined;
      deps.leases.assume(known);
    },

    /**
     * The node at `url` is out of reach and leaves (replaced, or taken out): its renewals stop,
     * and this resolves once its lease has run out, so nothing it caches can be read after.
     */
    async retire(url: string): Promise<void> {
      deps.leases.revoke(url);
      for (let left = deps.leases.left(url); left > 0; left = deps.leases.left(url)) {
        await deps.sleep(left);
      }
    },

    /** See view-leases.ts liftFloor: the predecessor's nodes are all accounted for. */
    liftFloor(): void {
      deps.leases.liftFloor();
    },

    /** The process at `url` has exited (its provider killed it): no lease is left to wait out. */
    gone(url: string): void {
      deps.leases.forget(url);
    },
  };
}

export type PoolViews = ReturnType<typeof createPoolViews>;
