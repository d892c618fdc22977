/**
 * Starts a pixpool service as a child process (`pixpool <command> …` on this same Node) and
 * resolves once it prints that it listens, with the URL it printed. Used by `pixpool up` and, later,
 * by the manager's local node provider.
 *
 * The child's output is passed through (prefixed) unless `quiet`; a child that exits before it
 * listens rejects with the tail of what it printed, so a bad flag reads as an error, not a hang;
 * one that does not listen in time is killed before the promise rejects, so it cannot linger.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/pixpool.js', import.meta.url));
const HAS_PROC = existsSync('/proc/self/stat');
// The child's own line, not one it passes through from its children ("[node …] … listening on").
const LISTENING = /^(?!\[)[^\n]*?listening on (https?:\/\/[^\s"]+)/m;

export interface ChildService {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export async function startChildService(options: {
  args: string[];
  env?: Record<string, string | undefined>;
  label?: string;
  quiet?: boolean;
  timeoutMs?: number;
  /** Told the process as soon as it exists, before it listens (so an owner can stop it then). */
  onSpawn?: (child: ChildProcess) => void;
  /**
   * A process group of its own: a terminal's Ctrl-C, or `timeout`, signals the group we are in,
   * and a child its owner stops (and restarts when it dies) must hear of a stop from its owner
   * only, not exit on its own first and look like it died.
   */
  ownProcessGroup?: boolean;
  /**
   * A pipe on the child's stdin that stays open while this process lives: its end tells the
   * child we are gone, even after a SIGKILL (`pixpool frontend --exit-with-parent`).
   */
  stdinPipe?: boolean;
}): Promise<ChildService> {
  const { args, label = args[0] ?? 'child', quiet = false, timeoutMs = 30_000 } = options;
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...options.env },
    stdio: [options.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  options.onSpawn?.(child);
  let tail = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start in time: ${tail}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      if (!quiet) process.stderr.write(text.replace(/^(?=.)/gm, `[${label}] `));
      const match = LISTENING.exec(tail);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${signal ?? code}) before it listened: ${tail.trim()}`));
    });
  });
  return {
    url,
    child,
    stop: (graceMs) => stopChildProcess(child, graceMs),
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChildProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Whether `pid` names a live process. A zombie (dead, not yet reaped: an orphan whose new parent
 * does not reap) still answers signal 0, so on Linux its state in /proc is checked too.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!HAS_PROC) return true; // macOS: signal 0 is all we have
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false; // gone between the two looks
  }
}
