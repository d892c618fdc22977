/**
 * The bounded soak (issue 8): the whole system as `pixpool up` runs it on embedded storage, under
 * a fixed rate of mixed fetches and uploads for 10 minutes, with a pool resize every minute.
 * Passes when no request failed or came back wrong, the memory of every long-lived process stayed
 * flat and the fetch p99 did not drift. Long, so it runs only when named:
 * `npm run bench -- --case soak` (`--soak-minutes` is not a flag: set SOAK_MINUTES for a short
 * trial run; the recorded figures are from the full 10).
 *
 * Load: bench/soak-client.ts (open loop, pinned to the load CPU); the `up` tree is pinned to the
 * server CPU. Resizes: POST /api/manager/poolsize/manual {"change": …, "wait": true} on the
 * manager that `up` hosts, walking the pool 1 → 2 → 3 → 4 → 3 → 2 → 3 → 2 → 1 → 2 nodes. Memory:
 * every process of the `up` tree is sampled each window; the frontend's own process (which also
 * hosts the manager) is the one that lives the whole run, so "flat" is judged on it. Cache nodes
 * come and go with the resizes; their RSS is reported, not judged.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BenchCase, BenchContext, CaseResult } from '../lib/case.ts';
import { fmt, median } from '../lib/compare.ts';
import { startPixpoolUp } from '../lib/pixpool.ts';
import { treeMemory } from '../lib/processes.ts';
import type { SoakClientOptions, SoakWindow } from '../soak-client.ts';

const MINUTE_MS = 60_000;
/** The pool size after each minute's resize. */
const WALK = [2, 3, 4, 3, 2, 3, 2, 1, 2, 3];

interface Resize {
  atSec: number;
  to: number;
  ms: number;
  ok: boolean;
  message?: string;
}

interface MemorySample {
  atSec: number;
  frontendMiB: number;
  nodesMiB: number[];
  otherMiB: number;
}

export const soak: BenchCase = {
  id: 'soak',
  title: 'Soak: 10 minutes of fixed-rate fetches and uploads with a pool resize every minute',
  optIn: true,
  run: runSoak,
};

