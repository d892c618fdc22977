/**
 * A socket lane: a service's hottest request, answered on the socket before node:http parses it.
 *
 * Why: through node:http, most of the CPU a cache node spends on a GET of a cached image is
 * node:http's per-request machinery (IncomingMessage, header objects, ServerResponse, its write
 * path), not the bytes into the socket. No HTTP library on the npm registry does that part
 * cheaper on Node (uWebSockets.js is not published there). A server that reads requests off the
 * socket itself answers the same GET at nginx's speed (bench case node-get-100k).
 *
 * How it stays safe: the lane only answers what it positively recognises, and everything else goes
 * to node:http unchanged. A connection starts in the lane. Each complete request head in what
 * arrived is checked strictly — `GET` or `POST <visible ASCII target> HTTP/1.1`, header lines that
 * are `token: value` with no control characters, at most 100 of them, each name at most once, a
 * Host, no Transfer-Encoding, Expect, Upgrade or Proxy-Connection and no Content-Length but 0
 * — and handed to the service's `lane` function, which answers it, declines, or promises an answer.
 * A service may also take its writes there (LaneWrites): DELETE, checked as GET is, and PUT with
 * a body framed by exactly one Content-Length of plain digits, which the lane reads itself into
 * memory of that size once the service wants it, then hands over with the request.
 * At the first request that fails any of this (another PUT, a body, a HEAD, HTTP/1.0, a duplicated
 * header, a head cut across reads, one the service declines), the connection, with that request's
 * bytes put back in front, is given to node:http for good: its parser, limits and timeouts (headers
 * within 20 s, 16 KiB heads) then apply as they always do, and Fastify answers. Requests the lane
 * answered were written in order before the hand-over, so pipelining keeps its order.
 *
 * A promised answer (one that needs I/O: the frontend revalidating an image with its node) stops
 * the connection's reads until it settles, so later requests wait their turn; it is written when
 * it comes, and a promise that settles with no answer, or fails, hands the connection over with
 * that request first, as a declined request would. While a connection waits, no idle timeout
 * runs (node:http has none for an answer either), and a graceful close leaves it be
 * (isLaneBusy): the answer is written, then the connection ended.
 *
 * What the lane itself keeps: a new connection that sends no request within the server's
 * headersTimeout is closed, and so is one idle for longer than its keepAliveTimeout;
 * while more than 1 MiB it wrote is not yet taken by the reader, it reads no further requests (a
 * pipelining client that does not read cannot make it buffer without bound); `Connection: close`
 * is honoured; once the service is closing, the next request goes to node:http (which
 * answers 503) and keepResponsesOnClose (keep-responses.ts) ends the lane's idle connections.
 */
