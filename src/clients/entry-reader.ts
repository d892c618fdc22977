/**
 * The frontend's reads of cache entries (GET /v1/entries/:key) from plain-http nodes: HTTP/1.1 on
 * kept-alive connections, without undici. Every read of an image that crosses the pool comes
 * through here, and through undici most of the frontend's CPU for such a read went to per-read
 * buffers, gathering body chunks and the request machinery (bench/RESULTS.md, "The hop").
 *
 * It understands only what a node answers to an entry read: a status line, header lines, and a
 * body of exactly Content-Length bytes (none for 204 and 304). Anything else (chunked, no length,
 * an informational status, a head over 16 KiB, bytes nobody asked for) fails the read as an
 * `answer` failure and closes the connection, which the frontend treats as a failing node (a miss).
 *
 * The same client, another instance, writes entries (PUT with a body, DELETE): request().
 *
 * Requests are pipelined: a connection carries up to MAX_PIPELINED at once, answered in order, and
 * the requests made in one turn of the event loop go to a node in one write. On this host each
 * write wakes the node, and that wake-up, paid on both sides, cost more than the bytes (bench/
 * RESULTS.md, "The hop"); the node answers a pipelined batch in one write too
 * (http/socket-lane.ts). More connections are opened (up to `connections` per node) only when
 * every open one is full or receiving an answer over 1 MiB; then requests wait their turn.
 *
 * Every connection reads into one buffer shared by all (reads are handed over synchronously, one
 * at a time, on this thread), and the body is copied from it into a buffer of the answer's size:
 * one allocation per answer, none per read.
 *
 * A read on a kept-alive connection that the node closed before any byte of its answer arrived
 * (a keep-alive race, or the node closing under a pipelined batch) is tried once more elsewhere:
 * it is a GET, and nothing was answered to it. A read that gets no byte for `timeoutMs` fails as
 * `unreachable`, as one that cannot connect does.
 */

import { connect, type Socket } from 'node:net';
import type { BufferPool } from '../core/buffer-pool.ts';
import { NodeRequestError } from './node-transport.ts';

export interface EntryAnswer {
  status: number;
  /** Header values by lower-case name (a repeated header: its values joined with ", "). */
  headers: Record<string, string>;
  /** The body; empty for an answer without one. */
  body: Buffer;
}

/** node:http's default limit on a head; our nodes' answer heads are a few hundred bytes. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_TOO_LONG = 'an answer head over 16 KiB';
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
/** Requests one connection carries at once (HTTP/1.1 pipelining), before another is opened. */
const MAX_PIPELINED = 8;
/** A connection receiving an answer larger than this takes no more requests until it is in. */
const LARGE_ANSWER_BYTES = 1024 * 1024;
/** How long an idle connection is kept (a node closes its own after 72 s). */
const IDLE_MS = 30_000;

interface Request {
  node: string;
  head: string;
  /** A PUT's body (its head says its Content-Length), written right after the head. */
  body: Buffer | undefined;
  resolve: (answer: EntryAnswer) => void;
  reject: (error: Error) => void;
  /** Tried once more already after a kept-alive connection closed under it. */
  retried: boolean;
}

/** What a connection has read of its current answer. */
interface Reading {
  /** The head so far, while it is cut across reads. */
  head: string;
  status: number;
  headers: Record<string, string> | undefined;
  body: Buffer;
  got: number;
  /** Any byte of the answer arrived. */
  answered: boolean;
}

interface Connection {
  socket: Socket;
  origin: Origin;
  /** Requests written (or to be written), in order; the first is the one being answered. */
  sent: Request[];
  /**
   * Heads (and bodies) not yet handed to the socket: written together once this turn's reads are
   * out. Consecutive heads are one string.
   */
  unsent: (string | Buffer)[];
  reading: Reading;
  /** Carried an answer before: a close before the next answer may be a keep-alive race. */
  reused: boolean;
  closed: boolean;
}

