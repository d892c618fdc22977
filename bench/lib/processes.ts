/**
 * Child processes for the benchmark: every peer (cache node, nginx, wrk) is spawned through one
 * ProcessGroup, in a process group of its own, and killed when the run ends, on error, on Ctrl-C
 * or SIGTERM. Also: CPU pinning with taskset, free ports, readiness polling, and CPU time of a
 * process tree read from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const TAIL_BYTES = 16 * 1024;

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr here as well. */
  logFile?: string;
  /** CPU list for taskset (e.g. "0"); ignored when the group has no taskset. */
  cpus?: string | undefined;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or 128+signal) once the process has exited. */
  readonly exited: Promise<number>;
  /** Whether the process has exited. */
  readonly done: () => boolean;
  /** stdout and stderr, whole (they are only kept for short-lived children such as wrk). */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** The last few KB of stdout+stderr, for error messages. */
  readonly tail: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`, to the child's whole process group. */
  stop(graceMs?: number): Promise<number>;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export class ProcessGroup {
  readonly #children = new Set<Child>();
  #exitHooks: (() => void | Promise<void>)[] = [];
  #installed = false;

  /** `taskset` path when pinning is wanted and possible. */
  readonly taskset: string | undefined;
  constructor(taskset?: string) {
    this.taskset = taskset;
  }

  /**
   * Kill every child on exit, and on SIGINT/SIGTERM/SIGHUP stop them, run the exit hooks and
   * exit with 128+signal.
   */
  installExitHandlers(): void {
    if (this.#installed) return;
    this.#installed = true;
    process.on('exit', () => this.killAllNow());
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        process.stderr.write(`\n${signal}: stopping the benchmark's processes…\n`);
        void this.shutdown().finally(() => process.exit(128 + (SIGNALS[signal] ?? 0)));
      });
    }
  }

  /** Runs after all children are stopped (temp folder removal and such). */
  onShutdown(hook: () => void | Promise<void>): void {
    this.#exitHooks.push(hook);
  }

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Child {
    const pinned = options.cpus !== undefined && this.taskset !== undefined;
    const [file, argv] = pinned
      ? [this.taskset as string, ['-c', options.cpus as string, command, ...args]]
      : [command, args];
    const proc = spawn(file, argv, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own: Ctrl-C reaches only the runner, which then stops the group
      // (nginx's workers and bash's wrk included) with one kill(-pid).
      detached: true,
    });
    if (proc.pid === undefined) {
      throw new Error(`could not start ${name} (${file}): is it installed?`);
    }
    const pid = proc.pid;
    const log: WriteStream | undefined = options.logFile
      ? createWriteStream(options.logFile, { flags: 'a' })
      : undefined;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let tail = '';
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      into.push(chunk);
      log?.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    };
    proc.stdout?.on('data', collect(out));
    proc.stderr?.on('data', collect(err));
    let finished = false;
    const exited = new Promise<number>((resolve) => {
      proc.once('error', (error) => {
        tail += `\n${error.message}`;
        finished = true;
        this.#children.delete(child);
        resolve(127);
      });
      proc.once('close', (code, signal) => {
        finished = true;
        this.#children.delete(child);
        log?.end();
        resolve(code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0));
      });
    });
    const child: Child = {
      name,
      pid,
      process: proc,
      exited,
      done: () => finished,
      stdout: () => Buffer.concat(out).toString('utf8'),
      stderr: () => Buffer.concat(err).toString('utf8'),
      tail: () => tail,
      stop: async (graceMs = 5000) => {
        if (finished) return exited;
        killGroup(pid, 'SIGTERM');
        const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        // Anything the leader left behind in its group (e.g. nginx workers) goes too.
        killGroup(pid, 'SIGKILL');
        return code;
      },
    };
    this.#children.add(child);
    return child;
  }

  /** Stops every child still running, then runs the shutdown hooks once. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.#children].map((child) => child.stop()));
    const hooks = this.#exitHooks;
    this.#exitHooks = [];
    for (const hook of hooks) {
      try {
        await hook();
      } catch (error) {
        process.stderr.write(`shutdown: ${(error as Error).message}\n`);
      }
    }
  }

  /** Synchronous last resort (process 'exit'): SIGKILL every remaining group. */
  killAllNow(): void {
    for (const child of this.#children) killGroup(child.pid, 'SIGKILL');
    this.#children.clear();
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers `status`; fails early if `child` exits meanwhile. */
export async function waitForHttp(
  url: string,
  child: Child,
  { status = 200, timeoutMs = 30_000, headers = {} as Record<string, string> } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (child.done()) {
      throw new Error(`${child.name} exited before it was ready:\n${child.tail()}`);
    }
    try {
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === status) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${child.name} was not ready at ${url} within ${timeoutMs} ms (${last})`);
}

/** The CPUs this process may run on (Cpus_allowed_list), e.g. [0, 1]. */
export function allowedCpus(): number[] {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '';
    const cpus: number[] = [];
    for (const part of list.split(',')) {
      const [from, to] = part.split('-').map(Number);
      if (from === undefined || !Number.isInteger(from)) continue;
      for (let cpu = from; cpu <= (to ?? from); cpu++) cpus.push(cpu);
    }
    return cpus;
  } catch {
    return [];
  }
}

const CLOCK_TICKS = 100; // USER_HZ; 100 on every Linux architecture node runs on

export interface CpuTime {
  user: number;
  system: number;
}

/** User and system CPU seconds used so far by `pid` alone (all its threads); undefined once gone. */
export function processCpuSeconds(pid: number): CpuTime | undefined {
  try {
    const stat = readFileSync(join('/proc', String(pid), 'stat'), 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(rest[11]) / CLOCK_TICKS, system: Number(rest[12]) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/**
 * User and system CPU seconds used so far by `pid` and all its living descendants (nginx's
 * master and worker, node and its helper threads). Linux /proc only; undefined elsewhere.
 */
export function treeCpuSeconds(pid: number): CpuTime | undefined {
  const each = treeCpuByProcess(pid);
  if (!each) return undefined;
  const total = { user: 0, system: 0 };
  for (const cpu of each.values()) {
    total.user += cpu.user;
    total.system += cpu.system;
  }
  return total;
}

/** treeCpuSeconds summed over several trees (peers started apart); undefined if one is gone. */
export function treesCpuSeconds(pids: number[]): CpuTime | undefined {
  const total = { user: 0, system: 0 };
  for (const pid of pids) {
    const cpu = treeCpuSeconds(pid);
    if (!cpu) return undefined;
    total.user += cpu.user;
    total.system += cpu.system;
  }
  return total;
}

/** The CPU time of `pid` and of each of its descendants, by pid; undefined if `pid` is gone. */
export function treeCpuByProcess(pid: number): Map<number, CpuTime> | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const parent = new Map<number, number>();
  const ticks = new Map<number, [number, number]>();
  for (const name of entries) {
    try {
      const stat = readFileSync(join('/proc', name, 'stat'), 'utf8');
      // Fields after "(comm)": state ppid … utime(14) stime(15), numbered from 1 overall.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(rest[1]));
      ticks.set(Number(name), [Number(rest[11]), Number(rest[12])]);
    } catch {
      // exited while we were looking
    }
  }
  if (!ticks.has(pid)) return undefined;
  const each = new Map<number, CpuTime>();
  for (const [candidate, [user, system]] of ticks) {
    for (let p: number | undefined = candidate; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === pid) {
        each.set(candidate, { user: user / CLOCK_TICKS, system: system / CLOCK_TICKS });
        break;
      }
    }
  }
  return each;
}

/**
 * Waits until `child`'s stdout+stderr matches `pattern` and returns the match; fails early if
 * the child exits meanwhile, or after `timeoutMs`.
 */
export async function waitForOutput(
  child: Child,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(`${child.stdout()}\n${child.stderr()}`);
    if (match) return match;
    if (child.done()) {
      throw new Error(`${child.name} exited before printing ${pattern}:\n${child.tail()}`);
    }
    await sleep(100);
  }
  throw new Error(
    `${child.name} did not print ${pattern} within ${timeoutMs} ms:\n${child.tail()}`,
  );
}

export interface ProcessMemory {
  pid: number;
  /** The command line, shortened: enough to tell the frontend from a cache node. */
  command: string;
  rssMiB: number;
  /**
   * Proportional set size: resident memory with each shared page divided among the processes
   * that map it. RSS counts Node's own binary (tens of MB of shared text) once per process, so
   * summed over a tree of Node processes RSS overstates what the tree takes; PSS sums exactly.
   */
  pssMiB: number;
}

/** Resident memory of `pid` and each of its living descendants (Linux /proc; [] elsewhere). */
export function treeMemory(pid: number): ProcessMemory[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const parent = new Map<number, number>();
  for (const name of entries) {
    try {
      const stat = readFileSync(join('/proc', name, 'stat'), 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited while we were looking
    }
  }
  const inTree = (candidate: number) => {
    for (let p: number | undefined = candidate; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === pid) return true;
    }
    return false;
  };
  const out: ProcessMemory[] = [];
  for (const candidate of parent.keys()) {
    if (!inTree(candidate)) continue;
    try {
      const status = readFileSync(join('/proc', String(candidate), 'status'), 'utf8');
      const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
      const command = readFileSync(join('/proc', String(candidate), 'cmdline'), 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((part) => part.replace(/^.*\//, ''))
        .join(' ')
        .slice(0, 120);
      const rollup = readFileSync(join('/proc', String(candidate), 'smaps_rollup'), 'utf8');
      const pssKb = Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? Number.NaN);
      if (Number.isFinite(kb)) {
        out.push({ pid: candidate, command, rssMiB: kb / 1024, pssMiB: pssKb / 1024 });
      }
    } catch {
      // exited while we were looking
    }
  }
  return out;
}
