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
 * Each connection carries one request at a time; at most `connections` per node, then requests
 * wait their turn. Every connection reads into one buffer shared by all (reads are handed over
 * synchronously, one at a time, on this thread), and the body is copied from it into a buffer of
 * the answer's size: one allocation per answer, none per read.
 *
 * A read on a kept-alive connection that the node closed before any byte of the answer arrived
 * (a keep-alive race) is tried once more on a new connection: it is a GET, and nothing was
 * answered. A read that gets no byte for `timeoutMs` fails as `unreachable`, as one that cannot
 * connect does.
 */
import { connect, type Socket } from 'node:net';
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
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
/** How long an idle connection is kept (a node closes its own after 72 s). */
const IDLE_MS = 30_000;

interface Request {
  node: string;
  head: string;
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
  request: Request | undefined;
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
  /** Every open connection, and those of them without a request. */
  open: Set<Connection>;
  idle: Connection[];
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
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!statusLine) return `no HTTP/1.1 status line (${JSON.stringify(lines[0]?.slice(0, 40))})`;
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) return `a header line without a name (${JSON.stringify(line.slice(0, 40))})`;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
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

export function createEntryReader(options: { timeoutMs: number; connections: number }) {
  const { timeoutMs, connections } = options;
  const origins = new Map<string, Origin>();
  let closing = false;

  function originOf(nodeUrl: string): Origin {
    let origin = origins.get(nodeUrl);
    if (!origin) {
      const url = new URL(nodeUrl);
      origin = {
        // A bracketed IPv6 host is given to connect() without its brackets.
        host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: Number(url.port || 80),
        hostHeader: url.host,
        open: new Set(),
        idle: [],
        waiting: [],
      };
      origins.set(nodeUrl, origin);
    }
    return origin;
  }

  function settle(c: Connection): Request | undefined {
    const request = c.request;
    c.request = undefined;
    c.reading = freshReading();
    return request;
  }

  /** The connection failed or closed: its request fails (or is tried again), and it is gone. */
  function drop(c: Connection, why: string): void {
    if (c.closed) return;
    c.closed = true;
    c.origin.open.delete(c);
    const idleAt = c.origin.idle.indexOf(c);
    if (idleAt >= 0) c.origin.idle.splice(idleAt, 1);
    c.socket.destroy();
    const raced = c.reused && !c.reading.answered;
    const request = settle(c);
    if (request) {
      if (raced && !request.retried && !closing) {
        request.retried = true;
        dispatch(c.origin, request);
      } else {
        request.reject(new NodeRequestError(request.node, undefined, why));
      }
    }
    next(c.origin);
  }

  /** A complete answer: delivered, and the connection goes to the next request or idles. */
  function answered(c: Connection, answer: EntryAnswer, keep: boolean): void {
    const request = settle(c);
    c.reused = true;
    if (!keep) drop(c, 'closed after its answer');
    else {
      c.socket.setTimeout(IDLE_MS);
      const waiting = c.origin.waiting.shift();
      if (waiting) send(c, waiting);
      else c.origin.idle.push(c);
    }
    request?.resolve(answer);
  }

  /** Fails the answer under way as one we cannot take; the connection is closed. */
  function refuse(c: Connection, why: string): void {
    const request = settle(c);
    request?.reject(new NodeRequestError(request.node, undefined, why, 'answer'));
    drop(c, why);
  }

  function onRead(c: Connection, n: number) {
    if (c.closed) return;
    if (!c.request) return refuse(c, 'the node sent bytes nobody asked for');
    const data = readBuffer.subarray(0, n);
    const r = c.reading;
    r.answered = true;
    let at = 0;
    if (!r.headers) {
      // The head ends in this read: found here, or (cut across reads) in what was kept of it.
      let end = r.head === '' ? data.indexOf(HEAD_END) : -1;
      let head: string;
      if (end >= 0) {
        head = data.toString('latin1', 0, end);
        at = end + HEAD_END.length;
      } else {
        const before = r.head.length;
        r.head += data.toString('latin1', 0, Math.min(n, MAX_HEAD_BYTES + 4 - before));
        end = r.head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (r.head.length > MAX_HEAD_BYTES) refuse(c, 'an answer head over 16 KiB');
          return;
        }
        head = r.head.slice(0, end);
        at = end + 4 - before;
      }
      if (head.length > MAX_HEAD_BYTES) return refuse(c, 'an answer head over 16 KiB');
      const parsed = parseHead(head);
      if (typeof parsed === 'string') return refuse(c, parsed);
      const length = bodyLength(parsed.status, parsed.headers);
      if (typeof length === 'string') return refuse(c, length);
      r.status = parsed.status;
      r.headers = parsed.headers;
      r.body = length === 0 ? EMPTY : Buffer.allocUnsafe(length);
    }
    const take = Math.min(r.body.length - r.got, n - at);
    if (take > 0) {
      data.copy(r.body, r.got, at, at + take);
      r.got += take;
      at += take;
    }
    if (r.got < r.body.length) return;
    // Bytes after the answer were never asked for: the answer stands, the connection does not.
    const keep = at === n && r.headers.connection?.toLowerCase() !== 'close';
    answered(c, { status: r.status, headers: r.headers, body: r.body }, keep);
  }

  function open(origin: Origin): Connection {
    const c: Connection = {
      origin,
      request: undefined,
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
    origin.open.add(c);
    const { socket } = c;
    socket.on('error', (error) => drop(c, error.message));
    socket.on('end', () => drop(c, 'the node closed the connection'));
    socket.on('close', () => drop(c, 'the connection closed'));
    socket.on('timeout', () => {
      if (c.request) drop(c, `no answer within ${timeoutMs} ms`);
      else drop(c, 'idle');
    });
    return c;
  }

  function send(c: Connection, request: Request): void {
    c.request = request;
    c.socket.setTimeout(timeoutMs);
    c.socket.write(request.head, 'latin1');
  }

  function dispatch(origin: Origin, request: Request): void {
    const idle = origin.idle.pop();
    if (idle) send(idle, request);
    else if (origin.open.size < connections) send(open(origin), request);
    else origin.waiting.push(request);
  }

  /** Starts a waiting request if a connection can be opened for it. */
  function next(origin: Origin): void {
    if (origin.waiting.length === 0 || origin.open.size >= connections || closing) return;
    send(open(origin), origin.waiting.shift() as Request);
  }

  return {
    /**
     * GET `path` from the node at `nodeUrl` (http://host:port) with `headers` (names and values
     * as the caller checked them: no CR or LF).
     */
    get(nodeUrl: string, path: string, headers: Record<string, string>): Promise<EntryAnswer> {
      if (closing) {
        return Promise.reject(new NodeRequestError(nodeUrl, undefined, 'the client is closed'));
      }
      const origin = originOf(nodeUrl);
      let head = `GET ${path} HTTP/1.1\r\nhost: ${origin.hostHeader}\r\n`;
      for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
      head += '\r\n';
      return new Promise((resolve, reject) => {
        dispatch(origin, { node: nodeUrl, head, resolve, reject, retried: false });
      });
    },

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
