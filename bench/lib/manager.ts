/**
 * The manager as a benchmark peer: `bin/pixpool.js manager` (embedded storage in a data dir of
 * its own, the local provider: it starts its cache nodes as child processes, which inherit its
 * CPU affinity) on this very Node binary, ready once it prints "manager listening on <url>".
 * Plus the API calls the hand-over case needs, and the time each of its nodes printed that it
 * listens (seen in the manager's output, where the local provider passes its nodes' lines on).
 */
import { join } from 'node:path';
import { cliEnv } from './pixpool.ts';
import { type Child, freePort, type ProcessGroup, waitForOutput } from './processes.ts';

export interface ManagerPeerOptions {
  /** Project root (where bin/pixpool.js is). */
  root: string;
  /** --data-dir: the embedded database (the pool's registry) and object folder. */
  dataDir: string;
  /** The pool's shared secret; in the environment, so it stays out of ps and reports. */
  secret: string;
  cpus?: string | undefined;
  logFile?: string;
  /** More environment for the manager, and so for the nodes it starts (e.g. NODE_OPTIONS). */
  env?: Record<string, string>;
}

/** The `details` of a finished resize event (src/manager/pool.ts, report()). */
export interface ResizeDetails {
  from: number;
  to: number;
  mapVersion: number;
  minimumRegions: number;
  cachedBytes: number;
  regions: number;
  entries: number;
  bytes: number;
  failed: string[];
  ms: number;
}

export interface PoolViewAnswer {
  map: { version: number; owner: string[]; nodes: string[] };
  addresses: Record<string, string>;
}

export interface NodeStatus {
  id: string;
  address: string;
  healthy: boolean;
  items: number | null;
  bytes: number | null;
  capacity_bytes: number | null;
  regions: number[];
}

export interface ManagerPeer {
  child: Child;
  baseUrl: string;
  command: string;
  /** POST /api/manager/poolsize/manual {change, wait: true}: answers once the resize is done. */
  resize(change: 'increase' | 'decrease'): Promise<{ target_size: number }>;
  /** POST /api/manager/config; throws unless every node took it. */
  configure(capacityMb: number, policy: string): Promise<void>;
  /** GET /api/manager/pool_view (internal: the shared secret). */
  poolView(): Promise<PoolViewAnswer>;
  /** The dashboard's per-node statistics (items, bytes, regions). */
  nodes(): Promise<NodeStatus[]>;
  /** The newest finished resize event whose details say it went to `to` nodes. */
  resizeEvent(to: number): Promise<{ at: string; message: string; details: ResizeDetails }>;
  /** performance.now() when node `id`'s "listening" line reached the runner, if it did. */
  nodeListeningAt(id: string): number | undefined;
  stop(): Promise<number>;
}

export async function startManagerPeer(
  group: ProcessGroup,
  options: ManagerPeerOptions,
): Promise<ManagerPeer> {
  const port = await freePort();
  const args = [
    join('bin', 'pixpool.js'),
    'manager',
    '--port',
    String(port),
    '--data-dir',
    options.dataDir,
    '--log-level',
    'warn',
  ];
  const child = group.spawn('pixpool manager', process.execPath, args, {
    cwd: options.root,
    env: cliEnv({ ...options.env, PIXPOOL_SECRET: options.secret }),
    cpus: options.cpus,
    ...(options.logFile !== undefined && { logFile: options.logFile }),
  });
  // The local provider prefixes its nodes' output with "[node <id>] " on the manager's stderr.
  const listening = new Map<string, number>();
  let partial = '';
  const watch = (chunk: Buffer) => {
    const now = performance.now();
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const id = /^\[node ([^\]]+)\] cache node \S+ listening on /.exec(line)?.[1];
      if (id && !listening.has(id)) listening.set(id, now);
    }
  };
  child.process.stderr?.on('data', watch);
  child.process.stdout?.on('data', watch);
  const ready = await waitForOutput(child, /manager listening on (http:\/\/\S+)/, 120_000);
  const baseUrl = (ready[1] as string).replace(/\/$/, '');
  const secretHeader = { authorization: `Bearer ${options.secret}` };

  async function call<T>(method: string, path: string, body?: unknown, internal = false) {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(internal && secretHeader),
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (response.status !== 200) {
      throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`);
    }
    return JSON.parse(text) as T;
  }

  return {
    child,
    baseUrl,
    command: `PIXPOOL_SECRET=<secret> node ${args.join(' ')}`,
    async resize(change) {
      const answer = await call<{ content: { target_size: number } }>(
        'POST',
        '/api/manager/poolsize/manual',
        { change, wait: true },
      );
      return answer.content;
    },
    async configure(capacityMb, policy) {
      const answer = await call<{ content: { nodes: { id: string; ok: boolean }[] } }>(
        'POST',
        '/api/manager/config',
        { capacity: capacityMb, replacement_policy: policy },
      );
      const failed = answer.content.nodes.filter((n) => !n.ok);
      if (failed.length > 0) {
        throw new Error(`the cache config did not reach ${failed.map((n) => n.id).join(', ')}`);
      }
    },
    poolView: () => call<PoolViewAnswer>('GET', '/api/manager/pool_view', undefined, true),
    async nodes() {
      const answer = await call<{ content: { nodes: NodeStatus[] } }>(
        'GET',
        '/api/manager/dashboard',
      );
      return answer.content.nodes;
    },
    async resizeEvent(to) {
      const answer = await call<{
        content: { at: string; kind: string; message: string; details: unknown }[];
      }>('GET', '/api/manager/events?limit=5');
      const event = answer.content.find(
        (e) =>
          e.kind === 'resize' &&
          typeof e.details === 'object' &&
          e.details !== null &&
          (e.details as ResizeDetails).to === to &&
          typeof (e.details as ResizeDetails).ms === 'number',
      );
      if (!event) {
        throw new Error(
          `no finished resize to ${to} nodes among the last events: ${JSON.stringify(answer.content)}`,
        );
      }
      return { at: event.at, message: event.message, details: event.details as ResizeDetails };
    },
    nodeListeningAt: (id) => listening.get(id),
    // SIGTERM to the group: the manager closes and stops the nodes it started.
    stop: () => child.stop(15_000),
  };
}
