/**
 * Starts a pixpool service as a child process (`pixpool <command> …` on this same Node) and
 * resolves once it prints that it listens, with the URL it printed. Used by `pixpool up` and, later,
 * by the manager's local node provider.
 *
 * The child's output is passed through (prefixed) unless `quiet`; a child that exits before it
 * listens rejects with the tail of what it printed, so a bad flag reads as an error, not a hang.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/pixpool.js', import.meta.url));
const LISTENING = /listening on (https?:\/\/[^\s"]+)/;

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
}): Promise<ChildService> {
  const { args, label = args[0] ?? 'child', quiet = false, timeoutMs = 30_000 } = options;
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label} did not start in time: ${tail}`)),
      timeoutMs,
    );
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
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
