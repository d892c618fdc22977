/**
 * CPU seconds by thread kind, from /proc/<pid>/task/<tid>/stat (Linux only; {} elsewhere): where a
 * process's CPU went — its JavaScript (MainThread), V8's helpers (V8Worker: GC and compiles),
 * libuv's thread pool (libuv-worker: file I/O, and sharp's pipelines) and libvips's own workers.
 * A sampling profile cannot tell these apart on one pinned CPU: it samples wall time, so a thread
 * that is descheduled is charged with whatever ran instead.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CLOCK_TICKS = 100; // USER_HZ

export type ThreadCpu = Record<string, number>;

/** `pid`'s CPU seconds so far, summed by thread name ("libvips worker", "MainThread", …). */
export function threadCpuSeconds(pid: number | 'self'): ThreadCpu {
  const out: ThreadCpu = {};
  let tasks: string[];
  try {
    tasks = readdirSync(join('/proc', String(pid), 'task'));
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(join('/proc', String(pid), 'task', tid, 'stat'), 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
    } catch {
      // the thread ended while we were looking
    }
  }
  return out;
}

/** after − before, by thread name (a thread that ended in between is left out of both). */
export function threadCpuSince(before: ThreadCpu, after: ThreadCpu): ThreadCpu {
  const out: ThreadCpu = {};
  for (const [name, seconds] of Object.entries(after)) out[name] = seconds - (before[name] ?? 0);
  return out;
}
