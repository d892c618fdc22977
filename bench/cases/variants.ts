/**
 * Bench cases for image variants (issue 21), on `pixpool up` with its defaults:
 *
 * - `variant-hit`: a cached variant (a 256 px WebP of a photo-like JPEG) through the frontend vs
 *   nginx serving the same bytes as a static file, under the same wrk load (target ≥ 0.5×).
 * - `variant-miss`: MISS_KEYS distinct variant misses (one per key, each original already in the
 *   pool), CPU per miss of the whole `up` tree vs a bare sharp process making the same resizes at
 *   the same concurrency (target ≤ 1.3×, at every width and in the median); misses per second of
 *   both, and each side's CPU by process and thread kind. With --before, an earlier checkout's
 *   `up` makes the same misses in the same rounds.
 * - `variant-burst`: BURST distinct variant misses sent at once; the peak RSS of the `up` tree
 *   while they run, against its RSS before, with how many were answered and how many refused
 *   (503: the transform queue is full) — memory must stay bounded, not grow with the burst.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Agent, fetch as undiciFetch } from 'undici';
import type { BenchCase, BenchContext, CaseResult } from '../lib/case.ts';
import { compareHttp, fmt, type HttpTarget, median } from '../lib/compare.ts';
import { nginxBaseline, staticRoot } from '../lib/nginx.ts';
import { type PixpoolUp, startCaseUp, startPixpoolUp } from '../lib/pixpool.ts';
import { treeCpuSeconds, treeMemory, waitForOutput } from '../lib/processes.ts';
import { type ThreadCpu, threadCpuSeconds, threadCpuSince } from '../lib/threads.ts';

const MISS_KEYS = 200;
const MISS_CONCURRENCY = 2;
/** One width per round, so each round's variants are all misses. */
const MISS_WIDTHS = [256, 320, 480];
const BURST = 500;
const BURST_KEYS = 100;
const BURST_WIDTHS = [64, 128, 256, 320, 480];
const VARIANT = { width: 256, format: 'webp' } as const;

/** A photo-like JPEG (smooth gradient plus noise), 1280 × 960, different for each seed. */
async function photo(seed: number): Promise<Buffer> {
  const noise = await sharp({
    create: {
      width: 1280,
      height: 960,
      channels: 3,
      background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: (seed * 53) % 256 },
      noise: { type: 'gaussian', mean: 120, sigma: 25 },
    },
  })
    .jpeg({ quality: 85 })
    .toBuffer();
  return sharp(noise).blur(1.2).jpeg({ quality: 85 }).toBuffer();
}

const variantPath = (key: string, width: number = VARIANT.width) =>
  `/images/${key}?w=${width}&format=${VARIANT.format}`;

async function uploadAll(up: PixpoolUp, keys: string[], originals: Buffer[]) {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < keys.length) {
        const i = next++;
        await up.upload(keys[i] as string, originals[i] as Buffer);
      }
    }),
  );
}

/**
 * Waits until the `up` tree is idle (under 5% of a CPU over half a second, at most 20 s): after
 * hundreds of uploads the embedded database and the fills keep working for a while, and that
 * work must not be counted as the misses'.
 */
async function settled(up: PixpoolUp): Promise<void> {
  const total = () => {
    const t = treeCpuSeconds(up.child.pid);
    return t ? t.user + t.system : 0;
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const before = total();
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (total() - before < 0.025) return;
  }
}

/** GETs every original once, so a variant miss finds its original in the pool. */
async function warmOriginals(up: PixpoolUp, keys: string[]) {
  for (const key of keys) {
    const response = await fetch(`${up.baseUrl}/images/${key}`);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`GET /images/${key}: ${response.status}`);
  }
}

