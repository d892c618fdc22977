/**
 * The hop case's shape (how many images, how large, the pool) and its report: medians per side,
 * the targets as advisory checks, the every-read-a-hit checks, and the frontend's profile
 * over the load. Split from hop.ts, which sets the sides up and runs the load. Also the schedule
 * (warm-up, then rounds with the order flipped) and the wrk figures and notes that hop-floor
 * shares.
 */
import { join } from 'node:path';
import type { BenchCase, BenchContext, CaseResult, Check } from '../lib/case.ts';
import { fmt, median } from '../lib/compare.ts';
import { formatProfile, type ProfileWindow, summarizeProfile } from '../lib/cpuprofile.ts';
import type { PixpoolUp } from '../lib/pixpool.ts';
import type { CpuTime } from '../lib/processes.ts';
import type { WrkResult, WrkRun } from '../lib/wrk.ts';

export const KB = 1024;
export const KEYS = 2000;
export const IMAGE_BYTES = 100 * KB;
export const UPLOAD_CONCURRENCY = 8;
export const READ_CONCURRENCY = 8;
export const POOL_NODES = 4;
export const NODE_CAPACITY_MB = 64;
export const WARM_PASSES = 5;

/** One side, up and warm: its URL, the root of its process tree, and its origin's if it has one. */
export interface HopSide {
  label: string;
  baseUrl: string;
  pid: number;
  /** The nginx origin behind a cache or proxy; its CPU is reported apart. */
  origin: boolean;
  command: string;
  /** A pixpool side: its `up` (for the frontend's miss counter). */
  pixpool?: PixpoolUp;
}

export interface HopMeasurement {
  round: number;
  side: string;
  wrk: WrkResult;
  wrkCpuPct: number | undefined;
  /** Side tree CPU per response, µs. */
  cpuUs: number | undefined;
  /** pixpool only: the part of cpuUs spent in the up process (frontend, manager, autoscaler). */
  upCpuUs: number | undefined;
  /** The origin's CPU per response, µs (for sides with an origin). */
  originCpuUs: number | undefined;
  /** Requests the origin answered during the run (for sides with an origin). */
  originRequests: number | undefined;
  /** pixpool only: frontend cache misses during the run. */
  misses: number | undefined;
}

/** The frontend's --cpu-prof profile over the load (warm-ups and rounds of every side). */
export function frontendProfile(ctx: BenchContext, name: string, window: ProfileWindow) {
  const dir = ctx.settings.cpuProfDir;
  if (!dir || window.toUs === 0) return { notes: [] as string[], summaries: [] as unknown[] };
  const summary = summarizeProfile(join(dir, `${name}.cpuprofile`), 15, window);
  return {
    notes: [
      "The profile below is of pixpool's frontend process (the up process) under --cpu-prof, which slows it down, over the load only (every side's warm-up and rounds; the frontend idles during the others'): use it for where the time goes, not for the figures above. The cache nodes are not profiled.",
      ...formatProfile(summary),
    ],
    summaries: [summary],
  };
}

export const us = (n: number | undefined) => (n === undefined ? '–' : `${n.toFixed(1)} µs`);

/**
 * The hop cases' schedule: a warm-up of every side, then `rounds` rounds in which every side is
 * measured once, the order flipped every round (hop-uniform, hop-floor).
 */
export async function alternateSides<S extends { label: string }>(
  ctx: BenchContext,
  id: string,
  sides: S[],
  load: (side: S, durationSec: number) => Promise<unknown>,
  measure: (side: S, round: number) => Promise<void>,
): Promise<void> {
  const { settings } = ctx;
  if (settings.warmupSec > 0) {
    for (const side of sides) {
      ctx.log(`${id}: warming up ${side.label} (${settings.warmupSec} s)`);
      await load(side, settings.warmupSec);
    }
  }
  for (let round = 1; round <= settings.rounds; round++) {
    const order = round % 2 === 1 ? sides : [...sides].reverse();
    for (const side of order) await measure(side, round);
  }
}

/** CPU µs per request between two readings of a process (tree); undefined if either is missing. */
export function cpuUsPerRequest(
  before: CpuTime | undefined,
  after: CpuTime | undefined,
  requests: number,
): number | undefined {
  return before && after && requests > 0
    ? ((after.user + after.system - before.user - before.system) / requests) * 1e6
    : undefined;
}

/** wrk's CPU during a run, % of one CPU. */
export const wrkCpuPct = (run: WrkRun) =>
  run.cpu ? ((run.cpu.user + run.cpu.system) / run.wallSec) * 100 : undefined;

/** The median of values, or undefined if any is missing. */
export const optionalMedian = (values: (number | undefined)[]) =>
  values.every((v) => v !== undefined) ? median(values as number[]) : undefined;

