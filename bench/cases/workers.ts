/**
 * Bench case `frontend-workers` (issue 19): cached GETs through `pixpool up --workers 2` vs
 * `--workers 1`, the same image, the same wrk load. Unpinned on purpose: workers exist to use
 * every core, and pinning both sides to one CPU would measure nothing. wrk shares the machine's
 * cores with them, as it would with nginx; the ratio is reported, not judged.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { BenchCase, BenchContext } from '../lib/case.ts';
import { compareHttp, type HttpSide, type HttpTarget } from '../lib/compare.ts';
import { benchImage } from '../lib/multipart.ts';
import { startPixpoolUp } from '../lib/pixpool.ts';

const KB = 1024;

export const frontendWorkers: BenchCase = {
  id: 'frontend-workers',
  title: 'Cached GET of a 10 KB image through pixpool up --workers 2 vs --workers 1 (unpinned)',
  run: (ctx) => runWorkers(ctx, frontendWorkers),
};

async function runWorkers(ctx: BenchContext, self: BenchCase) {
  // Small, so the frontends' request handling, not loopback copying (2 GB/s at 100 KB), is measured.
  const body = benchImage(10 * KB);
  const secret = randomBytes(24).toString('base64url');
  const key = 'bench-workers';
  const unpinned: BenchContext = {
    ...ctx,
    cpus: {
      pinned: false,
      server: undefined,
      load: undefined,
      description: `Nothing pinned: both setups and wrk share the machine's ${availableParallelism()} CPUs.`,
    },
  };
  const side = (workers: number): HttpSide => ({
    label: `up --workers ${workers}`,
    async start(): Promise<HttpTarget> {
      const up = await startPixpoolUp(ctx.procs, {
        root: ctx.root,
        dataDir: `${ctx.tmp}/${self.id}-${workers}`,
        secret,
        upArgs: ['--workers', String(workers)],
        name: `pixpool up --workers ${workers}`,
      });
      await up.upload(key, body);
      await up.waitForCacheHit(key, body);
      return {
        url: `${up.baseUrl}/images/${key}`,
        headers: {},
        pid: up.child.pid,
        command: up.command.replace(ctx.tmp, '<tmp>'),
        stop: async () => {
          await up.stop();
        },
      };
    },
  });
  return compareHttp(unpinned, {
    id: self.id,
    title: self.title,
    body,
    redact: [secret],
    subject: side(2),
    baseline: side(1),
    fairness: [
      "Both sides are the whole `pixpool up` tree on embedded defaults (one cache node), differing only in --workers: with 2, two frontend processes listen on the one port (SO_REUSEPORT) and the kernel spreads wrk's connections over them.",
      "Every request is a hit on a frontend's near cache (each worker holds its own copy, revalidated with the node when its read lease runs out); the image was uploaded and read until the cache node served it.",
    ],
  });
}
