/**
 * Helpers for the process-fault tests (test/faults/process-*.test.ts): polling for a condition,
 * finding the processes behind node ids, a steady fetch load that checks every byte, and slow
 * streamed uploads that a test can pause mid-body to send a signal.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { processAlive } from '../../src/process/child-service.ts';

export { processAlive };

export const sha256 = (bytes: Buffer | Uint8Array) =>
  createHash('sha256').update(bytes).digest('hex');

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Environment variables the pixpool CLI reads (src/cli.ts), storage and secrets among them. */
const CLI_VARIABLES = /^(PIXPOOL_|DATABASE_URL$|S3_|AWS_|MAX_UPLOAD_MB$)/;
/** ...but for the socket lanes' switch, which the whole run follows, children included. */
const KEPT = new Set(['PIXPOOL_SOCKET_LANES']);

/**
 * The environment for a `pixpool` child process: this one's, without any variable the CLI reads
 * (CI exports DATABASE_URL for the storage tests; a child inheriting it would share one pool
 * registry with every other test's manager) but PIXPOOL_SOCKET_LANES, plus `extra`. Unset
 * variables are `undefined`, which child_process leaves out, so it also works merged over
 * process.env.
 */
export function cliEnv(
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of Object.keys(env)) {
    if (CLI_VARIABLES.test(name) && !KEPT.has(name)) env[name] = undefined;
  }
  return { ...env, ...extra };
}

const bin = new URL('../../bin/pixpool.js', import.meta.url).pathname;

/**
 * Runs `pixpool <args>` as a process with no terminal (stdin closed) and the environment of
 * cliEnv(env), to its exit; killed at `deadlineMs` (a command that should have refused but
 * started something). Resolves to its exit code or signal and what it printed.
 */
export async function runPixpool(
  args: string[],
  env: Record<string, string | undefined> = {},
  deadlineMs = 15_000,
) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  const deadline = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
  clearTimeout(deadline);
  return { code, signal, stdout, stderr };
}

