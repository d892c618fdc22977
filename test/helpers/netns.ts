/**
 * Hosts for multi-host tests (issue 17), as Linux network namespaces: a bridge in the root
 * namespace with a random /24 out of 198.18.0.0/15 (RFC 2544's range for network tests), and one
 * namespace per host, joined to the bridge by a veth pair and given the next address. Real
 * `pixpool` processes run inside hosts (`ip netns exec`), and links are cut and healed with
 * blackhole routes, installed in both namespaces so a cut is symmetric.
 *
 * A blackhole route makes a new connection fail at once (connect: EINVAL) and a connection that
 * was open stall (its segments are dropped), like a link that went away. One-way cuts are not
 * offered: TCP needs both directions, so a route dropped one way breaks the connection both ways
 * and tests nothing a symmetric cut does not.
 *
 * Needs root; without it `createLab` throws, so the test fails and says why (no silent skip).
 *
 * Everything is named `ppx<run id>…` (interfaces have 15 characters at most): the bridge
 * `ppx<id>br`, whose alias names the pid of the test process that made it, the veths' root ends
 * `ppx<id>v<n>` and the namespaces `ppx<id>-<pid>-<host>`. Cleanup kills every process inside our
 * namespaces, then deletes them, the veths and the bridge: from the test's `after` hook, and
 * synchronously on exit and on SIGINT, SIGTERM and SIGHUP, so a failing or interrupted test
 * leaves nothing behind. A run killed outright (SIGKILL) leaves its namespaces: the next run
 * removes those whose owner pid is gone, and touches nothing else (no other prefix, no live run).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createWriteStream, existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { processAlive } from '../../src/process/child-service.ts';

const run = promisify(execFile);

/** The project's Node (24, from its devDependency) and the `pixpool` command, absolute paths. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROJECT_NODE = `${ROOT}node_modules/.bin/node`;
export const NODE = existsSync(PROJECT_NODE) ? realpathSync(PROJECT_NODE) : process.execPath;
export const PIXPOOL_BIN = `${ROOT}bin/pixpool.js`;

const PREFIX = 'ppx';
/** A namespace of ours: `ppx<id>-<owner pid>-<host>`. */
const NAMESPACE = /^ppx([0-9a-f]{4})-(\d+)-/;
/** An interface of ours: the bridge or a veth's end. */
const LINK = /^ppx([0-9a-f]{4})(br|v\d+|p\d+)$/;
const ALIAS = /^pixpool-netns pid=(\d+)$/;
/** A service's own line saying where it listens (as process/child-service.ts reads it). */
const LISTENING = /^(?!\[)[^\n]*?listening on (https?:\/\/[^\s"]+)/m;

/** Throws, saying what is needed, unless this process can build namespaces. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'The multi-host tests need root: they build hosts as network namespaces (ip netns, veth ' +
        'pairs on a bridge). Run them as root, e.g. `sudo -E env PATH=$PATH npm test`.',
    );
  }
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('The multi-host tests need iproute2 (`ip`), which is not installed.');
  }
}

function ipSync(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args, { encoding: 'utf8' })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (error as Error).message}`);
  }
}

const quietly = (action: () => unknown) => {
  try {
    action();
  } catch {}
};

function namespaces(): string[] {
  const out = ipSync(['-j', 'netns', 'list']).trim();
  return out ? (JSON.parse(out) as { name: string }[]).map((n) => n.name) : [];
}

function links(): { ifname: string; ifalias?: string }[] {
  return JSON.parse(ipSync(['-j', 'link', 'show'])) as { ifname: string; ifalias?: string }[];
}

/** SIGKILLs every process in namespace `ns` and waits (up to 2 s) until none is left. */
function killAllIn(ns: string): void {
  const pids = () => {
    try {
      return ipSync(['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const deadline = Date.now() + 2000;
  for (let left = pids(); left.length > 0 && Date.now() < deadline; left = pids()) {
    for (const pid of left) quietly(() => process.kill(pid, 'SIGKILL'));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

/**
 * Removes what crashed runs left: namespaces whose owner pid is gone, and interfaces of run ids
 * whose bridge is gone or names a dead owner. A bridge without our alias is left alone.
 */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  const all = links();
  const liveRuns = new Set<string>();
  const deadRuns = new Set<string>();
  for (const link of all) {
    const match = LINK.exec(link.ifname);
    if (match?.[2] !== 'br') continue;
    const owner = ALIAS.exec(link.ifalias ?? '');
    if (owner && !processAlive(Number(owner[1]))) deadRuns.add(match[1] as string);
    else liveRuns.add(match[1] as string);
  }
  for (const ns of namespaces()) {
    const match = NAMESPACE.exec(ns);
    if (!match || processAlive(Number(match[2]))) continue;
    killAllIn(ns);
    quietly(() => ipSync(['netns', 'delete', ns]));
    removed.push(`netns ${ns}`);
  }
  for (const link of all) {
    const match = LINK.exec(link.ifname);
    if (!match) continue;
    const id = match[1] as string;
    if (liveRuns.has(id) && !deadRuns.has(id)) continue;
    quietly(() => ipSync(['link', 'delete', link.ifname]));
    removed.push(`link ${link.ifname}`);
  }
  return removed;
}

export interface HostProcess {
  label: string;
  host: Host;
  pid: number;
  child: ChildProcess;
  /** The last ~20 KB it printed. */
  output(): string;
  /** Resolves when it exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface Host {
  name: string;
  /** The namespace's name. */
  ns: string;
  /** Its address on the bridge. */
  address: string;
  /** `http://<address>:<port>` */
  url(port: number): string;
  /** Runs `argv` inside this host (`ip netns exec`), its output kept (and echoed, or logged). */
  exec(argv: string[], options?: ExecOptions): HostProcess;
  /**
   * Runs `pixpool <args…>` inside this host on the project's Node, and resolves once it prints
   * that it listens (rejects with what it printed if it exits first or takes over 30 s).
   */
  pixpool(args: string[], options: ExecOptions): Promise<HostProcess>;
}

export interface ExecOptions {
  /** The environment (default: this process's). */
  env?: Record<string, string | undefined>;
  /** Names it in messages and echoed lines (default: the host's name). */
  label?: string;
  /** Pass its output through to stderr, prefixed with the label. */
  echo?: boolean;
  /** Append its output to this file too. */
  logFile?: string | undefined;
}

export interface Lab {
  id: string;
  bridge: string;
  /** The bridge's address in the root namespace: where this process (and its servers) listen. */
  gateway: string;
  hosts: Host[];
  addHost(name: string): Promise<Host>;
  /** Cuts the link between `a` and `b` (both ways); `'gateway'` is the root namespace. */
  cut(a: Host, b: Host | 'gateway'): Promise<void>;
  heal(a: Host, b: Host | 'gateway'): Promise<void>;
  /** Cuts `host` from every other host but `keep` (and the gateway unless `gateway: false`). */
  isolate(host: Host, keep?: Host[], options?: { keepGateway?: boolean }): Promise<void>;
  /** Heals every cut. */
  healAll(): Promise<void>;
  /** The blackhole routes in force, as `a ↛ b` (a cut is two of them, one each way). */
  cuts(): string[];
  /** Kills every process in our namespaces and deletes them, the veths and the bridge. */
  destroy(): void;
}

/** Builds the bridge for a new lab (after removing crashed runs' leftovers). */
export async function createLab(options: { log?: (line: string) => void } = {}): Promise<Lab> {
  requireRoot();
  const log = options.log ?? (() => {});
  const removed = removeLeftovers();
  if (removed.length > 0) log(`removed leftovers of crashed runs: ${removed.join(', ')}`);

  const id = randomBytes(2).toString('hex');
  const bridge = `${PREFIX}${id}br`;
  // A /24 no interface here uses yet (another run's, say): 198.18.0.0/15 has 512 of them.
  const used = ipSync(['-4', '-o', 'addr', 'show']);
  let subnet = '';
  for (let tries = 0; tries < 100 && !subnet; tries++) {
    const candidate = `198.${18 + randomInt(2)}.${randomInt(256)}`;
    if (!used.includes(` ${candidate}.`)) subnet = candidate;
  }
  if (!subnet) throw new Error('no free /24 in 198.18.0.0/15');
  const gateway = `${subnet}.1`;

  const hosts: Host[] = [];
  const made: string[] = [];
  const processes = new Set<HostProcess>();
  const cuts = new Map<string, [string, string]>(); // "ns>address" → [ns, address]
  let destroyed = false;

  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', destroy);
    for (const signal of SIGNALS) process.off(signal, onSignal);
    for (const ns of made) killAllIn(ns);
    for (const p of processes) quietly(() => p.child.kill('SIGKILL'));
    for (const ns of made) quietly(() => ipSync(['netns', 'delete', ns]));
    quietly(() => ipSync(['link', 'delete', bridge]));
    // The veths go with their namespaces; any that did not (a half-made host) go now.
    for (const link of links()) {
      if (link.ifname.startsWith(`${PREFIX}${id}`))
        quietly(() => ipSync(['link', 'delete', link.ifname]));
    }
  };
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (signal: NodeJS.Signals) => {
    destroy();
    process.kill(process.pid, signal); // our listeners are gone: the default action now
  };
  process.on('exit', destroy);
  for (const signal of SIGNALS) process.on(signal, onSignal);

  try {
    await ip(['link', 'add', 'name', bridge, 'type', 'bridge']);
    await ip(['link', 'set', bridge, 'alias', `pixpool-netns pid=${process.pid}`]);
    await ip(['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await ip(['link', 'set', bridge, 'up']);
  } catch (error) {
    destroy();
    throw error;
  }
  log(`bridge ${bridge} at ${gateway}/24`);

  const address = (peer: Host | 'gateway') => (peer === 'gateway' ? gateway : peer.address);

  async function blackhole(ns: string, target: string, add: boolean): Promise<void> {
    const key = `${ns}>${target}`;
    if (add === cuts.has(key)) return;
    await ip(['-n', ns, 'route', add ? 'add' : 'delete', 'blackhole', `${target}/32`]);
    if (add) cuts.set(key, [ns, target]);
    else cuts.delete(key);
  }

  async function link(a: Host, b: Host | 'gateway', add: boolean): Promise<void> {
    await blackhole(a.ns, address(b), add);
    // The root namespace keeps no routes of ours: its blackhole would cut the test's own client.
    // A host cut from the gateway cannot answer it anyway (its replies are dropped).
    if (b !== 'gateway') await blackhole(b.ns, a.address, add);
  }

  const lab: Lab = {
    id,
    bridge,
    gateway,
    hosts,
    async addHost(name) {
      if (!/^[a-z0-9-]{1,20}$/.test(name)) throw new TypeError(`odd host name ${name}`);
      const n = hosts.length;
      const ns = `${PREFIX}${id}-${process.pid}-${name}`;
      const outer = `${PREFIX}${id}v${n}`;
      const inner = `${PREFIX}${id}p${n}`;
      const hostAddress = `${subnet}.${10 + n}`;
      await ip(['netns', 'add', ns]);
      made.push(ns);
      await ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
      await ip(['link', 'set', inner, 'netns', ns]);
      await ip(['link', 'set', outer, 'master', bridge]);
      await ip(['link', 'set', outer, 'up']);
      await ip(['-n', ns, 'link', 'set', inner, 'name', 'eth0']);
      await ip(['-n', ns, 'addr', 'add', `${hostAddress}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      const host: Host = {
        name,
        ns,
        address: hostAddress,
        url: (port) => `http://${hostAddress}:${port}`,
        exec(argv, { env, label = name, echo = false, logFile } = {}) {
          const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
            env: env ?? process.env,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let tail = '';
          const file = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
          const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
            (resolve) =>
              child.once('exit', (code, signal) => {
                file?.end();
                resolve({ code, signal });
              }),
          );
          const started: HostProcess = {
            label,
            host,
            pid: child.pid as number,
            child,
            output: () => tail,
            exited,
            async kill(signal = 'SIGKILL') {
              if (child.exitCode !== null || child.signalCode !== null) return;
              child.kill(signal);
              await exited;
            },
          };
          processes.add(started);
          const onData = (chunk: Buffer) => {
            const text = chunk.toString();
            tail = (tail + text).slice(-20_000);
            file?.write(text);
            if (echo) process.stderr.write(text.replace(/^(?=.)/gm, `[${label}] `));
          };
          child.stdout.on('data', onData);
          child.stderr.on('data', onData);
          return started;
        },
        async pixpool(args, options) {
          const started = host.exec([NODE, PIXPOOL_BIN, ...args], options);
          const { child, label } = started;
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              child.kill('SIGKILL');
              reject(new Error(`${label} did not start within 30 s: ${started.output()}`));
            }, 30_000);
            const check = () => {
              if (!LISTENING.test(started.output())) return;
              clearTimeout(timer);
              child.stdout?.off('data', check);
              child.stderr?.off('data', check);
              resolve();
            };
            child.stdout?.on('data', check);
            child.stderr?.on('data', check);
            void started.exited.then(({ code, signal }) => {
              clearTimeout(timer);
              reject(
                new Error(
                  `${label} exited (${signal ?? code}) before it listened: ${started.output()}`,
                ),
              );
            });
          });
          return started;
        },
      };
      hosts.push(host);
      return host;
    },
    cut: (a, b) => link(a, b, true),
    heal: (a, b) => link(a, b, false),
    async isolate(host, keep = [], { keepGateway = true } = {}) {
      for (const other of hosts) {
        if (other !== host && !keep.includes(other)) await link(host, other, true);
      }
      if (!keepGateway) await link(host, 'gateway', true);
    },
    async healAll() {
      for (const [ns, target] of [...cuts.values()]) await blackhole(ns, target, false);
    },
    cuts() {
      const name = (ns: string) => hosts.find((h) => h.ns === ns)?.name ?? ns;
      const at = (address: string) =>
        address === gateway
          ? 'gateway'
          : (hosts.find((h) => h.address === address)?.name ?? address);
      return [...cuts.values()].map(([ns, target]) => `${name(ns)} ↛ ${at(target)}`);
    },
    destroy,
  };
  return lab;
}
