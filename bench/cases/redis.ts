/**
 * A cache node next to Redis, the other thing a user would put in front of S3 (issue 7: "Redis
 * where it compares"). Two comparisons, both sides on the server CPU, one at a time:
 *
 * 1. GET of one 100 KB value, 32 connections: the node's binary path (GET /v1/entries/<key>)
 *    under wrk, Redis's GET under redis-benchmark. wrk speaks only HTTP and redis-benchmark only
 *    RESP, so this one comparison has two load generators, both single-threaded C on the load
 *    CPU; their own CPU use is reported so a saturated generator shows. Rounds alternate sides.
 * 2. Memory when full: each with a 256 MiB budget (node --capacity 256; Redis maxmemory 256mb,
 *    allkeys-lru), filled with 1.5 × the budget of distinct 100 KB values, then resident memory
 *    (VmRSS) of each process. Redis counts its own bookkeeping in maxmemory while the node counts
 *    only image bytes, so the table also shows what each actually holds.
 *
 * Redis runs without persistence (--save '' --appendonly no), as a cache would.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCacheNode } from '../lib/cachenode.ts';
import type { BenchCase, BenchContext, CaseResult } from '../lib/case.ts';
import { fmt, median } from '../lib/compare.ts';
import { type Child, freePort, treeCpuSeconds } from '../lib/processes.ts';
import { which } from '../lib/tools.ts';
import { parseTimes, runWrk } from '../lib/wrk.ts';

const KB = 1024;
const MiB = 1024 * 1024;
const VALUE_BYTES = 100 * KB;
const BUDGET_MB = 256;

export const redisCompare: BenchCase = {
  id: 'redis-100k',
  title: 'Cache node vs Redis: GET of a 100 KB value, and memory when full of 100 KB values',
  run: runRedisCompare,
};

interface Round {
  side: 'cache node' | 'redis';
  round: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPct: number | undefined;
  loadCpuPct: number | undefined;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]) / 1024;
}

async function runRedisCompare(ctx: BenchContext): Promise<CaseResult> {
  const redisServer = which('redis-server');
  const redisBenchmark = which('redis-benchmark');
  const redisCli = which('redis-cli');
  if (!redisServer || !redisBenchmark || !redisCli) {
    throw new Error(
      'redis-server, redis-benchmark and redis-cli are needed (apt-get install redis-server redis-tools).',
    );
  }
  const { settings, cpus, procs } = ctx;
  const secret = randomBytes(24).toString('base64url');
  const value = randomBytes(VALUE_BYTES);
  const valueFile = join(ctx.tmp, 'redis-value.bin');
  writeFileSync(valueFile, value);

  const startRedis = async (): Promise<{
    child: Child;
    port: number;
    cli: (...args: string[]) => string;
  }> => {
    const port = await freePort();
    const child = procs.spawn(
      'redis-server',
      redisServer,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory',
        `${BUDGET_MB}mb`,
        '--maxmemory-policy',
        'allkeys-lru',
        '--dir',
        ctx.tmp,
      ],
      { cpus: cpus.server },
    );
    const cli = (...args: string[]) =>
      execFileSync(redisCli, ['-p', String(port), ...args], { encoding: 'utf8' }).trim();
    for (let i = 0; ; i++) {
      try {
        if (cli('PING') === 'PONG') break;
      } catch {
        // not listening yet
      }
      if (i > 100 || child.done()) throw new Error(`redis-server did not start:\n${child.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { child, port, cli };
  };

  // 1. GET of one 100 KB value.
  const node = await startCacheNode(procs, {
    root: ctx.root,
    secret,
    capacityMb: BUDGET_MB,
    policy: 'LRU',
    cpus: cpus.server,
  });
  await node.put('bench-100k', value, 'image/jpeg', 1);
  const redis = await startRedis();
  // redis-benchmark's GET asks for the literal key "key:__rand_int__" when -r is not given.
  execFileSync(redisCli, ['-p', String(redis.port), '-x', 'SET', 'key:__rand_int__'], {
    input: value,
  });
  if (Number(redis.cli('STRLEN', 'key:__rand_int__')) !== VALUE_BYTES)
    throw new Error('Redis did not store the value.');

  const nodeRun = async (durationSec: number) => {
    const before = treeCpuSeconds(node.child.pid);
    const run = await runWrk(procs, {
      wrk: ctx.tools.wrk,
      url: `${node.baseUrl}/v1/entries/bench-100k`,
      headers: { authorization: node.authorization },
      threads: settings.threads,
      connections: settings.connections,
      durationSec,
      cpus: cpus.load,
    });
    const after = treeCpuSeconds(node.child.pid);
    if (run.result.errors.non2xx3xx > 0)
      throw new Error(`cache node: non-2xx answers\n${run.output}`);
    return {
      requestsPerSec: run.result.requestsPerSec,
      p50Ms: run.result.latencyMs.p50,
      p99Ms: run.result.latencyMs.p99,
      serverCpuPct:
        before && after
          ? ((after.user + after.system - before.user - before.system) / run.wallSec) * 100
          : undefined,
      loadCpuPct: run.cpu ? ((run.cpu.user + run.cpu.system) / run.wallSec) * 100 : undefined,
      command: run.command,
    };
  };
  // redis-benchmark runs a request count, not a duration: size it from a short probe.
  const redisRun = async (requests: number) => {
    const before = treeCpuSeconds(redis.child.pid);
    const script = '"$@"; status=$?; times >&2; exit $status';
    const args = [
      '-p',
      String(redis.port),
      '-c',
      String(settings.connections),
      '-n',
      String(requests),
      '-t',
      'get',
      '--csv',
    ];
    const started = performance.now();
    const child = procs.spawn(
      'redis-benchmark',
      'bash',
      ['-c', script, 'rb', redisBenchmark, ...args],
      { cpus: cpus.load },
    );
    const code = await child.exited;
    const wallSec = (performance.now() - started) / 1000;
    const after = treeCpuSeconds(redis.child.pid);
    if (code !== 0) throw new Error(`redis-benchmark exited with ${code}:\n${child.tail()}`);
    const row = child
      .stdout()
      .trim()
      .split('\n')
      .find((l) => l.startsWith('"GET"'));
    if (!row) throw new Error(`redis-benchmark printed no GET row:\n${child.stdout()}`);
    const cells = row.split(',').map((c) => Number(c.replaceAll('"', '')));
    const loadCpu = parseTimes(child.stderr());
    return {
      requestsPerSec: cells[1] as number,
      p50Ms: cells[4] as number,
      p99Ms: cells[6] as number,
      serverCpuPct:
        before && after
          ? ((after.user + after.system - before.user - before.system) / wallSec) * 100
          : undefined,
      loadCpuPct: loadCpu ? ((loadCpu.user + loadCpu.system) / wallSec) * 100 : undefined,
      command: `redis-benchmark ${args.join(' ')}`,
    };
  };

  const rounds: Round[] = [];
  const commands = { node: '', redis: '' };
  try {
    if (settings.warmupSec > 0) {
      ctx.log(`redis-100k: warming up both (${settings.warmupSec} s each)`);
      await nodeRun(settings.warmupSec);
    }
    const probe = await redisRun(5000);
    let redisRequests = Math.max(5000, Math.round(probe.requestsPerSec * settings.durationSec));
    for (let round = 1; round <= settings.rounds; round++) {
      const order =
        round % 2 === 1 ? (['cache node', 'redis'] as const) : (['redis', 'cache node'] as const);
      for (const side of order) {
        const r =
          side === 'redis' ? await redisRun(redisRequests) : await nodeRun(settings.durationSec);
        if (side === 'redis') {
          commands.redis = r.command;
          redisRequests = Math.max(5000, Math.round(r.requestsPerSec * settings.durationSec));
        } else commands.node = r.command.replace(secret, '<secret>');
        rounds.push({ side, round, ...r });
        ctx.log(
          `redis-100k: round ${round} ${side.padEnd(10)} ${fmt.int(r.requestsPerSec)} req/s p50 ${fmt.ms(r.p50Ms)} p99 ${fmt.ms(r.p99Ms)} server CPU ${fmt.pct(r.serverCpuPct)} load CPU ${fmt.pct(r.loadCpuPct)}`,
        );
      }
    }
  } finally {
    await node.stop();
    await redis.child.stop();
  }

  // 2. Memory when full: fresh processes, 1.5 × the budget of distinct values.
  const count = Math.ceil((1.5 * BUDGET_MB * MiB) / VALUE_BYTES);
  const memNode = await startCacheNode(procs, {
    root: ctx.root,
    secret,
    capacityMb: BUDGET_MB,
    policy: 'LRU',
    cpus: cpus.server,
  });
  const memRedis = await startRedis();
  let memory: {
    nodeRss: number;
    redisRss: number;
    redisUsed: number;
    redisKeys: number;
    nodeBytes: number;
    nodeItems: number;
  };
  try {
    const fill = Buffer.from(value);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) {
          const i = next++;
          fill.writeUInt32BE(i, 0);
          await memNode.put(`fill-${i}`, Buffer.from(fill), 'image/jpeg', 1);
        }
      }),
    );
    // Redis: the same count of distinct keys through redis-benchmark's SET (values of 'x' bytes;
    // Redis stores strings as given, without compression). -r draws keys from 10^9, so repeats
    // among ~4,000 draws are negligible.
    execFileSync(
      redisBenchmark,
      [
        '-p',
        String(memRedis.port),
        '-c',
        '8',
        '-n',
        String(count),
        '-t',
        'set',
        '-d',
        String(VALUE_BYTES),
        '-r',
        '1000000000',
        '-q',
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 2000));
    const answer = (await (
      await fetch(`${memNode.baseUrl}/api/cache/statistics`, {
        headers: { authorization: memNode.authorization },
      })
    ).json()) as { content: { bytes: number; items: number } };
    const stats = answer.content;
    const info = memRedis.cli('INFO', 'memory');
    memory = {
      nodeRss: rssMiB(memNode.child.pid),
      redisRss: rssMiB(memRedis.child.pid),
      redisUsed: Number(/used_memory:(\d+)/.exec(info)?.[1]) / MiB,
      redisKeys: Number(/keys=(\d+)/.exec(memRedis.cli('INFO', 'keyspace'))?.[1] ?? 0),
      nodeBytes: Number(stats.bytes) / MiB,
      nodeItems: Number(stats.items),
    };
  } finally {
    await memNode.stop();
    await memRedis.child.stop();
  }

  const side = (name: Round['side']) => {
    const mine = rounds.filter((r) => r.side === name);
    const pick = (f: (r: Round) => number | undefined) => {
      const values = mine.map(f).filter((v): v is number => v !== undefined);
      return values.length ? median(values) : Number.NaN;
    };
    return {
      rps: pick((r) => r.requestsPerSec),
      p50: pick((r) => r.p50Ms),
      p99: pick((r) => r.p99Ms),
      cpu: pick((r) => r.serverCpuPct),
      load: pick((r) => r.loadCpuPct),
    };
  };
  const n = side('cache node');
  const r = side('redis');
  const ratio = n.rps / r.rps;
  const memRatio = memory.nodeRss / memory.redisRss;

  return {
    id: redisCompare.id,
    title: redisCompare.title,
    fairness: [
      cpus.description,
      'GET: the node under wrk (HTTP), Redis under redis-benchmark (RESP), both single-threaded C load generators on the load CPU with the same 32 connections and one request in flight per connection; rounds alternate the order. Redis answers a 100 KB bulk string, the node a 100 KB HTTP body with its headers.',
      `Memory: both with a ${BUDGET_MB} MiB budget, filled with ${count} distinct 100 KB values (1.5 × the budget, so both evict), 8 writers, then 2 s idle before reading VmRSS.`,
    ],
    table: {
      head: ['measure', 'cache node', 'Redis', 'node ÷ Redis'],
      rows: [
        ['GET 100 KB, req/s (median)', fmt.int(n.rps), fmt.int(r.rps), fmt.ratio(ratio)],
        ['GET p50', fmt.ms(n.p50), fmt.ms(r.p50), fmt.ratio(n.p50 / r.p50)],
        ['GET p99', fmt.ms(n.p99), fmt.ms(r.p99), fmt.ratio(n.p99 / r.p99)],
        ['server CPU', fmt.pct(n.cpu), fmt.pct(r.cpu), ''],
        ['load generator CPU', fmt.pct(n.load), fmt.pct(r.load), ''],
        [
          'RSS when full (MiB)',
          memory.nodeRss.toFixed(0),
          memory.redisRss.toFixed(0),
          fmt.ratio(memRatio),
        ],
        [
          'values held (MiB)',
          memory.nodeBytes.toFixed(0),
          `${((memory.redisKeys * VALUE_BYTES) / MiB).toFixed(0)} (used_memory ${memory.redisUsed.toFixed(0)})`,
          '',
        ],
        ['values held (count)', fmt.int(memory.nodeItems), fmt.int(memory.redisKeys), ''],
      ],
    },
    checks: [
      {
        name: 'cache node ÷ Redis, GET req/s',
        value: ratio,
        target: 'reported',
        met: true,
        advisory: true,
      },
      {
        name: 'cache node ÷ Redis, RSS when full',
        value: memRatio,
        target: 'reported',
        met: true,
        advisory: true,
      },
    ],
    notes: [
      `Per round: ${rounds.map((x) => `${x.side} ${fmt.int(x.requestsPerSec)}`).join(', ')} req/s.`,
      `Commands: ${commands.node}; ${commands.redis}.`,
    ],
    figures: { rounds, memory, count },
  };
}