interface Origin {
  host: string;
  port: number;
  /** The Host header: the URL's host (with port, an IPv6 address in brackets). */
  hostHeader: string;
  open: Connection[];
  waiting: Request[];
}

/** Reads land here, from every connection, and are copied out before the callback returns. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

const freshReading = (): Reading => ({
  head: '',
  status: 0,
  headers: undefined,
  body: EMPTY,
  got: 0,
  answered: false,
});

/** The status and headers of a complete head, or a message saying why it is not one we take. */
function parseHead(head: string): { status: number; headers: Record<string, string> } | string {
  if (head.length > MAX_HEAD_BYTES) return HEAD_TOO_LONG;
  // Line by line with indexOf rather than split(): one fewer array and string per line, on
  // every read that crosses the pool.
  let eol = head.indexOf('\r\n');
  if (eol < 0) eol = head.length;
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(head.slice(0, eol));
  if (!statusLine) {
    return `no HTTP/1.1 status line (${JSON.stringify(head.slice(0, Math.min(eol, 40)))})`;
  }
  const headers: Record<string, string> = {};
  for (let at = eol + 2; at <= head.length; at = eol + 2) {
    eol = head.indexOf('\r\n', at);
    if (eol < 0) eol = head.length;
    const colon = head.indexOf(':', at);
    if (colon <= at || colon > eol) {
      return `a header line without a name (${JSON.stringify(head.slice(at, Math.min(eol, at + 40)))})`;
    }
    const name = head.slice(at, colon).trim().toLowerCase();
    const value = head.slice(colon + 1, eol).trim();
    const before = headers[name];
    headers[name] = before === undefined ? value : `${before}, ${value}`;
  }
  return { status: Number(statusLine[1]), headers };
}

/** The body's length by the head, or a message saying why the answer is not one we take. */
function bodyLength(status: number, headers: Record<string, string>): number | string {
  if (status < 200) return `an informational answer (${status})`;
  if (headers['transfer-encoding'] !== undefined) return 'a body sent with Transfer-Encoding';
  if (status === 204 || status === 304) return 0;
  const length = headers['content-length'];
  if (length === undefined || !/^\d{1,15}$/.test(length)) {
    return `no usable Content-Length (${JSON.stringify(length)})`;
  }
  return Number(length);
}

