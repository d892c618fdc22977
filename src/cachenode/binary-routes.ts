/**
 * The binary path: what frontends and other nodes use. Values travel as raw bytes with their
 * content type and version in headers; no JSON, no base64.
 *
 *   GET    /v1/entries/:key   200 bytes | 404 | 304 when x-pixpool-if-version names the cached one;
 *                             with x-pixpool-lease: 1, a 200 or 304 may grant a read lease
 *   PUT    /v1/entries/:key   204 stored | 409 a newer version is cached (body: raw bytes)
 *   DELETE /v1/entries/:key   204 (with x-pixpool-version: V, older versions are refused after),
 *                             answered once no read lease on the key remains (leases.ts)
 *
 * An entry's key is a key or an image variant's `key/variant` (sent as `key%2Fvariant`): a
 * variant is in its key's region and goes with it; DELETE of a key forgets its variants too.
 *   POST   /v1/import         200 {accepted, refused} (body: an entry batch from a hand-over)
 *   POST   /v1/pool-view      200 {version, adopted, dropped, instance} (the manager pushes each
 *                             new pool view; `self: null` says this node left the pool, and
 *                             `leased: true` that it serves only under a view lease, view.ts)
 *
 * Requests to /v1/entries may carry x-pixpool-map-version; one older than the node's view is
 * turned away with 421 (view.ts). A node in a pool whose view lease has run out answers reads
 * and fills 503 (view.ts); invalidations are taken all the same but answered 503 too, and
 * imports are always taken.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  BATCH_CONTENT_TYPE,
  BatchDecoder,
  type BatchEntry,
  BatchFormatError,
  BatchTooLargeError,
  decodeBatch,
} from '../core/entry-batch.ts';
import { badRequest, conflict, failure, tooLarge } from '../core/errors.ts';
import { entryKeyProblem, keyInPath, keyProblem } from '../core/keys.ts';
import {
  ENTRY_PATH,
  IF_VERSION_HEADER,
  LEASE_HEADER,
  MAP_VERSION_HEADER,
  MODIFIED_HEADER,
  VERSION_HEADER,
} from '../core/node-protocol.ts';
import { parsePoolView } from '../core/pool-view.ts';
import type { CacheEntry } from '../core/stores/store.ts';
import type { LaneAnswer, LaneWrites, SocketLane } from '../http/socket-lane.ts';
import type { Leases } from './leases.ts';
import type { NodeCache } from './node-cache.ts';
import type { NodeView } from './view.ts';

interface KeyParams {
  key: string;
}

const CONTENT_TYPE = /^[\w.+-]+\/[\w.+-]+$/;
const VALUE_CSP = "default-src 'none'; sandbox";

export function checkKey(key: unknown): string {
  const problem = keyProblem(key);
  if (problem) throw badRequest(problem);
  return key as string;
}

/** An entry's key: a key, or one of its image variants (`key/variant`, core/keys.ts). */
function checkEntryKey(key: unknown): string {
  const problem = entryKeyProblem(key);
  if (problem) throw badRequest(problem);
  return key as string;
}

export function checkContentType(value: unknown): string {
  const type = typeof value === 'string' ? (value.split(';')[0] ?? '').trim() : '';
  if (!CONTENT_TYPE.test(type)) {
    throw badRequest('A value needs a Content-Type such as image/png.');
  }
  return type;
}

export function parseVersion(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const version = Number(value);
  if (!Number.isSafeInteger(version) || version < 0) {
    throw badRequest(`A version must be a whole number ≥ 0; got ${JSON.stringify(value)}.`);
  }
  return version;
}

/**
 * The answer to a GET of a cached entry, for the socket lane and the route alike: 304 when the
 * request names the cached version, else 200 with the bytes; a read lease (leases.ts) on either
 * when the request asked for one. A value's type is whatever its writer said: should anyone open
 * one in a browser, it is a sandboxed document that cannot run script, and never sniffed into
 * something else.
 */
