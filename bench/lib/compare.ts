/**
 * The A/B harness for "server X vs server Y under the same wrk load": checks both answer the same
 * bytes, warms each up, then alternates them over rounds (order flipped every round, so drift on
 * a noisy machine hits both), measuring wrk's figures plus the CPU time of the server and of wrk.
 * Reports medians per side and the ratio of the medians against a target.
 */
import { createHash } from 'node:crypto';
import type { BenchContext, CaseResult } from './case.ts';
import { treeCpuSeconds } from './processes.ts';
import { runWrk, type WrkResult } from './wrk.ts';

/** A server that is up and answers `url`. */
export interface HttpTarget {
  url: string;
  headers: Record<string, string>;
  /** Root of the server's process tree, for its CPU time. */
  pid: number;
  /** How it was started, for the report. */
  command: string;
  /** A wrk Lua script for this side's load (e.g. a POST, or a random key per request). */
  wrkScript?: string | undefined;
  /** Replaces the check that a GET of `url` answers exactly `body` (e.g. for a POST API). */
  verify?: (() => Promise<void>) | undefined;
  /** Bytes of this side's answer body when it is not `body` (for the size sanity note). */
  bodyBytes?: number | undefined;
  stop(): Promise<void>;
}

export interface HttpSide {
  label: string;
  start(ctx: BenchContext): Promise<HttpTarget>;
}

export interface HttpComparison {
  id: string;
  title: string;
  /** The side being judged (the numerator of the ratio). */
  subject: HttpSide;
  /** The reference (the denominator). */
  baseline: HttpSide;
  /** Both sides must answer 200 with exactly these bytes. */
  body: Uint8Array;
  /** subject req/s ÷ baseline req/s must reach this; undefined: reported, not judged. */
  minRatio?: number;
  /** The subject's p99 (median of rounds) must stay within this many times the baseline's. */
  maxP99Ratio?: number;
  /** The subject's p99 (median of rounds) must stay within this many ms. */
  maxP99Ms?: number;
  fairness: string[];
  /** Text that must not appear in reports (the shared secret). */
  redact?: string[];
}

export interface Measurement {
  round: number;
  side: string;
  wrk: WrkResult;
  /** Server process tree CPU use over the run, % of one CPU. */
  serverCpuPct: number | undefined;
  /** The part of serverCpuPct spent in the kernel (system time). */
  serverSystemPct: number | undefined;
  /** wrk's CPU use, % of one CPU. */
  wrkCpuPct: number | undefined;
  /** Server CPU time per response, µs: the cost of a request whoever limits the rate. */
  serverCpuUsPerRequest: number | undefined;
  /** Transferred bytes per response (body + headers), from Transfer/sec ÷ Requests/sec. */
  bytesPerResponse: number;
}

export interface SideSummary {
  side: string;
  command: string;
  requestsPerSec: number;
  /** MiB/s (wrk's "MB"). */
  mibPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPct: number | undefined;
  serverSystemPct: number | undefined;
  wrkCpuPct: number | undefined;
  serverCpuUsPerRequest: number | undefined;
  rounds: number[];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function verify(label: string, target: HttpTarget, body: Uint8Array): Promise<void> {
  const response = await fetch(target.url, { headers: target.headers });
  const got = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200) {
    throw new Error(`${label}: GET ${target.url} answered ${response.status}, not 200.`);
  }
  if (got.length !== body.length || sha256(got) !== sha256(body)) {
    throw new Error(
      `${label}: GET ${target.url} answered ${got.length} bytes that differ from the ${body.length} expected.`,
    );
  }
}

