/**
 * The loopback copy baseline of the hand-over case, run as two processes of its own (pinned
 * like the manager's tree) by bench/lib/loopback.ts:
 *
 *   node --import tsx bench/loopback-copy.ts receive
 *     listens on 127.0.0.1 (a port of its own), prints {"port": p}; on each connection counts
 *     the bytes until the sender half-closes, then answers the count (8 bytes) and closes.
 *   node --import tsx bench/loopback-copy.ts send '{"port":p,"totalBytes":n,"chunkBytes":c,"warmup":w,"repeats":r}'
 *     `warmup` + `repeats` times: connects, writes `totalBytes` in writes of `chunkBytes` (one
 *     random buffer, respecting backpressure), half-closes, waits for the receiver's count; prints
 *     one JSON line with each timed copy's time (connect → count received) and its own CPU time.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CopyOptions {
  port: number;
  totalBytes: number;
  chunkBytes: number;
  /** Copies first made and not timed (JIT, TCP buffers), then `repeats` timed ones. */
  warmup: number;
  repeats: number;
}

export interface CopyResult {
  /** Each timed copy: from connect() to the receiver's count arriving, ms. */
  ms: number[];
  /** The sender's CPU over the timed copies. */
  cpuSec: { user: number; system: number };
}

function receive(): void {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
    let count = 0;
    socket.on('data', (chunk: Buffer) => {
      count += chunk.length;
    });
    socket.on('end', () => {
      const answer = Buffer.allocUnsafe(8);
      answer.writeBigUInt64BE(BigInt(count));
      socket.end(answer);
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

async function copyOnce(options: CopyOptions, chunk: Buffer): Promise<number> {
  const started = performance.now();
  const socket = connect({ port: options.port, host: '127.0.0.1', allowHalfOpen: true });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const answer: Buffer[] = [];
  socket.on('data', (data: Buffer) => answer.push(data));
  const closed = once(socket, 'end');
  let left = options.totalBytes;
  while (left > 0) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!socket.write(piece)) await once(socket, 'drain');
  }
  socket.end();
  await closed;
  const ms = performance.now() - started;
  socket.destroy();
  const got = Buffer.concat(answer);
  const count = got.length === 8 ? Number(got.readBigUInt64BE(0)) : -1;
  if (count !== options.totalBytes) {
    throw new Error(`the receiver counted ${count} bytes, not the ${options.totalBytes} sent`);
  }
  return ms;
}

async function send(options: CopyOptions): Promise<void> {
  const chunk = randomBytes(options.chunkBytes);
  for (let i = 0; i < options.warmup; i++) await copyOnce(options, chunk);
  // The runner reads the receiver's CPU time on this line: give it a moment while all is idle.
  process.stderr.write('timed copies start\n');
  await sleep(200);
  const cpuBefore = process.cpuUsage();
  const ms: number[] = [];
  for (let i = 0; i < options.repeats; i++) ms.push(await copyOnce(options, chunk));
  const cpu = process.cpuUsage(cpuBefore);
  const result: CopyResult = { ms, cpuSec: { user: cpu.user / 1e6, system: cpu.system / 1e6 } };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const [mode, json] = process.argv.slice(2);
if (mode === 'receive') receive();
else if (mode === 'send') {
  send(JSON.parse(json ?? '{}') as CopyOptions).catch((error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  });
} else {
  process.stderr.write('usage: loopback-copy.ts receive | send <json options>\n');
  process.exitCode = 2;
}
