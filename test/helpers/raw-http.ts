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
 * Writes `parts` on one connection (each part one write, `pauseMs` apart) and reads until the
 * server closes it: the last request should say Connection: close.
 */
export async function exchange(url: string, parts: (string | Buffer)[], pauseMs = 0) {
  const socket = await open(url);
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  for (const [i, part] of parts.entries()) {
    if (i > 0 && pauseMs) await sleep(pauseMs);
    socket.write(part);
  }
  await closed;
  return parseAnswers(Buffer.concat(received));
}

export function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}
