/**
 * The static provider: nodes started elsewhere (one per host, say), listed by URL. Growing
 * activates the next listed node that answers its health check; shrinking deactivates a node
 * (the manager has already handed its entries over; its content is cleared here).
 */
import type { NodeClient } from '../../clients/node-client.ts';
import { nodeUrl } from '../../clients/node-client.ts';
import type { NodeProvider, ProvidedNode } from './provider.ts';

export function createStaticProvider(options: { urls: string[]; nodes: NodeClient }): NodeProvider {
  const urls = options.urls.map(nodeUrl);
  const inUse = new Map<string, string>(); // id → url

  return {
    name: 'static',
    async start(id) {
      const used = new Set(inUse.values());
      for (const url of urls) {
        if (used.has(url)) continue;
        if (await options.nodes.healthy(url)) {
          inUse.set(id, url);
          return { id, url };
        }
      }
      throw new Error(
        `No listed node is free and healthy (${urls.length} listed, ${used.size} in the pool).`,
      );
    },
    async stop(id) {
      const url = inUse.get(id);
      inUse.delete(id);
      if (url) await options.nodes.command(url, 'DELETE', '/api/cache').catch(() => {});
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
