/**
 * Node to node alone: two fresh cache-node processes pinned to one CPU, the first filled with
 * values in every region, then told to hand `regions` to the second (POST move_keys, the call a
 * resize makes). Prints the wall time and the CPU both processes spent per MiB. A first run is
 * cold (fresh receiver, the sender's first hand-over); the second moves the next regions warm.
 *
 *   node --import tsx bench/handover-pair.ts [MiB filled, default 100] [cpu, default 0]
 *
 * Env: UNTUNED=1 (nodes without bin/pixpool.js's runtime tuning), NODE_FLAGS="…" (more node
 * flags), PROFILE=<dir> (--cpu-prof), PERF=<prefix> (perf record), TRACE_GC=<prefix> (--trace-gc).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { regionOf } from '../src/core/regions.ts';
import { startCacheNode } from './lib/cachenode.ts';
import { ProcessGroup, treeCpuSeconds } from './lib/processes.ts';

const mib = Number(process.argv[2] ?? 100);
const cpus = process.argv[3] ?? '0';
const VALUE = 100 * 1024;
const secret = randomBytes(16).toString('hex');
const procs = new ProcessGroup('/usr/bin/taskset');
const root = new URL('..', import.meta.url).pathname;
try {
  const [a, b] = await Promise.all(
    [0, 1].map((i) =>
      startCacheNode(procs, {
        root,
        secret,
        capacityMb: 1024,
        cpus,
        // UNTUNED=1: nodes without the memory-lean runtime (bin/pixpool.js), for comparison.
        ...(process.env.UNTUNED && { env: { PIXPOOL_NODE_TUNED: '1' } }),
        // PROFILE=<dir>: both nodes under --cpu-prof (sender-*.cpuprofile, receiver-*).
        ...(process.env.TRACE_GC && {
          logFile: `${process.env.TRACE_GC}-${i ? 'receiver' : 'sender'}.log`,
        }),
        // NODE_FLAGS="…": more node flags (with UNTUNED=1, to try the tuning's parts one by one).
        nodeFlags: [
          ...(process.env.NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
          ...(process.env.TRACE_GC
            ? ['--trace-gc']
            : process.env.PERF
              ? ['--perf-basic-prof']
              : process.env.PROFILE
                ? [
                    '--cpu-prof',
                    `--cpu-prof-dir=${process.env.PROFILE}`,
                    `--cpu-prof-name=${i ? 'receiver' : 'sender'}.cpuprofile`,
                  ]
                : []),
        ],
      }),
    ),
  );
  if (!a || !b) throw new Error('no nodes');
  const perRegion = new Array<number>(16).fill(0);
  const count = Math.round((mib * 1024 * 1024) / VALUE);
  const base = randomBytes(VALUE);
  for (let i = 0; i < count; i += 8) {
    await Promise.all(
      Array.from({ length: Math.min(8, count - i) }, async (_, j) => {
        const key = `pair-${i + j}`;
        const value = Buffer.from(base);
        value.writeUInt32BE(i + j, 0);
        perRegion[regionOf(key)] = (perRegion[regionOf(key)] ?? 0) + VALUE;
        await a.put(key, value, 'image/jpeg');
      }),
    );
  }
  await sleep(1000); // let the fill's garbage settle, as the bench case does
  const runs: [string, number[]][] = [
    ['cold', [0, 1, 2]],
    ['warm', [3, 4, 5]],
  ];
  for (const [label, regions] of runs) {
    const bytes = regions.reduce((sum, r) => sum + (perRegion[r] ?? 0), 0);
    const cpuBefore = [a, b].map((n) => treeCpuSeconds(n.child.pid));
    // PERF=<prefix>: `perf record` of both nodes over each move (<prefix>-cold.data, -warm.data).
    const perf = process.env.PERF
      ? spawn(
          'perf',
          [
            'record',
            '-F',
            '4999',
            '-g',
            '-o',
            `${process.env.PERF}-${label}.data`,
            '-p',
            `${a.child.pid},${b.child.pid}`,
          ],
          { stdio: 'ignore' },
        )
      : undefined;
    if (perf) await sleep(500);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    console.log(`${label} starts`);
    const t0 = performance.now();
    const response = await fetch(`${a.baseUrl}/api/cache/move_keys`, {
      method: 'POST',
      headers: { authorization: a.authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ to: b.baseUrl, regions }),
    });
    const text = await response.text();
    const ms = performance.now() - t0;
    const cpu = [a, b].map((n, i) => {
      const now = treeCpuSeconds(n.child.pid);
      const was = cpuBefore[i];
      return now && was ? now.user + now.system - was.user - was.system : Number.NaN;
    });
    if (perf) {
      perf.kill('SIGINT');
      await once(perf, 'exit');
    }
    if (response.status !== 200) throw new Error(`${response.status} ${text}`);
    const moved = bytes / 1024 / 1024;
    console.log(
      `${label}: ${moved.toFixed(1)} MiB in ${ms.toFixed(0)} ms = ${(moved / (ms / 1000)).toFixed(0)} MiB/s; ` +
        `(window ${fromUs}–${Number(process.hrtime.bigint() / 1000n)} µs) CPU per MiB sender ${(((cpu[0] ?? 0) * 1000) / moved).toFixed(2)} ms, receiver ${(((cpu[1] ?? 0) * 1000) / moved).toFixed(2)} ms`,
    );
  }
} finally {
  await procs.shutdown();
}
