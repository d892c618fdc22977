/**
 * The benchmark cases, in the order `npm run bench` runs them. A case is an id, a title and
 * run(ctx) → CaseResult (see lib/case.ts); "server vs server under wrk" cases are built with
 * compareHttp (lib/compare.ts); other kinds (upload throughput, later memory, hit ratio …)
 * implement run(ctx) directly. Today: cache node GET vs nginx, frontend GET (the whole `pixpool up`)
 * vs nginx, upload throughput on embedded and on PostgreSQL + S3 storage, and the hand-over of a
 * pool grow 4 → 5 vs a loopback copy of the same bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { regionOf } from '../src/core/regions.ts';
import { embeddedFootprint } from './cases/footprint.ts';
import { hitRatio } from './cases/hit-ratio.ts';
import { hop } from './cases/hop.ts';
import { hopFloor } from './cases/hop-floor.ts';
import { listKeys } from './cases/list-keys.ts';
import { missPath } from './cases/miss-path.ts';
import { nearAdmission } from './cases/near-admission.ts';
import { nodeCeiling } from './cases/node-ceiling.ts';
import { nodeMemory } from './cases/node-memory.ts';
import { postKey } from './cases/post-key.ts';
import { redisCompare } from './cases/redis.ts';
import { soak } from './cases/soak.ts';
import { variantBurst, variantHit, variantMiss } from './cases/variants.ts';
import { frontendWorkers } from './cases/workers.ts';
import { startCacheNode } from './lib/cachenode.ts';
import type { BenchCase, BenchContext, CaseResult } from './lib/case.ts';
import { compareHttp, fmt, type HttpTarget, median } from './lib/compare.ts';
import {
  addProfile,
  formatProfile,
  type ProfileSummary,
  profileFlags,
  profileNotes,
  profilesInWindow,
} from './lib/cpuprofile.ts';
import { runLoopbackCopy, startLoopbackReceiver } from './lib/loopback.ts';
import { type PoolViewAnswer, type ResizeDetails, startManagerPeer } from './lib/manager.ts';
import { benchImage } from './lib/multipart.ts';
import { nginxBaseline, staticRoot } from './lib/nginx.ts';
import { type PixpoolUp, startCaseUp, startPixpoolUp } from './lib/pixpool.ts';
import { treeCpuByProcess, treeCpuSeconds } from './lib/processes.ts';
import {
  preparePostgres,
  runUploadClient,
  startS3rver,
  type UploadClientResult,
} from './lib/uploads.ts';

const KB = 1024;

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
  // nginx serves the identical bytes at the identical path.
  const www = staticRoot(ctx, 'www', path, body);
  const profileName = `${self.id}-cache-node`;

  const result = await compareHttp(ctx, {
    id: self.id,
    title: self.title,
    body,
    minRatio: 0.8,
    maxP99Ratio: 2,
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
    baseline: nginxBaseline(ctx, {
      prefix: 'nginx',
      root: www,
      path,
      contentType,
      headers: headers,
    }),
    fairness: [
      'The cache node is one single-threaded Node process, so nginx runs one worker (worker_processes 1) — with sendfile on, tcp_nopush/tcp_nodelay, keep-alive without a per-connection request limit, access_log off, its own prefix for pid, logs and temp dirs.',
      `Both serve the same ${body.length.toLocaleString('en-US')} random (incompressible) bytes at the same path with Content-Type ${contentType}, no compression; the same Authorization header goes to both (nginx ignores it, the node checks it).`,
      `The cache node runs on this runner's Node (${process.version}): bin/pixpool.js cache-node --capacity 256 --policy LRU --log-level warn (Node strips the TypeScript types itself; no loader). It answers these GETs in its socket lane (src/http/socket-lane.ts), below node:http; node-ceiling-100k shows what node:http alone gets.`,
    ],
  });
  const profile = profileNotes(ctx, profileName);
  addProfile(result, profile);
  return result;
}

/**
 * The frontend's GET /images/:key of a cached 100 KB image (answered from the frontend's near
 * cache within the cache node's read lease, revalidated with the node when it runs out) vs nginx sending the same bytes as a static file at the
 * same path. The whole `pixpool up` tree (frontend and manager in one process, its cache node and
 * autoscaler children) is the server under test, on one CPU.
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
  const www = staticRoot(ctx, 'www-frontend', path, body);
  const profileName = `${self.id}-frontend`;
  let fillGets = 0;

  const result = await compareHttp(ctx, {
    id: self.id,
    title: self.title,
    body,
    minRatio: 0.5,
    maxP99Ms: 20,
    redact: [secret],
    subject: {
      label: 'pixpool up',
      async start(): Promise<HttpTarget> {
        const up = await startCaseUp(ctx, self.id, secret, profileName);
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
    baseline: nginxBaseline(ctx, {
      prefix: 'nginx-frontend',
      root: www,
      path,
      contentType,
      headers: {},
    }),
    fairness: [
      `The server under test is the whole system as \`pixpool up\` runs it: the frontend and the manager (with its embedded SQLite registry) in the up process, the cache node and the autoscaler as child processes. All are pinned to the server CPU: taskset pins the up process and its children inherit its affinity, and the CPU time counted is the whole process tree's (the manager and autoscaler mostly idle: the node's statistics every 5 s, an autoscaler tick every 60 s, manual mode). nginx (worker_processes 1, master and worker) is pinned to the same CPU, so each side gets exactly one CPU whatever its process count.`,
      "Every pixpool request is a cache hit served from the frontend's near cache: the frontend answers on the socket (its socket lane, before node:http): within the cache node's read lease (100 ms, the default) it sends its own copy of the bytes without asking the node; when the lease runs out the next request waits while the copy is revalidated with the node (a GET with x-pixpool-if-version over kept-alive loopback HTTP, answered 304 without a body, with a new lease; concurrent requests for the key share one check). The image was uploaded with POST /api/upload and fetched until x-pixpool-source said cache before measuring. nginx reads the file (page cache, sendfile).",
      `Both serve the same ${body.length.toLocaleString('en-US')} bytes (random after a JPEG signature, incompressible) at the same path ${path} with Content-Type ${contentType}, no compression; the runner checked both answer exactly those bytes. pixpool's answer carries a few more headers (ETag, Last-Modified, Cache-Control, CSP, nosniff, x-pixpool-source), a few hundred bytes.`,
      `pixpool runs on this runner's Node (${process.version}): bin/pixpool.js up --data-dir <tmp> --port <p> --manager-port <p> --autoscaler-port <p> --log-level warn (embedded storage; one cache node at the manager's default 100 MB, LRU; the frontend's near cache at its default 64 MiB).`,
    ],
  });
  result.notes.push(
    `Filling the cache took ${fillGets} GET(s) after the upload (the first from storage, then the node had it).`,
  );
  const profile = profileNotes(ctx, profileName, 'the frontend');
  if (profile.summaries.length > 0) {
    result.notes.push(
      'The profile below is of the frontend process only (node flags before bin/pixpool.js are not passed on to the cache node or autoscaler children; the node-get-100k case profiles a cache node).',
    );
  }
  addProfile(result, profile);
  return result;
}

/** Uploads in flight at any time in the upload case. */
const UPLOAD_CONCURRENCY = 8;
/** The embedded-storage target of a later issue. */
const UPLOAD_TARGET_PER_SEC = 300;

