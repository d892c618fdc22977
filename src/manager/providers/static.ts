/**
 * The static provider: nodes started elsewhere (one per host, say), listed by URL. Growing
 * activates the next listed node that answers its health check; shrinking deactivates a node
 * (the manager has already handed its entries over; its content is cleared here).
 *
 * Nothing here can restart a listed node: one that fails the manager's health checks is replaced
 * by a free listed node that answers, under the same id; with none free, replace() rejects and
 * the manager takes the node out of the map. A node is emptied whenever it is activated, because
 * one that was hung and removed may come back holding entries that were replaced meanwhile.
 */
import type { NodeAdmin } from '../../clients/node-admin.ts';
import { nodeUrl } from '../../core/node-address.ts';
import type { NodeProvider, ProvidedNode } from './provider.ts';

export function createStaticProvider(options: {
  urls: string[];
  admin: Pick<NodeAdmin, 'healthy' | 'clear'>;
  log?: (message: string) => void;
}): NodeProvider {
  const urls = options.urls.map(nodeUrl);
  const inUse = new Map<string, string>(); // id → url

  /** The first listed node not in use that answers and lets itself be emptied. */
  async function activate(id: string, except?: string): Promise<ProvidedNode> {
    const used = new Set(inUse.values());
    for (const url of urls) {
      if (used.has(url) || url === except) continue;
      if (!(await options.admin.healthy(url))) continue;
      try {
        await options.admin.clear(url);
      } catch (error) {
        options.log?.(`listed node ${url} answers but cannot be emptied, skipped: ${error}`);
        continue;
      }
      inUse.set(id, url);
      return { id, url };
    }
    throw new Error(
      `No listed node is free and healthy (${urls.length} listed, ${used.size} in the pool).`,
    );
  }

  return {
    name: 'static',
    start: (id) => activate(id),
    async replace(id) {
      const failed = inUse.get(id);
      inUse.delete(id);
      try {
        return await activate(id, failed);
      } catch (error) {
        if (failed) inUse.set(id, failed);
        throw error;
      }
    },
    async stop(id) {
      const url = inUse.get(id);
      inUse.delete(id);
      if (url) await options.admin.clear(url);
    },
    async resume(nodes) {
      return nodes.map((node) => {
        if (!urls.includes(node.url)) return undefined;
        inUse.set(node.id, node.url);
        return node as ProvidedNode;
      });
    },
    onReplaced: () => {},
    async close() {},
  };
}
