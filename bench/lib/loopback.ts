/**
 * The loopback copy baseline: bench/loopback-copy.ts as a receiver process and a sender process,
 * both on the CPUs given (the same as the system under test's), to measure how fast this machine
 * copies bytes from one process to another over loopback TCP.
 */
import { join } from 'node:path';
import type { CopyOptions, CopyResult } from '../loopback-copy.ts';
import { type Child, type ProcessGroup, treeCpuSeconds, waitForOutput } from './processes.ts';

export interface LoopbackReceiver {
  child: Child;
  port: number;
  stop(): Promise<void>;
}

export async function startLoopbackReceiver(
  group: ProcessGroup,
  root: string,
  cpus: string | undefined,
): Promise<LoopbackReceiver> {
  const args = ['--import', 'tsx', join('bench', 'loopback-copy.ts'), 'receive'];
  const child = group.spawn('loopback receiver', process.execPath, args, { cwd: root, cpus });
  const match = await waitForOutput(child, /\{"port":(\d+)\}/, 30_000);
  return {
    child,
    port: Number(match[1]),
    stop: async () => {
      await child.stop(3000);
    },
  };
}

export interface LoopbackRun {
  result: CopyResult;
  /** The receiver's CPU seconds over the timed copies (user + system). */
  receiverCpuSec: number | undefined;
  /** How the two processes run, for the report. */
  command: string;
}

/** Runs the sender to completion on `cpus` against `receiver`. */
export async function runLoopbackCopy(
  group: ProcessGroup,
  root: string,
  receiver: LoopbackReceiver,
  options: Omit<CopyOptions, 'port'>,
  cpus: string | undefined,
): Promise<LoopbackRun> {
  const full: CopyOptions = { port: receiver.port, ...options };
  const args = ['--import', 'tsx', join('bench', 'loopback-copy.ts'), 'send', JSON.stringify(full)];
  const child = group.spawn('loopback sender', process.execPath, args, { cwd: root, cpus });
  // The receiver's CPU from the first timed copy (the sender says when its warm-up is done).
  let before: ReturnType<typeof treeCpuSeconds>;
  child.process.stderr?.on('data', (chunk: Buffer) => {
    if (!before && chunk.toString('utf8').includes('timed copies start')) {
      before = treeCpuSeconds(receiver.child.pid);
    }
  });
  const code = await child.exited;
  const after = treeCpuSeconds(receiver.child.pid);
  if (code !== 0) throw new Error(`the loopback sender exited with ${code}:\n${child.tail()}`);
  const line = child.stdout().trim().split('\n').at(-1) ?? '';
  return {
    result: JSON.parse(line) as CopyResult,
    receiverCpuSec:
      before && after ? after.user + after.system - before.user - before.system : undefined,
    command: `node --import tsx bench/loopback-copy.ts receive | send '{"totalBytes":…,"chunkBytes":${options.chunkBytes},"warmup":${options.warmup},"repeats":${options.repeats}}'`,
  };
}
