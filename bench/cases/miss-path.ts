/**
 * Bench case `frontend-miss-100k` (issue 7): the frontend's miss path — GET /images/:key answered
 * from the database row and the object store, then a fill of the cache node — for 100 KB images,
 * with nginx's static file of 100 KB beside it for scale (no target: a miss does several times
 * the work of a static file).
 *
 * Every request is made a miss for real: MISS_KEYS distinct images are uploaded, wrk asks for one
 * at random per request (a Lua script, seeded per thread), and the pool's one cache node is set to
 * 1 MB (POST /api/manager/config), so it holds ~9 of them and each fill evicts another. The
 * frontend's near cache turns few misses into hits: it keeps only copies the node answered, trusts
 * one only within the node's read lease (100 ms) and otherwise revalidates it, and a node that no
 * longer holds the key makes it a miss. The miss share is measured from
 * the frontend's /metrics (cache lookups by result) over the whole load, and checked up front on
 * x-pixpool-source. Where a miss's CPU goes (miss-breakdown.ts): each process's CPU per request
 * from /proc, and with --cpu-prof every process of the tree profiled (NODE_OPTIONS, which the
 * cache node inherits) and its time split into the steps of a miss.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchCase, BenchContext } from '../lib/case.ts';
import { compareHttp, type HttpTarget } from '../lib/compare.ts';
import { benchImage } from '../lib/multipart.ts';
import { nginxBaseline, staticRoot } from '../lib/nginx.ts';
import { startCaseUp } from '../lib/pixpool.ts';
import {
  breakdownNotes,
  type ProcessCpu,
  type ProcessCpuSpan,
  processCpu,
  treeProfileEnv,
} from './miss-breakdown.ts';
import { randomKeyScript } from './post-key.ts';

const KB = 1024;
const MISS_KEYS = 1000;
const UPLOAD_CONCURRENCY = 8;
const NODE_CAPACITY_MB = 1;

const keyOf = (i: number) => `miss-${i}`;

/** pixpool_frontend_cache_lookups_total by result, from the frontend's /metrics. */
async function lookups(baseUrl: string, secret: string): Promise<{ hit: number; miss: number }> {
  const response = await fetch(`${baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${secret}` },
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const count = (result: string) =>
    Number(
      new RegExp(
        `^pixpool_frontend_cache_lookups_total\\{[^}]*result="${result}"[^}]*\\} (\\S+)$`,
        'm',
      ).exec(text)?.[1] ?? 0,
    );
  return { hit: count('hit'), miss: count('miss') };
}

export const missPath: BenchCase = {
  id: 'frontend-miss-100k',
  title: `Frontend GET /images/:key miss path (database + object store + node fill), 100 KB, random of ${MISS_KEYS} keys, vs nginx static file for scale`,
  run: (ctx) => runMissPath(ctx, missPath),
};

