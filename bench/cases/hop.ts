/**
 * Bench case `hop-uniform` (issue 23, "The hop"): uniform random reads over 2,000 cached images of
 * ~100 KB, where every read crosses from pixpool's frontend to the node that owns the key, beside
 * the HTTP caches one would otherwise put in front of storage: Varnish (malloc) and nginx
 * proxy_cache, each caching from an nginx static origin holding the same files; an nginx reverse
 * proxy without a cache (two nginx hops) and the origin alone (the floor).
 *
 * Unpinned, as the issue measured it: pixpool's tree has six processes and Varnish is threaded,
 * so pinning every side to one CPU would measure scheduling, not the servers. Sides alternate
 * round by round, order flipped each round, medians of the rounds. CPU per request is summed
 * over each side's process tree from /proc; a cache's origin is counted apart.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BenchCase, BenchContext, CaseResult } from '../lib/case.ts';
import { fmt } from '../lib/compare.ts';
import { type ProfileWindow, profileFlags } from '../lib/cpuprofile.ts';
import { benchImage } from '../lib/multipart.ts';
import { type Nginx, startNginx, staticRoot } from '../lib/nginx.ts';
import { type PixpoolUp, startPixpoolUp } from '../lib/pixpool.ts';
import { freePort, processCpuSeconds, treeCpuSeconds, waitForHttp } from '../lib/processes.ts';
import { ensureVarnish, firstLine } from '../lib/tools.ts';
import { runWrk } from '../lib/wrk.ts';
import {
  alternateSides,
  cpuUsPerRequest,
  frontendProfile,
  type HopMeasurement,
  type HopSide,
  IMAGE_BYTES,
  KEYS,
  NODE_CAPACITY_MB,
  POOL_NODES,
  READ_CONCURRENCY,
  summarize,
  UPLOAD_CONCURRENCY,
  us,
  WARM_PASSES,
  wrkCpuPct,
} from './hop-report.ts';
import { randomKeyScript } from './post-key.ts';

export const keyOf = (i: number) => `hop-${i}`;
export const pathOf = (i: number) => `/images/${keyOf(i)}`;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export const hop: BenchCase = {
  id: 'hop-uniform',
  title: `The hop: uniform random GETs over ${KEYS.toLocaleString('en-US')} cached ~100 KB images — pixpool (4 nodes) vs Varnish, nginx proxy_cache, nginx reverse proxy, nginx static origin (unpinned)`,
  run: (ctx) => runHop(ctx, hop),
};

/** Reads every key (READ_CONCURRENCY in flight), checks the bytes, returns the headers of each. */
export async function readAll(
  baseUrl: string,
  keys: number[],
  images: Buffer[],
  label: string,
): Promise<Map<number, Headers>> {
  const headers = new Map<number, Headers>();
  let next = 0;
  await Promise.all(
    Array.from({ length: READ_CONCURRENCY }, async () => {
      for (let j = next++; j < keys.length; j = next++) {
        const i = keys[j] as number;
        const response = await fetch(`${baseUrl}${pathOf(i)}`);
        const got = new Uint8Array(await response.arrayBuffer());
        if (response.status !== 200 || sha256(got) !== sha256(images[i] as Buffer)) {
          throw new Error(
            `${label}: GET ${pathOf(i)} answered ${response.status} with ${got.length} bytes, not the ${IMAGE_BYTES} expected.`,
          );
        }
        headers.set(i, response.headers);
      }
    }),
  );
  return headers;
}

/** Requests nginx has answered so far (stub_status), less the status requests themselves. */
async function originRequests(origin: Nginx, statusReads: { n: number }): Promise<number> {
  const text = await (await fetch(`${origin.baseUrl}/nginx-status`)).text();
  const counts = /^\s*(\d+)\s+(\d+)\s+(\d+)\s*$/m.exec(text);
  if (!counts) throw new Error(`nginx stub_status answered: ${text}`);
  statusReads.n++;
  return Number(counts[3]) - statusReads.n;
}

/** pixpool_frontend_cache_lookups_total{result="miss"} from the frontend's /metrics. */
async function frontendMisses(up: PixpoolUp, secret: string): Promise<number> {
  const response = await fetch(`${up.baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${secret}` },
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const miss = /^pixpool_frontend_cache_lookups_total\{[^}]*result="miss"[^}]*\} (\S+)$/m.exec(
    text,
  );
  return Number(miss?.[1] ?? 0);
}

