/**
 * Shared by the SIGTERM fault tests (process-sigterm*.test.ts): sending the signal and timing
 * the exit, a large test image, the cache-node processes a manager started, and a harness that
 * starts services as real processes in a temp folder and stops whatever is left at the end.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type ChildService, startChildService } from '../../src/process/child-service.ts';
import { SECRET } from '../helpers/nodes.ts';
import { cliEnv, pidsWithArgs } from '../helpers/processes.ts';
import { tempDir } from '../helpers/storage.ts';

/** Everything the process prints from now on. */
export function output(service: ChildService): () => string {
  let text = '';
  service.child.stdout?.on('data', (chunk) => {
    text += chunk;
  });
  service.child.stderr?.on('data', (chunk) => {
    text += chunk;
  });
  return () => text;
}

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

/**
 * `pixpool <service>` child processes for one describe block: `setUp` makes the temp folder,
 * `start` runs a service with the shared secret and a generous start limit (a manager opening
 * embedded PostgreSQL on a loaded 2-core machine has taken more than the default 30 s),
 * `tearDown` stops every service still running and removes the folder.
 */
export function serviceHarness(name: string) {
  const started: ChildService[] = [];
  let folder: Awaited<ReturnType<typeof tempDir>> | undefined;
  return {
    get dir(): string {
      if (!folder) throw new Error('serviceHarness: setUp() first');
      return folder.dir;
    },
    async setUp() {
      folder = await tempDir(name);
    },
    async start(args: string[], label: string): Promise<ChildService> {
      const service = await startChildService({
        args: [...args, '--log-level', 'warn'],
        env: cliEnv({ PIXPOOL_SECRET: SECRET }),
        label,
        quiet: true,
        timeoutMs: 90_000,
      });
      started.push(service);
      return service;
    },
    async tearDown() {
      await Promise.all(started.map((s) => s.stop()));
      await folder?.remove();
    },
  };
}
