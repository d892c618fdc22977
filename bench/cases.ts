/**
 * The benchmark cases, in the order `npm run bench` runs them. A case is an id, a title and
 * run(ctx) → CaseResult (see lib/case.ts); "server vs server under wrk" cases are built with
 * compareHttp (lib/compare.ts); other kinds (upload throughput, later memory, hit ratio …)
 * implement run(ctx) directly. Today: cache node GET vs nginx, frontend GET (the whole `pixpool up`)
 * vs nginx, and upload throughput on embedded and on PostgreSQL + S3 storage.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startCacheNode } from './lib/cachenode.ts';
import type { BenchCase, BenchContext, CaseResult } from './lib/case.ts';
import { compareHttp, fmt, type HttpTarget, median } from './lib/compare.ts';
import { formatProfile, summarizeProfile } from './lib/cpuprofile.ts';
import { benchImage } from './lib/multipart.ts';
import { startNginx } from './lib/nginx.ts';
import { type PixpoolUp, startPixpoolUp } from './lib/pixpool.ts';
import { treeCpuSeconds } from './lib/processes.ts';
import {
  preparePostgres,
  runUploadClient,
  startS3rver,
  type UploadClientResult,
} from './lib/uploads.ts';

const KB = 1024;

/** Node flags for a Node peer: --cpu-prof into the run's profile folder when asked. */
function profileFlags(ctx: BenchContext, name: string): string[] {
  const dir = ctx.settings.cpuProfDir;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

/** Summaries of the profiles a case's Node peers wrote (empty without --cpu-prof). */
function profileNotes(ctx: BenchContext, prefix: string, what = 'the cache node') {
  const dir = ctx.settings.cpuProfDir;
  if (!dir) return { notes: [] as string[], summaries: [] as unknown[] };
  const files = readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.cpuprofile'));
  const summaries = files.map((f) => summarizeProfile(join(dir, f)));
  return {
    notes: [
      `These figures were taken with ${what} under --cpu-prof, which slows it down: use them for where the time goes, not for the ratio.`,
      ...summaries.flatMap(formatProfile),
    ],
    summaries,
  };
}

/** Cache node GET of one 100 KB value vs nginx sending the same bytes as a static file. */
const nodeGetVsNginx: BenchCase = {
  id: 'node-get-100k',
  title: 'Cache node GET of a 100 KB value vs nginx static file (same bytes, same wrk load)',
  run: (ctx) => runNodeGetVsNginx(ctx, nodeGetVsNginx),
};

async function runNodeGetVsNginx(ctx: BenchContext, self: BenchCase) {
  const body = randomBytes(100 * KB); // random, so incompressible
  const secret = randomBytes(24).toString('base64url');
  const key = 'bench-100k';
  const path = `/v1/entries/${key}`;
  const headers = { Authorization: `Bearer ${secret}` };
  const contentType = 'image/jpeg';
  const www = join(ctx.tmp, 'www');
  // nginx serves the identical bytes at the identical path.
  mkdirSync(dirname(join(www, path)), { recursive: true });
  writeFileSync(join(www, path), body);
  const profileName = `${self.id}-cache-node`;

  const result = await compareHttp(ctx, {
    id: self.id,
    title: self.title,
    body,
    minRatio: 0.6,
    redact: [secret],
    subject: {
      label: 'cache node',
      async start(): Promise<HttpTarget> {
        const node = await startCacheNode(ctx.procs, {
          root: ctx.root,
          secret,
          capacityMb: 256,
          policy: 'LRU',
          cpus: ctx.cpus.server,
          nodeFlags: profileFlags(ctx, profileName),
          logFile: join(ctx.tmp, 'cache-node.log'),
        });
        await node.put(key, body, contentType, 1);
        return {
          url: `${node.baseUrl}${path}`,
          headers,
          pid: node.child.pid,
          command: node.command,
          stop: async () => {
            await node.stop();
          },
        };
      },
    },
    baseline: {
      label: 'nginx',
      async start(): Promise<HttpTarget> {
        const nginx = await startNginx(ctx.procs, {
          nginx: ctx.tools.nginx,
          prefix: join(ctx.tmp, 'nginx'),
          root: www,
          readyPath: path,
          defaultType: contentType,
          cpus: ctx.cpus.server,
          workers: 1,
        });
        return {
          url: `${nginx.baseUrl}${path}`,
          headers,
          pid: nginx.child.pid,
          command: `${nginx.version}: nginx -p <tmp>/nginx -c <tmp>/nginx/nginx.conf (worker_processes 1, sendfile on, keepalive, access_log off)`,
          stop: nginx.stop,
        };
      },
    },
    fairness: [
      'The cache node is one single-threaded Node process, so nginx runs one worker (worker_processes 1) — with sendfile on, tcp_nopush/tcp_nodelay, keep-alive without a per-connection request limit, access_log off, its own prefix for pid, logs and temp dirs.',
      `Both serve the same ${body.length.toLocaleString('en-US')} random (incompressible) bytes at the same path with Content-Type ${contentType}, no compression; the same Authorization header goes to both (nginx ignores it, the node checks it).`,
      `The cache node runs on this runner's Node (${process.version}): src/cli.ts cache-node --capacity 256 --policy LRU --log-level warn, via tsx.`,
    ],
  });
  const profile = profileNotes(ctx, profileName);
  result.notes.push(...profile.notes);
  if (profile.summaries.length > 0) {
    result.figures = { ...(result.figures as object), profiles: profile.summaries };
  }
  return result;
}

/**
 * The frontend's GET /images/:key of a cached 100 KB image (frontend → cache node hit → answer)
 * vs nginx sending the same bytes as a static file at the same path. The whole `pixpool up` tree
 * (frontend and its cache node child) is the server under test, on one CPU.
 */
const frontendGetVsNginx: BenchCase = {
  id: 'frontend-get-100k',
  title:
    'Frontend GET /images/:key of a cached 100 KB image vs nginx static file (same bytes, same wrk load)',
  run: (ctx) => runFrontendGetVsNginx(ctx, frontendGetVsNginx),
};

async function runFrontendGetVsNginx(ctx: BenchContext, self: BenchCase) {
  const body = benchImage(100 * KB); // random after a JPEG signature: incompressible, sniffed as JPEG
  const secret = randomBytes(24).toString('base64url');
  const key = 'bench-100k';
  const path = `/images/${key}`;
  const contentType = 'image/jpeg';
  const www = join(ctx.tmp, 'www-frontend');
  mkdirSync(dirname(join(www, path)), { recursive: true });
  writeFileSync(join(www, path), body);
  const profileName = `${self.id}-frontend`;
  let fillGets = 0;

  const result = await compareHttp(ctx, {
    id: self.id,
    title: self.title,
    body,
    minRatio: 0.4,
    redact: [secret],
    subject: {
      label: 'pixpool up',
      async start(): Promise<HttpTarget> {
        const up = await startPixpoolUp(ctx.procs, {
          root: ctx.root,
          dataDir: join(ctx.tmp, `${self.id}-data`),
          secret,
          cpus: ctx.cpus.server,
          nodeFlags: profileFlags(ctx, profileName),
          logFile: join(ctx.tmp, `${self.id}-up.log`),
        });
        await up.upload(key, body);
        fillGets = await up.waitForCacheHit(key, body);
        return {
          url: `${up.baseUrl}${path}`,
          headers: {},
          pid: up.child.pid,
          command: up.command.replace(ctx.tmp, '<tmp>'),
          stop: async () => {
            await up.stop();
          },
        };
      },
    },
    baseline: {
      label: 'nginx',
      async start(): Promise<HttpTarget> {
        const nginx = await startNginx(ctx.procs, {
          nginx: ctx.tools.nginx,
          prefix: join(ctx.tmp, 'nginx-frontend'),
          root: www,
          readyPath: path,
          defaultType: contentType,
          cpus: ctx.cpus.server,
          workers: 1,
        });
        return {
          url: `${nginx.baseUrl}${path}`,
          headers: {},
          pid: nginx.child.pid,
          command: `${nginx.version}: nginx -p <tmp>/nginx-frontend -c <tmp>/nginx-frontend/nginx.conf (worker_processes 1, sendfile on, keepalive, access_log off)`,
          stop: nginx.stop,
        };
      },
    },
    fairness: [
      `The server under test is the whole system as \`pixpool up\` runs it: the frontend (in the up process) and its cache node (a child process). Both are pinned to the server CPU: taskset pins the up process and the cache node inherits its affinity, and the CPU time counted is the whole process tree's. nginx (worker_processes 1, master and worker) is pinned to the same CPU, so each side gets exactly one CPU whatever its process count.`,
      'Every pixpool request is a cache hit: the frontend GETs the bytes from the cache node over kept-alive loopback HTTP (the binary API) and sends them on; the image was uploaded with POST /api/upload and fetched until x-pixpool-source said cache before measuring. nginx reads the file (page cache, sendfile).',
      `Both serve the same ${body.length.toLocaleString('en-US')} bytes (random after a JPEG signature, incompressible) at the same path ${path} with Content-Type ${contentType}, no compression; the runner checked both answer exactly those bytes. pixpool's answer carries a few more headers (ETag, Last-Modified, Cache-Control, CSP, nosniff, x-pixpool-source), a few hundred bytes.`,
      `pixpool runs on this runner's Node (${process.version}): bin/pixpool.js up --data-dir <tmp> --port <p> --node-port 0 --log-level warn (embedded storage; the cache node at its default 100 MB, LRU).`,
    ],
  });
  result.notes.push(
    `Filling the cache took ${fillGets} GET(s) after the upload (the first from storage, then the node had it).`,
  );
  const profile = profileNotes(ctx, profileName, 'the frontend');
  if (profile.summaries.length > 0) {
    result.notes.push(
      'The profile below is of the frontend process only (node flags before bin/pixpool.js are not passed on to the cache node child; the node-get-100k case profiles a cache node).',
    );
  }
  result.notes.push(...profile.notes);
  if (profile.summaries.length > 0) {
    result.figures = { ...(result.figures as object), profiles: profile.summaries };
  }
  return result;
}

/** Uploads in flight at any time in the upload case. */
const UPLOAD_CONCURRENCY = 8;
/** The embedded-storage target of a later issue. */
const UPLOAD_TARGET_PER_SEC = 300;

interface UploadTarget {
  up: PixpoolUp;
  baseUrl: string;
  /** Root of pixpool's process tree (frontend + cache node). */
  pid: number;
  command: string;
  storage: string;
  /** Storage servers whose CPU time is worth reporting (PostgreSQL, s3rver). */
  storagePids: { label: string; pid: number | undefined }[];
  stop(): Promise<void>;
}

interface UploadSide {
  id: string;
  label: string;
  start(): Promise<UploadTarget>;
}

interface UploadMeasurement {
  round: number;
  side: string;
  client: UploadClientResult;
  /** pixpool tree CPU over the run, % of one CPU, and its kernel part. */
  pixpoolCpuPct: number | undefined;
  pixpoolSystemPct: number | undefined;
  /** pixpool tree CPU time per successful upload, ms. */
  pixpoolCpuMsPerUpload: number | undefined;
  /** Storage servers' CPU over the run, % of one CPU. */
  storageCpuPct: Record<string, number | undefined>;
  clientCpuPct: number;
}

/** POST /api/upload of distinct 100 KB images at a fixed concurrency, on both storage setups. */
const uploads: BenchCase = {
  id: 'upload-100k',
  title: `Upload throughput: POST /api/upload of distinct 100 KB images, ${UPLOAD_CONCURRENCY} in flight (embedded storage; PostgreSQL + S3)`,
  run: (ctx) => runUploads(ctx, uploads),
};

async function runUploads(ctx: BenchContext, self: BenchCase): Promise<CaseResult> {
  const { settings, cpus, procs } = ctx;
  const sizeBytes = 100 * KB;
  const secret = randomBytes(24).toString('base64url');
  const databaseUrl = 'postgres://postgres@127.0.0.1:5432/test';
  const bucket = 'bench-images';
  const notes: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const profileName = (side: string) => `${self.id}-${side}-frontend`;

  const sides: UploadSide[] = [
    {
      id: 'embedded',
      label: 'embedded (PGlite + folder)',
      async start() {
        const dataDir = join(ctx.tmp, `${self.id}-embedded`);
        const up = await startPixpoolUp(ctx.procs, {
          root: ctx.root,
          dataDir,
          secret,
          cpus: cpus.server,
          nodeFlags: profileFlags(ctx, profileName('embedded')),
          logFile: join(ctx.tmp, `${self.id}-embedded-up.log`),
          name: 'pixpool up (embedded)',
        });
        return {
          up,
          baseUrl: up.baseUrl,
          pid: up.child.pid,
          command: up.command.replace(ctx.tmp, '<tmp>'),
          storage:
            'PGlite (embedded PostgreSQL, WebAssembly, in the frontend process) in <tmp>/db; objects as files in <tmp>/objects',
          storagePids: [],
          stop: async () => {
            await up.stop();
          },
        };
      },
    },
    {
      id: 'pg-s3',
      label: 'PostgreSQL + S3 (s3rver)',
      async start() {
        const postgres = await preparePostgres(databaseUrl, ctx.log);
        cleanups.push(() => postgres.dropSchema());
        const s3 = await startS3rver(procs, {
          root: ctx.root,
          directory: join(ctx.tmp, `${self.id}-s3rver`),
          bucket,
        });
        cleanups.push(() => s3.stop());
        const up = await startPixpoolUp(ctx.procs, {
          root: ctx.root,
          dataDir: join(ctx.tmp, `${self.id}-pg-s3`),
          secret,
          storageArgs: [
            '--database-url',
            postgres.url,
            '--s3-bucket',
            bucket,
            '--s3-endpoint',
            s3.endpoint,
            '--s3-force-path-style',
          ],
          env: {
            AWS_ACCESS_KEY_ID: 'S3RVER',
            AWS_SECRET_ACCESS_KEY: 'S3RVER',
            AWS_REGION: 'us-east-1',
          },
          cpus: cpus.server,
          nodeFlags: profileFlags(ctx, profileName('pg-s3')),
          logFile: join(ctx.tmp, `${self.id}-pg-s3-up.log`),
          name: 'pixpool up (PostgreSQL + S3)',
        });
        return {
          up,
          baseUrl: up.baseUrl,
          pid: up.child.pid,
          command: `AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 ${up.command.replace(ctx.tmp, '<tmp>')}`,
          storage: `${postgres.version} at 127.0.0.1:5432/test (schema ${postgres.schema}, dropped afterwards); s3rver 3 in a child process (bucket ${bucket}, files in <tmp>)`,
          storagePids: [
            { label: 'PostgreSQL', pid: postgres.serverPid },
            { label: 's3rver', pid: s3.child.pid },
          ],
          stop: async () => {
            await up.stop();
          },
        };
      },
    },
  ];

  const targets = new Map<string, UploadTarget>();
  const measurements: UploadMeasurement[] = [];
  let clientCommand = '';
  try {
    for (const side of sides) {
      ctx.log(`${self.id}: starting ${side.label}`);
      let target: UploadTarget;
      try {
        target = await side.start();
      } catch (error) {
        if (side.id === 'embedded') throw error;
        notes.push(
          `${side.label} was NOT measured: it could not start (${(error as Error).message}).`,
        );
        ctx.log(`${self.id}: ${side.label} could not start: ${(error as Error).message}`);
        continue;
      }
      targets.set(side.id, target);
      // A round trip through this storage: upload, then read back the same bytes (storage, cache).
      const image = benchImage(sizeBytes);
      await target.up.upload(`verify-${side.id}`, image);
      await target.up.waitForCacheHit(`verify-${side.id}`, image);
    }
    const active = sides.filter((side) => targets.has(side.id));
    const load = (side: UploadSide, durationSec: number, keyPrefix: string) =>
      runUploadClient(
        procs,
        ctx.root,
        {
          baseUrl: (targets.get(side.id) as UploadTarget).baseUrl,
          concurrency: UPLOAD_CONCURRENCY,
          durationSec,
          sizeBytes,
          keyPrefix,
        },
        cpus.load,
      );
    if (settings.warmupSec > 0) {
      for (const side of active) {
        ctx.log(`${self.id}: warming up ${side.label} (${settings.warmupSec} s)`);
        await load(side, settings.warmupSec, `warm-${side.id}`);
      }
    }
    for (let round = 1; round <= settings.rounds; round++) {
      const order = round % 2 === 1 ? active : [...active].reverse();
      for (const side of order) {
        const target = targets.get(side.id) as UploadTarget;
        const pids = [{ label: 'pixpool', pid: target.pid }, ...target.storagePids];
        const before = pids.map(({ pid }) => (pid === undefined ? undefined : treeCpuSeconds(pid)));
        const run = await load(side, settings.durationSec, `r${round}-${side.id}`);
        const after = pids.map(({ pid }) => (pid === undefined ? undefined : treeCpuSeconds(pid)));
        clientCommand = run.command;
        const c = run.result;
        if (c.uploads === 0) {
          throw new Error(
            `${side.label}: no upload succeeded (${JSON.stringify(c.statuses)}): ${c.firstError}`,
          );
        }
        const used = pids.map((_, i) => {
          const b = before[i];
          const a = after[i];
          return a && b ? { user: a.user - b.user, system: a.system - b.system } : undefined;
        });
        const pct = (seconds: number) => (seconds / c.durationSec) * 100;
        const own = used[0];
        const storageCpuPct: Record<string, number | undefined> = {};
        target.storagePids.forEach(({ label }, i) => {
          const u = used[i + 1];
          storageCpuPct[label] = u ? pct(u.user + u.system) : undefined;
        });
        const m: UploadMeasurement = {
          round,
          side: side.label,
          client: c,
          pixpoolCpuPct: own ? pct(own.user + own.system) : undefined,
          pixpoolSystemPct: own ? pct(own.system) : undefined,
          pixpoolCpuMsPerUpload: own ? ((own.user + own.system) / c.uploads) * 1000 : undefined,
          storageCpuPct,
          clientCpuPct: pct(c.cpuSec.user + c.cpuSec.system),
        };
        measurements.push(m);
        if (c.failed > 0) {
          notes.push(
            `${side.label}, round ${round}: ${c.failed} upload(s) failed (${JSON.stringify(c.statuses)}); first: ${c.firstError}`,
          );
        }
        ctx.log(
          `${self.id}: round ${round}/${settings.rounds} ${side.label.padEnd(26)} ` +
            `${c.uploadsPerSec.toFixed(1)} uploads/s  p50 ${fmt.ms(c.latencyMs.p50)}  ` +
            `p99 ${fmt.ms(c.latencyMs.p99)}  pixpool CPU ${fmt.pct(m.pixpoolCpuPct)}  ` +
            `client CPU ${fmt.pct(m.clientCpuPct)}` +
            Object.entries(storageCpuPct)
              .map(([label, v]) => `  ${label} CPU ${fmt.pct(v)}`)
              .join(''),
        );
      }
    }
  } finally {
    for (const side of [...sides].reverse()) {
      const target = targets.get(side.id);
      if (target) {
        ctx.log(`${self.id}: stopping ${side.label}`);
        await target.stop();
      }
    }
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: Error) => notes.push(`cleanup: ${error.message}`));
    }
  }

  const optionalMedian = (values: (number | undefined)[]) =>
    values.length > 0 && values.every((v) => v !== undefined)
      ? median(values as number[])
      : undefined;
  const summaries = sides
    .filter((side) => targets.has(side.id))
    .map((side) => {
      const mine = measurements.filter((m) => m.side === side.label);
      const target = targets.get(side.id) as UploadTarget;
      const storageCpuPct: Record<string, number | undefined> = {};
      for (const { label } of target.storagePids) {
        storageCpuPct[label] = optionalMedian(mine.map((m) => m.storageCpuPct[label]));
      }
      return {
        id: side.id,
        side: side.label,
        command: target.command,
        storage: target.storage,
        uploadsPerSec: median(mine.map((m) => m.client.uploadsPerSec)),
        p50Ms: median(mine.map((m) => m.client.latencyMs.p50)),
        p90Ms: median(mine.map((m) => m.client.latencyMs.p90)),
        p99Ms: median(mine.map((m) => m.client.latencyMs.p99)),
        maxMs: median(mine.map((m) => m.client.latencyMs.max)),
        pixpoolCpuPct: optionalMedian(mine.map((m) => m.pixpoolCpuPct)),
        pixpoolSystemPct: optionalMedian(mine.map((m) => m.pixpoolSystemPct)),
        pixpoolCpuMsPerUpload: optionalMedian(mine.map((m) => m.pixpoolCpuMsPerUpload)),
        storageCpuPct,
        clientCpuPct: median(mine.map((m) => m.clientCpuPct)),
        rounds: mine.map((m) => m.client.uploadsPerSec),
      };
    });

  const embedded = summaries.find((s) => s.id === 'embedded');
  notes.unshift(
    'Not a ratio against a peer: these are absolute figures for this machine (2 shared CPUs), to track over time and to compare the two storage setups measured side by side in this run.',
    'Figures are medians over the rounds, each column on its own. Latency: from sending a request to reading the whole answer, exact percentiles over every successful upload of the round (not bucketed).',
    'pixpool CPU: user+system CPU time of the pixpool up process tree (frontend + cache node) over the run, % of one CPU (in brackets: the kernel part); CPU/upload: that time per successful upload. Storage CPU: the PostgreSQL server (all its processes, so anything else using it counts too) and s3rver, % of one CPU. Client CPU: the load generator.',
  );
  for (const s of summaries) {
    if (s.pixpoolCpuPct !== undefined && s.pixpoolCpuPct < 70) {
      notes.push(
        `${s.side}: pixpool used ${fmt.pct(s.pixpoolCpuPct)} of its CPU, so its CPU was not the limit: the time goes to waiting (storage I/O, fsync, a serialized step) rather than computing.`,
      );
    }
  }
  const profile = profileNotes(ctx, `${self.id}-`, 'the frontend');
  if (profile.summaries.length > 0) {
    notes.push('The profiles below are of the frontend process (where uploads are handled).');
  }
  notes.push(...profile.notes);

  return {
    id: self.id,
    title: self.title,
    fairness: [
      `Load: ${UPLOAD_CONCURRENCY} workers, each with one upload in flight at a time on its own kept-alive connection (undici Pool), POST /api/upload multipart (fields key and file), a distinct key and distinct bytes (${sizeBytes.toLocaleString('en-US')} bytes, JPEG signature, random) per upload, for ${settings.durationSec} s per round: ${clientCommand}. The client is its own Node process, pinned like wrk.`,
      `CPUs: each pixpool up tree (frontend + its cache node child, which inherits the affinity) is pinned to CPU ${cpus.server ?? '(not pinned)'}, the upload client to CPU ${cpus.load ?? '(not pinned)'}. Both setups stay up for the whole run; only one is under load at a time.`,
      'The storage servers of the second setup, PostgreSQL (a system service shared with other users of this machine) and s3rver, are not pinned: they run wherever the OS puts them, on either CPU, and their CPU time is reported separately.',
      `${settings.rounds} rounds of ${settings.durationSec} s per setup after a ${settings.warmupSec} s warm-up each; the setups alternate and the order flips every round. Before measuring, each setup stored an image and served it back byte-identical (from storage, then from the cache node).`,
      `pixpool runs on this runner's Node (${process.version}) with PIXPOOL_SECRET set and the CLI's storage variables cleared: ${summaries.map((s) => `${s.side}: ${s.command}; storage ${s.storage}`).join(' — ')}.`,
    ],
    table: {
      head: [
        'setup',
        'uploads/s',
        'p50',
        'p90',
        'p99',
        'max',
        'pixpool CPU (kernel)',
        'CPU/upload',
        'storage CPU',
        'client CPU',
        'uploads/s by round',
      ],
      rows: summaries.map((s) => [
        s.side,
        s.uploadsPerSec.toFixed(1),
        fmt.ms(s.p50Ms),
        fmt.ms(s.p90Ms),
        fmt.ms(s.p99Ms),
        fmt.ms(s.maxMs),
        `${fmt.pct(s.pixpoolCpuPct)} (${fmt.pct(s.pixpoolSystemPct)})`,
        s.pixpoolCpuMsPerUpload === undefined ? '–' : `${s.pixpoolCpuMsPerUpload.toFixed(2)} ms`,
        Object.entries(s.storageCpuPct)
          .map(([label, v]) => `${label} ${fmt.pct(v)}`)
          .join(', ') || '(in pixpool)',
        fmt.pct(s.clientCpuPct),
        s.rounds.map((r) => r.toFixed(1)).join(' / '),
      ]),
    },
    checks: embedded
      ? [
          {
            name: 'embedded storage uploads/s (median)',
            value: embedded.uploadsPerSec,
            target: `≥ ${UPLOAD_TARGET_PER_SEC}`,
            met: embedded.uploadsPerSec >= UPLOAD_TARGET_PER_SEC,
            advisory: true,
          },
        ]
      : [],
    notes,
    figures: {
      sizeBytes,
      concurrency: UPLOAD_CONCURRENCY,
      targetPerSec: UPLOAD_TARGET_PER_SEC,
      sides: summaries,
      measurements,
      ...(profile.summaries.length > 0 && { profiles: profile.summaries }),
    },
  };
}

export const cases: BenchCase[] = [nodeGetVsNginx, frontendGetVsNginx, uploads];
