/**
 * The local provider: cache nodes as `pixpool cache-node` child processes on free ports of this
 * host. A node that exits without being asked to is started again under the same id (its
 * content is lost, its place in the pool kept) and the manager is told its new URL.
 */
import { type ChildService, startChildService } from '../../process/child-service.ts';
import type { NodeProvider, ProvidedNode } from './provider.ts';

export interface LocalProviderOptions {
  secret: string | undefined;
  /** Where nodes publish their statistics. */
  managerUrl: string;
  /** Extra `pixpool cache-node` arguments (capacity, policy, log level). */
  args?: string[];
  log?: (message: string) => void;
}

export function createLocalProvider(options: LocalProviderOptions): NodeProvider {
  const children = new Map<string, ChildService>();
  const stopping = new Set<string>();
  const listeners: ((node: ProvidedNode) => void)[] = [];
  let closed = false;

  async function spawnNode(id: string): Promise<ProvidedNode> {
    const child = await startChildService({
      args: [
        'cache-node',
        '--port',
        '0',
        '--node-id',
        id,
        '--manager-url',
        options.managerUrl,
        '--log-level',
        'warn',
        ...(options.args ?? []),
      ],
      env: { PIXPOOL_SECRET: options.secret },
      label: `node ${id}`,
    });
    children.set(id, child);
    child.child.once('exit', (code, signal) => {
      if (children.get(id) !== child) return;
      children.delete(id);
      if (closed || stopping.has(id)) return;
      options.log?.(`node ${id} exited (${signal ?? code}); starting it again`);
      spawnNode(id).then(
        (node) => {
          for (const listener of listeners) listener(node);
        },
        (error) => options.log?.(`could not restart node ${id}: ${(error as Error).message}`),
      );
    });
    return { id, url: child.url };
  }

  return {
    name: 'local',
    start: (id) => {
      stopping.delete(id);
      return spawnNode(id);
    },
    async stop(id) {
      stopping.add(id);
      await children.get(id)?.stop();
      children.delete(id);
    },
    // Child processes do not outlive the manager that started them: start them all again.
    resume: (nodes) => Promise.all(nodes.map((n) => spawnNode(n.id).catch(() => undefined))),
    onReplaced: (listener) => {
      listeners.push(listener);
    },
    async close() {
      closed = true;
      await Promise.all([...children.values()].map((child) => child.stop()));
      children.clear();
    },
  };
}
