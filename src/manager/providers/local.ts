/**
 * The local provider: cache nodes as `pixpool cache-node` child processes on free ports of this
 * host. A node that exits without being asked to is started again under the same id (its
 * content is lost, its place in the pool kept) and the manager is told its new URL.
 *
 * The nodes are the pool's data plane, the manager only its control plane: a manager that is
 * killed (SIGKILL, a crash) leaves its nodes running, so frontends keep serving from them with
 * the last map. A manager restarted on the same database adopts every node that still answers
 * at its recorded address with its recorded id (same address, same cache, no new map version)
 * and starts only the missing ones, so a restart neither duplicates nor leaks node processes.
 * An adopted node is not our child: we cannot see it exit, so the manager's health checks
 * notice its death, and it is stopped by pid. A manager stopped gracefully (SIGTERM) stops
 * every node, adopted or not, and those still starting (a grow or a restart under way).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { isLoopback } from '../../http/listen.ts';
import { NO_TLS, type Tls } from '../../http/tls.ts';
import {
  type ChildService,
  processAlive,
  startChildService,
  stopChildProcess,
} from '../../process/child-service.ts';
import type { NodeProvider, ProvidedNode } from './provider.ts';

export interface LocalProviderOptions {
  secret: string | undefined;
  /** Where nodes publish their statistics. */
  managerUrl: string;
  /** Extra `pixpool cache-node` arguments (capacity, policy, log level). */
  args?: string[];
  log?: (message: string) => void;
  /**
   * The manager's TLS: its nodes are given the same files (so they serve HTTPS, and their URLs
   * say https), and their health is probed with its fetch.
   */
  tls?: Tls | undefined;
}

/** How long an adopted node gets to finish after SIGTERM before it is killed. */
const ADOPTED_STOP_GRACE_MS = 10_000;

/** The node that answers /health at `url`, if any (the endpoint is public). */
async function probe(
  url: string,
  fetch: typeof globalThis.fetch,
): Promise<{ node_id?: unknown; pid?: unknown } | undefined> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return response.ok
      ? ((await response.json()) as { node_id?: unknown; pid?: unknown })
      : undefined;
  } catch {
    return undefined; // nothing answers there: the node is not running
  }
}

/**
 * Whether a TCP connection to `url` is refused on this host: no socket listens on that port, so
 * no process of ours can answer there. A timeout or any other error proves nothing (a stopped
 * process keeps its listening socket; connections queue and time out).
 */