async function runSoak(ctx: BenchContext): Promise<CaseResult> {
  const minutes = Number(process.env.SOAK_MINUTES ?? 10);
  if (!Number.isFinite(minutes) || minutes < 1) throw new Error('SOAK_MINUTES must be ≥ 1.');
  const client: Omit<SoakClientOptions, 'baseUrl'> = {
    durationSec: minutes * 60,
    windowSec: 10,
    fetchRate: 600,
    uploadRate: 15,
    keys: 2000,
    sizeBytes: 100 * 1024,
    maxInFlight: 256,
    skew: 0.9,
  };
  const up = await startPixpoolUp(ctx.procs, {
    root: ctx.root,
    dataDir: join(ctx.tmp, 'soak'),
    secret: randomBytes(16).toString('hex'),
    cpus: ctx.cpus.server,
    logFile: join(ctx.tmp, 'soak-up.log'),
    name: 'pixpool up (soak)',
  });
  const managerUrl = up.managerUrl;
  if (!managerUrl) throw new Error('`pixpool up` did not print the manager URL.');
  ctx.log(`soak: ${minutes} min at ${client.fetchRate} fetches/s + ${client.uploadRate} uploads/s`);

  const load = ctx.procs.spawn(
    'soak client',
    process.execPath,
    [
      '--import',
      'tsx',
      join('bench', 'soak-client.ts'),
      JSON.stringify({ ...client, baseUrl: up.baseUrl }),
    ],
    { cwd: ctx.root, cpus: ctx.cpus.load },
  );

  // The clock starts when the client's prefill is done: its first window line is 10 s later.
  const memory: MemorySample[] = [];
  const resizes: Resize[] = [];
  let startedAt: number | undefined;
  let windowsSeen = 0;
  const sampleMemory = () => {
    const procs = treeMemory(up.child.pid);
    const frontend = procs.find((p) => p.pid === up.child.pid);
    const nodes = procs.filter((p) => / cache-node /.test(` ${p.command} `));
    memory.push({
      atSec: startedAt === undefined ? 0 : (performance.now() - startedAt) / 1000,
      frontendMiB: frontend?.rssMiB ?? Number.NaN,
      nodesMiB: nodes.map((p) => p.rssMiB),
      otherMiB: procs
        .filter((p) => p !== frontend && !nodes.includes(p))
        .reduce((sum, p) => sum + p.rssMiB, 0),
    });
  };
  const resize = async (to: number, current: number) => {
    const t0 = performance.now();
    const change = to > current ? 'increase' : 'decrease';
    try {
      const response = await fetch(`${managerUrl}/api/manager/poolsize/manual`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ change, wait: true }),
      });
      const text = await response.text();
      resizes.push({
        atSec: startedAt === undefined ? 0 : (t0 - startedAt) / 1000,
        to,
        ms: performance.now() - t0,
        ok: response.status === 200 && text.includes('"success":"true"'),
        ...(response.status !== 200 && { message: text.slice(0, 300) }),
      });
    } catch (error) {
      resizes.push({ atSec: 0, to, ms: performance.now() - t0, ok: false, message: String(error) });
    }
  };

  let size = 1;
  while (!load.done()) {
    await new Promise((r) => setTimeout(r, 500));
    const lines = load
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{"window"')).length;
    if (startedAt === undefined && lines > 0) startedAt = performance.now() - 10_000;
    if (lines > windowsSeen) {
      windowsSeen = lines;
      sampleMemory();
    }
    if (startedAt === undefined) continue;
    const minute = Math.floor((performance.now() - startedAt) / MINUTE_MS);
    if (minute > resizes.length && minute < minutes && resizes.length < WALK.length) {
      const to = WALK[resizes.length] as number;
      await resize(to, size);
      size = to;
    }
  }
  const code = await load.exited;
  if (code !== 0) throw new Error(`the soak client exited with ${code}:\n${load.tail()}`);
  await up.stop();

  const windows = load
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{"window"'))
    .map((l) => (JSON.parse(l) as { window: SoakWindow }).window);
  const sum = (pick: (w: SoakWindow) => number) => windows.reduce((s, w) => s + pick(w), 0);
  const totals = {
    fetches: sum((w) => w.fetches),
    fetchErrors: sum((w) => w.fetchErrors),
    wrong: sum((w) => w.wrong),
    uploads: sum((w) => w.uploads),
    uploadErrors: sum((w) => w.uploadErrors),
    skipped: sum((w) => w.skipped),
  };
  const firstErrors = windows.flatMap((w) => (w.firstError ? [`${w.t} s: ${w.firstError}`] : []));

  // Per minute: p99 = the median of the minute's six window p99s (a window is 10 s).
  const perMinute = Array.from({ length: minutes }, (_, m) => {
    const ws = windows.filter((w) => w.t > m * 60 && w.t <= (m + 1) * 60);
    const mem = memory.filter((s) => s.atSec > m * 60 && s.atSec <= (m + 1) * 60);
    return {
      minute: m + 1,
      fetches: ws.reduce((s, w) => s + w.fetches, 0),
      errors: ws.reduce((s, w) => s + w.fetchErrors + w.uploadErrors + w.wrong, 0),
      uploads: ws.reduce((s, w) => s + w.uploads, 0),
      fetchP50: median(ws.map((w) => w.fetchMs.p50)),
      fetchP99: median(ws.map((w) => w.fetchMs.p99)),
      fetchMax: Math.max(...ws.map((w) => w.fetchMs.max)),
      uploadP99: median(ws.map((w) => w.uploadMs.p99)),
      cacheShare: median(ws.map((w) => w.cacheShare)),
      frontendMiB: Math.max(...mem.map((s) => s.frontendMiB)),
      nodesMiB: Math.max(...mem.map((s) => s.nodesMiB.reduce((a, b) => a + b, 0))),
      nodes: Math.max(...mem.map((s) => s.nodesMiB.length)),
      resize: resizes.find((r) => r.atSec > m * 60 - 5 && r.atSec <= (m + 1) * 60 - 5),
    };
  });

  // Flat memory: the frontend's peak RSS in the last minute vs in minute 2 (minute 1 warms up).
  const early = perMinute[Math.min(1, minutes - 1)]?.frontendMiB ?? Number.NaN;
  const late = perMinute.at(-1)?.frontendMiB ?? Number.NaN;
  const p99Early = perMinute[Math.min(1, minutes - 1)]?.fetchP99 ?? Number.NaN;
  const p99Late = median(perMinute.slice(-3).map((m) => m.fetchP99));
  const failedResizes = resizes.filter((r) => !r.ok);

  return {
    id: soak.id,
    title: soak.title,
    fairness: [
      ctx.cpus.description,
      `Open-loop load at a fixed rate (${client.fetchRate} fetches/s with Zipf(${client.skew}) keys, ${client.uploadRate} uploads/s of distinct bytes, ${client.keys} keys of ${client.sizeBytes / 1024} KB, all uploaded once before the clock starts); past ${client.maxInFlight} requests in flight a due request is skipped and counted.`,
      'Every fetch is checked: status 200, the whole size, the bytes of the key asked for, and not older than the newest upload of that key acknowledged before the fetch began.',
    ],
    table: {
      head: [
        'minute',
        'pool',
        'fetches',
        'uploads',
        'errors',
        'fetch p50',
        'fetch p99',
        'fetch max',
        'upload p99',
        'from cache',
        'frontend RSS',
        'nodes RSS',
        'resize',
      ],
      rows: perMinute.map((m) => [
        String(m.minute),
        String(m.nodes),
        fmt.int(m.fetches),
        fmt.int(m.uploads),
        fmt.int(m.errors),
        fmt.ms(m.fetchP50),
        fmt.ms(m.fetchP99),
        fmt.ms(m.fetchMax),
        fmt.ms(m.uploadP99),
        fmt.pct(m.cacheShare * 100),
        `${m.frontendMiB.toFixed(0)} MiB`,
        `${m.nodesMiB.toFixed(0)} MiB`,
        m.resize
          ? `→ ${m.resize.to} in ${fmt.int(m.resize.ms)} ms${m.resize.ok ? '' : ' FAILED'}`
          : '–',
      ]),
    },
    checks: [
      {
        name: 'failed or wrong requests',
        value: totals.fetchErrors + totals.uploadErrors + totals.wrong,
        target: '= 0',
        met: totals.fetchErrors + totals.uploadErrors + totals.wrong === 0,
      },
      {
        name: 'requests skipped (the server fell behind the fixed rate)',
        value: totals.skipped,
        target: '= 0',
        met: totals.skipped === 0,
      },
      {
        name: 'failed resizes',
        value: failedResizes.length,
        target: '= 0',
        met: failedResizes.length === 0,
      },
      {
        name: 'frontend RSS, last minute ÷ minute 2 (peaks)',
        value: late / early,
        target: '≤ 1.10',
        met: late / early <= 1.1,
      },
      {
        name: 'fetch p99, last 3 minutes ÷ minute 2 (medians of 10 s windows)',
        value: p99Late / p99Early,
        target: '≤ 1.5',
        met: p99Late / p99Early <= 1.5,
      },
    ],
    notes: [
      `Totals: ${fmt.int(totals.fetches)} fetches, ${fmt.int(totals.uploads)} uploads, ${totals.fetchErrors} fetch errors, ${totals.uploadErrors} upload errors, ${totals.wrong} wrong answers, ${totals.skipped} skipped; ${resizes.length} resizes (${failedResizes.length} failed).`,
      `Frontend (+ manager) RSS peak per minute: ${perMinute.map((m) => m.frontendMiB.toFixed(0)).join(', ')} MiB.`,
      ...firstErrors.slice(0, 5).map((e) => `First error of a window: ${e}`),
      ...failedResizes.map((r) => `Resize to ${r.to} failed: ${r.message ?? ''}`),
    ],
    figures: { client, minutes, totals, perMinute, resizes, memory, windows },
  };
}