/** One side's wrk figures over its rounds: medians, each column on its own. */
export function wrkMedians(mine: { wrk: WrkResult; wrkCpuPct: number | undefined }[]) {
  return {
    requestsPerSec: median(mine.map((m) => m.wrk.requestsPerSec)),
    p50Ms: median(mine.map((m) => m.wrk.latencyMs.p50)),
    p99Ms: median(mine.map((m) => m.wrk.latencyMs.p99)),
    wrkCpuPct: optionalMedian(mine.map((m) => m.wrkCpuPct)),
    requests: mine.reduce((sum, m) => sum + m.wrk.requests, 0),
    bytesPerResponse: median(mine.map((m) => m.wrk.bytesPerSec / m.wrk.requestsPerSec)),
    rounds: mine.map((m) => m.wrk.requestsPerSec),
  };
}

/** Notes on the load itself: wrk at its limit, answers not ~IMAGE_BYTES long, socket errors. */
export function loadNotes(
  summaries: { side: string; wrkCpuPct: number | undefined; bytesPerResponse: number }[],
  measurements: { side: string; round: number; wrk: WrkResult }[],
): string[] {
  const notes: string[] = [];
  for (const s of summaries) {
    if (s.wrkCpuPct !== undefined && s.wrkCpuPct >= 90) {
      notes.push(
        `${s.side}: wrk used ${fmt.pct(s.wrkCpuPct)} of a CPU (one thread): the load generator was the limit, so its req/s is a floor; its CPU per request still holds.`,
      );
    }
  }
  for (const s of summaries) {
    const overhead = s.bytesPerResponse - IMAGE_BYTES;
    if (overhead < -0.02 * IMAGE_BYTES || overhead > 2048 + 0.02 * IMAGE_BYTES) {
      notes.push(`${s.side}: ~${Math.round(s.bytesPerResponse)} bytes per response; check.`);
    }
  }
  for (const m of measurements) {
    const e = m.wrk.errors;
    if (e.connect + e.read + e.write + e.timeout > 0) {
      notes.push(
        `${m.side}, round ${m.round}: socket errors connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}.`,
      );
    }
  }
  return notes;
}

