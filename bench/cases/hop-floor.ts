/**
 * Bench case `hop-floor` (issue 23): what the least Node program costs for the hop's workloads,
 * measured in the same conditions as hop-uniform, so pixpool's figures can be held against it.
 * bench/floor-server.ts is that program (node:net only, minimal on purpose):
 * - uniform random GETs over the same 2,000 ~100 KB images: a Node relay asking one of 4 Node
 *   backends (key n on backend n % 4) over kept-alive pipelined connections, then answering the
 *   client with the body gathered into one Buffer, or streamed chunk by chunk as it arrives;
 *   beside the nginx static origin of hop-uniform holding the same files (the machine's regime);
 * - the hot image, one ~100 KB body over and over: a bare net server vs nginx static, same file.
 *
 * Unpinned like hop-uniform (a relay side is five processes). Sides alternate round by round,
 * order flipped each round, medians of the rounds. CPU per request is summed over every process
 * of a side from /proc (relay and backends, also reported apart); the backends are shared by
 * both relays, but only one side is under load at a time.
 */
import { join } from 'node:path';
import type { BenchCase, BenchContext, CaseResult, Check } from '../lib/case.ts';
import { fmt } from '../lib/compare.ts';
import { floorBody } from '../lib/floor-bodies.ts';
import { startNginx, staticRoot } from '../lib/nginx.ts';
import {
  type Child,
  freePort,
  treeCpuSeconds,
  treesCpuSeconds,
  waitForOutput,
} from '../lib/processes.ts';
import { runWrk, type WrkResult } from '../lib/wrk.ts';
import { pathOf, readAll } from './hop.ts';
import {
  alternateSides,
  cpuUsPerRequest,
  IMAGE_BYTES,
  KEYS,
  loadNotes,
  optionalMedian,
  POOL_NODES,
  us,
  wrkCpuPct,
  wrkMedians,
} from './hop-report.ts';
import { randomKeyScript } from './post-key.ts';

/** Issue 23's targets, for the advisory checks. */
const HOP_TARGET_US = 120;
const HOT_TARGET_RATIO = 1.5;

const GATHERED = `Node relay (gathered) + ${POOL_NODES} Node backends`;
const STREAMED = `Node relay (streamed) + ${POOL_NODES} Node backends`;
const ORIGIN = 'nginx static origin';
const BARE = 'Node bare net server, one 100 KB body';
const HOT_NGINX = 'nginx static, the same file';

interface FloorSide {
  label: string;
  baseUrl: string;
  /** Uniform random keys (the Lua script) or the hot image (one path). */
  uniform: boolean;
  /** The processes whose CPU is the side's: the relay (or the server) first. */
  pid: number;
  /** A relay's backends, counted with it and also apart. */
  backendPids: number[];
  command: string;
}

interface FloorMeasurement {
  round: number;
  side: string;
  wrk: WrkResult;
  wrkCpuPct: number | undefined;
  /** All the side's processes, µs per request. */
  cpuUs: number | undefined;
  /** Relay sides: the relay alone, and the backends together. */
  relayCpuUs: number | undefined;
  backendsCpuUs: number | undefined;
}

export const hopFloor: BenchCase = {
  id: 'hop-floor',
  title: `The hop's floor on Node: a bare node:net relay + ${POOL_NODES} backends over ${KEYS.toLocaleString('en-US')} ~100 KB images (gathered, streamed) vs nginx static origin; a bare net server vs nginx static on one hot image (unpinned)`,
  // 5 sides × (warm-up + rounds): about 3 minutes of load with the default settings.
  optIn: true,
  run: (ctx) => runHopFloor(ctx, hopFloor),
};

