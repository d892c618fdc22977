/**
 * wrk, the HTTP load generator: run it (pinned to a CPU, with its own CPU time measured) and
 * parse its text report — Requests/sec, Transfer/sec, the --latency distribution, errors.
 */
import type { Child, CpuTime, ProcessGroup } from './processes.ts';

export interface WrkResult {
  requests: number;
  durationSec: number;
  requestsPerSec: number;
  /** Transfer/sec in bytes (wrk prints binary units: its "MB" is MiB). */
  bytesPerSec: number;
  /** Bytes read in total, as wrk rounds it (3 significant digits). */
  bytesRead: number;
  latencyMs: {
    avg: number;
    stdev: number;
    max: number;
    p50: number;
    p75: number;
    p90: number;
    p99: number;
  };
  errors: { connect: number; read: number; write: number; timeout: number; non2xx3xx: number };
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const BINARY_UNITS: Record<string, number> = {
  '': 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

/** "635.91us" → 0.63591 (ms). */
export function parseDurationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new Error(`wrk: cannot read the duration ${JSON.stringify(text)}`);
  return Number(match[1]) * (TIME_UNITS[match[2] as string] as number);
}

/** "170.58MB" → bytes (binary units, as wrk prints them). */
export function parseBytes(text: string): number {
  const match = /^([\d.]+)([KMGTP]?)B$/.exec(text.trim());
  if (!match) throw new Error(`wrk: cannot read the size ${JSON.stringify(text)}`);
  return Number(match[1]) * (BINARY_UNITS[match[2] as string] as number);
}

function need(output: string, pattern: RegExp, what: string): RegExpExecArray {
  const match = pattern.exec(output);
  if (!match) throw new Error(`wrk: no ${what} in its report:\n${output}`);
  return match;
}

/** Parses the report of `wrk --latency`. */
export function parseWrk(output: string): WrkResult {
  const latency = need(
    output,
    /^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s*$/m,
    'latency line (Thread Stats)',
  );
  const percentile = (p: number) =>
    parseDurationMs(
      need(output, new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, 'm'), `${p}% latency (--latency)`)[1] ??
        '',
    );
  const total = need(output, /^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read/m, 'totals');
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    output,
  );
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  return {
    requests: Number(total[1]),
    durationSec: parseDurationMs(total[2] ?? '') / 1000,
    bytesRead: parseBytes(total[3] ?? ''),
    requestsPerSec: Number(need(output, /^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]),
    bytesPerSec: parseBytes(need(output, /^Transfer\/sec:\s+(\S+)/m, 'Transfer/sec')[1] ?? ''),
    latencyMs: {
      avg: parseDurationMs(latency[1] ?? ''),
      stdev: parseDurationMs(latency[2] ?? ''),
      max: parseDurationMs(latency[3] ?? ''),
      p50: percentile(50),
      p75: percentile(75),
      p90: percentile(90),
      p99: percentile(99),
    },
    errors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
      non2xx3xx: Number(non2xx?.[1] ?? 0),
    },
  };
}

/** Parses bash's `times` (its second line: the children's user and system time). */
export function parseTimes(text: string): CpuTime | undefined {
  const lines = text.trim().split('\n');
  const children = lines.at(-1)?.trim().split(/\s+/) ?? [];
  if (children.length !== 2) return undefined;
  const [user, system] = children.map((field) => {
    const match = /^(\d+)m([\d.]+)s$/.exec(field);
    return match ? Number(match[1]) * 60 + Number(match[2]) : Number.NaN;
  });
  if (user === undefined || system === undefined || Number.isNaN(user + system)) return undefined;
  return { user, system };
}

export interface WrkOptions {
  wrk: string;
  url: string;
  headers?: Record<string, string>;
  threads: number;
  connections: number;
  durationSec: number;
  /** CPU list for taskset. */
  cpus?: string | undefined;
  /** Request timeout; wrk's default is 2 s. */
  timeoutSec?: number;
  /** A Lua script (wrk -s), e.g. to POST or to pick a random path per request. */
  script?: string | undefined;
}

export interface WrkRun {
  result: WrkResult;
  /** wrk's own CPU seconds (from bash's `times`), when available. */
  cpu: CpuTime | undefined;
  /** Wall-clock seconds from start to exit. */
  wallSec: number;
  command: string;
  output: string;
}

/** The wrk argument list, as it is run (and as it is shown in reports). */
export function wrkArgs(options: WrkOptions): string[] {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.durationSec}s`,
    '--latency',
  ];
  if (options.timeoutSec !== undefined) args.push('--timeout', `${options.timeoutSec}s`);
  if (options.script !== undefined) args.push('-s', options.script);
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    args.push('-H', `${name}: ${value}`);
  }
  args.push(options.url);
  return args;
}

/**
 * Runs wrk to completion. bash wraps it only to report wrk's CPU time (`times`) afterwards;
 * taskset (via the group) pins bash and therefore wrk.
 */
export async function runWrk(group: ProcessGroup, options: WrkOptions): Promise<WrkRun> {
  const args = wrkArgs(options);
  const script = '"$@"; status=$?; times >&2; exit $status';
  const started = performance.now();
  const child: Child = group.spawn('wrk', 'bash', ['-c', script, 'wrk', options.wrk, ...args], {
    cpus: options.cpus,
  });
  const code = await child.exited;
  const wallSec = (performance.now() - started) / 1000;
  const output = child.stdout();
  if (code !== 0) {
    throw new Error(`wrk exited with ${code}:\n${output}\n${child.stderr()}`);
  }
  return {
    result: parseWrk(output),
    cpu: parseTimes(child.stderr()),
    wallSec,
    command: ['wrk', ...args].map(shellQuote).join(' '),
    output,
  };
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