function entryAnswer(
  asked: { lease: boolean; held: unknown },
  key: string,
  entry: CacheEntry,
  leases: Leases,
) {
  const lease = asked.lease ? leases.grant(key) : 0;
  const held = asked.held;
  if (held !== undefined && held === String(entry.version)) {
    const headers: OutgoingHttpHeaders = {};
    if (lease) headers[LEASE_HEADER] = lease;
    return { status: 304, headers, body: undefined };
  }
  // Names added one by one: a computed name in the literal took a slow path on every read.
  const headers: OutgoingHttpHeaders = {
    'content-type': entry.contentType,
    'content-length': entry.value.length,
  };
  headers[VERSION_HEADER] = entry.version;
  headers['x-content-type-options'] = 'nosniff';
  headers['content-security-policy'] = VALUE_CSP;
  if (entry.modifiedAt !== undefined) headers[MODIFIED_HEADER] = entry.modifiedAt;
  if (lease) headers[LEASE_HEADER] = lease;
  return { status: 200, headers, body: entry.value };
}

const NOT_CACHED = failure(404, 'Not in this cache.');
const newerCached = (key: string) =>
  `A newer version of ${JSON.stringify(key)} is cached; this one was not stored.`;
/**
 * Value types a fill takes on the socket lane: an image's, without parameters. Fastify would
 * parse others (JSON, text, forms) into something that is not the raw value, so those go to the
 * route, which words the refusal.
 */
const LANE_VALUE_TYPE = /^image\/[\w.+-]+$/;
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };

/** Why a request routed with an older pool map than the node's is turned away (421). */
const misrouted = (tagged: number | undefined, version: number) =>
  failure(
    421,
    `This request was routed with pool map ${tagged}; this node is at map ${version}. Refresh the pool view.`,
  );

/** Why a node in a pool without a running view lease answers no reads (503). */
export const VIEW_EXPIRED = failure(
  503,
  'This cache node has not heard from its manager in time, so its pool view has expired and it answers no reads until the manager renews it: read from storage.',
);

/**
 * Stores a fill, as the PUT route and the lane take it: conditional when it names its version (a
 * newer version or tombstone held here wins). False when it was not stored for that reason.
 */
function storeFill(
  cache: NodeCache,
  key: string,
  fill: { value: Buffer; contentType: string; version: number | undefined; modifiedAt?: number },
): boolean {
  const { version } = fill;
  const entry: CacheEntry = { ...fill, version: version ?? 0 };
  return cache.put(key, entry, version !== undefined) !== 'stale';
}

/**
 * An invalidation, as the DELETE route and the lane take it: the key forgotten at once; once no
 * read lease on it remains, whether this node still vouches for it (holds a view lease). Without
 * one the pool may have moved the key and the sender's view be as old as ours: taken, but no
 * acknowledgement.
 */
async function invalidated(
  cache: NodeCache,
  leases: Leases,
  view: NodeView,
  key: string,
  version: number | undefined,
): Promise<boolean> {
  cache.invalidate(key, version);
  // With a version, this node holds only that version or a newer one from now on (its tombstone
  // refuses older fills), so a lease granted from now on vouches for nothing older: only those
  // granted so far are waited for. Waiting for later ones too never ended while readers kept
  // a hot key leased, and held uploads for seconds.
  await leases.settle(key, version !== undefined);
  return view.serving();
}

/** A fill's head as the PUT route reads it; undefined for anything the route would word. */
function fillOf(target: string, headers: ReadonlyMap<string, string>) {
  const key = keyInPath(target, ENTRY_PATH);
  const contentType = headers.get('content-type');
  if (key === undefined || entryKeyProblem(key)) return undefined;
  if (contentType === undefined || !LANE_VALUE_TYPE.test(contentType)) return undefined;
  try {
    return {
      key,
      contentType,
      tagged: parseVersion(headers.get(MAP_VERSION_HEADER)),
      version: parseVersion(headers.get(VERSION_HEADER)),
      modifiedAt: parseVersion(headers.get(MODIFIED_HEADER)),
    };
  } catch {
    return undefined;
  }
}

