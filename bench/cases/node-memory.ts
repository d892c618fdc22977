/**
 * 'node-memory' (issue 7): how much memory a cache node process takes once it is full of 100 KB
 * items. Target: RSS ≤ 1.15 × capacity + 80 MB.
 *
 * For each configuration (capacity 256 / 1024 MB, LRU / RR, fill path; see CONFIGS) a fresh node
 * process is started the way bench/lib/cachenode.ts starts every node peer, then filled with
 * distinct 100 KB values well past full (1.5 × capacity, so eviction churns for the last third),
 * several requests in flight, through either
 *   - the binary path: PUT /v1/entries/<key> with the raw bytes (what frontends use), or
 *   - the seed JSON API: POST /api/cache/content {key, value: "data:image/jpeg;base64,…"}.
 * Then it is left alone (no GC forced from outside, no requests) and its memory is read from
 * /proc/<pid>/status: VmRSS (resident now) and VmHWM (the peak), right after the fill, after a
 * short settle (the checked figure) and after a longer idle period; the node's own byte count
 * comes from GET /api/cache/statistics.
 *
 * An empty node's RSS is reported too: that is the fixed cost (Node, V8, Fastify, tsx) the
 * "+ 80 MB" is meant to cover.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CacheNode, startCacheNode } from '../lib/cachenode.ts';
import type { BenchCase, BenchContext, CaseResult } from '../lib/case.ts';

const KB = 1024;
const MiB = 1024 * 1024;
const VALUE_BYTES = 100 * KB;
/** Requests in flight during the fill. */
const FILL_CONCURRENCY = 8;
/** How far past the capacity the fill goes. */
const FILL_FACTOR = 1.5;
/** Quiet time before the checked reading, and before the idle reading. */
const SETTLE_MS = 3_000;
const IDLE_MS = 15_000;

export type FillPath = 'binary' | 'seed';

export interface MemoryConfig {
  capacityMb: number;
  policy: 'LRU' | 'RR';
  path: FillPath;
  /** Extra environment for the node process. */
  env?: Record<string, string>;
}

/** The node without the memory-lean runtime bin/pixpool.js gives `cache-node` (Node's defaults). */
const UNTUNED = { PIXPOOL_NODE_TUNED: '1' };

/**
 * Both capacities and policies through the binary path; the seed path (slow: base64 JSON) at
 * 256 MB with both policies and at 1024 MB with LRU; and the binary path again without the
 * memory-lean runtime (PIXPOOL_NODE_TUNED=1: Node's and glibc's defaults), to show what it saves.
 */
const CONFIGS: MemoryConfig[] = [
  ...[256, 1024].flatMap((capacityMb) =>
    (['LRU', 'RR'] as const).map((policy) => ({ capacityMb, policy, path: 'binary' as const })),
  ),
  { capacityMb: 256, policy: 'LRU', path: 'seed' },
  { capacityMb: 256, policy: 'RR', path: 'seed' },
  { capacityMb: 1024, policy: 'LRU', path: 'seed' },
  { capacityMb: 256, policy: 'LRU', path: 'binary', env: UNTUNED },
  { capacityMb: 1024, policy: 'LRU', path: 'binary', env: UNTUNED },
];

/** Allowed RSS for a capacity, bytes. */
export const rssTarget = (capacityMb: number) => (1.15 * capacityMb + 80) * MiB;

export interface ProcMemory {
  rss: number;
  hwm: number;
  rssAnon: number;
}

/** VmRSS, VmHWM and RssAnon of a process, bytes. */
export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(match[1]) * KB;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM'), rssAnon: field('RssAnon') };
}

interface NodeStats {
  items: number;
  bytes: number;
  evictions: number;
}

async function nodeStats(node: CacheNode): Promise<NodeStats> {
  const response = await fetch(`${node.baseUrl}/api/cache/statistics`, {
    headers: { authorization: node.authorization },
  });
  if (response.status !== 200) {
    throw new Error(`GET /api/cache/statistics answered ${response.status}`);
  }
  const { content } = (await response.json()) as { content: NodeStats };
  return { items: content.items, bytes: content.bytes, evictions: content.evictions };
}

/**
 * Puts `count` distinct VALUE_BYTES values into the node through `path`, FILL_CONCURRENCY in
 * flight; resolves with the bytes sent (values only) and the wall time.
 */
