/**
 * The whole pixpool system as a benchmark peer: `bin/pixpool.js up` (the frontend and the manager
 * in-process, one cache node and the autoscaler as its children) on this very Node binary, pinned
 * like any peer (the children inherit the CPU affinity), ready once it prints "pixpool is up: open
 * <url>". Plus the public API calls a case needs: upload (multipart) and a GET that waits until
 * the cache node serves it.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from './case.ts';
import { profileFlags } from './cpuprofile.ts';
import { multipartEncoder } from './multipart.ts';
import { type Child, freePort, type ProcessGroup, waitForOutput } from './processes.ts';

export interface PixpoolUpOptions {
  /** Project root (where bin/pixpool.js is). */
  root: string;
  /** --data-dir: the embedded database and object folder (used unless storageArgs replace them). */
  dataDir: string;
  /** The pool's shared secret; passed in the environment, so it stays out of ps and reports. */
  secret: string;
  /** Storage flags after the defaults, e.g. --database-url … --s3-bucket …. */
  storageArgs?: string[];
  /** Any other flags of `up`, e.g. --workers 2. */
  upArgs?: string[];
  /** Extra environment (e.g. S3 credentials). */
  env?: Record<string, string>;
  cpus?: string | undefined;
  /** Flags for the frontend's node (the cache node and autoscaler children do not get them). */
  nodeFlags?: string[];
  logFile?: string;
  name?: string;
}

export interface PixpoolUp {
  child: Child;
  baseUrl: string;
  /** The cache node's URL, as `up` printed it. */
  nodeUrl: string | undefined;
  /** The manager's URL (API and dashboard), as `up` printed it. */
  managerUrl: string | undefined;
  /** The command line, as it ran (the secret travels in the environment). */
  command: string;
  /** POST /api/upload; throws unless it answers 200 with success "true". */
  upload(key: string, file: Uint8Array): Promise<void>;
  /** GETs /images/<key> until the cache node serves it (x-pixpool-source: cache) with `expected`. */
  waitForCacheHit(key: string, expected: Uint8Array, timeoutMs?: number): Promise<number>;
  stop(): Promise<number>;
}

/** Environment variables the CLI reads: none may leak from the runner's own environment. */
const CLI_ENV = /^(PIXPOOL_|DATABASE_URL$|S3_|AWS_|MAX_UPLOAD_MB$)/;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The runner's environment without the CLI's variables, plus `extra` (e.g. PIXPOOL_SECRET). */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!CLI_ENV.test(name)) env[name] = value;
  }
  return Object.assign(env, extra);
}

/** The flags of `up` on `dataDir`, the frontend on `port`, the other services on free ports. */
export async function upFlags(dataDir: string, port: number): Promise<string[]> {
  return [
    '--data-dir',
    dataDir,
    '--port',
    String(port),
    '--manager-port',
    String(await freePort()),
    '--autoscaler-port',
    String(await freePort()),
    '--log-level',
    'warn',
  ];
}

export async function startPixpoolUp(
  group: ProcessGroup,
  options: PixpoolUpOptions,
): Promise<PixpoolUp> {
  const port = await freePort();
  const args = [
    ...(options.nodeFlags ?? []),
    join('bin', 'pixpool.js'),
    'up',
    ...(await upFlags(options.dataDir, port)),
    ...(options.storageArgs ?? []),
    ...(options.upArgs ?? []),
  ];
  const env = cliEnv({ ...options.env, PIXPOOL_SECRET: options.secret });
  const child = group.spawn(options.name ?? 'pixpool up', process.execPath, args, {
    cwd: options.root,
    env,
    cpus: options.cpus,
    ...(options.logFile !== undefined && { logFile: options.logFile }),
  });
  const up = await waitForOutput(child, /pixpool is up: open (http:\/\/\S+)/, 120_000);
  const baseUrl = (up[1] as string).replace(/\/$/, '');
  const nodeUrl = /cache nodes?\s+(http:\/\/[\d.:]+)/.exec(child.stdout())?.[1];
  const managerUrl = /manager\s+(http:\/\/[\d.:]+)/.exec(child.stdout())?.[1];
  const encoder = multipartEncoder();

  return {
    child,
    baseUrl,
    nodeUrl,
    managerUrl,
    command: `node ${args.join(' ')}`,
    async upload(key, file) {
      const { contentType, body } = encoder.encode(key, file);
      const response = await fetch(`${baseUrl}/api/upload`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      const text = await response.text();
      if (response.status !== 200 || !text.includes('"success":"true"')) {
        throw new Error(`POST /api/upload (${key}) answered ${response.status}: ${text}`);
      }
    },
    async waitForCacheHit(key, expected, timeoutMs = 15_000) {
      const url = `${baseUrl}/images/${encodeURIComponent(key)}`;
      const deadline = Date.now() + timeoutMs;
      let gets = 0;
      let last = 'no answer yet';
      while (Date.now() < deadline) {
        const response = await fetch(url);
        const got = new Uint8Array(await response.arrayBuffer());
        gets++;
        if (response.status !== 200 || sha256(got) !== sha256(expected)) {
          throw new Error(
            `GET ${url} answered ${response.status} with ${got.length} bytes, not the ${expected.length} uploaded.`,
          );
        }
        last = `x-pixpool-source: ${response.headers.get('x-pixpool-source')}`;
        if (response.headers.get('x-pixpool-source') === 'cache') return gets;
        await sleep(50);
      }
      throw new Error(
        `GET ${url} never came from the cache node within ${timeoutMs} ms (${last}).`,
      );
    },
    // SIGTERM to the group: the frontend closes gracefully (writing its --cpu-prof profile, if
    // asked) and so does the cache node.
    stop: () => child.stop(15_000),
  };
}

/**
 * `pixpool up` as a case's server under test: data and log in the run's temp folder (named after
 * the case), pinned to the server CPU, under --cpu-prof as `profileName` when the run asks.
 */
export function startCaseUp(
  ctx: BenchContext,
  id: string,
  secret: string,
  profileName: string,
  env?: Record<string, string>,
  profileFrontend = true,
): Promise<PixpoolUp> {
  return startPixpoolUp(ctx.procs, {
    ...(env && { env }),
    root: ctx.root,
    dataDir: join(ctx.tmp, `${id}-data`),
    secret,
    cpus: ctx.cpus.server,
    nodeFlags: profileFrontend ? profileFlags(ctx, profileName) : [],
    logFile: join(ctx.tmp, `${id}-up.log`),
  });
}