/**
 * The writes the socket lane takes: invalidations (DELETE, answered by entrySocketLane or left to
 * the route), and the fills (PUT /v1/entries/:key) whose body it reads itself, judged on the
 * head before any of the body is read: from a client with the secret, to a valid key, with a
 * plain image type and valid versions, routed with the node's map, while the node serves. The
 * rest go to the route. Bodies up to `maxBytes` (the node's body limit).
 */
export function entryWrites(
  view: NodeView,
  admitted: (socket: Socket, authorization: string | undefined) => boolean,
  maxBytes: number,
): LaneWrites {
  return {
    maxBytes,
    wants({ method, target, headers, socket }) {
      if (method !== 'PUT') return false;
      const fill = fillOf(target, headers);
      if (!fill || !admitted(socket, headers.get('authorization'))) return false;
      return view.admits(fill.tagged) && view.serving();
    },
  };
}

/**
 * GET /v1/entries/:key, answered on the socket before node:http parses it (http/socket-lane.ts):
 * the reads frontends make for every image, and what bench node-get-100k measures. It answers
 * what the route below answers 200, 304, 404 or 421, with the same headers and envelopes, and
 * declines the rest (a wrong secret, a bad key or map version, a query string), which the route
 * then words. A cached key was checked when it was stored; only a miss checks the key.
 *
 * And the writes (entryWrites): the fills it lets through, with their bodies (a miss fills its
 * node, and node:http and Fastify were most of a fill's CPU: bench/RESULTS.md, "the miss path"),
 * 204 stored or 409 a newer version cached, as the route answers them; anything else (a value
 * too large, a view that moved while the body came) goes to the route, body and all. And the
 * invalidations, which would otherwise move a frontend's write connection to node:http for good
 * at the first upload, and every fill after it with it.
 */
export function entrySocketLane(
  cache: NodeCache,
  view: NodeView,
  leases: Leases,
  admitted: (socket: Socket, authorization: string | undefined) => boolean,
): SocketLane {
  const notCached = JSON.stringify(NOT_CACHED);
  const expired = JSON.stringify(VIEW_EXPIRED);
  /** The 421 of a request routed with another map than this node's. */
  const misroutedAnswer = (tagged: number | undefined): LaneAnswer => ({
    status: 421,
    headers: JSON_TYPE,
    body: JSON.stringify(misrouted(tagged, view.version)),
  });
  /**
   * DELETE /v1/entries/:key (an upload's invalidation), as the route answers it: 421 routed with
   * an older map; else the key forgotten at once, then 204 once no read lease on it remains, or
   * 503 if the view's lease ran out meanwhile. Declined (the route words it): a wrong secret, a
   * bad key or version.
   */
  function invalidation(
    target: string,
    headers: ReadonlyMap<string, string>,
    socket: Socket,
  ): LaneAnswer | Promise<LaneAnswer> | undefined {
    const key = keyInPath(target, ENTRY_PATH);
    if (key === undefined || entryKeyProblem(key)) return undefined;
    let tagged: number | undefined;
    let version: number | undefined;
    try {
      tagged = parseVersion(headers.get(MAP_VERSION_HEADER));
      version = parseVersion(headers.get(VERSION_HEADER));
    } catch {
      return undefined;
    }
    if (!admitted(socket, headers.get('authorization'))) return undefined;
    if (!view.admits(tagged)) {
      return misroutedAnswer(tagged);
    }
    return invalidated(cache, leases, view, key, version).then((vouched) =>
      vouched ? { status: 204, headers: {} } : { status: 503, headers: JSON_TYPE, body: expired },
    );
  }
  return ({ method, target, headers, socket, body }) => {
    if (method === 'PUT') return body && fillAnswer(cache, view, target, headers, body);
    if (method === 'DELETE') return invalidation(target, headers, socket);
    const key = method === 'GET' ? keyInPath(target, ENTRY_PATH) : undefined;
    if (key === undefined) return undefined;
    let tagged: number | undefined;
    try {
      tagged = parseVersion(headers.get(MAP_VERSION_HEADER));
    } catch {
      return undefined;
    }
    if (!admitted(socket, headers.get('authorization'))) return undefined;
    if (!cache.peek(key) && entryKeyProblem(key)) return undefined;
    if (!view.admits(tagged)) {
      return misroutedAnswer(tagged);
    }
    if (!view.serving()) return { status: 503, headers: JSON_TYPE, body: expired };
    // Counted as a hit or a miss, and the policy told, exactly as the route's read would.
    const entry = cache.get(key);
    if (!entry) return { status: 404, headers: JSON_TYPE, body: notCached };
    const asked = { lease: headers.has(LEASE_HEADER), held: headers.get(IF_VERSION_HEADER) };
    return entryAnswer(asked, key, entry, leases);
  };
}