async function managerCall(up: PixpoolUp, path: string, body: unknown): Promise<void> {
  const response = await fetch(`${up.managerUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) {
    throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  }
}

async function runHop(ctx: BenchContext, self: BenchCase): Promise<CaseResult> {
  const { settings, procs, tools } = ctx;
  const images = Array.from({ length: KEYS }, () => benchImage(IMAGE_BYTES));
  const all = images.map((_, i) => i);
  const secret = randomBytes(24).toString('base64url');
  const profileName = `${self.id}-frontend`;
  const notes: string[] = [];
  const fairness: string[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  const sides: HopSide[] = [];
  const statusReads = { n: 0 };
  const script = randomKeyScript(ctx, self.id, 'hop-', KEYS);

  const www = join(ctx.tmp, `${self.id}-www`);
  for (const [i, image] of images.entries()) staticRoot(ctx, `${self.id}-www`, pathOf(i), image);
  // Proxies keep a 100 KB answer in memory rather than spilling it to a temp file.
  const proxy = (upstream: string) => `proxy_pass http://${upstream};
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_buffer_size 16k;
proxy_buffers 16 16k;`;
  const upstream = (port: number) => `upstream origin {
  server 127.0.0.1:${port};
  keepalive 32;
}`;

  const measurements: HopMeasurement[] = [];
  // The frontend's profile is summarized over the load only, not the uploads and warm reads.
  const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
  const loadWindow: ProfileWindow = { fromUs: 0, toUs: 0 };
  let wrkCommand = '';

  /** pixpool from the checkout at `root`, up with the pool the issue sets, every image cached. */
  async function pixpoolSide(root: string, label: string): Promise<HopSide> {
    ctx.log(`${self.id}: starting ${label}: up --workers 1`);
    const main = root === ctx.root;
    const up = await startPixpoolUp(procs, {
      root,
      dataDir: join(ctx.tmp, `${self.id}-data${main ? '' : '-before'}`),
      secret,
      upArgs: ['--workers', '1'],
      // Only this checkout's frontend is profiled.
      nodeFlags: main ? profileFlags(ctx, profileName) : [],
      logFile: join(ctx.tmp, `${self.id}-up${main ? '' : '-before'}.log`),
      name: `${label} up --workers 1`,
    });
    stops.push(up.stop);
    await managerCall(up, '/api/manager/config', {
      capacity: NODE_CAPACITY_MB,
      replacement_policy: 'LRU',
    });
    for (let n = 1; n < POOL_NODES; n++) {
      ctx.log(`${self.id}: ${label}: growing the pool to ${n + 1} nodes`);
      await managerCall(up, '/api/manager/poolsize/manual', { change: 'increase', wait: true });
    }
    ctx.log(`${self.id}: ${label}: uploading ${KEYS} images, ${UPLOAD_CONCURRENCY} in flight`);
    let next = 0;
    await Promise.all(
      Array.from({ length: UPLOAD_CONCURRENCY }, async () => {
        for (let i = next++; i < KEYS; i = next++) {
          await up.upload(keyOf(i), images[i] as Buffer);
        }
      }),
    );
    let pending = all;
    let passes = 0;
    while (pending.length > 0) {
      if (++passes > WARM_PASSES) {
        throw new Error(
          `${label}: ${pending.length} keys still not served from the cache after ${WARM_PASSES} passes`,
        );
      }
      const headers = await readAll(up.baseUrl, pending, images, label);
      pending = pending.filter((i) => headers.get(i)?.get('x-pixpool-source') !== 'cache');
    }
    notes.push(
      `${label}: ${passes} read passes over all keys until every one said x-pixpool-source: cache; nodes then held ${await dashboardNodes(up)}.`,
    );
    return {
      label,
      baseUrl: up.baseUrl,
      pid: up.child.pid,
      origin: false,
      command: `${main ? '' : `(in ${root}) `}${up.command.replace(ctx.tmp, '<tmp>')}`,
      pixpool: up,
    };
  }

  try {
    ctx.log(`${self.id}: starting the nginx static origin`);
    const origin = await startNginx(procs, {
      nginx: tools.nginx,
      prefix: join(ctx.tmp, `${self.id}-origin`),
      root: www,
      readyPath: pathOf(0),
      defaultType: 'image/jpeg',
      // One day of freshness, so both caches keep every image through the run under their
      // default rules (Varnish's default TTL is 120 s).
      location: 'expires 1d;',
      server: 'location = /nginx-status { stub_status; }',
    });
    stops.push(origin.stop);
    const originPort = origin.port;

    // pixpool, as ./start.sh runs it, then the pool the issue sets up; with --before, an earlier
    // checkout beside it, set up the same way.
    sides.push(await pixpoolSide(ctx.root, 'pixpool'));
    if (settings.beforeRoot) sides.push(await pixpoolSide(settings.beforeRoot, 'pixpool (before)'));

    const varnish = ensureVarnish(ctx.log);
    if ('why' in varnish) {
      notes.push(`Varnish was NOT measured: ${varnish.why}.`);
      ctx.log(`${self.id}: skipping Varnish: ${varnish.why}`);
    } else {
      const port = await freePort();
      const args = [
        '-a',
        `127.0.0.1:${port}`,
        '-b',
        `127.0.0.1:${originPort}`,
        '-s',
        'malloc,256m',
        '-F',
        '-n',
        join(ctx.tmp, `${self.id}-varnish`),
      ];
      const child = procs.spawn('varnishd', varnish.varnishd, args, {
        logFile: join(ctx.tmp, `${self.id}-varnish.log`),
      });
      stops.push(() => child.stop(5000));
      const baseUrl = `http://127.0.0.1:${port}`;
      await waitForHttp(`${baseUrl}${pathOf(0)}`, child, { timeoutMs: 30_000 });
      const version = firstLine(varnish.varnishd, ['-V']) ?? 'varnishd';
      sides.push({
        label: 'Varnish',
        baseUrl,
        pid: child.pid,
        origin: true,
        command: `${version}: varnishd ${args.join(' ').replace(ctx.tmp, '<tmp>')} (default VCL)`,
      });
    }

    const cacheNginx = await startNginx(procs, {
      nginx: tools.nginx,
      prefix: join(ctx.tmp, `${self.id}-proxy-cache`),
      root: www,
      readyPath: pathOf(0),
      http: `${upstream(originPort)}
proxy_cache_path ${join(ctx.tmp, `${self.id}-proxy-cache`, 'cache')} levels=1:2 keys_zone=hop:16m max_size=1g inactive=1d use_temp_path=off;`,
      location: `${proxy('origin')}
proxy_cache hop;`,
      // With TCP_CORK, a cached answer (header, then the file) waits out the client's delayed
      // ACK on nearly every request here; uncorked it is a fair peer.
      tcpNopush: false,
    });
    stops.push(cacheNginx.stop);
    sides.push({
      label: 'nginx proxy_cache',
      baseUrl: cacheNginx.baseUrl,
      pid: cacheNginx.child.pid,
      origin: true,
      command: `${cacheNginx.version}: proxy_cache (files under <tmp>, keys_zone 16m, max_size 1g), upstream keepalive 32, proxy_buffers 16 16k, tcp_nopush off, worker_processes 1`,
    });

    const plainProxy = await startNginx(procs, {
      nginx: tools.nginx,
      prefix: join(ctx.tmp, `${self.id}-proxy`),
      root: www,
      readyPath: pathOf(0),
      http: upstream(originPort),
      location: proxy('origin'),
      tcpNopush: false,
    });
    stops.push(plainProxy.stop);
    sides.push({
      label: 'nginx reverse proxy (no cache)',
      baseUrl: plainProxy.baseUrl,
      pid: plainProxy.child.pid,
      origin: true,
      command: `${plainProxy.version}: proxy_pass, upstream keepalive 32, proxy_buffers 16 16k, tcp_nopush off, no cache, worker_processes 1`,
    });
    sides.push({
      label: 'nginx static origin',
      baseUrl: origin.baseUrl,
      pid: origin.child.pid,
      origin: false,
      command: `${origin.version}: static files, sendfile, tcp_nopush on (the other cases' nginx setting), expires 1d, worker_processes 1`,
    });

    // Every side reads every key once (bytes checked); the caches until a pass reaches no origin.
    for (const side of sides.slice(1)) {
      const cache = side.origin && side.label !== 'nginx reverse proxy (no cache)';
      for (let pass = 1; ; pass++) {
        const before = await originRequests(origin, statusReads);
        const headers = await readAll(side.baseUrl, all, images, side.label);
        const fetched = (await originRequests(origin, statusReads)) - before;
        if (!cache) break;
        if (fetched === 0) {
          const hits =
            side.label === 'Varnish'
              ? ` (${all.filter((i) => /^\d+ \d+$/.test(headers.get(i)?.get('x-varnish') ?? '')).length} of ${KEYS} answers carried two X-Varnish ids, a hit; Age up to ${Math.max(...all.map((i) => Number(headers.get(i)?.get('age') ?? 0)))} s)`
              : '';
          notes.push(
            `${side.label}: pass ${pass} over all keys reached the origin 0 times${hits}.`,
          );
          break;
        }
        if (pass >= WARM_PASSES) {
          throw new Error(`${side.label}: pass ${pass} still reached the origin ${fetched} times`);
        }
      }
    }
    fairness.push(
      `All ${sides.length} sides answered every one of the ${KEYS.toLocaleString('en-US')} keys with the uploaded bytes (200, SHA-256 compared) before the load, at the same paths /images/hop-<n>.`,
    );

    const load = (side: HopSide, durationSec: number) =>
      runWrk(procs, {
        wrk: tools.wrk,
        url: `${side.baseUrl}${pathOf(0)}`,
        threads: settings.threads,
        connections: settings.connections,
        durationSec,
        cpus: undefined,
        script,
      });
    loadWindow.fromUs = monotonicUs();
    await alternateSides(ctx, self.id, sides, load, async (side, round) => {
      const { pixpool } = side;
      const missesBefore = pixpool ? await frontendMisses(pixpool, secret) : 0;
      const originBefore = await originRequests(origin, statusReads);
      const cpuBefore = treeCpuSeconds(side.pid);
      const upCpuBefore = pixpool ? processCpuSeconds(side.pid) : undefined;
      const originCpuBefore = treeCpuSeconds(origin.child.pid);
      const run = await load(side, settings.durationSec);
      const cpuAfter = treeCpuSeconds(side.pid);
      const upCpuAfter = pixpool ? processCpuSeconds(side.pid) : undefined;
      const originCpuAfter = treeCpuSeconds(origin.child.pid);
      const originAfter = await originRequests(origin, statusReads);
      const missesAfter = pixpool ? await frontendMisses(pixpool, secret) : 0;
      wrkCommand = run.command.replace(ctx.tmp, '<tmp>');
      const r = run.result;
      if (r.errors.non2xx3xx > 0) {
        throw new Error(`${side.label}: ${r.errors.non2xx3xx} of ${r.requests} not 2xx/3xx`);
      }
      const perRequest = (a: typeof cpuBefore, b: typeof cpuBefore) =>
        cpuUsPerRequest(a, b, r.requests);
      const m: HopMeasurement = {
        round,
        side: side.label,
        wrk: r,
        wrkCpuPct: wrkCpuPct(run),
        cpuUs: perRequest(cpuBefore, cpuAfter),
        upCpuUs: perRequest(upCpuBefore, upCpuAfter),
        originCpuUs: side.origin ? perRequest(originCpuBefore, originCpuAfter) : undefined,
        originRequests: side.origin ? originAfter - originBefore : undefined,
        misses: pixpool ? missesAfter - missesBefore : undefined,
      };
      measurements.push(m);
      ctx.log(
        `${self.id}: round ${round}/${settings.rounds} ${side.label.padEnd(30)} ` +
          `${fmt.int(r.requestsPerSec)} req/s  p50 ${fmt.ms(r.latencyMs.p50)}  p99 ${fmt.ms(r.latencyMs.p99)}  ` +
          `CPU/req ${us(m.cpuUs)}${side.origin ? ` + origin ${us(m.originCpuUs)}` : ''}`,
      );
    });
    loadWindow.toUs = monotonicUs();
  } finally {
    for (const stop of stops.reverse()) await stop();
  }

  return summarize(ctx, self, {
    sides,
    measurements,
    notes,
    fairness,
    wrkCommand,
    profile: frontendProfile(ctx, profileName, loadWindow),
  });
}

/** The nodes' items and bytes as the manager's dashboard shows them, one phrase. */
async function dashboardNodes(up: PixpoolUp): Promise<string> {
  const response = await fetch(`${up.managerUrl}/api/manager/dashboard`);
  const answer = (await response.json()) as {
    content: { nodes: { id: string; items: number | null; bytes: number | null }[] };
  };
  return answer.content.nodes
    .map((n) => `${n.items ?? '?'} items / ${fmt.mib(n.bytes ?? 0)} MiB`)
    .join(', ');
}
