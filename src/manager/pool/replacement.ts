/**
 * What happens to a node that died: the failure is logged as an event at once and the node is
 * marked failed; then a job on the pool's queue puts a fresh node in its place under the same id
 * (a new map version announces the new address; its cache starts empty) or, when the provider has
 * none, takes it out of the map (its regions go to the others, cold: a dead node hands nothing
 * over). The last node is never taken out: frontends read from storage until it answers again.
 *
 * Until its replacement listens, the node is down in the view (core/pool-view.ts): once nothing
 * it cached can be read (its process is gone, or its view lease was waited out), frontends read
 * its regions from storage and uploads to them need not tell it. Otherwise every upload to its
 * regions would be refused for as long as the replacement takes to start (minutes on a cloud).
 *
 * Word of a death comes from the provider (a child process exited: at once) or from the health
 * monitor (after a few failed checks). A node already being replaced is left alone.
 */
import type { NodeAdmin } from '../../clients/node-admin.ts';
import { type NodeId, resizePoolMap } from '../../core/pool-map.ts';
import type { NodeProvider, ProvidedNode } from '../providers/provider.ts';
import type { Journal } from './journal.ts';
import type { NodeLifecycle } from './node-lifecycle.ts';
import type { ResizeQueue } from './resize-queue.ts';
import type { PoolViews } from './views.ts';

export interface ReplacementDeps {
  views: PoolViews;
  queue: Pick<ResizeQueue, 'run'>;
  provider: Pick<NodeProvider, 'name' | 'replace' | 'endsReplaced'>;
  admin: Pick<NodeAdmin, 'healthy'>;
  lifecycle: Pick<NodeLifecycle, 'record' | 'configure' | 'setState' | 'stop'>;
  journal: Journal;
}

export function createReplacement(deps: ReplacementDeps) {
  const { views, provider, journal, lifecycle } = deps;
  const replacing = new Set<NodeId>();
  /** Replacements taken: the local provider hands one restarted node to replace() and onReplaced. */
  const taken = new WeakSet<ProvidedNode>();
  let closed = false;

  /** Puts a node the provider replaced in the map at its new address (idempotent). */
  async function takeReplacement(node: ProvidedNode): Promise<void> {
    if (!views.map.nodes.includes(node.id) || taken.has(node)) return;
    taken.add(node);
    // A pod replaced or restarted comes back at the same DNS name: a new, unconfigured process
    // all the same, so it is configured and given a new view like one at a new address.
    const old = views.address(node.id);
    if (old && old !== node.url && provider.endsReplaced) views.gone(old);
    views.setAddress(node.id, node.url);
    await lifecycle.record(node, 'active');
    await lifecycle
      .configure(node.url)
      .catch((error) => journal.failed('configure-node', error, { node: node.id }));
    await views.adopt(resizePoolMap(views.map, views.map.nodes));
    await journal.event(
      'node',
      provider.name === 'local'
        ? `Node ${node.id} died and was restarted at ${node.url} (its cache starts empty)`
        : `Node ${node.id} was replaced by the node at ${node.url} (its cache starts empty)`,
      { id: node.id, url: node.url, mapVersion: views.map.version },
    );
  }

  /** No replacement: out of the map (unless it is the last node), its regions to the others. */
  async function removeDead(id: NodeId, why: string): Promise<void> {
    const map = views.map;
    if (map.nodes.length <= 1) {
      await journal.event(
        'node',
        `Node ${id} could not be replaced (${why}); it is the only node, so it stays in the map and frontends read from storage until it answers`,
      );
      return;
    }
    const regions = map.owner.filter((owner) => owner === id).length;
    await views.adopt(
      resizePoolMap(
        map,
        map.nodes.filter((n) => n !== id),
      ),
    );
    views.forget(id);
    await lifecycle.stop(id, 'failed');
    await journal.event(
      'node',
      `Node ${id} could not be replaced (${why}): took it out of the pool; its ${regions} regions went to the other ${views.map.nodes.length} node(s), which start cold for them`,
      { id, mapVersion: views.map.version },
    );
  }

  /** The queued job: replace `id`, found dead at `url`, unless that is done already. */
  async function replace(id: NodeId, url: string | undefined): Promise<void> {
    if (closed || !views.map.nodes.includes(id)) return;
    // The provider may have put a fresh node in place already (a restarted child).
    const current = views.address(id);
    if (current && current !== url && (await deps.admin.healthy(current))) return;
    // A node out of reach may still serve what it caches, to whoever still reaches it, until its
    // view lease runs out: its regions go to another node only after that.
    if (url && !provider.endsReplaced) await views.retire(url);
    if (!provider.replace) {
      await removeDead(id, `the ${provider.name} provider cannot replace nodes`);
      return;
    }
    // Down once its lease ran out (above); one whose process exited is down already (nodeFailed).
    // Not a hung node that replace() has yet to kill; nor a lone node whose lease ran out, which
    // stays in the map if it cannot be replaced and may answer again with its cache, in which
    // uploads acknowledged without it would be missing.
    if (!provider.endsReplaced && views.map.nodes.length > 1) await views.markDown(id);
    let node: ProvidedNode;
    try {
      node = await provider.replace(id);
    } catch (error) {
      await removeDead(id, (error as Error).message);
      return;
    }
    await takeReplacement(node);
  }

  return {
    /** Nodes with a replacement under way (the health monitor leaves them alone). */
    isReplacing: (id: NodeId): boolean => replacing.has(id),

    /**
     * Logs the failure now, then queues the replacement (or the removal). `exited`: the provider
     * saw its process exit (else it failed its health checks, and may be alive).
     */
    nodeFailed(id: NodeId, reason: string, { exited = false } = {}): Promise<void> {
      const url = views.address(id);
      // A provider that ends what it replaces saw the process exit: nothing it cached can be read
      // any more, so it has no lease to wait out and is down at once, not after a resize that may
      // hold the queue.
      const gone = exited && provider.endsReplaced;
      if (gone && url) views.gone(url);
      if (replacing.has(id) || closed) return Promise.resolve();
      replacing.add(id);
      return (async () => {
        const down = gone
          ? views.markDown(id).catch((error) => journal.failed('publish-view', error, { node: id }))
          : undefined;
        await lifecycle.setState(id, 'failed');
        await journal.event('node', `Node ${id} at ${url} ${reason}; replacing it`, {
          id,
          url,
          reason,
        });
        await down;
        await deps.queue.run(() => replace(id, url));
      })()
        .catch((error) => journal.failed('replace-node', error, { node: id }))
        .finally(() => replacing.delete(id));
    },

    /** The provider restarted a node by itself: queue taking its new address. */
    nodeReplaced(node: ProvidedNode): Promise<void> {
      return deps.queue
        .run(() => takeReplacement(node))
        .catch((error) => journal.failed('replace-node', error, { node: node.id }));
    },

    close(): void {
      closed = true;
    },
  };
}

export type Replacement = ReturnType<typeof createReplacement>;