/** A fill read whole by the lane (entryWrites let it through): stored, stale, or the route's. */
function fillAnswer(
  cache: NodeCache,
  view: NodeView,
  target: string,
  headers: ReadonlyMap<string, string>,
  body: Buffer,
) {
  const fill = fillOf(target, headers);
  // The view may have moved while the body arrived: then the route answers (421 or 503).
  if (!fill || !view.admits(fill.tagged) || !view.serving()) return undefined;
  const { key, contentType, version, modifiedAt } = fill;
  // The lane read the body into memory of its own, exactly its size. A value larger than the
  // capacity throws (413): the route words it.
  if (!storeFill(cache, key, { value: body, contentType, version, modifiedAt })) {
    return {
      status: 409,
      headers: JSON_TYPE,
      body: JSON.stringify(failure(409, newerCached(key))),
    };
  }
  return { status: 204, headers: {} };
}

export function binaryRoutes(
  app: FastifyInstance,
  cache: NodeCache,
  view: NodeView,
  leases: Leases,
  instance: string,
): void {
  // A callback hook (no promise, no extra microtask turn): every revalidation runs it.
  const fenced = {
    onRequest: (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
      let tagged: number | undefined;
      try {
        tagged = parseVersion(request.headers[MAP_VERSION_HEADER]);
      } catch (error) {
        return done(error as Error);
      }
      if (!view.admits(tagged)) {
        reply.code(421).send(misrouted(tagged, view.version));
        return;
      }
      done();
    },
  };
  // Reads and fills also need the view's lease (view.ts).
  const leased = {
    onRequest: (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
      fenced.onRequest(request, reply, (error) => {
        if (error) return done(error);
        if (!view.serving()) {
          reply.code(503).send(VIEW_EXPIRED);
          return;
        }
        done();
      });
    },
  };

  app.get<{ Params: KeyParams }>('/v1/entries/:key', leased, async (request, reply) => {
    const key = checkEntryKey(request.params.key);
    const entry = cache.get(key);
    if (!entry) return reply.code(404).send(NOT_CACHED);
    const { headers } = request;
    const asked = { lease: headers[LEASE_HEADER] !== undefined, held: headers[IF_VERSION_HEADER] };
    const answer = entryAnswer(asked, key, entry, leases);
    reply.code(answer.status).headers(answer.headers);
    return answer.body ? reply.send(answer.body) : reply.send();
  });

  app.put<{ Params: KeyParams; Body: Buffer }>(
    '/v1/entries/:key',
    leased,
    async (request, reply) => {
      const key = checkEntryKey(request.params.key);
      if (!Buffer.isBuffer(request.body) || request.body.length === 0) {
        throw badRequest('PUT needs the value as the raw request body.');
      }
      const fill = {
        value: ownMemory(request.body),
        contentType: checkContentType(request.headers['content-type']),
        version: parseVersion(request.headers[VERSION_HEADER]),
        modifiedAt: parseVersion(request.headers[MODIFIED_HEADER]),
      };
      if (!storeFill(cache, key, fill)) {
        throw conflict(newerCached(key));
      }
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: KeyParams }>('/v1/entries/:key', fenced, async (request, reply) => {
    const key = checkEntryKey(request.params.key);
    const version = parseVersion(request.headers[VERSION_HEADER]);
    // The answer (the upload's acknowledgement) waits for the key's read leases.
    if (!(await invalidated(cache, leases, view, key, version))) {
      return reply.code(503).send(VIEW_EXPIRED);
    }
    return reply.code(204).send();
  });

  // A hand-over batch is read as a stream and decoded as it arrives (core/entry-batch.ts): each
  // value is copied once, straight from the socket's chunks into its own exact-size Buffer, and
  // no whole 8 MiB body is collected first. The stream parser lives in a scope of its own so it
  // applies to this route only; a batch sent with another content type still arrives as one
  // Buffer (the catch-all parser) and is decoded the same way.
  app.register(async (scope) => {
    scope.addContentTypeParser(BATCH_CONTENT_TYPE, (_request, payload, done) =>
      done(null, payload),
    );
    scope.post('/v1/import', async (request) => {
      const body = request.body;
      let batch: BatchEntry[];
      try {
        if (Buffer.isBuffer(body)) batch = decodeBatch(body);
        else if (body instanceof Readable) {
          batch = await receiveBatch(body, request.routeOptions.bodyLimit);
        } else {
          throw badRequest('An import needs an entry batch (application/x-pixpool-entries) body.');
        }
      } catch (error) {
        if (error instanceof BatchTooLargeError) {
          throw tooLarge(`The entry batch is too large: ${error.message}.`);
        }
        if (error instanceof BatchFormatError) {
          throw badRequest(`The entry batch is malformed: ${error.message}.`);
        }
        throw error;
      }
      // Everything is checked before anything is applied: a bad entry refuses the whole batch.
      const entries: [string, CacheEntry][] = batch.map((e) => [
        checkEntryKey(e.key),
        {
          value: e.value,
          contentType: checkContentType(e.contentType),
          version: e.version,
          modifiedAt: e.modifiedAt,
        },
      ]);
      return { success: 'true', ...cache.import(entries) };
    });
  });

  app.post('/v1/pool-view', async (request) => {
    const { self, leased } = (request.body ?? {}) as { self?: unknown; leased?: unknown };
    if (self !== undefined && self !== null && (typeof self !== 'string' || self === '')) {
      throw badRequest('self must be the id the pool gives this node, or null when it left.');
    }
    if (leased !== undefined && typeof leased !== 'boolean') {
      throw badRequest('leased must be true or false.');
    }
    const dropped = view.adopt(
      parsePoolView(request.body),
      self as string | null | undefined,
      leased === true,
    );
    return {
      success: 'true',
      version: view.version,
      adopted: dropped !== undefined,
      dropped: dropped ?? 0,
      // Which process answered: the manager renews the view's lease of this one only.
      instance,
    };
  });
}

/**
 * `value` in memory of its own, exactly its size. The body parser joins the request's chunks
 * with Buffer.concat, which gives a value under 4 KB a slice of Node's shared 8 KB pool: cached
 * for hours, it would keep that whole slab (and whatever else was cut from it) alive. Larger
 * values already have their own allocation and are kept as they are (no copy).
 */
function ownMemory(value: Buffer): Buffer {
  if (value.byteOffset === 0 && value.buffer.byteLength === value.length) return value;
  const own = Buffer.allocUnsafeSlow(value.length);
  value.copy(own);
  return own;
}

/**
 * Decodes a request body stream as it arrives. After a format error the rest of the body is
 * still read (and dropped) rather than the stream destroyed, so the connection survives to carry
 * the 4xx answer back to the sender.
 */
function receiveBatch(body: Readable, maxBytes: number): Promise<BatchEntry[]> {
  return new Promise((resolve, reject) => {
    const decoder = new BatchDecoder({ maxBytes });
    let failed = false;
    body.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        decoder.push(chunk);
      } catch (error) {
        failed = true;
        reject(error);
      }
    });
    body.once('end', () => {
      if (failed) return;
      try {
        resolve(decoder.end());
      } catch (error) {
        reject(error);
      }
    });
    body.once('error', reject);
    // An aborted request may close without 'end' (after 'end', this reject is a no-op).
    body.once('close', () => reject(new Error('the entry batch was cut off by the sender')));
  });
}