export async function fillNode(
  node: CacheNode,
  path: FillPath,
  count: number,
  prefix: string,
): Promise<{ bytes: number; ms: number }> {
  let next = 0;
  let bytes = 0;
  const t0 = performance.now();
  const worker = async () => {
    // One buffer per worker, its first bytes rewritten per value: distinct values, no garbage.
    const value = randomBytes(VALUE_BYTES);
    value[0] = 0xff; // a JPEG signature, so the seed API sniffs the same type either way
    value[1] = 0xd8;
    value[2] = 0xff;
    while (next < count) {
      const i = next++;
      value.writeUInt32BE(i, 4);
      const key = `${prefix}-${i}`;
      const response =
        path === 'binary'
          ? await fetch(`${node.baseUrl}/v1/entries/${encodeURIComponent(key)}`, {
              method: 'PUT',
              headers: {
                authorization: node.authorization,
                'content-type': 'image/jpeg',
                'x-pixpool-version': '1',
              },
              body: value,
            })
          : await fetch(`${node.baseUrl}/api/cache/content`, {
              method: 'POST',
              headers: { authorization: node.authorization, 'content-type': 'application/json' },
              body: JSON.stringify({
                key,
                value: `data:image/jpeg;base64,${value.toString('base64')}`,
              }),
            });
      const text = await response.text();
      const ok = path === 'binary' ? response.status === 204 : response.status === 200;
      if (!ok) throw new Error(`${path} fill of ${key} answered ${response.status}: ${text}`);
      bytes += value.length;
    }
  };
  await Promise.all(Array.from({ length: FILL_CONCURRENCY }, worker));
  return { bytes, ms: performance.now() - t0 };
}

export interface MemoryRun {
  config: MemoryConfig;
  command: string;
  empty: ProcMemory;
  filled: { bytes: number; ms: number; values: number };
  afterFill: ProcMemory;
  settled: ProcMemory;
  idle: ProcMemory;
  stats: NodeStats;
  targetBytes: number;
}

/** One configuration on a fresh node process. */
export async function measureNodeMemory(
  ctx: BenchContext,
  config: MemoryConfig,
  options: { env?: Record<string, string>; nodeFlags?: string[]; label?: string } = {},
): Promise<MemoryRun> {
  const label =
    options.label ??
    `${config.capacityMb}-${config.policy}-${config.path}${config.env ? '-env' : ''}`;
  const env = { ...config.env, ...options.env };
  const node = await startCacheNode(ctx.procs, {
    root: ctx.root,
    secret: randomBytes(24).toString('base64url'),
    capacityMb: config.capacityMb,
    policy: config.policy,
    cpus: ctx.cpus.server,
    ...(options.nodeFlags && { nodeFlags: options.nodeFlags }),
    env,
    logFile: join(ctx.tmp, `node-memory-${label}.log`),
  });
  try {
    const pid = node.child.pid;
    await sleep(1000);
    const empty = procMemory(pid);
    const values = Math.ceil((FILL_FACTOR * config.capacityMb * MiB) / VALUE_BYTES);
    const filled = await fillNode(node, config.path, values, `mem-${label}`);
    const afterFill = procMemory(pid);
    const stats = await nodeStats(node);
    await sleep(SETTLE_MS);
    const settled = procMemory(pid);
    await sleep(IDLE_MS - SETTLE_MS);
    const idle = procMemory(pid);
    return {
      config,
      command: node.command,
      empty,
      filled: { ...filled, values },
      afterFill,
      settled,
      idle,
      stats,
      targetBytes: rssTarget(config.capacityMb),
    };
  } finally {
    await node.stop();
  }
}

const mib = (bytes: number) => (bytes / MiB).toFixed(1);

export const nodeMemory: BenchCase = {
  id: 'node-memory',
  title: `Cache node memory when full of 100 KB items (256 / 1024 MB, LRU / RR, binary PUT and seed JSON fill, ${FILL_FACTOR} × capacity)`,
  run: (ctx) => runNodeMemory(ctx),
};

