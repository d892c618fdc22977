/**
 * A node's way into and out of the pool, apart from the map: the provider starts it, the registry
 * records it, it must answer /health, and it gets the pool's cache config before it serves; on
 * the way out, the provider stops it and the registry says so. Used by resizes, by the start of
 * the pool and by the replacement of failed nodes.
 */
import type { NodeAdmin } from '../../clients/node-admin.ts';
import type { CacheConfig } from '../../core/cache-config.ts';
import type { Clock } from '../../core/clock.ts';
import type { NodeState, PoolStore } from '../../storage/pool-store.ts';
import type { NodeProvider, ProvidedNode } from '../providers/provider.ts';
import type { Journal } from './journal.ts';

export interface LifecycleDeps {
  provider: NodeProvider;
  admin: Pick<NodeAdmin, 'healthy' | 'configure'>;
  store: Pick<PoolStore, 'upsertNode' | 'setNodeState'>;
  /** The pool's cache config, as stored now. */
  cacheConfig: () => Promise<CacheConfig>;
  clock: Clock;
  journal: Journal;
  /** How long a started node has to answer /health, ms (default 20 s). */
  healthWaitMs?: number;
}

const HEALTH_POLL_MS = 200;

export function createNodeLifecycle(deps: LifecycleDeps) {
  const { provider, admin, store, clock, journal } = deps;
  const healthWaitMs = deps.healthWaitMs ?? 20_000;

  async function waitHealthy(url: string): Promise<void> {
    const deadline = clock.now() + healthWaitMs;
    while (!(await admin.healthy(url))) {
      if (clock.now() > deadline) {
        throw new Error(`node ${url} did not answer /health within ${healthWaitMs / 1000} s`);
      }
      await clock.sleep(HEALTH_POLL_MS);
    }
  }

  /** Records a node's state; a failure to is reported, not thrown (the registry is advisory). */
  async function setState(id: string, state: NodeState): Promise<void> {
    await store
      .setNodeState(id, state)
      .catch((error) => journal.failed('save-node-state', error, { node: id, state }));
  }

  const record = (node: ProvidedNode, state: NodeState) =>
    store.upsertNode({ id: node.id, address: node.url, state, provider: provider.name });

  return {
    record,
    setState,

    /** Pushes the pool's cache config to a node; throws when the node refuses it. */
    async configure(url: string): Promise<void> {
      await admin.configure(url, await deps.cacheConfig());
    },

    /**
     * Starts a node under `id`, waits until it answers and configures it. A node that does not
     * get that far is stopped and recorded as failed before the error is thrown.
     */
    async bringUp(id: string): Promise<ProvidedNode> {
      let node: ProvidedNode | undefined;
      try {
        node = await provider.start(id);
        await record(node, 'starting');
        await waitHealthy(node.url);
        await admin.configure(node.url, await deps.cacheConfig());
        return node;
      } catch (error) {
        await provider.stop(id).catch((e) => journal.failed('stop-node', e, { node: id }));
        if (node) await setState(id, 'failed');
        throw error;
      }
    },

    /**
     * Stops a node and records the state it ends in. Never throws: by then the node is out of
     * every view, so a node that would not stop is reported and left to the operator.
     */
    async stop(id: string, state: NodeState = 'stopped'): Promise<void> {
      try {
        await provider.stop(id);
      } catch (error) {
        journal.failed('stop-node', error, { node: id });
      }
      await setState(id, state);
    },
  };
}

export type NodeLifecycle = ReturnType<typeof createNodeLifecycle>;
