/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time by area
 * (node core, each npm package, pixpool's src/, GC, native), the top functions by self time, and
 * pixpool's own functions by inclusive time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext, CaseResult } from './case.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  /** µs on the monotonic clock (process.hrtime's). */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A span of the monotonic clock, µs (process.hrtime.bigint() / 1000n). */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

export interface Share {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  /** When the profile began, µs on the monotonic clock. */
  startUs: number;
  /** Sampled time, idle excluded, ms. */
  busyMs: number;
  idleMs: number;
  byArea: Share[];
  topSelf: Share[];
  projectInclusive: Share[];
}

function area(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return '(program): V8/native outside JS';
    if (functionName === '(idle)') return '(idle)';
    return 'native (builtins, C++)';
  }
  if (url.startsWith('node:')) return 'node core';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) return pkg;
  if (/\/src\//.test(url)) return 'pixpool src/';
  return 'other';
}

function where(frame: ProfileNode['callFrame']): string {
  const file = frame.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/(src\/)/, '$1');
  const name = frame.functionName || '(anonymous)';
  // tsx hands V8 its output on one line, so line 1 says nothing for the project's .ts files.
  const line = frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : '';
  return file ? `${name} ${file}${line}` : name;
}

function shares(map: Map<string, number>, total: number, limit: number): Share[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, ms: us / 1000, pct: (us / total) * 100 }));
}

/** A .cpuprofile, its nodes by id, and each node's parent. */
function loadProfile(file: string) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  return { profile, byId, parent };
}

/**
 * Summarizes `file`; with `window`, only the samples taken in it (a profile of a whole process
 * life, of which one step is wanted).
 */
export function summarizeProfile(file: string, limit = 15, window?: ProfileWindow): ProfileSummary {
  const { profile, byId, parent } = loadProfile(file);
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });

  let busy = 0;
  let idle = 0;
  const byArea = new Map<string, number>();
  const bySelf = new Map<string, number>();
  const projectInclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const a = area(node.callFrame.url, node.callFrame.functionName);
    if (a === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    const key = where(node.callFrame);
    bySelf.set(key, (bySelf.get(key) ?? 0) + us);
    // Inclusive time of pixpool's own functions: each counted once per stack (recursion).
    const seen = new Set<string>();
    for (let n: ProfileNode | undefined = node; n; n = byId.get(parent.get(n.id) ?? -1)) {
      if (area(n.callFrame.url, n.callFrame.functionName) !== 'pixpool src/') continue;
      const k = where(n.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      projectInclusive.set(k, (projectInclusive.get(k) ?? 0) + us);
    }
  }
  return {
    file,
    startUs: profile.startTime,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    byArea: shares(byArea, busy, limit),
    topSelf: shares(bySelf, busy, limit),
    projectInclusive: shares(projectInclusive, busy, limit),
  };
}

export function formatProfile(summary: ProfileSummary): string[] {
  const line = (s: Share) => `  ${s.pct.toFixed(1).padStart(5)}%  ${s.name}`;
  return [
    `CPU profile ${summary.file}: ${(summary.busyMs / 1000).toFixed(1)} s busy, ${(summary.idleMs / 1000).toFixed(1)} s idle (shares below are of busy time)`,
    'self time by area:',
    ...summary.byArea.map(line),
    'top functions by self time:',
    ...summary.topSelf.map(line),
    "pixpool's own functions, inclusive time:",
    ...summary.projectInclusive.map(line),
  ];
}

/** Every profile in `dir` over `window`, those busy in it, busiest first. */
export function profilesInWindow(dir: string, window: ProfileWindow): ProfileSummary[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => summarizeProfile(join(dir, f), 12, window))
    .filter((s) => s.busyMs > 0)
    .sort((a, b) => b.busyMs - a.busyMs);
}

/** Node flags for a Node peer: --cpu-prof into the run's profile folder when asked. */
export function profileFlags(ctx: BenchContext, name: string): string[] {
  const dir = ctx.settings.cpuProfDir;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

/** Notes (and raw summaries) for the profiles a case's Node peers wrote (none without --cpu-prof). */
export function profileNotes(ctx: BenchContext, prefix: string, what = 'the cache node') {
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

/** Adds a case's profile notes to its result, and the raw summaries to its figures. */
export function addProfile(result: CaseResult, profile: ReturnType<typeof profileNotes>): void {
  result.notes.push(...profile.notes);
  if (profile.summaries.length > 0) {
    result.figures = { ...(result.figures as object), profiles: profile.summaries };
  }
}

/** A call frame as the profile names it: the function and its script's URL. */
export type Frame = ProfileNode['callFrame'];

/** A named part of a process's work, recognised by the frames on a sample's stack. */
export interface StackGroup {
  name: string;
  matches(frame: Frame): boolean;
}

/**
 * Busy time split by `groups`: each sample goes to the group of the frame nearest its leaf that
 * some group matches (so a query under a fill counts as the query), else to "GC" or "other".
 * Unlike self time by function, this follows a step into the libraries it calls; unlike a
 * function's inclusive time, it also catches an async function's later turns (each resumes under
 * its own name). Work a step leaves to another turn under no frame of its own (an undici answer
 * parsed from the socket) is in "other".
 */
export function stackShares(file: string, groups: StackGroup[], window?: ProfileWindow) {
  const { profile, byId, parent } = loadProfile(file);
  const groupOf = new Map<number, string>();
  const resolve = (id: number): string => {
    const known = groupOf.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id);
    let name = 'other';
    if (node) {
      const { functionName, url } = node.callFrame;
      const own = groups.find((g) => g.matches(node.callFrame))?.name;
      if (own) name = own;
      else if (url === '' && functionName === '(garbage collector)') name = 'GC';
      else if (url === '' && functionName === '(idle)') name = '(idle)';
      else if (parent.has(id)) name = resolve(parent.get(id) as number);
    }
    groupOf.set(id, name);
    return name;
  };
  const us = new Map<string, number>();
  let at = profile.startTime;
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    const name = resolve(id);
    if (name === '(idle)') return;
    busy += delta;
    us.set(name, (us.get(name) ?? 0) + delta);
  });
  const order = [...groups.map((g) => g.name), 'GC', 'other'];
  return {
    file,
    busyMs: busy / 1000,
    shares: order.map((name) => ({
      name,
      ms: (us.get(name) ?? 0) / 1000,
      pct: busy > 0 ? ((us.get(name) ?? 0) / busy) * 100 : 0,
    })),
  };
}