export function summarize(
  ctx: BenchContext,
  self: BenchCase,
  run: {
    sides: HopSide[];
    measurements: HopMeasurement[];
    notes: string[];
    fairness: string[];
    wrkCommand: string;
    profile: ReturnType<typeof frontendProfile>;
  },
): CaseResult {
  const { settings } = ctx;
  const summaries = run.sides.map((side) => {
    const mine = run.measurements.filter((m) => m.side === side.label);
    const cpuUs = optionalMedian(mine.map((m) => m.cpuUs));
    const originCpuUs = side.origin ? optionalMedian(mine.map((m) => m.originCpuUs)) : undefined;
    const totalCpuUs = optionalMedian(
      mine.map((m) =>
        m.cpuUs === undefined ? undefined : m.cpuUs + (side.origin ? (m.originCpuUs ?? 0) : 0),
      ),
    );
    const upCpuUs = optionalMedian(mine.map((m) => m.upCpuUs));
    const { requestsPerSec, p50Ms, p99Ms, wrkCpuPct, requests, bytesPerResponse, rounds } =
      wrkMedians(mine);
    return {
      side: side.label,
      command: side.command,
      requestsPerSec,
      p50Ms,
      p99Ms,
      cpuUs,
      upCpuUs,
      originCpuUs,
      totalCpuUs,
      wrkCpuPct,
      requests,
      originRequests: side.origin
        ? mine.reduce((sum, m) => sum + (m.originRequests ?? 0), 0)
        : undefined,
      misses: side.pixpool ? mine.reduce((s, m) => s + (m.misses ?? 0), 0) : undefined,
      bytesPerResponse,
      rounds,
    };
  });
  const find = (label: string) => summaries.find((s) => s.side === label);
  const pixpool = find('pixpool');
  const varnish = find('Varnish');
  const plainProxy = find('nginx reverse proxy (no cache)');
  const checks: Check[] = [];
  if (pixpool?.cpuUs !== undefined) {
    checks.push({
      name: 'pixpool whole-tree CPU per request, µs (median of rounds)',
      value: pixpool.cpuUs,
      target: '≤ 120',
      met: pixpool.cpuUs <= 120,
      advisory: true,
    });
  }
  for (const [peer, least] of [
    [varnish, 0.5],
    [plainProxy, 1],
  ] as const) {
    if (!pixpool || !peer) continue;
    const ratio = pixpool.requestsPerSec / peer.requestsPerSec;
    checks.push({
      name: `pixpool ÷ ${peer.side} req/s (ratio of medians)`,
      value: ratio,
      target: `≥ ${least.toFixed(1)}`,
      met: ratio >= least,
      advisory: true,
    });
  }
  // Not targets but the case's own premise: every measured read was a hit on every cache.
  for (const s of summaries) {
    const misses = s.misses;
    const fetched =
      s.originRequests !== undefined && s.side !== plainProxy?.side ? s.originRequests : undefined;
    const value = misses ?? fetched;
    if (value === undefined) continue;
    checks.push({
      name: `${s.side}: ${misses !== undefined ? 'frontend cache misses' : 'origin requests'} during the measured rounds`,
      value,
      target: '= 0',
      met: value === 0,
    });
  }
  for (const p of summaries) {
    if (p.upCpuUs === undefined || p.cpuUs === undefined) continue;
    run.notes.push(
      `${p.side}'s CPU per request by process (medians of rounds): the up process (frontend, manager, autoscaler) ${us(p.upCpuUs)}, the ${POOL_NODES} cache nodes together about ${us(p.cpuUs - p.upCpuUs)}.`,
    );
  }
  const before = find('pixpool (before)');
  if (pixpool?.cpuUs !== undefined && before?.cpuUs !== undefined) {
    const byRound = (label: string) => run.measurements.filter((m) => m.side === label);
    const ratios = byRound('pixpool').map((m, i) => {
      const b = byRound('pixpool (before)')[i];
      return m.cpuUs !== undefined && b?.cpuUs !== undefined ? m.cpuUs / b.cpuUs : Number.NaN;
    });
    run.notes.push(
      `pixpool ÷ pixpool (before), same rounds: CPU per request ${fmt.ratio(pixpool.cpuUs / before.cpuUs)} (by round ${ratios.map((r) => r.toFixed(2)).join(', ')}), req/s ${fmt.ratio(pixpool.requestsPerSec / before.requestsPerSec)}.`,
    );
  }
  run.notes.push(...loadNotes(summaries, run.measurements));
  const result: CaseResult = {
    id: self.id,
    title: self.title,
    fairness: [
      `pixpool: ${pixpool?.command ?? '(not started)'} — ./start.sh's defaults (embedded SQLite and object folder, near cache 64 MiB) but --workers 1, so the frontend is one process like each nginx peer's one worker; then POST /api/manager/config {"capacity":${NODE_CAPACITY_MB},"replacement_policy":"LRU"} and ${POOL_NODES - 1} × POST /api/manager/poolsize/manual {"change":"increase","wait":true}: ${POOL_NODES} nodes × ${NODE_CAPACITY_MB} MB. The ${KEYS.toLocaleString('en-US')} images were uploaded (${UPLOAD_CONCURRENCY} in flight) and read until each came from its node. CPU: the whole tree (up with frontend, manager and autoscaler; the ${POOL_NODES} node children).`,
      ...summaries.slice(1).map((s) => `${s.side}: ${s.command}.`),
      `Origin: one nginx static server (worker_processes 1, sendfile, Cache-Control max-age=86400 via expires 1d) holding the same ${KEYS.toLocaleString('en-US')} files at the same paths, behind Varnish, proxy_cache and the reverse proxy; only one side is under load at a time, so its CPU during a side's rounds is that side's origin cost ("origin CPU/req"; "total" adds it).`,
      ...run.fairness,
      "Both nginx proxies run with tcp_nopush off: with it on (Debian's default, and the other cases' nginx setting) proxy_cache answered ~1,600 req/s at a p50 of ~24 ms here, nearly every cached answer waiting out the client's delayed ACK; off, it served ~27,000 req/s in a separate try. The static origin keeps it on, as in the other cases; its p99 shows the same stall on a few % of answers.",
      `Load: ${run.wrkCommand} — a uniformly random key of the ${KEYS.toLocaleString('en-US')} per request (Lua, seeded per thread); same command for every side.`,
      `Nothing pinned: servers, origin and wrk share the machine's CPUs as the OS schedules them. ${settings.rounds} rounds of ${settings.durationSec} s per side after a ${settings.warmupSec} s warm-up each; sides alternate, order flipped every round; medians of the rounds, each column on its own.`,
    ],
    table: {
      head: [
        'side',
        'req/s',
        'p50',
        'p99',
        'CPU/req',
        'origin CPU/req',
        'total CPU/req',
        'wrk CPU',
        'req/s by round',
      ],
      rows: summaries.map((s) => [
        s.side,
        fmt.int(s.requestsPerSec),
        fmt.ms(s.p50Ms),
        fmt.ms(s.p99Ms),
        us(s.cpuUs),
        us(s.originCpuUs),
        us(s.totalCpuUs),
        fmt.pct(s.wrkCpuPct),
        s.rounds.map(fmt.int).join(' / '),
      ]),
    },
    checks,
    notes: run.notes,
    figures: {
      keys: KEYS,
      imageBytes: IMAGE_BYTES,
      poolNodes: POOL_NODES,
      nodeCapacityMb: NODE_CAPACITY_MB,
      wrkCommand: run.wrkCommand,
      sides: summaries,
      measurements: run.measurements,
    },
  };
  result.notes.push(...run.profile.notes);
  if (run.profile.summaries.length > 0) {
    result.figures = { ...(result.figures as object), profiles: run.profile.summaries };
  }
  return result;
}