/** Polls `check` every `everyMs` until it returns a truthy value, which it resolves with. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T> | T,
  { timeoutMs = 30_000, everyMs = 100 } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(check)
      .catch(() => undefined);
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Pids of live processes whose command line has `arg` followed by `value` (Linux /proc). */
export function pidsWithArgs(arg: string, value: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = argv.indexOf(arg);
      if (at >= 0 && argv[at + 1] === value && processAlive(Number(entry)))
        pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** The pid a node (or any pixpool service) reports on its public /health. */
export async function pidOf(url: string): Promise<number> {
  const health = (await (await fetch(`${url}/health`)).json()) as { pid: number };
  return health.pid;
}

export interface FetchLoad {
  ok: number;
  failures: string[];
  /** The slowest fetch, ms. */
  slowestMs: number;
  stop(): Promise<void>;
}

/**
 * `loops` concurrent loops fetching random keys from a frontend's /images/<key>, each answer
 * checked against the sha256 of the last acknowledged upload (`expected`, which the test may
 * update as it uploads, or of one under way in `pending`). Any other status or byte is a failure, with what went wrong.
 */
export function fetchLoad(
  url: string,
  expected: Map<string, string>,
  loops = 6,
  /** Uploads under way: committed before they are acknowledged, so a fetch may see them. */
  pending: Map<string, string> = new Map(),
): FetchLoad {
  let running = true;
  const load: FetchLoad = { ok: 0, failures: [], slowestMs: 0, stop: async () => {} };
  const keys = () => [...expected.keys()];
  const loop = async () => {
    while (running) {
      const all = keys();
      const key = all[Math.floor(Math.random() * all.length)] as string;
      const want = expected.get(key);
      const started = Date.now();
      try {
        const response = await fetch(`${url}/images/${encodeURIComponent(key)}`);
        const bytes = Buffer.from(await response.arrayBuffer());
        const got = sha256(bytes);
        // An upload of this key may have been acknowledged while we read: either is right.
        if (response.status !== 200) load.failures.push(`${key}: HTTP ${response.status}`);
        else if (got !== want && got !== expected.get(key) && got !== pending.get(key))
          load.failures.push(`${key}: wrong bytes`);
        else load.ok++;
      } catch (error) {
        load.failures.push(`${key}: ${(error as Error).message}`);
      }
      load.slowestMs = Math.max(load.slowestMs, Date.now() - started);
    }
  };
  const all = Array.from({ length: loops }, loop);
  load.stop = async () => {
    running = false;
    await Promise.all(all);
  };
  return load;
}

/** Distinct PNG-looking bytes for key number `i` (the header lets the frontend sniff a PNG). */
export function imageFor(i: number, size = 2000 + (i % 7) * 500): Buffer {
  const bytes = Buffer.alloc(size);
  for (let j = 0; j < size; j++) bytes[j] = (i * 31 + j * 7) & 0xff;
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(bytes);
  return bytes;
}

/** POST /api/upload as multipart; resolves with the status and parsed body. */
export async function uploadImage(url: string, key: string, bytes: Buffer) {
  const form = new FormData();
  form.append('key', key);
  form.append('file', new Blob([new Uint8Array(bytes)]), 'image.png');
  const response = await fetch(`${url}/api/upload`, { method: 'POST', body: form });
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
  return { status: response.status, body: (await response.json()) as any };
}

export interface SlowUpload {
  /** Sends the first `fraction` of the body now. */
  sendPart(fraction: number): Promise<void>;
  /** Sends the rest and resolves with the answer (or rejects if the connection was cut). */
  finish(): Promise<{ status: number; body: string }>;
  /**
   * Resolves once the server process has read every byte sent so far, as its kernel tells
   * (tcpQueues): the upload is then in flight in the server, not only on the wire.
   */
  received(): Promise<void>;
  /** The answer, whenever it comes (e.g. a 503 before the body is done). */
  response: Promise<{ status: number; body: string }>;
  destroy(): void;
}

/**
 * The queues, in bytes, of the local TCP socket from port `local` to port `remote` (Linux, from
 * /proc/net/tcp and tcp6): `unacked`, written by the process that owns the socket but not yet
 * acknowledged by the peer's kernel (on the wire, or waiting in the send buffer), and `unread`,
 * received but not yet read by that process. Undefined when the kernel lists no such socket.
 */
export function tcpQueues(
  local: number,
  remote: number,
): { unacked: number; unread: number } | undefined {
  const port = (address: string | undefined) => Number.parseInt(address?.split(':')[1] ?? '', 16);
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table: string;
    try {
      table = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (port(fields[1]) !== local || port(fields[2]) !== remote) continue;
      const [unacked, unread] = (fields[4] ?? '').split(':').map((hex) => Number.parseInt(hex, 16));
      if (unacked === undefined || unread === undefined) continue;
      return { unacked, unread };
    }
  }
  return undefined;
}

/**
 * An upload's multipart body (fields key and file) as bytes, with its content type: for clients
 * that take no FormData, or not Node's (a raw request, undici's own fetch).
 */
export function multipartUpload(key: string, bytes: Buffer): { body: Buffer; type: string } {
  const boundary = `----pixpool${Date.now()}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n${key}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n` +
        'Content-Type: image/png\r\n\r\n',
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

/** A multipart upload over a raw HTTP request whose body the test sends in parts. */
export function slowUpload(url: string, key: string, bytes: Buffer): SlowUpload {
  const { body, type } = multipartUpload(key, bytes);
  const target = new URL('/api/upload', url);
  const req = request(target, {
    method: 'POST',
    headers: { 'content-type': type, 'content-length': body.length },
  });
  let sent = 0;
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  response.catch(() => {});
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) =>
      req.write(chunk, (error) => (error ? reject(error) : resolve())),
    );
  return {
    async sendPart(fraction) {
      const end = Math.floor(body.length * fraction);
      await write(body.subarray(sent, end));
      sent = end;
    },
    async finish() {
      await write(body.subarray(sent));
      sent = body.length;
      req.end();
      return response;
    },
    async received() {
      const socket = req.socket;
      const [client, server] = [socket?.localPort, socket?.remotePort];
      if (client === undefined || server === undefined) throw new Error('not connected yet');
      await waitFor(
        'the server to read the part of the upload sent',
        () => {
          const sending = tcpQueues(client, server);
          const receiving = tcpQueues(server, client);
          return sending?.unacked === 0 && receiving?.unread === 0;
        },
        { timeoutMs: 10_000, everyMs: 10 },
      );
    },
    response,
    destroy: () => req.destroy(),
  };
}

/** Whether a new TCP connection to `url` is refused (the service no longer listens). */
export async function refuses(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return false;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code === 'ECONNREFUSED';
  }
}
