/**
 * Shared by the SIGTERM fault tests (process-sigterm*.test.ts): sending the signal and timing
 * the exit, a large test image, and the cache-node processes a manager started.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ChildService } from '../../src/process/child-service.ts';
import { pidsWithArgs } from '../helpers/processes.ts';

/** SIGTERM; resolves with the exit code and how long the exit took. */
export async function terminate(
  service: ChildService,
): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  const exited = once(service.child, 'exit');
  service.child.kill('SIGTERM');
  const [code] = await exited;
  return { code, ms: Date.now() - started };
}

/** `mb` MB of bytes that do not compress, with a PNG signature in front. */
export function bigImage(mb: number): Buffer {
  const bytes = Buffer.alloc(mb * 1024 * 1024);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE((i * 2654435761) >>> 0, i);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(bytes);
  return bytes;
}

/**
 * Live cache-node processes that publish to the manager at `managerUrl`. Only cache nodes: an
 * autoscaler has `--manager-url` on its command line too.
 */
export function nodePids(managerUrl: string): number[] {
  return pidsWithArgs('--manager-url', managerUrl).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('cache-node');
    } catch {
      return false;
    }
  });
}
