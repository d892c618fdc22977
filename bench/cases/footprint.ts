/**
 * Bench case `embedded-footprint` (issue 19): the embedded default as a new user meets it.
 * `./start.sh` on a data folder that already holds images, timed from the command to the
 * frontend's first 200 on GET /ready (which answers only once its database does), several
 * starts; then the whole tree's memory once it has sat idle, per process and summed, as RSS
 * (what `ps` shows) and PSS (shared pages divided among the processes that map them).
 * Unpinned, as users run it. Targets: start-up ≤ 3 s, idle tree ≤ 250 MB.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchCase, BenchContext, CaseResult, Check } from '../lib/case.ts';
import { fmt, median } from '../lib/compare.ts';
import { benchImage } from '../lib/multipart.ts';
import { cliEnv, startPixpoolUp, upFlags } from '../lib/pixpool.ts';
import {
  type Child,
  freePort,
  type ProcessMemory,
  treeMemory,
  waitForOutput,
} from '../lib/processes.ts';

const MB = 1_000_000;
const MiB = 1024 * 1024;
const STARTS = 5;
const IMAGES = 200;
/** How long the tree sits without requests before its memory is read. */
const IDLE_MS = 30_000;
const START_TARGET_MS = 3000;
const MEMORY_TARGET_MB = 250;

interface Setup {
  id: string;
  label: string;
  /** Flags after the data folder and ports. */
  args: string[];
}

// The default runs a frontend per core (two here); one worker is today's shape before issue 19.
const setups: Setup[] = [
  { id: 'default', label: './start.sh (defaults)', args: [] },
  { id: 'one-worker', label: './start.sh --workers 1', args: ['--workers', '1'] },
];

export const embeddedFootprint: BenchCase = {
  id: 'embedded-footprint',
  title: `Embedded default: ./start.sh start-up on a folder of ${IMAGES} images, and the idle tree's memory`,
  run: (ctx) => runFootprint(ctx, embeddedFootprint),
};

/** Milliseconds from spawning until GET /ready answers 200, polled every 20 ms. */
async function untilReady(child: Child, baseUrl: string, started: number): Promise<number> {
  for (;;) {
    if (child.done()) throw new Error(`start.sh exited before answering:\n${child.tail()}`);
    try {
      const response = await fetch(`${baseUrl}/ready`);
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    if (performance.now() - started > 60_000) {
      throw new Error(`start.sh did not answer on ${baseUrl}/ready within 60 s:\n${child.tail()}`);
    }
    await sleep(20);
  }
}

interface SetupResult {
  setup: Setup;
  startsMs: number[];
  memory: ProcessMemory[];
}

async function measureSetup(ctx: BenchContext, self: BenchCase, setup: Setup) {
  const secret = randomBytes(24).toString('base64url');
  const dataDir = join(ctx.tmp, `${self.id}-${setup.id}`);
  // A folder with images in it, written by the same code.
  const first = await startPixpoolUp(ctx.procs, {
    root: ctx.root,
    dataDir,
    secret,
    upArgs: setup.args,
    name: `pixpool up (${setup.id}, filling)`,
  });
  const image = benchImage(100 * 1024);
  for (let i = 0; i < IMAGES; i++) {
    image.writeUInt32BE(i, 8);
    await first.upload(`footprint-${i}`, image);
  }
  await first.stop();

  const startsMs: number[] = [];
  let memory: ProcessMemory[] = [];
  for (let start = 1; start <= STARTS; start++) {
    const port = await freePort();
    const args = [...(await upFlags(dataDir, port)), ...setup.args];
    const started = performance.now();
    const child = ctx.procs.spawn(`start.sh (${setup.id}, start ${start})`, './start.sh', args, {
      cwd: ctx.root,
      env: cliEnv({ PIXPOOL_SECRET: secret }),
    });
    const baseUrl = `http://127.0.0.1:${port}`;
    startsMs.push(await untilReady(child, baseUrl, started));
    // The data is really there: the last image written comes back whole.
    const response = await fetch(`${baseUrl}/images/footprint-${IMAGES - 1}`);
    const got = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200 || !got.equals(image)) {
      throw new Error(
        `after start ${start}, GET footprint-${IMAGES - 1} answered ${response.status}`,
      );
    }
    ctx.log(`${setup.id}: start ${start} answered after ${fmt.ms(startsMs.at(-1) as number)}`);
    // The frontend answers before `up` has started everything; a stop before that would be
    // another measurement.
    await waitForOutput(child, /pixpool is up/);
    if (start === STARTS) {
      await sleep(IDLE_MS);
      memory = treeMemory(child.pid);
      if (!memory.some((p) => p.command.includes('cache-node'))) {
        throw new Error(
          `no cache node in the tree of ${setup.id}: ${JSON.stringify(memory)}\n${child.tail()}`,
        );
      }
    }
    await child.stop(15_000);
  }
  return { setup, startsMs, memory } satisfies SetupResult;
}