import { type OutgoingHttpHeaders, type Server, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

export interface LaneRequest {
  /**
   * PUT (with a body) and DELETE only where the service takes its writes on the lane
   * (LaneWrites).
   */
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The request target as sent (path and query), e.g. `/v1/entries/k%C3%A9p`. */
  target: string;
  /** Header values by lower-case name; each name occurs once (else the lane declines). */
  headers: ReadonlyMap<string, string>;
  socket: Socket;
  /** A PUT's body, exactly its Content-Length, in memory of its own (LaneWrites). */
  body?: Buffer | undefined;
}

export interface LaneAnswer {
  status: number;
  /** Content-Length is added from `body` when absent. */
  headers: OutgoingHttpHeaders;
  body?: Buffer | string | undefined;
  /**
   * Called once `body` is written (handed to the kernel) or can no longer be (the connection
   * failed): nothing of the lane holds it after that. Never called for an answer not written.
   */
  written?: (() => void) | undefined;
}

/**
 * Answers a bodiless GET or POST (and, with LaneWrites, a PUT with its body or a bodiless DELETE),
 * now or later (a promise), or returns undefined (or a promise of undefined) to leave it, and its
 * connection, to node:http.
 */
export type SocketLane = (
  request: LaneRequest,
) => LaneAnswer | undefined | Promise<LaneAnswer | undefined>;

/**
 * Writes the lane takes, where a service asks for them (the cache node's fills and
 * invalidations): bodiless DELETEs, given to the lane function as GETs are, and PUTs whose body
 * the lane reads itself. `wants` sees a PUT's head before any byte of its body is read (so an
 * unauthenticated client makes the lane buffer nothing); a PUT it does not want, or whose body
 * is longer than `maxBytes`, goes to node:http as any other request.
 */
export interface LaneWrites {
  maxBytes: number;
  wants(request: LaneRequest): boolean;
}

/** node:http's default limit on a request head; a longer one is left to it (a 431). */
const MAX_HEAD_BYTES = 16 * 1024;
/**
 * The most header lines the lane takes. node:http refuses a head with more than the server's
 * maxHeadersCount (1000 unless set) as too large; no client of the lanes sends near this many.
 */
const MAX_HEADERS = 100;
/** Bytes of answers the lane lets wait in memory for a slow reader before it reads no more. */
const MAX_UNSENT_BYTES = 1024 * 1024;
/**
 * The most of a body handed to the kernel in one write: over loopback, one write of a little more
 * than ~128 KiB costs far more CPU than its size would say, while pieces of 96–124 KiB avoid it
 * and 64 KiB ones cost more syscalls (bench/RESULTS.md, "Bodies over 112 KiB in pieces").
 */
const MAX_WRITE_BYTES = 112 * 1024;
/**
 * A plain GET, POST, PUT or DELETE head, whole: the request line, then header lines of a token, a
 * colon and a value of visible ASCII, spaces, tabs or obs-text (no control characters, so no lone
 * CR or LF, and no folded lines). Group 1 is the method, 2 the target, 3 the header lines, each
 * led by its CRLF.
 */
const PLAIN_HEAD =
  /^(GET|POST|PUT|DELETE) (\/[!-~]*) HTTP\/1\.1((?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*)$/;
const CLOSE = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
/**
 * Headers after which a body may follow, or the connection may change protocol, and
 * Proxy-Connection, which node:http's parser takes as Connection (a `close` there ends the
 * connection after the answer).
 */
const NOT_LANE = ['transfer-encoding', 'expect', 'upgrade', 'proxy-connection'];

/** Connections waiting for a promised answer (a graceful close must not end them yet). */
const waiting = new WeakSet<Socket>();

/** Connections whose lane is reading a request's body. */
const readingBody = new WeakSet<Socket>();

/**
 * Whether the lane owes `socket` an answer: one it is waiting for, or to a request whose body it
 * is reading (keep-responses.ts asks).
 */
export const isLaneBusy = (socket: Socket): boolean =>
  waiting.has(socket) || readingBody.has(socket);

type Head = Omit<LaneRequest, 'socket' | 'body'> & {
  /** A PUT's Content-Length (0 for the others, which have none). */
  bodyLength: number;
};

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
/** A Content-Length the lane takes: digits only (no sign, list or spaces), at most 2^53. */
const LENGTH = /^[0-9]{1,15}$/;

const isOws = (c: number) => c === 32 || c === 9;

/**
 * A request head (latin1 text up to its blank line), or undefined if it is not a plain bodiless
 * GET, POST or DELETE, or a PUT whose body is framed by one plain Content-Length: any header
 * twice, more than `maxHeaders` of them, no Host, or one that lets a body follow otherwise (but
 * for a PUT, a Content-Length but 0), and it is not.
 */
export function parseHead(head: string, maxHeaders = MAX_HEADERS): Head | undefined {
  const match = PLAIN_HEAD.exec(head);
  if (!match) return undefined;
  const lines = match[3] as string;
  const headers = new Map<string, string>();
  for (let at = 2; at < lines.length; ) {
    let end = lines.indexOf('\r\n', at);
    if (end === -1) end = lines.length;
    const colon = lines.indexOf(':', at);
    const name = lines.slice(at, colon).toLowerCase();
    if (headers.has(name) || headers.size === maxHeaders) return undefined;
    let from = colon + 1;
    let to = end;
    while (from < to && isOws(lines.charCodeAt(from))) from++;
    while (to > from && isOws(lines.charCodeAt(to - 1))) to--;
    headers.set(name, lines.slice(from, to));
    at = end + 2;
  }
  if (!headers.has('host')) return undefined;
  for (const name of NOT_LANE) if (headers.has(name)) return undefined;
  const method = match[1] as Head['method'];
  const length = headers.get('content-length');
  if (method === 'PUT') {
    if (length === undefined || !LENGTH.test(length)) return undefined;
    return { method, target: match[2] as string, headers, bodyLength: Number(length) };
  }
  if (length !== undefined && length !== '0') return undefined;
  return { method, target: match[2] as string, headers, bodyLength: 0 };
}

/** Date header text, made at most once a second. */
let dateSecond = -1;
let dateText = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * The event on which a server hands node:http a connection: 'connection' with its TCP socket, or
 * for an https server, 'secureConnection' with the TLS socket once the handshake is done (its
 * 'connection' listener is the handshake itself). Either socket reads and writes plain HTTP.
 */
export const httpConnectionEvent = (server: Server): 'connection' | 'secureConnection' =>
  server instanceof TlsServer ? 'secureConnection' : 'connection';

/**
 * Puts `lane` in front of `server`'s own connection handling. Call it right after creating the
 * server, before anything else listens for its connections.
 */
export function installSocketLane(
  server: Server,
  lane: SocketLane,
  closing: () => boolean,
  writes?: LaneWrites,
): void {
  const event = httpConnectionEvent(server);
  const http = server.listeners(event) as ((socket: Socket) => void)[];
  server.removeAllListeners(event);
  server.on(event, (socket: Socket) => {
    if (closing()) {
      for (const listener of http) listener.call(server, socket);
      return;
    }
    laneConnection(server, socket, lane, closing, http, writes);
  });
}

function laneConnection(
  server: Server,
  socket: Socket,
  lane: SocketLane,
  closing: () => boolean,
  http: ((socket: Socket) => void)[],
  writes: LaneWrites | undefined,
): void {
  // A server told to take fewer headers than the lane would (0: no limit) gets its own limit.
  const maxHeaders = Math.min(MAX_HEADERS, server.maxHeadersCount || MAX_HEADERS);
  /** Bytes read and not yet served: while waiting, the awaited request's head first. */
  let pending: Buffer | undefined;
  /**
   * Whether the keep-alive timeout runs: set at each answer when it does not, since a new
   * connection starts with the headersTimeout and one waiting for an answer has none.
   */
  let keptAlive = false;
  /** The reader half-closed: once what it sent is answered, so do we. */
  let ended = false;
  /** A PUT whose body is being read: its head's bytes, and the body so far (`have` bytes). */
  let reading:
    | {
        head: Head;
        headBytes: Buffer;
        body: Buffer;
        have: number;
        close: boolean;
        timer?: NodeJS.Timeout;
      }
    | undefined;

  const onError = () => socket.destroy();
  socket.once('close', () => clearTimeout(reading?.timer));
  const onTimeout = () => socket.destroy();
  const onDrain = () => {
    socket.resume();
    serve();
  };
  const onEnd = () => {
    ended = true;
    // A body cut short: node:http is given what came, and the end, and answers it as it would.
    if (reading) handOff(partOfBody());
    else if (!pending && !waiting.has(socket)) socket.end();
  };
  const onData = (chunk: Buffer) => {
    if (reading) {
      bodyData(chunk);
      return;
    }
    pending = pending ? Buffer.concat([pending, chunk]) : chunk;
    // Reads are paused while an answer is awaited; should a chunk come anyway, it waits too.
    if (!waiting.has(socket)) serve();
  };
  const leave = () => {
    socket.removeListener('data', onData);
    socket.removeListener('error', onError);
    socket.removeListener('timeout', onTimeout);
    socket.removeListener('drain', onDrain);
    socket.removeListener('end', onEnd);
    socket.setTimeout(0);
  };
  /** Gives the connection, and `rest` (unparsed bytes, a request's first), to node:http. */
  const handOff = (rest: Buffer) => {
    leave();
    socket.pause();
    // Once the reader's end has been read (it can be, while an answer is awaited), the stream
    // takes no bytes back: node:http is given them, then the end, as the events it reads.
    const over = ended;
    if (rest.length > 0 && !over) socket.unshift(rest);
    for (const listener of http) listener.call(server, socket);
    process.nextTick(() => {
      if (!over) socket.resume();
      else if (!socket.destroyed) {
        if (rest.length > 0) socket.emit('data', rest);
        socket.emit('end');
      }
    });
  };

  function serve(): void {
    if (!pending) return;
    // The answers to requests that came together (pipelined) leave together, in one write.
    socket.cork();
    try {
      serveAll();
    } finally {
      socket.uncork();
    }
  }

  function serveAll(): void {
    const buffer = pending;
    pending = undefined;
    if (!buffer) return;
    let at = 0;
    while (at < buffer.length) {
      const end = buffer.indexOf(CRLFCRLF, at);
      // A head cut across reads, or too long: node:http's parser and its timeouts take it.
      if (end === -1 || end - at > MAX_HEAD_BYTES || closing()) {
        handOff(buffer.subarray(at));
        return;
      }
      // latin1: one character per byte, so offsets in the text are offsets in the buffer.
      const head = parseHead(buffer.toString('latin1', at, end), maxHeaders);
      // Writes only where the service asked for them.
      if (head && !writes && head.method !== 'GET' && head.method !== 'POST') {
        handOff(buffer.subarray(at));
        return;
      }
      if (head?.method === 'PUT') {
        if (!wantsBody(head)) {
          handOff(buffer.subarray(at));
          return;
        }
        startBody(head, buffer.subarray(at, end + 4), buffer.subarray(end + 4));
        return;
      }
      const answer = head && answerOf(head);
      if (!head || !answer) {
        handOff(buffer.subarray(at));
        return;
      }
      const close = CLOSE.test(head.headers.get('connection') ?? '');
      const next = end + 4;
      const more = next < buffer.length ? buffer.subarray(next) : undefined;
      if (answer instanceof Promise) {
        wait(answer, () => buffer.subarray(at, next), more, close);
        return;
      }
      at = next;
      if (!sent(answer, close, more)) return;
    }
    if (ended) socket.end();
  }

  /** Whether the lane reads this PUT's body itself (the service says so on its head). */
  function wantsBody(head: Head): boolean {
    if (!writes || head.bodyLength === 0 || head.bodyLength > writes.maxBytes) return false;
    try {
      return writes.wants({ ...head, socket });
    } catch {
      return false;
    }
  }

  /**
   * Starts reading a PUT's body into memory of its own, exactly Content-Length long, from the
   * bytes that came with the head (`after`) and then from each read; bytes past the body are the
   * next request's. node:http would give the request `requestTimeout` to arrive: past that, the
   * lane gives node:http what came, and the rest of the body arrives there.
   */
  function startBody(head: Head, headBytes: Buffer, after: Buffer): void {
    const close = CLOSE.test(head.headers.get('connection') ?? '');
    reading = { head, headBytes, body: Buffer.allocUnsafeSlow(head.bodyLength), have: 0, close };
    readingBody.add(socket);
    socket.setTimeout(0);
    keptAlive = false;
    if (server.requestTimeout > 0) {
      reading.timer = setTimeout(() => {
        if (reading && !socket.destroyed) handOff(partOfBody());
      }, server.requestTimeout).unref();
    }
    if (after.length > 0) bodyData(after);
  }

  function bodyData(chunk: Buffer): void {
    const r = reading as NonNullable<typeof reading>;
    const take = Math.min(r.body.length - r.have, chunk.length);
    chunk.copy(r.body, r.have, 0, take);
    r.have += take;
    if (r.have < r.body.length) return;
    stopReading(r);
    bodyDone(r, take < chunk.length ? chunk.subarray(take) : undefined);
  }

  /** The body is read, or given up: no more of it is expected on this connection. */
  function stopReading(r: NonNullable<typeof reading>): void {
    clearTimeout(r.timer);
    reading = undefined;
    readingBody.delete(socket);
  }

  /** The request being read, as it came so far (for node:http); it stops being read. */
  function partOfBody(): Buffer {
    const r = reading as NonNullable<typeof reading>;
    stopReading(r);
    return Buffer.concat([r.headBytes, r.body.subarray(0, r.have)]);
  }

  /** A PUT read whole: answered, or (declined) given to node:http as it came, `more` after it. */
  function bodyDone(r: NonNullable<typeof reading>, more: Buffer | undefined): void {
    const replay = () => Buffer.concat([r.headBytes, r.body]);
    const answer = answerOf(r.head, r.body);
    if (!answer) {
      handOff(more ? Buffer.concat([replay(), more]) : replay());
      return;
    }
    if (answer instanceof Promise) {
      wait(answer, replay, more, r.close);
      return;
    }
    serveOn(answer, r.close, more);
  }

  /**
   * Writes an answer that came after a wait (for its body, or for the answer itself), then serves
   * what came after the request; with nothing left, a half-closed reader or a graceful close that
   * passed this connection by meanwhile ends it.
   */
  function serveOn(answer: LaneAnswer, close: boolean, more: Buffer | undefined): void {
    if (!sent(answer, close, more)) return;
    socket.resume();
    pending = more;
    if (pending) serve();
    else if (ended || closing()) socket.end();
  }

  /**
   * Waits for `answer` to a request (`request()`: its bytes, should node:http need them) with
   * reads stopped, then writes it and serves on from `more`, or hands the connection over with
   * the request first.
   */
  function wait(
    answer: Promise<LaneAnswer | undefined>,
    request: () => Buffer,
    more: Buffer | undefined,
    close: boolean,
  ): void {
    pending = more;
    waiting.add(socket);
    socket.pause();
    socket.setTimeout(0);
    keptAlive = false;
    const settled = (result: LaneAnswer | undefined) => {
      waiting.delete(socket);
      if (socket.destroyed) return;
      const rest = pending;
      pending = undefined;
      if (!result) {
        handOff(rest ? Buffer.concat([request(), rest]) : request());
        return;
      }
      serveOn(result, close, rest);
    };
    answer.then(settled, () => settled(undefined));
  }

  /**
   * Writes an answer; whether to go on serving. Not when the request said Connection: close, nor
   * while much of what was written is not yet taken: then `more` waits for the reader to drain.
   */
  function sent(answer: LaneAnswer, close: boolean, more: Buffer | undefined): boolean {
    write(answer, close);
    if (!keptAlive) {
      keptAlive = true;
      socket.setTimeout(server.keepAliveTimeout);
    }
    if (close) {
      leave();
      // Closed once the answer is out, as node:http does, not only half-closed: a client that
      // keeps its end open (or sent more, unread while an answer was awaited) would otherwise
      // hold the connection for good, with no timeout left to end it.
      socket.end(() => socket.destroy());
      return false;
    }
    // (Not at every answer the kernel could not take at once: a 100 KB one rarely fits, and
    // stopping and restarting the reads for each would cost more than the answer.)
    if (socket.writableLength > MAX_UNSENT_BYTES) {
      pending = more;
      socket.pause();
      socket.once('drain', onDrain);
      return false;
    }
    return true;
  }

  /** The lane's answer; should it throw, node:http and the route answer instead (and log). */
  function answerOf(head: Head, body?: Buffer) {
    try {
      return lane({
        method: head.method,
        target: head.target,
        headers: head.headers,
        socket,
        body,
      });
    } catch {
      return undefined;
    }
  }

  function write(answer: LaneAnswer, close: boolean): void {
    const { status, headers, body, written } = answer;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    if (body !== undefined && headers['content-length'] === undefined) {
      head += `content-length: ${Buffer.byteLength(body)}\r\n`;
    }
    head += close
      ? `date: ${httpDate()}\r\nconnection: close\r\n\r\n`
      : `date: ${httpDate()}\r\nconnection: keep-alive\r\nkeep-alive: timeout=${Math.floor(server.keepAliveTimeout / 1000)}\r\n\r\n`;
    socket.cork();
    socket.write(head, 'latin1');
    if (body === undefined || typeof body === 'string' || body.length <= MAX_WRITE_BYTES) {
      if (body !== undefined) socket.write(body, written);
      socket.uncork();
      return;
    }
    // The head and the first piece in one write, each further piece in its own.
    for (let at = 0; at < body.length; at += MAX_WRITE_BYTES) {
      const end = at + MAX_WRITE_BYTES;
      socket.write(body.subarray(at, end), end >= body.length ? written : undefined);
      if (at === 0) socket.uncork();
    }
  }

  // As node:http does for its sockets (its noDelay option, on by default): an answer's last
  // segment goes out at once instead of waiting for the reader's acknowledgement.
  socket.setNoDelay(true);
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('timeout', onTimeout);
  socket.on('end', onEnd);
  socket.setTimeout(
    server.headersTimeout > 0
      ? Math.min(server.headersTimeout, server.keepAliveTimeout || Infinity)
      : server.keepAliveTimeout,
  );
}
