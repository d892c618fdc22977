/**
 * A pixpool cache node as a benchmark peer: `bin/pixpool.js cache-node` on this very Node binary
 * (process.execPath; Node strips the TypeScript types itself), pinned like any peer, ready once
 * GET /health answers 200; plus the binary-API PUT that fills it.
 */
import { join } from 'node:path';
import { type Child, freePort, type ProcessGroup, waitForHttp } from './processes.ts';

export interface CacheNodeOptions {
  /** Project root (where bin/pixpool.js is). */
  root: string;
  secret: string;
  capacityMb?: number;
  policy?: string;
  cpus?: string | undefined;
  /** Extra flags for node itself, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  nodeFlags?: string[];
  logFile?: string;
  /** Extra environment for the node (e.g. MALLOC_ARENA_MAX), shown in `command`. */
  env?: Record<string, string>;
}

export interface CacheNode {
  child: Child;
  port: number;
  baseUrl: string;
  /** The command line, with the secret left out (it travels in the environment). */
  command: string;
  authorization: string;
  put(key: string, value: Uint8Array, contentType: string, version?: number): Promise<void>;
  stop(): Promise<number>;
}

export async function startCacheNode(
  group: ProcessGroup,
  options: CacheNodeOptions,
): Promise<CacheNode> {
  const port = await freePort();
  const args = [
    ...(options.nodeFlags ?? []),
    join('bin', 'pixpool.js'),
    'cache-node',
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--capacity',
    String(options.capacityMb ?? 256),
    '--policy',
    options.policy ?? 'LRU',
    '--log-level',
    'warn',
  ];
  const child = group.spawn('cache node', process.execPath, args, {
    cwd: options.root,
    env: { ...process.env, ...options.env, PIXPOOL_SECRET: options.secret },
    cpus: options.cpus,
    ...(options.logFile !== undefined && { logFile: options.logFile }),
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/health`, child, { timeoutMs: 60_000 });
  const authorization = `Bearer ${options.secret}`;
  return {
    child,
    port,
    baseUrl,
    command: [
      ...Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`),
      `PIXPOOL_SECRET=<secret> node ${args.join(' ')}`,
    ].join(' '),
    authorization,
    put: async (key, value, contentType, version = 1) => {
      const response = await fetch(`${baseUrl}/v1/entries/${encodeURIComponent(key)}`, {
        method: 'PUT',
        headers: {
          authorization,
          'content-type': contentType,
          'x-pixpool-version': String(version),
        },
        body: value,
      });
      const text = await response.text();
      if (response.status !== 204) {
        throw new Error(`PUT ${key} answered ${response.status}: ${text}`);
      }
    },
    // SIGTERM: the node closes gracefully (and writes its --cpu-prof profile, if asked).
    stop: () => child.stop(15_000),
  };
}