const MiB = 1024 * 1024;
export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  mib: (n: number) => (n / MiB).toFixed(1),
  ms: (n: number) => `${n.toFixed(2)} ms`,
  pct: (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n)}%`),
  ratio: (n: number) => n.toFixed(2),
};

export async function compareHttp(ctx: BenchContext, spec: HttpComparison): Promise<CaseResult> {
  const { settings, cpus, procs, tools } = ctx;
  const redact = (text: string) =>
    (spec.redact ?? []).reduce((t, secret) => t.replaceAll(secret, '<secret>'), text);
  const sides = [spec.subject, spec.baseline];
  const targets = new Map<string, HttpTarget>();
  const measurements: Measurement[] = [];
  let wrkCommand = '';
  try {
    for (const side of sides) {
      ctx.log(`${spec.id}: starting ${side.label}`);
      const target = await side.start(ctx);
      targets.set(side.label, target);
      await (target.verify ? target.verify() : verify(side.label, target, spec.body));
    }
    const load = (target: HttpTarget, durationSec: number) =>
      runWrk(procs, {
        wrk: tools.wrk,
        url: target.url,
        headers: target.headers,
        threads: settings.threads,
        connections: settings.connections,
        durationSec,
        cpus: cpus.load,
        script: target.wrkScript,
      });
    if (settings.warmupSec > 0) {
      for (const side of sides) {
        ctx.log(`${spec.id}: warming up ${side.label} (${settings.warmupSec} s)`);
        await load(targets.get(side.label) as HttpTarget, settings.warmupSec);
      }
    }
    for (let round = 1; round <= settings.rounds; round++) {
      const order = round % 2 === 1 ? sides : [...sides].reverse();
      for (const side of order) {
        const target = targets.get(side.label) as HttpTarget;
        const before = treeCpuSeconds(target.pid);
        const run = await load(target, settings.durationSec);
        const after = treeCpuSeconds(target.pid);
        wrkCommand = redact(run.command);
        const r = run.result;
        if (r.errors.non2xx3xx > 0) {
          throw new Error(
            `${side.label}: ${r.errors.non2xx3xx} of ${r.requests} responses were not 2xx/3xx; the figures would be meaningless.\n${run.output}`,
          );
        }
        const measurement: Measurement = {
          round,
          side: side.label,
          wrk: r,
          serverCpuPct:
            before && after
              ? ((after.user + after.system - before.user - before.system) / run.wallSec) * 100
              : undefined,
          serverSystemPct:
            before && after ? ((after.system - before.system) / run.wallSec) * 100 : undefined,
          wrkCpuPct: run.cpu ? ((run.cpu.user + run.cpu.system) / run.wallSec) * 100 : undefined,
          serverCpuUsPerRequest:
            before && after && r.requests > 0
              ? ((after.user + after.system - before.user - before.system) / r.requests) * 1e6
              : undefined,
          bytesPerResponse: r.requestsPerSec > 0 ? r.bytesPerSec / r.requestsPerSec : 0,
        };
        measurements.push(measurement);
        ctx.log(
          `${spec.id}: round ${round}/${settings.rounds} ${side.label.padEnd(10)} ` +
            `${fmt.int(r.requestsPerSec)} req/s  ${fmt.mib(r.bytesPerSec)} MiB/s  ` +
            `p50 ${fmt.ms(r.latencyMs.p50)}  p99 ${fmt.ms(r.latencyMs.p99)}  ` +
            `server CPU ${fmt.pct(measurement.serverCpuPct)}  wrk CPU ${fmt.pct(measurement.wrkCpuPct)}`,
        );
      }
    }
  } finally {
    for (const side of [...sides].reverse()) {
      const target = targets.get(side.label);
      if (target) {
        ctx.log(`${spec.id}: stopping ${side.label}`);
        await target.stop();
      }
    }
  }

  const summaries = sides.map((side): SideSummary => {
    const mine = measurements.filter((m) => m.side === side.label);
    const optionalMedian = (values: (number | undefined)[]) =>
      values.every((v) => v !== undefined) ? median(values as number[]) : undefined;
    return {
      side: side.label,
      command: redact(targets.get(side.label)?.command ?? ''),
      requestsPerSec: median(mine.map((m) => m.wrk.requestsPerSec)),
      mibPerSec: median(mine.map((m) => m.wrk.bytesPerSec)) / MiB,
      p50Ms: median(mine.map((m) => m.wrk.latencyMs.p50)),
      p99Ms: median(mine.map((m) => m.wrk.latencyMs.p99)),
      serverCpuPct: optionalMedian(mine.map((m) => m.serverCpuPct)),
      serverSystemPct: optionalMedian(mine.map((m) => m.serverSystemPct)),
      wrkCpuPct: optionalMedian(mine.map((m) => m.wrkCpuPct)),
      serverCpuUsPerRequest: optionalMedian(mine.map((m) => m.serverCpuUsPerRequest)),
      rounds: mine.map((m) => m.wrk.requestsPerSec),
    };
  });
  const [subject, baseline] = summaries as [SideSummary, SideSummary];
  const ratio = subject.requestsPerSec / baseline.requestsPerSec;
  const roundRatios = subject.rounds.map((rps, i) => rps / (baseline.rounds[i] ?? Number.NaN));
  // Requests per server CPU-second, subject ÷ baseline: the ratio were both servers CPU-bound.
  const cpuRatio =
    subject.serverCpuUsPerRequest !== undefined && baseline.serverCpuUsPerRequest !== undefined
      ? baseline.serverCpuUsPerRequest / subject.serverCpuUsPerRequest
      : undefined;

  const notes: string[] = [
    `ratio per round (same round, side by side): ${roundRatios.map(fmt.ratio).join(', ')}`,
    'Figures are medians over the rounds, each column on its own; MB/s are MiB/s as wrk reports them.',
    'server CPU: user+system time of the server process tree over the run, % of one CPU (in brackets: the kernel, system, part); wrk CPU likewise for wrk. CPU/req: server CPU time per response.',
  ];
  if (cpuRatio !== undefined) {
    notes.push(
      `requests per server CPU-second, ${subject.side} ÷ ${baseline.side}: ${fmt.ratio(cpuRatio)} (the throughput ratio to expect if both servers, not wrk, were the limit).`,
    );
  }
  for (const m of measurements) {
    const e = m.wrk.errors;
    const socketErrors = e.connect + e.read + e.write + e.timeout;
    if (socketErrors > 0) {
      notes.push(
        `${m.side}, round ${m.round}: socket errors connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}.`,
      );
    }
    const bodyBytes = targets.get(m.side)?.bodyBytes ?? spec.body.length;
    const overhead = m.bytesPerResponse - bodyBytes;
    if (overhead < -0.02 * bodyBytes || overhead > 2048 + 0.02 * bodyBytes) {
      notes.push(
        `${m.side}, round ${m.round}: ~${Math.round(m.bytesPerResponse)} bytes per response for a ${bodyBytes}-byte body; check what is served.`,
      );
    }
  }
  for (const s of summaries) {
    if (
      s.wrkCpuPct !== undefined &&
      s.serverCpuPct !== undefined &&
      s.wrkCpuPct >= 90 &&
      s.serverCpuPct < 85
    ) {
      notes.push(
        `${s.side}: wrk used ${fmt.pct(s.wrkCpuPct)} of its CPU while the server used ${fmt.pct(s.serverCpuPct)} of its own — the load generator, not ${s.side}, was the limit, so ${s.side}'s figure is a floor.`,
      );
    }
  }

  return {
    id: spec.id,
    title: spec.title,
    fairness: [
      ...spec.fairness,
      `Load: ${wrkCommand} (same command, same headers, both sides).`,
      cpus.description,
      `${settings.rounds} rounds of ${settings.durationSec} s per side after a ${settings.warmupSec} s warm-up each; the two sides alternate and the order flips every round.`,
    ],
    table: {
      head: [
        'side',
        'req/s',
        'MB/s',
        'p50',
        'p99',
        'server CPU (kernel)',
        'CPU/req',
        'wrk CPU',
        'req/s by round',
      ],
      rows: summaries.map((s) => [
        s.side,
        fmt.int(s.requestsPerSec),
        s.mibPerSec.toFixed(1),
        fmt.ms(s.p50Ms),
        fmt.ms(s.p99Ms),
        `${fmt.pct(s.serverCpuPct)} (${fmt.pct(s.serverSystemPct)})`,
        s.serverCpuUsPerRequest === undefined ? '–' : `${s.serverCpuUsPerRequest.toFixed(1)} µs`,
        fmt.pct(s.wrkCpuPct),
        s.rounds.map(fmt.int).join(' / '),
      ]),
    },
    checks: [
      ...(spec.minRatio === undefined
        ? []
        : [
            {
              name: `${subject.side} ÷ ${baseline.side} throughput (req/s, ratio of medians)`,
              value: ratio,
              target: `≥ ${spec.minRatio}`,
              met: ratio >= spec.minRatio,
            },
          ]),
      ...(spec.maxP99Ratio === undefined
        ? []
        : [
            {
              name: `${subject.side} p99 ÷ ${baseline.side} p99`,
              value: subject.p99Ms / baseline.p99Ms,
              target: `≤ ${spec.maxP99Ratio}`,
              met: subject.p99Ms / baseline.p99Ms <= spec.maxP99Ratio,
            },
          ]),
      ...(spec.maxP99Ms === undefined
        ? []
        : [
            {
              name: `${subject.side} p99, ms`,
              value: subject.p99Ms,
              target: `≤ ${spec.maxP99Ms}`,
              met: subject.p99Ms <= spec.maxP99Ms,
            },
          ]),
    ],
    notes,
    figures: {
      bodyBytes: spec.body.length,
      bodySha256: sha256(spec.body),
      wrkCommand,
      ratio,
      roundRatios,
      cpuRatio,
      minRatio: spec.minRatio,
      sides: summaries,
      measurements,
    },
  };
}
