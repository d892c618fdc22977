/**
 * Commands the operator sends to every node of the pool at once (a new cache config, a clear)
 * and the live status the dashboard shows per node. Each answers per node: one node that fails
 * does not fail the others, and its failure is in the answer, logged and counted.
 */
import type { NodeAdmin } from '../../clients/node-admin.ts';
import type { CacheConfig } from '../../core/cache-config.ts';
import type { NodeId } from '../../core/pool-map.ts';
import type { PoolStore } from '../../storage/pool-store.ts';
import type { Journal, Operation } from './journal.ts';
import type { PoolViews } from './views.ts';

export interface NodeResult {
  id: NodeId;
  ok: boolean;
  error?: string;
}

export interface NodeStatus {
  id: NodeId;
  address: string;
  state: string;
  healthy: boolean;
  items: number | null;
  bytes: number | null;
  capacity_bytes: number | null;
  hit_rate: number | null;
  regions: number[];
}

export interface EveryNodeDeps {
  views: PoolViews;
  admin: Pick<NodeAdmin, 'configure' | 'clear' | 'statistics'>;
  store: Pick<PoolStore, 'listNodes'>;
  journal: Journal;
}

/** A node's statistics must come within this, or the dashboard shows it as not answering. */
const STATUS_TIMEOUT_MS = 1000;

export function everyNode(deps: EveryNodeDeps) {
  const { views, admin, journal } = deps;

  async function onEach(
    operation: Operation,
    command: (url: string) => Promise<unknown>,
  ): Promise<NodeResult[]> {
    return Promise.all(
      views.map.nodes.map(async (id) => {
        try {
          await command(views.address(id) as string);
          return { id, ok: true };
        } catch (error) {
          journal.failed(operation, error, { node: id });
          return { id, ok: false, error: (error as Error).message };
        }
      }),
    );
  }

  return {
    configure: (config: CacheConfig) =>
      onEach('configure-node', (url) => admin.configure(url, config)),

    clear: () => onEach('clear-node', (url) => admin.clear(url)),

    /** Each node's live statistics (null fields for a node that does not answer). */
    async statuses(): Promise<NodeStatus[]> {
      const state = new Map((await deps.store.listNodes()).map((r) => [r.id, r.state]));
      const { map } = views;
      return Promise.all(
        map.nodes.map(async (id) => {
          const address = views.address(id) as string;
          const base = {
            id,
            address,
            state: state.get(id) ?? 'active',
            regions: map.owner.flatMap((owner, region) => (owner === id ? [region] : [])),
          };
          try {
            const s = await admin.statistics(address, STATUS_TIMEOUT_MS);
            const { items, bytes, capacity_bytes, hit_rate } = s;
            return { ...base, healthy: true, items, bytes, capacity_bytes, hit_rate };
          } catch {
            // Not a failure of the manager's: the dashboard shows the node as not answering.
            return {
              ...base,
              healthy: false,
              items: null,
              bytes: null,
              capacity_bytes: null,
              hit_rate: null,
            };
          }
        }),
      );
    },
  };
}