interface UploadTarget {
  up: PixpoolUp;
  baseUrl: string;
  /** Root of pixpool's process tree (frontend + manager, cache node, autoscaler). */
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
      label: 'embedded (SQLite + folder)',
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
            'SQLite (node:sqlite, WAL, synchronous=FULL, in the frontend process) in <tmp>/pixpool.db; objects as files in <tmp>/objects',
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
    'pixpool CPU: user+system CPU time of the pixpool up process tree (frontend and manager in one process, cache node and autoscaler children) over the run, % of one CPU (in brackets: the kernel part); CPU/upload: that time per successful upload. Storage CPU: the PostgreSQL server (all its processes, so anything else using it counts too) and s3rver, % of one CPU. Client CPU: the load generator.',
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
      `CPUs: each pixpool up tree (frontend and manager in one process, its cache node and autoscaler children, which inherit the affinity) is pinned to CPU ${cpus.server ?? '(not pinned)'}, the upload client to CPU ${cpus.load ?? '(not pinned)'}. Both setups stay up for the whole run; only one is under load at a time.`,
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

/** Values filled into the pool before the grow: 1,024 × 100 KiB = 100 MiB. */
const HANDOVER_VALUES = 1024;
const HANDOVER_VALUE_BYTES = 100 * KB;
/** PUTs in flight while filling (not measured). */
const HANDOVER_FILL_CONCURRENCY = 8;
/** Loopback copies of the handed-over bytes per repetition: untimed first, then timed (median). */
const HANDOVER_COPY_WARMUP = 2;
const HANDOVER_COPIES = 9;
const MiB = 1024 * 1024;

/** The resize event's details, with the step times the manager reports (manager/pool/resize.ts). */
type HandoverDetails = ResizeDetails & {
  handOverMs?: number;
  steps?: {
    nodeMs: number;
    transitionalViewMs: number;
    censusMs: number;
    handOverMs: number;
    finalViewMs: number;
  };
};

interface HandoverRep {
  rep: number;
  filledEntries: number;
  filledBytes: number;
  /** Values per region over the 16 regions, fewest and most. */
  valuesPerRegion: { min: number; max: number };
  details: HandoverDetails;
  eventMessage: string;
  /** The POST …/poolsize/manual round trip, as the runner saw it, ms. */
  requestMs: number;
  /** Request sent → the new node's "listening" line reached the runner, ms. */
  nodeStartMs: number | undefined;
  /** That line → the resize's answer: health check, config, two map publications, hand-over. */
  afterStartMs: number | undefined;
  /** User+system CPU of the manager's tree (manager + 5 nodes) over the request, % of one CPU. */
  resizeCpuPct: number | undefined;
  /** User+system CPU of that tree from the new node's "listening" line to the answer, ms. */
  afterStartCpuMs: number | undefined;
  /** That CPU by process, ms: the manager, the new node, each old node (most first). */
  afterStartCpuBy: { manager: number; newNode: number; oldNodes: number[] } | undefined;
  /** Bytes on the new node after the resize, and over all nodes (the final view dropped the old copies). */
  newNodeBytes: number | null;
  bytesAfter: number | null;
  resizeMiBps: number;
  afterStartMiBps: number | undefined;
  copyMs: number[];
  copyMedianMs: number;
  copyMiBps: number;
  /** Sender + receiver CPU over the copies, % of one CPU of their wall time. */
  copyCpuPct: number | undefined;
  ratioResize: number;
  ratioAfterStart: number | undefined;
}

/** A repetition's resize steps after the node started (the manager's figures), ms. */
function steps(r: HandoverRep): string {
  const s = r.details.steps;
  if (!s) return '–';
  return `${s.transitionalViewMs}+${s.handOverMs}+${s.finalViewMs} (census ${s.censusMs}, node ${s.nodeMs})`;
}

/**
 * Issue 5's hand-over: 100 MiB cached on 4 nodes, then a grow to 5 (3 of 16 regions move to the
 * new node, node to node), timed by the manager's own resize event and by the runner, against a
 * loopback TCP copy of the same number of bytes between two processes on the same CPU.
 */
const handover: BenchCase = {
  id: 'handover-100mb',
  title:
    'Hand-over on a pool grow 4 → 5 with 100 MiB cached vs a loopback TCP copy of the same bytes (same CPU)',
  run: (ctx) => runHandover(ctx, handover),
};

async function fillPool(
  view: PoolViewAnswer,
  secret: string,
  keyPrefix: string,
): Promise<{ entries: number; bytes: number; perRegion: number[] }> {
  const base = benchImage(HANDOVER_VALUE_BYTES);
  const perRegion = new Array<number>(16).fill(0);
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    for (let i = next++; i < HANDOVER_VALUES; i = next++) {
      const key = `${keyPrefix}-${i}`;
      const region = regionOf(key);
      const owner = view.map.owner[region] as string;
      const url = view.addresses[owner];
      if (!url) throw new Error(`region ${region}: owner ${owner} has no address in the view`);
      const value = Buffer.from(base);
      value.writeUInt32BE(i, 4); // distinct bytes per value
      const response = await fetch(`${url}/v1/entries/${encodeURIComponent(key)}`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${secret}`,
          'content-type': 'image/jpeg',
          'x-pixpool-version': '1',
        },
        body: value,
      });
      const text = await response.text();
      if (response.status !== 204) {
        throw new Error(`PUT ${key} to ${owner} answered ${response.status}: ${text}`);
      }
      perRegion[region] = (perRegion[region] ?? 0) + 1;
      bytes += value.length;
    }
  };
  await Promise.all(Array.from({ length: HANDOVER_FILL_CONCURRENCY }, worker));
  return { entries: HANDOVER_VALUES, bytes, perRegion };
}

async function runHandover(ctx: BenchContext, self: BenchCase): Promise<CaseResult> {
  const { settings, cpus, procs } = ctx;
  const secret = randomBytes(24).toString('base64url');
  const notes: string[] = [];
  const reps: HandoverRep[] = [];
  const profiles: ProfileSummary[] = [];
  let managerCommand = '';
  let copyCommand = '';
  const receiver = await startLoopbackReceiver(procs, ctx.root, cpus.server);
  try {
    for (let rep = 1; rep <= settings.rounds; rep++) {
      ctx.log(`${self.id}: repetition ${rep}/${settings.rounds}: starting a fresh manager`);
      // With --cpu-prof, the manager and the nodes it starts (NODE_OPTIONS is inherited) each
      // write a profile at exit; only the samples taken during the grow are summarized.
      const profileDir = settings.cpuProfDir && join(settings.cpuProfDir, `${self.id}-r${rep}`);
      if (profileDir) mkdirSync(profileDir, { recursive: true });
      let resizeWindow = { fromUs: 0, toUs: 0 };
      let fromUs = 0;
      const manager = await startManagerPeer(procs, {
        ...(profileDir && { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir}` } }),
        root: ctx.root,
        dataDir: join(ctx.tmp, `${self.id}-r${rep}`),
        secret,
        cpus: cpus.server,
        logFile: join(ctx.tmp, `${self.id}-r${rep}-manager.log`),
      });
      managerCommand = manager.command.replace(ctx.tmp, '<tmp>');
      let details: HandoverDetails;
      let eventMessage: string;
      let filled: Awaited<ReturnType<typeof fillPool>>;
      let requestMs: number;
      let nodeStartMs: number | undefined;
      let resizeCpuPct: number | undefined;
      let afterStartCpuMs: number | undefined;
      let afterStartCpuBy: HandoverRep['afterStartCpuBy'];
      let newNodeBytes: number | null = null;
      let bytesAfter: number | null = null;
      try {
        for (let size = 1; size < 4; size++) await manager.resize('increase');
        await manager.configure(256, 'LRU');
        const view = await manager.poolView();
        if (view.map.nodes.length !== 4) {
          throw new Error(`the pool has ${view.map.nodes.length} nodes, not 4`);
        }
        ctx.log(`${self.id}: filling ${HANDOVER_VALUES} × ${HANDOVER_VALUE_BYTES} bytes`);
        filled = await fillPool(view, secret, `handover-r${rep}`);
        const before = await manager.nodes();
        const cachedItems = before.reduce((sum, n) => sum + (n.items ?? 0), 0);
        const cachedBytes = before.reduce((sum, n) => sum + (n.bytes ?? 0), 0);
        if (cachedItems !== filled.entries || cachedBytes !== filled.bytes) {
          throw new Error(
            `the nodes hold ${cachedItems} entries / ${cachedBytes} bytes, not the ${filled.entries} / ${filled.bytes} put`,
          );
        }
        await sleep(1000); // let the fill's garbage and the nodes' statistics settle
        const cpuBefore = treeCpuSeconds(manager.child.pid);
        const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
        // The tree's CPU every 10 ms, to tell what it spent after the new node listened: on a
        // CPU shared with other work, the wall time says more about the others than about us.
        const cpuSamples: { at: number; sec: number; each: Map<number, number> }[] = [];
        const sampleCpu = () => {
          const each = treeCpuByProcess(manager.child.pid);
          if (!each) return;
          const seconds = new Map([...each].map(([pid, c]) => [pid, c.user + c.system]));
          let sec = 0;
          for (const s of seconds.values()) sec += s;
          cpuSamples.push({ at: performance.now(), sec, each: seconds });
        };
        sampleCpu();
        const oldPids = new Set(cpuSamples[0]?.each.keys());
        const sampler = setInterval(sampleCpu, 10);
        fromUs = monotonicUs();
        const t0 = performance.now();
        try {
          await manager.resize('increase');
        } finally {
          clearInterval(sampler);
        }
        const t1 = performance.now();
        sampleCpu();
        resizeWindow = { fromUs, toUs: monotonicUs() };
        const cpuAfter = treeCpuSeconds(manager.child.pid);
        requestMs = t1 - t0;
        resizeCpuPct =
          cpuBefore && cpuAfter
            ? ((cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) /
                (requestMs / 1000)) *
              100
            : undefined;
        const event = await manager.resizeEvent(5);
        details = event.details;
        eventMessage = event.message;
        const after = await manager.poolView();
        const added = after.map.nodes.find((id) => !view.map.nodes.includes(id));
        const listenedAt = added ? manager.nodeListeningAt(added) : undefined;
        nodeStartMs = listenedAt === undefined ? undefined : listenedAt - t0;
        const atListen =
          listenedAt === undefined ? undefined : cpuSamples.findLast((c) => c.at <= listenedAt);
        const atEnd = cpuSamples.at(-1);
        afterStartCpuMs = atListen && atEnd ? (atEnd.sec - atListen.sec) * 1000 : undefined;
        if (atListen && atEnd) {
          const by = { manager: 0, newNode: 0, oldNodes: [] as number[] };
          for (const [pid, sec] of atEnd.each) {
            const spent = (sec - (atListen.each.get(pid) ?? 0)) * 1000;
            if (pid === manager.child.pid) by.manager += spent;
            else if (!oldPids.has(pid)) by.newNode += spent;
            else by.oldNodes.push(spent);
          }
          by.oldNodes.sort((a, b) => b - a);
          afterStartCpuBy = by;
        }
        // Profiles cover what follows the new node's start, the part the targets are about.
        if (nodeStartMs !== undefined) resizeWindow.fromUs += Math.round(nodeStartMs * 1000);
        const statuses = await manager.nodes();
        newNodeBytes = statuses.find((n) => n.id === added)?.bytes ?? null;
        bytesAfter = statuses.every((n) => n.bytes !== null)
          ? statuses.reduce((sum, n) => sum + (n.bytes ?? 0), 0)
          : null;
      } finally {
        ctx.log(`${self.id}: stopping the manager and its nodes`);
        await manager.stop();
      }
      if (profileDir) {
        for (const summary of profilesInWindow(profileDir, resizeWindow)) {
          const who = summary.file.includes(`.${manager.child.pid}.`)
            ? 'the manager'
            : summary.startUs > fromUs
              ? 'the new node'
              : 'an old node';
          profiles.push({ ...summary, file: `${summary.file} (${who}, repetition ${rep})` });
        }
      }
      // The baseline right after, on the same CPU(s), with nothing else of ours running there.
      const copy = await runLoopbackCopy(
        procs,
        ctx.root,
        receiver,
        {
          totalBytes: details.bytes,
          chunkBytes: HANDOVER_VALUE_BYTES,
          warmup: HANDOVER_COPY_WARMUP,
          repeats: HANDOVER_COPIES,
        },
        cpus.server,
      );
      copyCommand = copy.command;
      const copyMs = copy.result.ms;
      const copyMedianMs = median(copyMs);
      const copyWallSec = copyMs.reduce((a, b) => a + b, 0) / 1000;
      const copyCpuSec =
        copy.receiverCpuSec === undefined
          ? undefined
          : copy.receiverCpuSec + copy.result.cpuSec.user + copy.result.cpuSec.system;
      const rate = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);
      const afterStartMs = nodeStartMs === undefined ? undefined : requestMs - nodeStartMs;
      const copyMiBps = rate(details.bytes, copyMedianMs);
      const resizeMiBps = rate(details.bytes, details.ms);
      const afterStartMiBps =
        afterStartMs === undefined ? undefined : rate(details.bytes, afterStartMs);
      const r: HandoverRep = {
        rep,
        filledEntries: filled.entries,
        filledBytes: filled.bytes,
        valuesPerRegion: { min: Math.min(...filled.perRegion), max: Math.max(...filled.perRegion) },
        details,
        eventMessage,
        requestMs,
        nodeStartMs,
        afterStartMs,
        resizeCpuPct,
        afterStartCpuMs,
        afterStartCpuBy,
        newNodeBytes,
        bytesAfter,
        resizeMiBps,
        afterStartMiBps,
        copyMs,
        copyMedianMs,
        copyMiBps,
        copyCpuPct: copyCpuSec === undefined ? undefined : (copyCpuSec / copyWallSec) * 100,
        ratioResize: resizeMiBps / copyMiBps,
        ratioAfterStart: afterStartMiBps === undefined ? undefined : afterStartMiBps / copyMiBps,
      };
      reps.push(r);
      ctx.log(
        `${self.id}: repetition ${rep}: ${eventMessage} | runner: ${r.requestMs.toFixed(0)} ms, ` +
          `node start ${nodeStartMs?.toFixed(0) ?? '?'} ms, after it ${afterStartMs?.toFixed(0) ?? '?'} ms, ` +
          `manager tree CPU ${fmt.pct(resizeCpuPct)}, ${afterStartCpuMs?.toFixed(0) ?? '?'} ms of it after the node listened | loopback copy ${copyMedianMs.toFixed(1)} ms ` +
          `(${copyMiBps.toFixed(0)} MiB/s) | ratio ${r.ratioResize.toFixed(4)} whole, ` +
          `${r.ratioAfterStart?.toFixed(3) ?? '?'} after the node started | steps: ${steps(r)}`,
      );
      if (details.failed.length > 0) {
        notes.push(`Repetition ${rep}: hand-over(s) failed: ${details.failed.join('; ')}`);
      }
      if (newNodeBytes !== details.bytes) {
        notes.push(
          `Repetition ${rep}: the new node holds ${newNodeBytes} bytes after the resize, not the ${details.bytes} handed over.`,
        );
      }
      if (bytesAfter !== filled.bytes) {
        notes.push(
          `Repetition ${rep}: the pool holds ${bytesAfter} bytes after the resize, not the ${filled.bytes} filled (old owners should have dropped their copies).`,
        );
      }
    }
  } finally {
    await receiver.stop();
  }

  const med = (pick: (r: HandoverRep) => number) => median(reps.map(pick));
  const optMed = (pick: (r: HandoverRep) => number | undefined) => {
    const values = reps.map(pick);
    return values.every((v) => v !== undefined) ? median(values as number[]) : undefined;
  };
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
  const ms = (n: number | undefined) => (n === undefined ? '–' : `${n.toFixed(0)} ms`);
  const mibps = (n: number | undefined) => (n === undefined ? '–' : `${n.toFixed(1)} MiB/s`);
  const ratio = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(4));
  const byRep = (format: (r: HandoverRep) => string) => reps.map(format).join(' / ');
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const cpuBy = (...values: (number | undefined)[]) => values.map(ms).join(' / ');
  const stepMs = (pick: (s: NonNullable<HandoverDetails['steps']>) => number) =>
    ms(optMed((r) => (r.details.steps ? pick(r.details.steps) : undefined)));

  const resizeMiBps = med((r) => r.resizeMiBps);
  const afterStartMiBps = optMed((r) => r.afterStartMiBps);
  const copyMiBps = med((r) => r.copyMiBps);
  const ratioResize = resizeMiBps / copyMiBps;
  const ratioAfterStart = afterStartMiBps === undefined ? undefined : afterStartMiBps / copyMiBps;
  const handedOverShare = med((r) => r.details.bytes / r.details.cachedBytes);
  const regionShare = med((r) => r.details.regions / r.details.minimumRegions);

  notes.unshift(
    'Medians over the repetitions, each row on its own; the ratio rows divide the median rates (their by-repetition figures are each repetition’s own ratio). MiB = 1,048,576 bytes.',
    '"whole resize" is the manager’s own figure (details.ms of the resize event: from the start of grow() — starting the new node process, health check, config, transitional map to every node, census of the moved regions, the node-to-node hand-over — to the end of the hand-over; the final map publication after it is not included; "steps" splits it as the manager timed them: transitional view + hand-over + final view, with the census of the moved regions and the node’s start, health check and config in brackets). "after the node listened" is the runner’s: from the new node’s "listening" line (passed on by the manager on its stderr) to the answer of the resize request, i.e. everything but the process start, the final map publication included.',
    `The loopback copy sends the bytes that repetition handed over, in $HANDOVER_VALUE_BYTES.toLocaleString('en-US')-byte writes (the value size) over one fresh TCP connection, timed from connect() to the receiver’s byte count coming back; per repetition $HANDOVER_COPY_WARMUPuntimed copies (JIT, TCP buffers), then $HANDOVER_COPIEStimed ones, median. The hand-over gets no such warm-up: its connection to the new node and the new node’s import route are fresh — part of what a resize costs.`,
  );

  if (profiles.length > 0) {
    notes.push(
      'These figures were taken with the manager and its nodes under --cpu-prof, which slows them down: use them for where the time goes during the grow, not for the ratio.',
      ...profiles.flatMap(formatProfile),
    );
  }

  return {
    id: self.id,
    title: self.title,
    fairness: [
      `CPUs: the manager is pinned with taskset -c ${cpus.server ?? '(not pinned)'}; the cache nodes it starts (child processes of the local provider) inherit that affinity, so the manager, the 4 old owners and the new node share ${cpus.server === undefined ? 'the machine' : `CPU ${cpus.server}`}. The loopback baseline's receiver and sender are two Node processes pinned to the same ${cpus.server === undefined ? 'CPUs (none)' : `CPU ${cpus.server}`}, so both sides copy between processes on the same CPU(s). The runner (fill PUTs, API calls) is not pinned; it only waits during the resize.`,
      `Each repetition: a fresh manager (${managerCommand}; embedded SQLite registry in its own data dir), grown 1 → 4 with POST /api/manager/poolsize/manual {"change":"increase","wait":true}, configured with POST /api/manager/config {"capacity":256,"replacement_policy":"LRU"}, filled with ${HANDOVER_VALUES} distinct values of ${HANDOVER_VALUE_BYTES.toLocaleString('en-US')} random bytes (PUT /v1/entries/<key> to each key's owner by the pool view, ${HANDOVER_FILL_CONCURRENCY} in flight), checked (the nodes hold exactly those entries and bytes), then grown 4 → 5 the same way; the manager and its nodes are then stopped and the loopback copy runs.`,
      `Baseline: ${copyCommand}, started through tsx; a plain node:net stream (no HTTP, no framing, no user-space copy of the payload), so it is the ceiling for moving those bytes between two processes here.`,
      `${settings.rounds} repetitions; the loopback copy of each repetition runs within seconds of its resize, with the same byte count.`,
    ],
    table: {
      head: ['measure', 'median', 'by repetition'],
      rows: [
        [
          'filled (4 nodes)',
          `${mib(med((r) => r.filledBytes))}, ${fmt.int(med((r) => r.filledEntries))} entries`,
          byRep((r) => `${r.valuesPerRegion.min}–${r.valuesPerRegion.max} per region`),
        ],
        [
          'cached in the moved regions',
          mib(med((r) => r.details.cachedBytes)),
          byRep((r) => mib(r.details.cachedBytes)),
        ],
        [
          'handed over',
          `${mib(med((r) => r.details.bytes))}, ${fmt.int(med((r) => r.details.entries))} entries`,
          byRep((r) => `${r.details.regions} regions (min ${r.details.minimumRegions})`),
        ],
        ['whole resize (event ms)', ms(med((r) => r.details.ms)), byRep((r) => ms(r.details.ms))],
        [
          '  new node start (runner)',
          ms(optMed((r) => r.nodeStartMs)),
          byRep((r) => ms(r.nodeStartMs)),
        ],
        [
          '  after the node listened (runner)',
          ms(optMed((r) => r.afterStartMs)),
          byRep((r) => ms(r.afterStartMs)),
        ],
        [
          '  steps: transitional view / census (during it) / hand-over / final view',
          `${stepMs((s) => s.transitionalViewMs)} / ${stepMs((s) => s.censusMs)} / ${stepMs((s) => s.handOverMs)} / ${stepMs((s) => s.finalViewMs)}`,
          byRep(steps),
        ],
        ['hand-over rate, whole resize', mibps(resizeMiBps), byRep((r) => mibps(r.resizeMiBps))],
        [
          'hand-over rate, after the node listened',
          mibps(afterStartMiBps),
          byRep((r) => mibps(r.afterStartMiBps)),
        ],
        [
          'loopback copy of the same bytes',
          `${mibps(copyMiBps)} (${med((r) => r.copyMedianMs).toFixed(1)} ms)`,
          byRep((r) => mibps(r.copyMiBps)),
        ],
        ['ratio, whole resize ÷ loopback', ratio(ratioResize), byRep((r) => ratio(r.ratioResize))],
        [
          'ratio, after the node listened ÷ loopback',
          ratio(ratioAfterStart),
          byRep((r) => ratio(r.ratioAfterStart)),
        ],
        [
          'manager tree CPU during the resize',
          fmt.pct(optMed((r) => r.resizeCpuPct)),
          byRep((r) => fmt.pct(r.resizeCpuPct)),
        ],
        [
          'manager tree CPU after the node listened',
          ms(optMed((r) => r.afterStartCpuMs)),
          byRep((r) => ms(r.afterStartCpuMs)),
        ],
        [
          '  of it: manager / new node / old nodes (each, most first)',
          cpuBy(
            optMed((r) => r.afterStartCpuBy?.manager),
            optMed((r) => r.afterStartCpuBy?.newNode),
            optMed((r) => r.afterStartCpuBy && sum(r.afterStartCpuBy.oldNodes)),
          ),
          byRep((r) => {
            const b = r.afterStartCpuBy;
            if (!b) return '–';
            const old = b.oldNodes.map((n) => n.toFixed(0)).join('+');
            return `${b.manager.toFixed(0)}, ${b.newNode.toFixed(0)}, ${old}`;
          }),
        ],
        [
          'loopback sender + receiver CPU',
          fmt.pct(optMed((r) => r.copyCpuPct)),
          byRep((r) => fmt.pct(r.copyCpuPct)),
        ],
      ],
    },
    checks: [
      {
        name: 'bytes handed over ÷ bytes cached in the moved regions (median)',
        value: handedOverShare,
        target: '= 1',
        met: reps.every(
          (r) => r.details.bytes === r.details.cachedBytes && r.details.failed.length === 0,
        ),
      },
      {
        name: 'regions moved ÷ the minimum (median)',
        value: regionShare,
        target: '= 1',
        met: reps.every((r) => r.details.regions === r.details.minimumRegions),
      },
    ],
    notes,
    figures: {
      values: HANDOVER_VALUES,
      valueBytes: HANDOVER_VALUE_BYTES,
      copyWarmup: HANDOVER_COPY_WARMUP,
      copies: HANDOVER_COPIES,
      medians: {
        resizeMs: med((r) => r.details.ms),
        nodeStartMs: optMed((r) => r.nodeStartMs),
        afterStartMs: optMed((r) => r.afterStartMs),
        afterStartCpuMs: optMed((r) => r.afterStartCpuMs),
        bytes: med((r) => r.details.bytes),
        cachedBytes: med((r) => r.details.cachedBytes),
        resizeMiBps,
        afterStartMiBps,
        copyMiBps,
        ratioResize,
        ratioAfterStart,
      },
      repetitions: reps,
      ...(profiles.length > 0 && { profiles }),
    },
  };
}

export const cases: BenchCase[] = [
  nodeGetVsNginx,
  nodeCeiling,
  frontendGetVsNginx,
  uploads,
  embeddedFootprint,
  frontendWorkers,
  handover,
  nodeMemory,
  redisCompare,
  soak,
  hitRatio,
  nearAdmission,
  postKey,
  listKeys,
  missPath,
  hop,
  hopFloor,
  variantHit,
  variantMiss,
  variantBurst,
];