async function runNodeMemory(ctx: BenchContext): Promise<CaseResult> {
  const name = (c: MemoryConfig) =>
    `${c.capacityMb} MB ${c.policy}, ${c.path}${
      c.env
        ? ` (${Object.entries(c.env)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')})`
        : ''
    }`;
  // Every start of a node after a machine's first finds its modules in Node's compile cache
  // (bin/pixpool.js), and one that does never loads the type stripper, so its RSS is lower
  // (bench/RESULTS.md, "Node's compile cache"). One start of each runtime first, so that every
  // measured start is such a start.
  for (const env of [{}, UNTUNED]) {
    const node = await startCacheNode(ctx.procs, {
      root: ctx.root,
      secret: randomBytes(24).toString('base64url'),
      capacityMb: 16,
      policy: 'LRU',
      env,
      logFile: join(ctx.tmp, 'node-memory-warm-up.log'),
    });
    await sleep(1000);
    await node.stop();
  }
  const runs: MemoryRun[] = [];
  for (const config of CONFIGS) {
    ctx.log(`node-memory: ${name(config)} fill`);
    const run = await measureNodeMemory(ctx, config);
    runs.push(run);
    ctx.log(
      `node-memory: ${name(config)}: ` +
        `${run.stats.items} items / ${mib(run.stats.bytes)} MiB held; RSS empty ${mib(run.empty.rss)}, ` +
        `after fill ${mib(run.afterFill.rss)}, settled ${mib(run.settled.rss)}, idle ${mib(run.idle.rss)}, ` +
        `peak ${mib(run.idle.hwm)} MiB (target ≤ ${mib(run.targetBytes)}); fill ` +
        `${(run.filled.bytes / MiB / (run.filled.ms / 1000)).toFixed(0)} MiB/s`,
    );
  }
  return {
    id: nodeMemory.id,
    title: nodeMemory.title,
    fairness: [
      `Each configuration runs on a fresh node process (${runs[0]?.command.replace(/--capacity \d+ --policy \w+/, '--capacity <MB> --policy <LRU|RR>') ?? ''}), pinned to CPU ${ctx.cpus.server ?? '(not pinned)'}, which re-executes itself with --max-semi-space-size=1 --optimize-for-size, MALLOC_ARENA_MAX=2 and MALLOC_MMAP_THRESHOLD_=69632 (bin/pixpool.js) unless PIXPOOL_NODE_TUNED=1; no forced GC. One node of each runtime was started and stopped before, so every measured start found its modules in Node's compile cache, as every start after a machine's first does (the first start on a machine takes ~15 MiB more: bin/pixpool.js).`,
      `Fill: ${FILL_FACTOR} × capacity of distinct ${VALUE_BYTES.toLocaleString('en-US')}-byte values, ${FILL_CONCURRENCY} requests in flight from the runner over kept-alive loopback connections; binary = PUT /v1/entries/<key> (raw body, x-pixpool-version 1), seed = POST /api/cache/content with a JSON body {key, value: data URL, base64}.`,
      `Memory from /proc/<pid>/status: VmRSS right after the last answer, after ${SETTLE_MS / 1000} s without requests (checked), after ${IDLE_MS / 1000} s (idle); VmHWM is the process's peak RSS. MiB = 1,048,576 bytes; the capacity's MB is MiB too (the node's unit).`,
    ],
    table: {
      head: [
        'configuration',
        'held (node)',
        'RSS empty',
        'RSS after fill',
        'RSS settled',
        'RSS idle',
        'peak (HWM)',
        'target',
        'fill MiB/s',
      ],
      rows: runs.map((r) => [
        name(r.config),
        `${mib(r.stats.bytes)} MiB, ${r.stats.items} items`,
        mib(r.empty.rss),
        mib(r.afterFill.rss),
        mib(r.settled.rss),
        mib(r.idle.rss),
        mib(r.idle.hwm),
        `≤ ${mib(r.targetBytes)}`,
        (r.filled.bytes / MiB / (r.filled.ms / 1000)).toFixed(0),
      ]),
    },
    checks: runs.map((r) => ({
      name: `${name(r.config)}: settled RSS ÷ (1.15 × capacity + 80 MB)`,
      value: r.settled.rss / r.targetBytes,
      target: '≤ 1',
      met: r.settled.rss <= r.targetBytes,
    })),
    notes: [
      'Absolute figures for this machine (2 shared CPUs, other work may run); RSS depends little on speed, but the peak can vary with how far garbage collection lags behind the fill.',
      ...runs
        .filter((r) => r.stats.bytes > r.config.capacityMb * MiB)
        .map((r) => `${name(r.config)}: the node holds more than its capacity (${r.stats.bytes}).`),
    ],
    figures: { valueBytes: VALUE_BYTES, fillFactor: FILL_FACTOR, runs },
  };
}