async function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  if (!isLoopback(host) || !port) return false;
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port), timeout: 1000 });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done(false));
    socket.once('timeout', () => done(false));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED'));
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function stopPid(pid: number, graceMs: number): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {} // gone already: what stopping it wanted
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      // A stopped (SIGSTOP) process dies of SIGKILL too; give the kernel a moment.
      for (let i = 0; i < 50 && processAlive(pid); i++) await sleep(100);
      return;
    }
    await sleep(100);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createLocalProvider(options: LocalProviderOptions): NodeProvider {
  const tls = options.tls ?? NO_TLS;
  const children = new Map<string, ChildService>();
  /** Node processes spawned that do not listen yet: close() must stop them too. */
  const starting = new Set<ChildProcess>();
  /** Nodes a previous manager started that outlived it: id → pid. */
  const adopted = new Map<string, number>();
  const stopping = new Set<string>();
  /** Restarts under way, so a replace() during one joins it instead of starting a second node. */
  const restarting = new Map<string, Promise<ProvidedNode>>();
  const replacedListeners: ((node: ProvidedNode) => void)[] = [];
  const failedListeners: ((id: string, reason: string) => void)[] = [];
  let closed = false;

  async function spawnNode(id: string): Promise<ProvidedNode> {
    let spawned: ChildProcess | undefined;
    const child = await startChildService({
      // A terminal's Ctrl-C reaches the manager only; it stops its nodes itself.
      ownProcessGroup: true,
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
      env: { PIXPOOL_SECRET: options.secret, ...tls.childEnv() },
      label: `node ${id}`,
      onSpawn: (process) => {
        spawned = process;
        starting.add(process);
      },
    }).finally(() => spawned && starting.delete(spawned));
    if (closed) {
      // close() ran while it started and did not see it listen: it must not outlive us.
      await child.stop();
      throw new Error(`the local provider closed while node ${id} started`);
    }
    children.set(id, child);
    child.child.once('exit', (code, signal) => {
      if (children.get(id) !== child) return;
      children.delete(id);
      if (closed || stopping.has(id)) return;
      const reason = `exited (${signal ?? code})`;
      options.log?.(`node ${id} ${reason}; starting it again`);
      for (const listener of failedListeners) listener(id, reason);
      restart(id).then(
        (node) => {
          for (const listener of replacedListeners) listener(node);
        },
        (error) => options.log?.(`could not restart node ${id}: ${(error as Error).message}`),
      );
    });
    return { id, url: child.url };
  }

  function restart(id: string): Promise<ProvidedNode> {
    if (closed)
      return Promise.reject(new Error(`the local provider is closed; node ${id} stays down`));
    let pending = restarting.get(id);
    if (!pending) {
      pending = spawnNode(id).finally(() => restarting.delete(id));
      restarting.set(id, pending);
    }
    return pending;
  }

  return {
    name: 'local',
    endsReplaced: true,
    start: (id) => {
      stopping.delete(id);
      return spawnNode(id);
    },
    async stop(id) {
      stopping.add(id);
      await restarting.get(id)?.catch(() => {}); // its failure is logged where it is started
      await children.get(id)?.stop();
      children.delete(id);
      const pid = adopted.get(id);
      adopted.delete(id);
      if (pid !== undefined) await stopPid(pid, ADOPTED_STOP_GRACE_MS);
    },
    async replace(id) {
      const pending = restarting.get(id);
      if (pending) return pending;
      // A node that failed its health checks may be hung (stopped, deadlocked): kill it, so it
      // can never come back beside its replacement with an old cache.
      const child = children.get(id);
      if (child) {
        children.delete(id); // its exit is ours: no automatic restart
        if (child.child.exitCode === null && child.child.signalCode === null) {
          const exited = once(child.child, 'exit');
          child.child.kill('SIGKILL');
          await exited;
        }
      }
      const pid = adopted.get(id);
      adopted.delete(id);
      if (pid !== undefined) await stopPid(pid, 0);
      options.log?.(`node ${id} failed its health checks; killed it, starting it again`);
      return restart(id);
    },
    // Nodes that outlived the previous manager are adopted; the others are started again.
    resume: (nodes) =>
      Promise.all(
        nodes.map(async (node) => {
          const health = node.url ? await probe(node.url, tls.fetch) : undefined;
          if (health?.node_id === node.id && typeof health.pid === 'number') {
            adopted.set(node.id, health.pid);
            options.log?.(`node ${node.id} still runs at ${node.url} (pid ${health.pid}): adopted`);
            return node;
          }
          return spawnNode(node.id).catch((error) => {
            options.log?.(`node ${node.id} could not be started again: ${error.message}`);
            return undefined;
          });
        }),
      ),
    isGone: refused,
    onFailed: (listener) => {
      failedListeners.push(listener);
    },
    onReplaced: (listener) => {
      replacedListeners.push(listener);
    },
    killNow() {
      closed = true;
      const pids = [
        ...[...starting].map((child) => child.pid),
        ...[...children.values()].map((child) => child.child.pid),
        ...adopted.values(),
      ];
      for (const pid of pids) {
        try {
          if (pid !== undefined) process.kill(pid, 'SIGKILL');
        } catch {} // gone already
      }
    },
    async close() {
      closed = true;
      await Promise.all([
        ...[...starting].map((child) => stopChildProcess(child)),
        ...[...children.values()].map((child) => child.stop()),
        ...[...adopted.values()].map((pid) => stopPid(pid, ADOPTED_STOP_GRACE_MS)),
      ]);
      await Promise.allSettled([...restarting.values()]);
      children.clear();
      adopted.clear();
    },
  };
}