async function runFootprint(ctx: BenchContext, self: BenchCase): Promise<CaseResult> {
  const results: SetupResult[] = [];
  for (const setup of setups) results.push(await measureSetup(ctx, self, setup));

  const sum = (m: ProcessMemory[], field: 'rssMiB' | 'pssMiB') =>
    m.reduce((total, p) => total + p[field], 0);
  const mb = (mib: number) => (mib * MiB) / MB;
  const checks: Check[] = [];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const { setup, startsMs, memory } of results) {
    const startMs = median(startsMs);
    const rss = mb(sum(memory, 'rssMiB'));
    const pss = mb(sum(memory, 'pssMiB'));
    rows.push([
      setup.label,
      fmt.ms(startMs),
      startsMs.map((ms) => fmt.ms(ms)).join(' '),
      String(memory.length),
      rss.toFixed(0),
      pss.toFixed(0),
    ]);
    checks.push(
      {
        name: `${setup.label}: start-up until the frontend answers, ms (median)`,
        value: startMs,
        target: `≤ ${START_TARGET_MS}`,
        met: startMs <= START_TARGET_MS,
      },
      {
        name: `${setup.label}: idle tree, summed RSS, MB`,
        value: rss,
        target: `≤ ${MEMORY_TARGET_MB}`,
        met: rss <= MEMORY_TARGET_MB,
      },
      {
        name: `${setup.label}: idle tree, summed PSS, MB`,
        value: pss,
        target: `≤ ${MEMORY_TARGET_MB}`,
        met: pss <= MEMORY_TARGET_MB,
      },
    );
    for (const p of memory) {
      notes.push(
        `${setup.label}: pid ${p.pid} RSS ${mb(p.rssMiB).toFixed(1)} MB, PSS ${mb(p.pssMiB).toFixed(1)} MB — ${p.command}`,
      );
    }
  }
  return {
    id: self.id,
    title: self.title,
    fairness: [
      `Each setup first fills a fresh data folder with ${IMAGES} distinct 100 KB images through POST /api/upload, stops, then is started ${STARTS} times with ./start.sh (installed already, so it execs pixpool up at once), unpinned, as a user runs it.`,
      'Start-up: from spawning ./start.sh to the first 200 of GET /ready on the frontend, polled every 20 ms; each start then reads back the last image.',
      `Memory: after the last start and ${IDLE_MS / 1000} s without requests, VmRSS and Pss (/proc/<pid>/smaps_rollup) of every process in the tree. MB = 1,000,000 bytes.`,
    ],
    table: {
      head: [
        'setup',
        'start-up (median)',
        'start-ups',
        'processes',
        'idle RSS, MB',
        'idle PSS, MB',
      ],
      rows,
    },
    checks,
    notes,
    figures: results.map(({ setup, startsMs, memory }) => ({ setup: setup.id, startsMs, memory })),
  };
}