export const variantHit: BenchCase = {
  id: 'variant-hit',
  title: `Cached variant (${VARIANT.width} px ${VARIANT.format} of a 1280 × 960 JPEG) through the frontend vs nginx static file of the same bytes`,
  async run(ctx) {
    const secret = randomBytes(24).toString('base64url');
    const key = 'variant-hit';
    const original = await photo(1);
    let up: PixpoolUp | undefined;
    let body: Buffer | undefined;
    const path = variantPath(key);
    const subject = {
      label: 'pixpool variant',
      async start(): Promise<HttpTarget> {
        up = await startCaseUp(ctx, 'variant-hit', secret, 'variant-hit-up');
        await up.upload(key, original);
        return {
          url: `${up.baseUrl}${path}`,
          headers: {},
          pid: up.child.pid,
          command: up.command,
          stop: async () => {
            await up?.stop();
          },
        };
      },
    };
    // The variant's bytes, made once by pixpool: nginx serves exactly those.
    const made = await (async () => {
      const first = await subject.start();
      const response = await fetch(first.url);
      if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}`);
      body = Buffer.from(await response.arrayBuffer());
      return first;
    })();
    const www = staticRoot(ctx, 'variant-www', '/variant.webp', body as Buffer);
    return compareHttp(ctx, {
      id: 'variant-hit',
      title: variantHit.title,
      body: body as Buffer,
      minRatio: 0.5,
      redact: [secret],
      subject: { label: subject.label, start: async () => made },
      baseline: nginxBaseline(ctx, {
        prefix: 'variant-nginx',
        root: www,
        path: '/variant.webp',
        contentType: 'image/webp',
        headers: {},
      }),
      fairness: [
        'Both sides send the same variant bytes (made by pixpool once, written to nginx’s root), under the same wrk load, alternating rounds.',
        'pixpool’s CPU is its whole `up` tree (frontend and manager, cache node, autoscaler).',
      ],
    });
  },
};

/** CPU seconds of one process of the `up` tree by thread kind, and what the process is. */
interface ProcessThreads {
  role: string;
  threads: ThreadCpu;
}

/** Every process of the tree (by pid), with what it is and its CPU by thread kind so far. */
function treeThreads(pid: number): Map<number, ProcessThreads> {
  // The root by its pid: its command line may be cut short (treeMemory's) before "up".
  const roleOf = (p: { pid: number; command: string }) =>
    p.pid === pid ? 'up' : / cache-node\b/.test(p.command) ? 'cache node' : 'other';
  return new Map(
    treeMemory(pid).map((p) => [p.pid, { role: roleOf(p), threads: threadCpuSeconds(p.pid) }]),
  );
}

/**
 * The tree's CPU between two snapshots, by "process: thread kind" (V8Worker, libuv-worker and
 * libvips worker threads of a process summed by kind; a process gone by the second snapshot
 * left out).
 */
function treeThreadsSince(
  before: Map<number, ProcessThreads>,
  after: Map<number, ProcessThreads>,
): ThreadCpu {
  const out: ThreadCpu = {};
  for (const [pid, { role, threads }] of after) {
    const since = threadCpuSince(before.get(pid)?.threads ?? {}, threads);
    for (const [name, seconds] of Object.entries(since)) {
      const key = `${role}: ${name}`;
      out[key] = (out[key] ?? 0) + seconds;
    }
  }
  return out;
}

interface MissRun {
  wallMs: number;
  cpuSec: number;
  bytes: number;
  /** CPU seconds by thread kind (pixpool: "process: thread"). */
  threads: ThreadCpu;
}

/** "name ms, …" per miss, the largest first, leaving out what is under 0.05 ms per miss. */
function threadLine(threads: ThreadCpu, misses: number): string {
  return Object.entries(threads)
    .map(([name, seconds]) => [name, (seconds / misses) * 1000] as const)
    .filter(([, ms]) => ms >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
    .join(', ');
}

export const variantMiss: BenchCase = {
  id: 'variant-miss',
  title: `Variant misses (${VARIANT.format} of ${MISS_KEYS} distinct 1280 × 960 JPEGs, a width per round) vs bare sharp making the same resizes`,
  async run(ctx) {
    const secret = randomBytes(24).toString('base64url');
    // The same originals under other keys in each round: a round's originals were read once
    // (from storage, into the node) and never through this frontend's near cache, so each miss
    // reads its original's bytes from the node. With one set of keys, the first round's reads
    // left the originals in the near cache and later rounds' misses only revalidated them.
    const keySets = MISS_WIDTHS.map((_, round) =>
      Array.from({ length: MISS_KEYS }, (_, i) => `variant-miss-r${round}-${i}`),
    );
    const warmKey = 'variant-miss-warm';
    ctx.log(`variant-miss: making ${MISS_KEYS} originals`);
    const originals = await Promise.all(keySets[0]?.map((_, i) => photo(i + 10)) ?? []);
    const dir = join(ctx.tmp, 'variant-originals');
    mkdirSync(dir, { recursive: true });
    for (const [i, bytes] of originals.entries())
      writeFileSync(join(dir, `original-${i}.jpg`), bytes);

    /** Bare sharp making the round's resizes, in its own process on the server CPU. */
    const bareRound = async (width: number): Promise<MissRun> => {
      const bare = ctx.procs.spawn(
        'bare sharp',
        process.execPath,
        [
          '--import',
          'tsx',
          join(ctx.root, 'bench', 'variant-resize.ts'),
          JSON.stringify({
            dir,
            count: MISS_KEYS,
            width,
            format: VARIANT.format,
            concurrency: MISS_CONCURRENCY,
          }),
        ],
        { cwd: ctx.root, cpus: ctx.cpus.server },
      );
      const line = await waitForOutput(bare, /^\{.*"wallMs".*\}$/m, 300_000);
      await bare.exited;
      return JSON.parse(line[0]) as MissRun;
    };

    /** pixpool from the checkout at `root` (--before: an earlier one), its originals cached. */
    const startSide = async (root: string, label: string) => {
      const main = root === ctx.root;
      const suffix = main ? '' : '-before';
      ctx.log(`variant-miss: starting ${label}`);
      const up = main
        ? await startCaseUp(ctx, 'variant-miss', secret, 'variant-miss-up')
        : await startPixpoolUp(ctx.procs, {
            root,
            dataDir: join(ctx.tmp, `variant-miss-data${suffix}`),
            secret,
            cpus: ctx.cpus.server,
            logFile: join(ctx.tmp, `variant-miss-up${suffix}.log`),
            name: `${label} up`,
          });
      for (const keys of keySets) await uploadAll(up, keys, originals);
      // One untimed miss, as the bare side's warm-up.
      await up.upload(warmKey, originals[0] as Buffer);
      await (await fetch(`${up.baseUrl}${variantPath(warmKey, 64)}`)).arrayBuffer();
      return { label, up };
    };

    const sides: { label: string; up: PixpoolUp }[] = [];
    try {
      sides.push(await startSide(ctx.root, 'pixpool'));
      if (ctx.settings.beforeRoot) {
        sides.push(await startSide(ctx.settings.beforeRoot, 'pixpool (before)'));
      }
      /** The round's misses through one side: each key's variant of `width`, a miss. */
      const pixpoolRound = async (
        up: PixpoolUp,
        width: number,
        keys: string[],
      ): Promise<MissRun> => {
        // Into the node just before: three rounds' originals would not all fit in its memory.
        await warmOriginals(up, keys);
        await settled(up);
        // Connections of their own, as an image client's: the uploads' connections went from the
        // frontend's socket lane to node:http for good (a lane declines a multipart POST).
        const agent = new Agent({ connections: MISS_CONCURRENCY });
        const before = treeCpuSeconds(up.child.pid);
        const threadsBefore = treeThreads(up.child.pid);
        const t0 = performance.now();
        let next = 0;
        let bytes = 0;
        await Promise.all(
          Array.from({ length: MISS_CONCURRENCY }, async () => {
            while (next < keys.length) {
              const key = keys[next++] as string;
              const response = await undiciFetch(`${up.baseUrl}${variantPath(key, width)}`, {
                dispatcher: agent,
              });
              const got = await response.arrayBuffer();
              if (response.status !== 200) throw new Error(`variant of ${key}: ${response.status}`);
              bytes += got.byteLength;
            }
          }),
        );
        const wallMs = performance.now() - t0;
        await agent.close();
        const after = treeCpuSeconds(up.child.pid);
        const threads = treeThreadsSince(threadsBefore, treeThreads(up.child.pid));
        const cpuSec =
          before && after ? after.user + after.system - before.user - before.system : Number.NaN;
        return { wallMs, cpuSec, bytes, threads };
      };
      // A width per round, so that every round's variants are misses; the order of the sides
      // turns each round (bare sharp first, then last, …).
      const labels = ['bare sharp', ...sides.map((s) => s.label)];
      const rounds: { width: number; runs: Record<string, MissRun> }[] = [];
      for (const [i, width] of MISS_WIDTHS.entries()) {
        ctx.log(`variant-miss: round ${i + 1}/${MISS_WIDTHS.length}, ${width} px`);
        const order = labels.map((_, j) => labels[(j + i) % labels.length] as string);
        const runs: Record<string, MissRun> = {};
        for (const label of order) {
          const side = sides.find((s) => s.label === label);
          runs[label] = side
            ? await pixpoolRound(side.up, width, keySets[i] as string[])
            : await bareRound(width);
        }
        rounds.push({ width, runs });
      }
      const run = (r: (typeof rounds)[number], label: string) => r.runs[label] as MissRun;
      const ms = (cpuSec: number) => (cpuSec / MISS_KEYS) * 1000;
      const rate = (wallMs: number) => (MISS_KEYS / wallMs) * 1000;
      const ratiosOf = (label: string) =>
        rounds.map((r) => run(r, label).cpuSec / run(r, 'bare sharp').cpuSec);
      const ratios = ratiosOf('pixpool');
      const ratio = median(ratios);
      const worst = Math.max(...ratios);
      const order = ['pixpool', ...labels.filter((l) => l !== 'pixpool')];
      return {
        id: 'variant-miss',
        title: variantMiss.title,
        fairness: [
          `Both sides make the same ${MISS_KEYS} resizes of the same originals, ${MISS_CONCURRENCY} at a time, on the server CPU, in ${MISS_WIDTHS.length} rounds of one width each (${MISS_WIDTHS.join(', ')} px), each round in another order of the sides.`,
          'pixpool’s CPU is its whole `up` tree. Each round has keys of its own (the same originals), read once before from storage into the node, so a miss is: node read of the variant (a miss), node read of the original’s bytes, resize, node fill, answer.',
          'Bare sharp runs the pipeline pixpool runs for these variants (EXIF rotation, resize inside the width without enlarging, WebP at its default quality): the bytes out are compared below.',
        ],
        table: {
          head: ['side', 'misses/s', 'CPU ms per miss', 'by round (ms)', '÷ bare sharp by round'],
          rows: order.map((label) => [
            label,
            fmt.int(median(rounds.map((r) => rate(run(r, label).wallMs)))),
            median(rounds.map((r) => ms(run(r, label).cpuSec))).toFixed(2),
            rounds.map((r) => ms(run(r, label).cpuSec).toFixed(2)).join(' / '),
            label === 'bare sharp'
              ? ''
              : ratiosOf(label)
                  .map((x) => x.toFixed(2))
                  .join(' / '),
          ]),
        },
        checks: [
          { name: 'CPU per miss ÷ bare sharp', value: ratio, target: '≤ 1.3', met: ratio <= 1.3 },
          {
            name: 'CPU per miss ÷ bare sharp, worst width',
            value: worst,
            target: '≤ 1.3',
            met: worst <= 1.3,
          },
        ],
        notes: [
          `ratio per round (${MISS_WIDTHS.join(', ')} px): ${ratios.map((r) => r.toFixed(2)).join(', ')} (median taken).`,
          `bytes out per round, ${order.join(' / ')}: ${rounds.map((r) => order.map((l) => run(r, l).bytes).join(' / ')).join(', ')}.`,
          ...rounds.flatMap((r) =>
            order.map(
              (label) =>
                `${r.width} px, ${label}, CPU ms per miss by thread: ${threadLine(run(r, label).threads, MISS_KEYS)}.`,
            ),
          ),
        ],
        figures: { rounds, ratio },
      } satisfies CaseResult;
    } finally {
      for (const side of sides) await side.up.stop();
    }
  },
};

export const variantBurst: BenchCase = {
  id: 'variant-burst',
  title: `A burst of ${BURST} distinct variant misses at once: peak RSS of the \`up\` tree`,
  async run(ctx: BenchContext) {
    const secret = randomBytes(24).toString('base64url');
    const keys = Array.from({ length: BURST_KEYS }, (_, i) => `variant-burst-${i}`);
    const originals = await Promise.all(keys.map((_, i) => photo(i + 1000)));
    const up = await startCaseUp(ctx, 'variant-burst', secret, 'variant-burst-up');
    const agent = new Agent({ connections: BURST });
    try {
      await uploadAll(up, keys, originals);
      await warmOriginals(up, keys);
      await settled(up);
      const rss = () => treeMemory(up.child.pid).reduce((sum, p) => sum + p.rssMiB, 0);
      const frontendRss = () =>
        treeMemory(up.child.pid).find((p) => p.pid === up.child.pid)?.rssMiB ?? 0;
      const baseline = { tree: rss(), up: frontendRss() };
      let peak = { ...baseline };
      const sampler = setInterval(() => {
        peak = { tree: Math.max(peak.tree, rss()), up: Math.max(peak.up, frontendRss()) };
      }, 25);
      const statuses = new Map<number, number>();
      const t0 = performance.now();
      try {
        await Promise.all(
          keys.flatMap((key) =>
            BURST_WIDTHS.map(async (width) => {
              const response = await undiciFetch(`${up.baseUrl}${variantPath(key, width)}`, {
                dispatcher: agent,
              });
              await response.arrayBuffer();
              statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
            }),
          ),
        );
      } finally {
        clearInterval(sampler);
      }
      const wallMs = performance.now() - t0;
      const growth = peak.tree - baseline.tree;
      const answered = statuses.get(200) ?? 0;
      const refused = statuses.get(503) ?? 0;
      const other = BURST - answered - refused;
      return {
        id: 'variant-burst',
        title: variantBurst.title,
        fairness: [
          `${BURST} requests for ${BURST} distinct variants (${BURST_KEYS} keys × ${BURST_WIDTHS.length} widths) sent at once on ${BURST} connections; RSS sampled every 25 ms.`,
        ],
        table: {
          head: ['', 'tree RSS MiB', 'up process RSS MiB'],
          rows: [
            ['before', fmt.int(baseline.tree), fmt.int(baseline.up)],
            ['peak', fmt.int(peak.tree), fmt.int(peak.up)],
          ],
        },
        checks: [
          { name: 'tree RSS growth, MiB', value: growth, target: '≤ 512', met: growth <= 512 },
          { name: 'answers neither 200 nor 503', value: other, target: '= 0', met: other === 0 },
        ],
        notes: [
          `${answered} answered, ${refused} refused with 503 (transform queue full), in ${Math.round(wallMs)} ms.`,
        ],
        figures: { baseline, peak, statuses: Object.fromEntries(statuses), wallMs },
      } satisfies CaseResult;
    } finally {
      await agent.close();
      await up.stop();
    }
  },
};