export function createEntryReader(options: {
  timeoutMs: number;
  connections: number;
  /** Where bodies are taken from (a caller gives back the ones it is done with). */
  bodies?: BufferPool | undefined;
}) {
  const { timeoutMs, connections, bodies } = options;
  const origins = new Map<string, Origin>();
  let closing = false;
  /** Connections with heads to write, and whether a write of them is due. */
  const unflushed: Connection[] = [];
  let flushing = false;

  function originOf(nodeUrl: string): Origin {
    let origin = origins.get(nodeUrl);
    if (!origin) {
      const url = new URL(nodeUrl);
      origin = {
        // A bracketed IPv6 host is given to connect() without its brackets.
        host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: Number(url.port || 80),
        hostHeader: url.host,
        open: [],
        waiting: [],
      };
      origins.set(nodeUrl, origin);
    }
    return origin;
  }

  /** The connection failed or closed: its requests fail (or are tried again), and it is gone. */
  function drop(c: Connection, why: string, timedOut = false): void {
    if (c.closed) return;
    c.closed = true;
    const at = c.origin.open.indexOf(c);
    if (at >= 0) c.origin.open.splice(at, 1);
    c.socket.destroy();
    const requests = c.sent.splice(0);
    requests.forEach((request, i) => {
      // A request nothing was answered to, on a connection that carried answers before: the
      // node may have closed it idle just as we wrote (a GET, PUT or DELETE: idempotent, safe
      // to send again).
      const unanswered = i > 0 || !c.reading.answered;
      if (unanswered && c.reused && !timedOut && !request.retried && !closing) {
        request.retried = true;
        dispatch(c.origin, request);
      } else {
        request.reject(new NodeRequestError(request.node, undefined, why));
      }
    });
    c.reading = freshReading();
    next(c.origin);
  }

  /** A complete answer: delivered to its request; the connection goes on with the next. */
  function answered(c: Connection, answer: EntryAnswer, keep: boolean): void {
    const request = c.sent.shift() as Request;
    c.reading = freshReading();
    c.reused = true;
    if (!keep) drop(c, 'closed after its answer');
    else if (c.sent.length === 0) c.socket.setTimeout(IDLE_MS);
    next(c.origin);
    request.resolve(answer);
  }

  /** Fails the answer under way as one we cannot take; the connection is closed. */
  function refuse(c: Connection, why: string): void {
    const request = c.sent.shift();
    request?.reject(new NodeRequestError(request.node, undefined, why, 'answer'));
    drop(c, why);
  }

  function onRead(c: Connection, n: number) {
    if (c.closed) return;
    if (c.sent.length === 0) return refuse(c, 'the node sent bytes nobody asked for');
    const data = readBuffer.subarray(0, n);
    // One read may hold the ends and starts of several pipelined answers.
    for (let at = 0; at < n && !c.closed; ) {
      if (c.sent.length === 0) return refuse(c, 'the node sent bytes nobody asked for');
      at = readAnswer(c, data, at);
    }
  }

  /** Takes what `data` from `from` holds of the answer under way; where it stopped. */
  function readAnswer(c: Connection, data: Buffer, from: number): number {
    const n = data.length;
    const r = c.reading;
    r.answered = true;
    let at = from;
    if (!r.headers) {
      // The head ends in this read: found here, or (cut across reads) in what was kept of it.
      let end = r.head === '' ? data.indexOf(HEAD_END, from) : -1;
      let head: string;
      if (end >= 0) {
        head = data.toString('latin1', from, end);
        at = end + HEAD_END.length;
      } else {
        const before = r.head.length;
        r.head += data.toString('latin1', from, Math.min(n, from + MAX_HEAD_BYTES + 4 - before));
        end = r.head.indexOf('\r\n\r\n');
        if (end < 0) {
          return r.head.length > MAX_HEAD_BYTES ? refused(c, HEAD_TOO_LONG, n) : n;
        }
        head = r.head.slice(0, end);
        at = from + end + 4 - before;
      }
      const parsed = parseHead(head);
      if (typeof parsed === 'string') return refused(c, parsed, n);
      const length = bodyLength(parsed.status, parsed.headers);
      if (typeof length === 'string') return refused(c, length, n);
      r.status = parsed.status;
      r.headers = parsed.headers;
      r.body = length === 0 ? EMPTY : bodies ? bodies.take(length) : Buffer.allocUnsafe(length);
    }
    const take = Math.min(r.body.length - r.got, n - at);
    if (take > 0) {
      data.copy(r.body, r.got, at, at + take);
      r.got += take;
      at += take;
    }
    if (r.got === r.body.length) {
      const keep = r.headers.connection?.toLowerCase() !== 'close';
      answered(c, { status: r.status, headers: r.headers, body: r.body }, keep);
    }
    return at;
  }

  /** refuse(), for readAnswer: nothing more of this read is taken. */
  function refused(c: Connection, why: string, n: number): number {
    refuse(c, why);
    return n;
  }

  function open(origin: Origin): Connection {
    const c: Connection = {
      origin,
      sent: [],
      unsent: [],
      reading: freshReading(),
      reused: false,
      closed: false,
      socket: connect({
        host: origin.host,
        port: origin.port,
        noDelay: true,
        onread: {
          buffer: readBuffer,
          callback: (n) => {
            onRead(c, n);
            return true;
          },
        },
      }),
    };
    origin.open.push(c);
    const { socket } = c;
    socket.on('error', (error) => drop(c, error.message));
    socket.on('end', () => drop(c, 'the node closed the connection'));
    socket.on('close', () => drop(c, 'the connection closed'));
    socket.on('timeout', () => {
      if (c.sent.length > 0) drop(c, `no answer within ${timeoutMs} ms`, true);
      else drop(c, 'idle');
    });
    return c;
  }

  function send(c: Connection, request: Request): void {
    if (c.sent.length === 0) c.socket.setTimeout(timeoutMs);
    c.sent.push(request);
    const { unsent } = c;
    if (unsent.length === 0) unflushed.push(c);
    const last = unsent.length - 1;
    if (typeof unsent[last] === 'string') unsent[last] += request.head;
    else unsent.push(request.head);
    if (request.body) unsent.push(request.body);
    if (!flushing) {
      flushing = true;
      setImmediate(flush);
    }
  }

  /**
   * Writes every connection's new heads, one write each: requests made while this turn's reads
   * were handled go to a node together (pipelined), and each write to a socket on this host
   * costs about as much as the node's wake-up it causes (bench/RESULTS.md, "The hop").
   */
  function flush(): void {
    flushing = false;
    for (const c of unflushed.splice(0)) {
      const { socket, unsent } = c;
      c.unsent = [];
      if (c.closed) continue;
      // Heads and bodies in one writev.
      if (unsent.length > 1) socket.cork();
      for (const part of unsent) {
        if (typeof part === 'string') socket.write(part, 'latin1');
        else socket.write(part);
      }
      if (unsent.length > 1) socket.uncork();
    }
  }

  /**
   * The open connection with the fewest requests under way, while it has fewer than
   * MAX_PIPELINED and is not receiving a large answer (which would hold the next one up); else a
   * new one while there are fewer than `connections`; else none (the request waits).
   */
  function connectionFor(origin: Origin): Connection | undefined {
    let best: Connection | undefined;
    for (const c of origin.open) {
      if (c.sent.length >= MAX_PIPELINED || c.reading.body.length > LARGE_ANSWER_BYTES) continue;
      if (!best || c.sent.length < best.sent.length) best = c;
    }
    if (best) return best;
    return origin.open.length < connections ? open(origin) : undefined;
  }

  function dispatch(origin: Origin, request: Request): void {
    const c = closing ? undefined : connectionFor(origin);
    if (c) send(c, request);
    else origin.waiting.push(request);
  }

  /** Starts waiting requests where a connection has room for them. */
  function next(origin: Origin): void {
    while (origin.waiting.length > 0 && !closing) {
      const c = connectionFor(origin);
      if (!c) return;
      send(c, origin.waiting.shift() as Request);
    }
  }

  function request(
    nodeUrl: string,
    method: 'GET' | 'PUT' | 'DELETE',
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
  ): Promise<EntryAnswer> {
    if (closing) {
      return Promise.reject(new NodeRequestError(nodeUrl, undefined, 'the client is closed'));
    }
    const origin = originOf(nodeUrl);
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${origin.hostHeader}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    if (body) head += `content-length: ${body.length}\r\n`;
    head += '\r\n';
    return new Promise((resolve, reject) => {
      dispatch(origin, { node: nodeUrl, head, body, resolve, reject, retried: false });
    });
  }

  return {
    /**
     * GET `path` from the node at `nodeUrl` (http://host:port) with `headers` (names and values
     * as the caller checked them: no CR or LF).
     */
    get(nodeUrl: string, path: string, headers: Record<string, string>): Promise<EntryAnswer> {
      return request(nodeUrl, 'GET', path, headers, undefined);
    },

    /**
     * `method` `path` with `headers` as for get(), and `body` (a PUT's, sent with its
     * Content-Length) written with the head in one writev: the frontend's fills and
     * invalidations (node-client.ts, on a client of their own).
     */
    request,

    /** Closes every connection; reads under way fail, and later ones are refused. */
    close(): void {
      closing = true;
      for (const origin of origins.values()) {
        for (const request of origin.waiting.splice(0)) {
          request.reject(new NodeRequestError(request.node, undefined, 'the client is closed'));
        }
        for (const c of [...origin.open]) drop(c, 'the client is closed');
      }
      origins.clear();
    },
  };
}

export type EntryReader = ReturnType<typeof createEntryReader>;
