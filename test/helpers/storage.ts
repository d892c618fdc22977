/**
 * Real storage backends for tests: an s3rver S3 server on port 0 in a temp folder, the
 * PostgreSQL that DATABASE_URL names (or the local one) isolated in a throw-away schema, and temp
 * folders. Tests may read process.env; the code under test never does.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import type { S3ObjectStoreOptions } from '../../src/storage/s3-object-store.ts';

/** A fresh folder under the OS temp dir, and a function that removes it. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `pixpool-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3 {
  endpoint: string;
  /** A bucket created at start. */
  bucket: string;
  /** Creates another, empty bucket and returns its name. */
  createBucket(): Promise<string>;
  /** Options for createS3ObjectStore pointed at this server. */
  storeOptions(bucket?: string): S3ObjectStoreOptions;
  close(): Promise<void>;
}

/**
 * s3rver in a child process, because it signs its ListObjectsV2 continuation tokens with DES,
 * which OpenSSL 3 only offers with the legacy provider (a process flag): in this process, any
 * listing past the first page would fail with a 500. The child exits when our stdin pipe closes,
 * so it cannot outlive a crashed test run.
 */
export async function spawnS3rver(
  directory: string,
  port = 0,
  /** The address to listen on: loopback, or e.g. a test bridge's (test/helpers/netns.ts). */
  host = '127.0.0.1',
): Promise<{ port: number; stop(): Promise<void>; kill(): Promise<void> }> {
  const entry = createRequire(import.meta.url).resolve('s3rver');
  const script = `
    const S3rver = require(${JSON.stringify(entry)});
    const server = new S3rver({ address: ${JSON.stringify(host)}, port: ${port}, silent: true,
      directory: ${JSON.stringify(directory)} });
    server.run().then((address) => console.log(JSON.stringify({ port: address.port })));
    process.stdin.on('end', () => process.exit(0)).resume();`;
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const [line] = await Promise.race([
    once(child.stdout, 'data'),
    exited.then(() => {
      throw new Error('s3rver exited before it listened');
    }),
  ]);
  const listening = JSON.parse(String(line)) as { port: number };
  return {
    port: listening.port,
    async stop() {
      if (child.exitCode === null) {
        child.stdin.end();
        await exited;
      }
    },
    /** SIGKILL, for fault tests: the server vanishes mid-request. */
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

export async function startS3Server(): Promise<TestS3> {
  const folder = await tempDir('s3rver');
  const server = await spawnS3rver(folder.dir);
  const endpoint = `http://127.0.0.1:${server.port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
  });
  const createBucket = async () => {
    const name = `pixpool-${randomBytes(6).toString('hex')}`;
    await client.send(new CreateBucketCommand({ Bucket: name }));
    return name;
  };
  const bucket = await createBucket();
  return {
    endpoint,
    bucket,
    createBucket,
    storeOptions: (name = bucket) => ({
      bucket: name,
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3_CREDENTIALS,
    }),
    async close() {
      client.destroy();
      await server.stop();
      await folder.remove();
    },
  };
}

/** The PostgreSQL the tests use: DATABASE_URL, else the local server's `test` database. */
export const databaseUrl = (): string =>
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The URL without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable DATABASE_URL)';
  }
}

/** Throws an error that says what to do when PostgreSQL cannot be reached; tests must fail. */
export async function requirePostgres(url = databaseUrl()): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${redactedUrl(url)}: ${(error as Error).message}. ` +
        'These tests need a real PostgreSQL: start it (pg_ctlcluster --skip-systemctl-redirect ' +
        '$(ls /etc/postgresql) main start) or set DATABASE_URL.',
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** A schema name no other test run uses. */
export const randomSchema = (): string => `pixpool_test_${randomBytes(6).toString('hex')}`;

/**
 * Creates `schema` and returns a connection string whose connections work in it (a startup
 * option): what a `pixpool` child process is given as --database-url.
 */
export async function createSchemaUrl(schema: string, url = databaseUrl()): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new TypeError(`odd schema name ${schema}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  const parsed = new URL(url);
  parsed.searchParams.set('options', `-c search_path=${schema}`);
  return parsed.toString();
}

export async function dropSchema(schema: string, url = databaseUrl()): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new TypeError(`odd schema name ${schema}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** A local TCP port with nothing listening on it (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
