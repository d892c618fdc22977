/**
 * What the upload case needs besides pixpool itself: the upload load generator (run as a process
 * of its own, bench/upload-client.ts, pinned to the load CPU like wrk), an S3-protocol server
 * (s3rver, in a child process so its CPU time can be told apart) and the local PostgreSQL,
 * isolated in a throw-away schema so the benchmark never touches what tests keep in `public`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { type Child, type ProcessGroup, waitForOutput } from './processes.ts';
import { which } from './tools.ts';

export interface UploadClientOptions {
  /** The frontend, e.g. http://127.0.0.1:5000. */
  baseUrl: string;
  /** Uploads in flight at any time (one per worker, one connection each). */
  concurrency: number;
  durationSec: number;
  sizeBytes: number;
  /** Keys are `<keyPrefix>-<worker>-<n>`: distinct within a run; make the prefix distinct across. */
  keyPrefix: string;
}

export interface UploadClientResult {
  /** Uploads answered 200 with success "true". */
  uploads: number;
  failed: number;
  /** Responses by HTTP status ("error" for a failed request). */
  statuses: Record<string, number>;
  firstError: string | undefined;
  /** From the first request to the last answer (the tail of in-flight uploads included). */
  durationSec: number;
  uploadsPerSec: number;
  /** Of the successful uploads, request sent → whole answer read; exact, not bucketed. */
  latencyMs: { avg: number; p50: number; p90: number; p99: number; max: number };
  /** The client's own CPU seconds over the run. */
  cpuSec: { user: number; system: number };
}

export interface UploadClientRun {
  result: UploadClientResult;
  command: string;
}

/** Runs bench/upload-client.ts to completion on `cpus` and returns what it measured. */
export async function runUploadClient(
  group: ProcessGroup,
  root: string,
  options: UploadClientOptions,
  cpus: string | undefined,
): Promise<UploadClientRun> {
  const args = ['--import', 'tsx', join('bench', 'upload-client.ts'), JSON.stringify(options)];
  const child = group.spawn('upload client', process.execPath, args, { cwd: root, cpus });
  const code = await child.exited;
  if (code !== 0) {
    throw new Error(`the upload client exited with ${code}:\n${child.tail()}`);
  }
  const line = child.stdout().trim().split('\n').at(-1) ?? '';
  return {
    result: JSON.parse(line) as UploadClientResult,
    command: `node --import tsx bench/upload-client.ts '{"concurrency":${options.concurrency},"durationSec":${options.durationSec},"sizeBytes":${options.sizeBytes},…}'`,
  };
}

export interface S3rverProcess {
  child: Child;
  endpoint: string;
  bucket: string;
  stop(): Promise<void>;
}

/**
 * s3rver 3 (`new S3rver({ port: 0, … }).run()`, which resolves to its address) in a child Node
 * process, with the bucket made at start. The same Node binary as the runner.
 */
export async function startS3rver(
  group: ProcessGroup,
  options: { root: string; directory: string; bucket: string; cpus?: string | undefined },
): Promise<S3rverProcess> {
  const config = {
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: options.directory,
    configureBuckets: [{ name: options.bucket }],
  };
  const script = `
    const S3rver = require('s3rver');
    new S3rver(${JSON.stringify(config)}).run().then(
      (address) => console.log('s3rver listening on ' + JSON.stringify(address)),
      (error) => { console.error(error); process.exit(1); },
    );`;
  const child = group.spawn('s3rver', process.execPath, ['-e', script], {
    cwd: options.root,
    cpus: options.cpus,
  });
  const match = await waitForOutput(child, /s3rver listening on (\{.*\})/, 30_000);
  const address = JSON.parse(match[1] as string) as { port: number };
  return {
    child,
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket: options.bucket,
    stop: async () => {
      await child.stop(5000);
    },
  };
}

export interface BenchPostgres {
  /** The URL to pass to --database-url: the given one, with search_path on the bench schema. */
  url: string;
  schema: string;
  /** The postmaster's pid, for the CPU time of the whole server (undefined if not local). */
  serverPid: number | undefined;
  version: string;
  dropSchema(): Promise<void>;
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
}

/** `pg_ctlcluster <version> main start` for the local Debian cluster (root only). */
function startLocalCluster(log: (line: string) => void): boolean {
  const ctl = which('pg_ctlcluster');
  if (!ctl || process.getuid?.() !== 0) return false;
  let versions: string[];
  try {
    versions = readdirSync('/etc/postgresql');
  } catch {
    return false;
  }
  for (const version of versions) {
    try {
      log(`PostgreSQL is down: pg_ctlcluster --skip-systemctl-redirect ${version} main start`);
      execFileSync(ctl, ['--skip-systemctl-redirect', version, 'main', 'start'], {
        stdio: 'ignore',
      });
      return true;
    } catch {
      // try the next version
    }
  }
  return false;
}

/**
 * Connects to `url` (starting the local cluster once if it is down), creates a fresh schema and
 * returns a URL whose connections use it; dropSchema() removes it and everything in it.
 */
export async function preparePostgres(
  url: string,
  log: (line: string) => void,
): Promise<BenchPostgres> {
  let client: pg.Client;
  try {
    client = await connect(url);
  } catch (error) {
    if (!startLocalCluster(log)) throw error;
    client = await connect(url);
  }
  const schema = `pixpool_bench_${randomBytes(6).toString('hex')}`;
  let serverPid: number | undefined;
  let version = 'PostgreSQL';
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
    const { rows } = await client.query<{ pid: number; version: string }>(
      'SELECT pg_backend_pid() AS pid, version() AS version',
    );
    version = /^PostgreSQL \S+/.exec(rows[0]?.version ?? '')?.[0] ?? version;
    // The backend's parent is the postmaster (only readable when the server is on this machine).
    try {
      const stat = readFileSync(`/proc/${rows[0]?.pid}/stat`, 'utf8');
      serverPid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      serverPid = undefined;
    }
  } finally {
    await client.end();
  }
  const withSchema = new URL(url);
  withSchema.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: withSchema.toString(),
    schema,
    serverPid,
    version,
    async dropSchema() {
      const c = await connect(url);
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