async function runHopFloor(ctx: BenchContext, self: BenchCase): Promise<CaseResult> {
  const { settings, procs, tools } = ctx;
  const bodies = Array.from({ length: KEYS }, (_, i) => floorBody(i, IMAGE_BYTES));
  const all = bodies.map((_, i) => i);
  const script = randomKeyScript(ctx, self.id, 'hop-', KEYS);
  const server = join('bench', 'floor-server.ts');
  const stops: (() => Promise<unknown>)[] = [];
  const sides: FloorSide[] = [];
  const measurements: FloorMeasurement[] = [];
  const wrkCommands = { uniform: '', hot: '' };

  /** One floor-server process, listening. */
  async function floor(name: string, args: string[]): Promise<{ child: Child; port: number }> {
    const port = await freePort();
    const child = procs.spawn(
      name,
      process.execPath,
      [server, args[0] as string, String(port), ...args.slice(1)],
      {
        cwd: ctx.root,
        logFile: join(ctx.tmp, `${self.id}-${name.replaceAll(/\W+/g, '-')}.log`),
      },
    );
    stops.push(() => child.stop(5000));
    await waitForOutput(child, /listening on/, 30_000);
    return { child, port };
  }

  try {
    const www = join(ctx.tmp, `${self.id}-www`);
    for (const [i, body] of bodies.entries()) staticRoot(ctx, `${self.id}-www`, pathOf(i), body);
    ctx.log(`${self.id}: starting the nginx static origin and the floor servers`);
    const origin = await startNginx(procs, {
      nginx: tools.nginx,
      prefix: join(ctx.tmp, `${self.id}-origin`),
      root: www,
      readyPath: pathOf(0),
      defaultType: 'image/jpeg',
      location: 'expires 1d;',
    });
    stops.push(origin.stop);

    const backends = await Promise.all(
      Array.from({ length: POOL_NODES }, (_, i) =>
        floor(`floor backend ${i}`, [
          'backend',
          String(KEYS),
          String(IMAGE_BYTES),
          `${i}/${POOL_NODES}`,
        ]),
      ),
    );
    const backendPorts = backends.map((b) => b.port).join(',');
    const backendPids = backends.map((b) => b.child.pid);
    const gathered = await floor('floor relay gathered', ['relay', backendPorts]);
    const streamed = await floor('floor relay streamed', ['relay', backendPorts, '--stream']);
    const bare = await floor('floor static', ['static', String(IMAGE_BYTES)]);
    const url = (port: number) => `http://127.0.0.1:${port}`;
    const backendCommand = `${POOL_NODES} × node bench/floor-server.ts backend <port> ${KEYS} ${IMAGE_BYTES} <i>/${POOL_NODES} (each holding its ${KEYS / POOL_NODES} bodies)`;
    sides.push(
      {
        label: GATHERED,
        baseUrl: url(gathered.port),
        uniform: true,
        pid: gathered.child.pid,
        backendPids,
        command: `node bench/floor-server.ts relay <port> <backend ports>; ${backendCommand}`,
      },
      {
        label: STREAMED,
        baseUrl: url(streamed.port),
        uniform: true,
        pid: streamed.child.pid,
        backendPids,
        command: `node bench/floor-server.ts relay <port> <backend ports> --stream; the same backends`,
      },
      {
        label: ORIGIN,
        baseUrl: origin.baseUrl,
        uniform: true,
        pid: origin.child.pid,
        backendPids: [],
        command: `${origin.version}: static files, sendfile, tcp_nopush on, expires 1d, worker_processes 1 (hop-uniform's origin)`,
      },
      {
        label: BARE,
        baseUrl: url(bare.port),
        uniform: false,
        pid: bare.child.pid,
        backendPids: [],
        command: `node bench/floor-server.ts static <port> ${IMAGE_BYTES} (body 0, answered to every GET)`,
      },
      {
        label: HOT_NGINX,
        baseUrl: origin.baseUrl,
        uniform: false,
        pid: origin.child.pid,
        backendPids: [],
        command: `the origin above, always ${pathOf(0)}`,
      },
    );

    // Every side answers the right bytes before the load: every key, or the hot one.
    for (const side of sides) {
      ctx.log(`${self.id}: checking ${side.label}'s answers`);
      await readAll(side.baseUrl, side.uniform ? all : [0], bodies, side.label);
    }

    const load = (side: FloorSide, durationSec: number) =>
      runWrk(procs, {
        wrk: tools.wrk,
        url: `${side.baseUrl}${pathOf(0)}`,
        threads: settings.threads,
        connections: settings.connections,
        durationSec,
        cpus: undefined,
        script: side.uniform ? script : undefined,
      });
    await alternateSides(ctx, self.id, sides, load, async (side, round) => {
      const relayBefore = treeCpuSeconds(side.pid);
      const backendsBefore = treesCpuSeconds(side.backendPids);
      const run = await load(side, settings.durationSec);
      const relayAfter = treeCpuSeconds(side.pid);
      const backendsAfter = treesCpuSeconds(side.backendPids);
      wrkCommands[side.uniform ? 'uniform' : 'hot'] = run.command
        .replace(ctx.tmp, '<tmp>')
        .replace(side.baseUrl, 'http://127.0.0.1:<port>');
      const r = run.result;
      if (r.errors.non2xx3xx > 0) {
        throw new Error(`${side.label}: ${r.errors.non2xx3xx} of ${r.requests} not 2xx/3xx`);
      }
      const relayCpuUs = cpuUsPerRequest(relayBefore, relayAfter, r.requests);
      const backendsCpuUs =
        side.backendPids.length > 0
          ? cpuUsPerRequest(backendsBefore, backendsAfter, r.requests)
          : undefined;
      const m: FloorMeasurement = {
        round,
        side: side.label,
        wrk: r,
        wrkCpuPct: wrkCpuPct(run),
        cpuUs:
          relayCpuUs === undefined || (side.backendPids.length > 0 && backendsCpuUs === undefined)
            ? undefined
            : relayCpuUs + (backendsCpuUs ?? 0),
        relayCpuUs: side.backendPids.length > 0 ? relayCpuUs : undefined,
        backendsCpuUs,
      };
      measurements.push(m);
      ctx.log(
        `${self.id}: round ${round}/${settings.rounds} ${side.label.padEnd(40)} ` +
          `${fmt.int(r.requestsPerSec)} req/s  p50 ${fmt.ms(r.latencyMs.p50)}  p99 ${fmt.ms(r.latencyMs.p99)}  ` +
          `CPU/req ${us(m.cpuUs)}${m.relayCpuUs !== undefined ? ` (relay ${us(m.relayCpuUs)}, backends ${us(m.backendsCpuUs)})` : ''}`,
      );
    });
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
  return report(ctx, self, sides, measurements, wrkCommands);
}

function report(
  ctx: BenchContext,
  self: BenchCase,
  sides: FloorSide[],
  measurements: FloorMeasurement[],
  wrkCommands: { uniform: string; hot: string },
): CaseResult {
  const { settings } = ctx;
  const summaries = sides.map((side) => {
    const mine = measurements.filter((m) => m.side === side.label);
    return {
      side: side.label,
      command: side.command,
      uniform: side.uniform,
      ...wrkMedians(mine),
      cpuUs: optionalMedian(mine.map((m) => m.cpuUs)),
      relayCpuUs: optionalMedian(mine.map((m) => m.relayCpuUs)),
      backendsCpuUs: optionalMedian(mine.map((m) => m.backendsCpuUs)),
      cpuByRound: mine.map((m) => m.cpuUs),
    };
  });
  const find = (label: string) => summaries.find((s) => s.side === label);
  const gathered = find(GATHERED);
  const streamed = find(STREAMED);
  const origin = find(ORIGIN);
  const bare = find(BARE);
  const hotNginx = find(HOT_NGINX);
  const checks: Check[] = [];
  if (gathered?.cpuUs !== undefined) {
    checks.push({
      name: `${GATHERED}: CPU per request, µs (median of rounds; the floor under issue 23's hop target)`,
      value: gathered.cpuUs,
      target: `≤ ${HOP_TARGET_US}`,
      met: gathered.cpuUs <= HOP_TARGET_US,
      advisory: true,
    });
  }
  const hotRatio =
    bare?.cpuUs !== undefined && hotNginx?.cpuUs !== undefined
      ? bare.cpuUs / hotNginx.cpuUs
      : undefined;
  if (hotRatio !== undefined) {
    checks.push({
      name: `${BARE} ÷ ${HOT_NGINX}, CPU per request (ratio of medians; the floor under issue 23's hit-path target)`,
      value: hotRatio,
      target: `≤ ${HOT_TARGET_RATIO}`,
      met: hotRatio <= HOT_TARGET_RATIO,
      advisory: true,
    });
  }
  const notes: string[] = [];
  for (const s of [gathered, streamed]) {
    if (s?.cpuUs === undefined || origin?.cpuUs === undefined) continue;
    notes.push(
      `${s.side}: ${us(s.cpuUs)} per request (relay ${us(s.relayCpuUs)}, the ${POOL_NODES} backends ${us(s.backendsCpuUs)}), ${fmt.ratio(s.cpuUs / origin.cpuUs)}× the nginx static origin's ${us(origin.cpuUs)}; by round ${s.cpuByRound.map((c) => (c === undefined ? '–' : c.toFixed(1))).join(', ')}.`,
    );
  }
  if (hotRatio !== undefined && bare && hotNginx) {
    notes.push(
      `Hot image: ${us(bare.cpuUs)} vs ${us(hotNginx.cpuUs)} per request, ${fmt.ratio(hotRatio)}× (by round ${bare.cpuByRound.map((c, i) => (c !== undefined && hotNginx.cpuByRound[i] !== undefined ? (c / (hotNginx.cpuByRound[i] as number)).toFixed(2) : '–')).join(', ')}); req/s ${fmt.ratio(bare.requestsPerSec / hotNginx.requestsPerSec)}×.`,
    );
  }
  notes.push(...loadNotes(summaries, measurements));
  return {
    id: self.id,
    title: self.title,
    fairness: [
      `The floor servers: bench/floor-server.ts on this Node (${process.version}), one process each, started with node directly (type stripping, no tsx), node:net only: no HTTP library, no routing, no auth, no checks — the least a Node program does for this work, not a product. The relay connects to each backend at its first request and pipelines the requests of one event-loop turn in one write; its answer head is three lines (status, content-type, content-length).`,
      ...summaries.map((s) => `${s.side}: ${s.command}.`),
      `Bodies: ${KEYS.toLocaleString('en-US')} distinct deterministic ${IMAGE_BYTES.toLocaleString('en-US')}-byte bodies (bench/lib/floor-bodies.ts, AES-CTR: incompressible), the same bytes in the backends and in nginx's files at the same paths /images/hop-<n>; body 0 is the hot image. Every side answered every key it serves (the relays and the origin all ${KEYS.toLocaleString('en-US')}, the hot sides ${pathOf(0)}) with those bytes (200, SHA-256 compared) before the load.`,
      `CPU per request: user + system from /proc over the side's processes (a relay side: the relay and its ${POOL_NODES} backends; the backends serve both relays, only one side is under load at a time), ÷ wrk's requests.`,
      `Load: uniform sides ${wrkCommands.uniform} — a uniformly random key of the ${KEYS.toLocaleString('en-US')} per request (hop-uniform's Lua script); hot sides ${wrkCommands.hot}.`,
      `Nothing pinned, as in hop-uniform: servers and wrk share the machine's CPUs as the OS schedules them. ${settings.rounds} rounds of ${settings.durationSec} s per side after a ${settings.warmupSec} s warm-up each; sides alternate, order flipped every round; medians of the rounds, each column on its own.`,
    ],
    table: {
      head: [
        'side',
        'req/s',
        'p50',
        'p99',
        'CPU/req',
        'relay CPU/req',
        'backends CPU/req',
        'wrk CPU',
        'req/s by round',
      ],
      rows: summaries.map((s) => [
        s.side,
        fmt.int(s.requestsPerSec),
        fmt.ms(s.p50Ms),
        fmt.ms(s.p99Ms),
        us(s.cpuUs),
        us(s.relayCpuUs),
        us(s.backendsCpuUs),
        fmt.pct(s.wrkCpuPct),
        s.rounds.map(fmt.int).join(' / '),
      ]),
    },
    checks,
    notes,
    figures: {
      keys: KEYS,
      imageBytes: IMAGE_BYTES,
      backends: POOL_NODES,
      wrkCommands,
      sides: summaries,
      measurements,
    },
  };
}
