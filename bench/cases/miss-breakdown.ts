/**
 * Where a miss's CPU goes (issue 23: "show the share of the metadata read, the object read, the
 * node fill and the near-cache copy"), for the frontend-miss-100k case: CPU per request of each
 * process of the `up` tree from /proc (the frontend in the up process, the cache node), and with
 * --cpu-prof each process's busy time split into the steps of a miss by the frames on its
 * samples' stacks (cpuprofile.ts, stackShares), then scaled to µs per request.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../lib/case.ts';
import {
  type Frame,
  formatProfile,
  type ProfileWindow,
  type StackGroup,
  stackShares,
  summarizeProfile,
} from '../lib/cpuprofile.ts';
import { type CpuTime, processCpuSeconds, treeMemory } from '../lib/processes.ts';

const url = (pattern: RegExp) => (frame: Frame) => pattern.test(frame.url);
const fn = (file: RegExp, names: string[]) => (frame: Frame) =>
  file.test(frame.url) && names.includes(frame.functionName);

/** The frontend's steps of a miss; a sample counts for the step nearest its stack's leaf. */
export const FRONTEND_STEPS: StackGroup[] = [
  {
    name: 'metadata read (SQLite row)',
    matches: (f) =>
      url(/\/src\/storage\/(metadata-store|sqlite-driver|sql-driver)\.ts$/)(f) ||
      url(/\/node_modules\/(p-limit|yocto-queue)\//)(f),
  },
  {
    name: 'object read (file)',
    matches: (f) =>
      url(/\/src\/storage\/fs-object-store\.ts$/)(f) || url(/^node:internal\/fs\//)(f),
  },
  {
    name: 'node fill (PUT to the node)',
    matches: (f) =>
      fn(/\/src\/frontend\/images\.ts$/, ['fill'])(f) ||
      fn(/\/src\/clients\/node-client\.ts$/, ['put'])(f),
  },
  {
    name: 'near cache (lookups, admission, copies kept)',
    matches: url(/\/src\/(frontend\/near-cache|core\/frequency-sketch)\.ts$/),
  },
  {
    name: 'node read (GET that misses)',
    matches: (f) =>
      fn(/\/src\/frontend\/images\.ts$/, ['askNode', 'fromCache', 'cachedCopy'])(f) ||
      fn(/\/src\/clients\/node-client\.ts$/, ['read', 'get'])(f) ||
      url(/\/src\/core\/fresh-flight\.ts$/)(f),
  },
  {
    name: 'client request and answer (socket lane)',
    matches: url(/\/src\/(http\/socket-lane|frontend\/image-routes)\.ts$/),
  },
  {
    name: 'undici, not under a step (node answers parsed, connections)',
    matches: url(/\/undici\//),
  },
];

/** The cache node's work, by layer. */
export const NODE_STEPS: StackGroup[] = [
  {
    name: 'PUT body (Fastify content-type parser, concat)',
    matches: url(/\/fastify\/lib\/content-type-parser\.js$|\/fastify\/lib\/contentTypeParser\.js$/),
  },
  { name: 'node:http (parser, request, response)', matches: url(/^node:_http_/) },
  {
    name: 'Fastify (routing, hooks, reply)',
    matches: (f) => /\/node_modules\//.test(f.url) && !/\/undici\//.test(f.url),
  },
  { name: 'pixpool (routes, GET lane, store, evictions)', matches: url(/\/src\//) },
  {
    name: 'sockets and streams (node core)',
    matches: url(/^node:(net|internal\/stream_base_commons|internal\/streams\/)/),
  },
];

interface Proc {
  pid: number;
  command: string;
}

const roleOf = (command: string) =>
  / cache-node\b/.test(command)
    ? 'cache node'
    : / up\b/.test(command)
      ? 'up (frontend, manager)'
      : 'other';

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Per-process CPU of the `up` tree between two moments: start() then stop(). */
export function processCpu(rootPid: number) {
  const procs: Proc[] = treeMemory(rootPid).map(({ pid, command }) => ({ pid, command }));
  const read = () => new Map(procs.map((p) => [p.pid, processCpuSeconds(p.pid)]));
  const before = read();
  /** The same span on the monotonic clock, which the profiles' timestamps use. */
  const window: ProfileWindow = { fromUs: monotonicUs(), toUs: 0 };
  return {
    procs,
    window,
    /** CPU per request, µs, by process, over the time since processCpu() was called. */
    stop(requests: number) {
      window.toUs = monotonicUs();
      const after = read();
      return procs.map((p) => {
        const a = before.get(p.pid) as CpuTime | undefined;
        const b = after.get(p.pid) as CpuTime | undefined;
        const seconds = a && b ? b.user + b.system - a.user - a.system : Number.NaN;
        const system = a && b ? b.system - a.system : Number.NaN;
        return {
          pid: p.pid,
          role: roleOf(p.command),
          usPerRequest: (seconds / requests) * 1e6,
          systemUsPerRequest: (system / requests) * 1e6,
        };
      });
    },
  };
}

export type ProcessCpu = ReturnType<ReturnType<typeof processCpu>['stop']>;
export type ProcessCpuSpan = ReturnType<typeof processCpu>;

/** `NODE_OPTIONS` that make every Node process of the tree write a profile into `dir`. */
export const treeProfileEnv = (dir: string) => ({
  NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}`,
});

/**
 * Notes on where a miss's CPU goes: each process's µs per request (/proc), and with profiles in
 * `dir` (named CPU.<date>.<time>.<pid>…), each one's steps scaled to µs per request.
 */
export function breakdownNotes(
  ctx: BenchContext,
  cpu: ProcessCpu,
  window: ProfileWindow,
  dir: string | undefined,
) {
  const us = (n: number) => `${Math.round(n).toLocaleString('en-US')} µs`;
  const total = cpu.reduce((sum, p) => sum + p.usPerRequest, 0);
  const notes = [
    `CPU per request by process over pixpool's warm-up and rounds (/proc): ${cpu
      .map((p) => `${p.role} ${us(p.usPerRequest)} (kernel ${us(p.systemUsPerRequest)})`)
      .join(', ')}; ${us(total)} in all.`,
  ];
  const steps: Record<string, unknown>[] = [];
  const files = dir ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  for (const p of cpu) {
    const file = files.find((f) => f.split('.')[3] === String(p.pid));
    if (!dir || !file || p.role === 'other') continue;
    const path = join(dir, file);
    const groups = p.role === 'cache node' ? NODE_STEPS : FRONTEND_STEPS;
    const split = stackShares(path, groups, window);
    notes.push(
      `${p.role} (pid ${p.pid}), its --cpu-prof profile over the load split into steps (share of its busy time; × its CPU per request):`,
      ...split.shares.map(
        (s) =>
          `  ${s.pct.toFixed(1).padStart(5)}%  ≈ ${us((s.pct / 100) * p.usPerRequest).padStart(9)}  ${s.name}`,
      ),
    );
    notes.push(...formatProfile(summarizeProfile(path, 15, window)));
    steps.push({ role: p.role, pid: p.pid, busyMs: split.busyMs, shares: split.shares });
  }
  if (dir && steps.length === 0) ctx.log('miss breakdown: no profile of the up tree was found');
  return { notes, figures: { processCpu: cpu, steps } };
}