async function runMissPath(ctx: BenchContext, self: BenchCase) {
  const images = Array.from({ length: MISS_KEYS }, () => benchImage(100 * KB));
  const body = images[0] as Buffer;
  const secret = randomBytes(24).toString('base64url');
  const path = `/images/${keyOf(0)}`;
  const contentType = 'image/jpeg';
  const www = staticRoot(ctx, 'www-miss', path, body);
  const profileDir = ctx.settings.cpuProfDir && join(ctx.settings.cpuProfDir, `${self.id}-tree`);
  let span: ProcessCpuSpan | undefined;
  let perProcess: ProcessCpu | undefined;
  const script = randomKeyScript(ctx, self.id, 'miss-', MISS_KEYS);
  const missShare = { before: { hit: 0, miss: 0 }, after: { hit: 0, miss: 0 }, probe: 0 };

  const result = await compareHttp(ctx, {
    id: self.id,
    title: self.title,
    body,
    redact: [secret],
    subject: {
      label: 'pixpool up',
      async start(): Promise<HttpTarget> {
        if (profileDir) mkdirSync(profileDir, { recursive: true });
        const up = await startCaseUp(
          ctx,
          self.id,
          secret,
          self.id,
          profileDir ? treeProfileEnv(profileDir) : undefined,
          false,
        );
        const config = await fetch(`${up.managerUrl}/api/manager/config`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ capacity: NODE_CAPACITY_MB }),
        });
        if (config.status !== 200) {
          throw new Error(
            `POST /api/manager/config answered ${config.status}: ${await config.text()}`,
          );
        }
        ctx.log(`${self.id}: uploading ${MISS_KEYS} images of 100 KB`);
        let next = 0;
        await Promise.all(
          Array.from({ length: UPLOAD_CONCURRENCY }, async () => {
            for (let i = next++; i < MISS_KEYS; i = next++) {
              await up.upload(keyOf(i), images[i] as Buffer);
            }
          }),
        );
        // Probe: 200 random reads, each must come from storage (x-pixpool-source).
        for (let i = 0; i < 200; i++) {
          const k = Math.floor(Math.random() * MISS_KEYS);
          const response = await fetch(`${up.baseUrl}/images/${keyOf(k)}`);
          const got = Buffer.from(await response.arrayBuffer());
          if (response.status !== 200 || !got.equals(images[k] as Buffer)) {
            throw new Error(`GET ${keyOf(k)} answered ${response.status} with other bytes`);
          }
          if (response.headers.get('x-pixpool-source') === 'storage') missShare.probe++;
        }
        missShare.before = await lookups(up.baseUrl, secret);
        span = processCpu(up.child.pid);
        return {
          url: `${up.baseUrl}${path}`,
          headers: {},
          wrkScript: script,
          pid: up.child.pid,
          command: up.command.replace(ctx.tmp, '<tmp>'),
          stop: async () => {
            missShare.after = await lookups(up.baseUrl, secret);
            const requests =
              missShare.after.hit +
              missShare.after.miss -
              missShare.before.hit -
              missShare.before.miss;
            perProcess = span?.stop(requests);
            await up.stop();
          },
        };
      },
    },
    baseline: nginxBaseline(ctx, {
      prefix: 'nginx-miss',
      root: www,
      path,
      contentType,
      headers: {},
    }),
    fairness: [
      `The server under test is the whole \`pixpool up\` tree (frontend + manager with embedded SQLite, cache node and autoscaler children), pinned to the server CPU like nginx (worker_processes 1). Objects are files in its data folder (in the page cache after the uploads), rows in SQLite.`,
      `pixpool: wrk asks for a random one of ${MISS_KEYS.toLocaleString('en-US')} distinct 100 KB images per request (Lua script); the cache node's capacity is ${NODE_CAPACITY_MB} MB (≈9 images), so nearly every read is a miss: row → object → answer → fill of the node (which evicts). nginx serves one 100 KB file (GET, no script) for scale only: this is not a like-for-like comparison and has no target.`,
    ],
  });
  const lookupsDuringLoad = {
    hit: missShare.after.hit - missShare.before.hit,
    miss: missShare.after.miss - missShare.before.miss,
  };
  const lookupsTotal = lookupsDuringLoad.hit + lookupsDuringLoad.miss;
  if (lookupsTotal === 0) throw new Error('the frontend counted no cache lookups during the load');
  const share = lookupsDuringLoad.miss / lookupsTotal;
  // nginx is there for scale only: the throughput ratio is reported, not judged.
  result.checks.push({
    name: 'miss share during the load (frontend /metrics: misses ÷ lookups)',
    value: share,
    target: '≥ 0.95',
    met: share >= 0.95,
  });
  result.notes.push(
    `Cache lookups during warm-up and rounds (frontend /metrics): ${lookupsDuringLoad.miss.toLocaleString('en-US')} misses, ${lookupsDuringLoad.hit.toLocaleString('en-US')} hits (miss share ${(share * 100).toFixed(2)} %); before the load, ${missShare.probe} of 200 random probes said x-pixpool-source: storage.`,
    "The frontend's near cache stays at its default (64 MiB): it keeps only copies the node answered and trusts one only within the node's 100 ms read lease, so it rarely turns a miss into a hit (the measured miss share says how rarely).",
  );
  result.figures = { ...(result.figures as object), lookupsDuringLoad, missShare: share };
  if (perProcess && span) {
    const breakdown = breakdownNotes(ctx, perProcess, span.window, profileDir);
    if (profileDir) {
      result.notes.push(
        "With --cpu-prof every process of pixpool's tree ran under it, which slows them down: use the profiles for where the time goes, not for the figures above.",
      );
    }
    result.notes.push(...breakdown.notes);
    result.figures = { ...(result.figures as object), ...breakdown.figures };
  }
  return result;
}
