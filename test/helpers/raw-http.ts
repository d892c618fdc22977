/**
 * HTTP/1.1 over raw TCP for the socket lane tests: requests written byte for byte as a client
 * could send them (pipelined, cut in two, malformed), answers read back as bytes.
 *
 * Who answered: the socket lane (src/http/socket-lane.ts) writes its own header names in lower
 * case (`date:`), node:http writes `Date:`. That is how tests tell the lane's answers from
 * node:http's.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as connectTls } from 'node:tls';

export interface RawAnswer {
  status: number;
  /** Header lines as sent. */
  lines: string[];
  /** Header values by lower-case name. */
  headers: Record<string, string>;
  body: Buffer;
}

export const byLane = (answer: RawAnswer) => answer.lines.some((line) => line.startsWith('date: '));

/** Splits what a server sent into responses (bodies by Content-Length; none for 204 and 304). */
export function parseAnswers(bytes: Buffer): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1');
    assert.notEqual(end, -1, `an incomplete response head: ${bytes.subarray(at).toString()}`);
    const [statusLine, ...lines] = bytes.toString('latin1', at, end).split('\r\n');
    const status = Number(statusLine?.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = status === 204 || status === 304 ? 0 : Number(headers['content-length'] ?? 0);
    const body = bytes.subarray(end + 4, end + 4 + length);
    assert.equal(body.length, length, 'a response body was cut short');
    answers.push({ status, lines, headers, body });
    at = end + 4 + length;
  }
  return answers;
}

/**
 * Writes `parts` on one connection and reads until the server closes it: the last request should
 * say Connection: close. Between two parts, `pause` runs (told how many bytes were written so
 * far): a number waits that many ms; a function waits for what it awaits, such as the server
 * having read what was written (serverHasRead).
 */
export async function exchange(
  url: string,
  parts: (string | Buffer)[],
  pause: number | ((written: number) => Promise<unknown>) = 0,
  /** For an https `url`: the CA its certificate is verified with. */
  ca?: Buffer,
) {
  const socket = await open(url, ca);
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  let written = 0;
  for (const [i, part] of parts.entries()) {
    if (i > 0) await (typeof pause === 'function' ? pause(written) : sleep(pause));
    socket.write(part);
    written += Buffer.byteLength(part);
  }
  await within(closed, 'the server to close the connection', 20_000);
  return parseAnswers(Buffer.concat(received));
}

/** Resolves as `promise` does, or fails naming `what` once `ms` have passed without it. */
export async function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${ms} ms passed without ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once `condition()` holds, checking it every 2 ms, or fails naming `what` after `ms`.
 * For states no event announces (what a paused socket has read, say).
 */
export async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${ms} ms passed without ${what}`);
    await sleep(2);
  }
}

/** Resolves once the server's end of a connection has read `bytes` bytes from it. */
export const serverHasRead = (server: Socket, bytes: number) =>
  until(() => server.bytesRead >= bytes, `the server reading ${bytes} bytes`);

/** A raw connection that keeps what the server sends, for tests that watch it as it comes. */
export interface RawClient {
  socket: Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves once what was received includes `text`; fails if it closes first, or after `ms`. */
  receives(text: string | Buffer, ms?: number): Promise<void>;
  /** Resolves with everything received once the server has ended the connection. */
  ended: Promise<Buffer>;
  closed: Promise<void>;
}

export async function rawClient(url: string): Promise<RawClient> {
  const socket = await open(url);
  const chunks: Buffer[] = [];
  const received = () => Buffer.concat(chunks);
  const arrivals = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    for (const arrived of arrivals) arrived();
  });
  const ended = new Promise<Buffer>((resolve) => socket.once('end', () => resolve(received())));
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      for (const arrived of arrivals) arrived();
      resolve();
    }),
  );
  return {
    socket,
    received,
    ended,
    closed,
    receives: (text, ms = 5000) => {
      const arrived = new Promise<void>((resolve, reject) => {
        const check = () => {
          if (received().includes(text)) resolve();
          else if (socket.destroyed) reject(new Error('the connection closed without it'));
          else return;
          arrivals.delete(check);
        };
        arrivals.add(check);
        check();
      });
      return within(arrived, `an answer with ${JSON.stringify(String(text).slice(0, 40))}`, ms);
    },
  };
}

/** A connection to `url`'s host and port: TCP, or TLS (verified with `ca`) for https. */
export function open(url: string, ca?: Buffer): Promise<Socket> {
  const { protocol, hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket =
      protocol === 'https:'
        ? connectTls({ host: hostname, port: Number(port), ca }, () => resolve(socket))
        : connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}
