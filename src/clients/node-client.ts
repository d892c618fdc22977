/**
 * The client for the cache node's entries, used by every service that reads or writes them (the
 * frontend's reads, fills and invalidations, a node's hand-over to another node). The manager's
 * commands have a client of their own (node-admin.ts); both share node-transport.ts.
 *
 * It speaks the binary path: raw bytes, content type and version in headers. Every call has a
 * timeout; failures throw NodeRequestError so callers can treat a failing node as a miss.
 */
import { Readable } from 'node:stream';
import { createBufferPool } from '../core/buffer-pool.ts';
import { BATCH_CONTENT_TYPE, type BatchBody, batchBodyBytes } from '../core/entry-batch.ts';
import {
  ENTRY_PATH,
  IF_VERSION_HEADER,
  LEASE_HEADER,
  MAP_VERSION_HEADER,
  MAX_LEASE_MS,
  MODIFIED_HEADER,
  VERSION_HEADER,
} from '../core/node-protocol.ts';
import type { CacheEntry } from '../core/stores/store.ts';
import { createEntryReader, type EntryAnswer } from './entry-reader.ts';
import {
  createNodeTransport,
  NodeRequestError,
  type NodeTransportOptions,
} from './node-transport.ts';

export { nodeUrl, SEED_NODE_PORT } from '../core/node-address.ts';
export { IF_VERSION_HEADER, MAP_VERSION_HEADER, MODIFIED_HEADER, NodeRequestError, VERSION_HEADER };

export interface NodeClientOptions extends NodeTransportOptions {
  /** The pool map version this client routes with; sent on entry requests (fencing). */
  mapVersion?: () => number | undefined;
}

/** HTTP status a node answers when a request was routed with an outdated pool view. */
export const STALE_VIEW_STATUS = 421;

export function createNodeClient(options: NodeClientOptions = {}) {
  const { mapVersion } = options;
  const transport = createNodeTransport(options);
  const { call } = transport;
  const failure = transport.failure;
  // Entry reads from plain-http nodes skip undici (entry-reader.ts); https ones go through it.
  // Their bodies come from a pool, for callers that give them back (recycle).
  const bodies = createBufferPool();
  const reader = createEntryReader({
    timeoutMs: transport.timeoutMs,
    connections: transport.connections,
    bodies,
  });
  // Fills and invalidations too, on connections of their own: a write the node's socket lane
  // declines moves its connection to node:http for good, and reads keep theirs in the lane.
  const writer = createEntryReader({
    timeoutMs: transport.timeoutMs,
    connections: transport.connections,
  });

  /** GET of an entry: its status, headers and whole body. */
  async function getEntry(
    nodeUrl: string,
    path: string,
    headers: Record<string, string>,
  ): Promise<EntryAnswer> {
    if (nodeUrl.startsWith('http://')) {
      transport.guard(nodeUrl);
      return reader.get(nodeUrl, path, { ...transport.auth, ...headers });
    }
    const response = await call(nodeUrl, 'GET', path, headers);
    const body = Buffer.from(await response.body.arrayBuffer());
    return {
      status: response.statusCode,
      headers: response.headers as EntryAnswer['headers'],
      body,
    };
  }

  /** PUT or DELETE of an entry: its status and whole body (an error's message). */
  async function writeEntry(
    nodeUrl: string,
    method: 'PUT' | 'DELETE',
    path: string,
    headers: Record<string, string>,
    body?: Buffer,
  ): Promise<{ status: number; text: string }> {
    if (nodeUrl.startsWith('http://')) {
      transport.guard(nodeUrl);
      // The writer sends headers as given; a content type read from another node's answer is
      // checked here, as undici checks every value.
      for (const name in headers) {
        if (/[\r\n]/.test(headers[name] as string)) {
          throw new NodeRequestError(nodeUrl, undefined, `a ${name} header with CR or LF`);
        }
      }
      const answer = await writer.request(
        nodeUrl,
        method,
        path,
        { ...transport.auth, ...headers },
        body,
      );
      return { status: answer.status, text: answer.body.toString() };
    }
    const response = await call(nodeUrl, method, path, headers, body);
    const text = await response.body.text().catch(() => '');
    return { status: response.statusCode, text };
  }

  const entryPath = (key: string) => `${ENTRY_PATH}${encodeURIComponent(key)}`;
  /** Headers for an entry request: the map version it was routed with, when there is one. */
  const fence = (headers: Record<string, string> = {}) => {
    const version = mapVersion?.();
    return version === undefined ? headers : { ...headers, [MAP_VERSION_HEADER]: String(version) };
  };

  return {
    /**
     * Gives back an entry's value that nothing holds any more (its answer is written), for a
     * later read to reuse. A value this client did not read into pooled memory is ignored.
     */
    recycle: (value: Buffer) => bodies.give(value),
    /** Memory given back and not yet reused. */
    get idleReadBytes() {
      return bodies.idleBytes;
    },

    /** The cached entry, or undefined on a miss. */
    async get(nodeUrl: string, key: string): Promise<CacheEntry | undefined> {
      return (await this.read(nodeUrl, key, undefined)).entry as CacheEntry | undefined;
    },

    /**
     * The node's entry when the caller holds no `version` or another one, 'current' (a 304, no
     * body crossed the wire) when it holds the node's version, undefined on a miss; with
     * `lease`, asks for a read lease (src/cachenode/leases.ts): `leaseMs` is what the node
     * granted (0: none), to be counted from before this call.
     */
    async read(
      nodeUrl: string,
      key: string,
      version: number | undefined,
      lease = false,
    ): Promise<{ entry: CacheEntry | 'current' | undefined; leaseMs: number }> {
      const headers: Record<string, string> =
        version === undefined ? {} : { [IF_VERSION_HEADER]: String(version) };
      if (lease) headers[LEASE_HEADER] = '1';
      const answer = await getEntry(nodeUrl, entryPath(key), fence(headers));
      const granted = lease ? Number(answer.headers[LEASE_HEADER] ?? 0) : 0;
      // Anything but a whole number of ms within the protocol's bound is no lease at all.
      const leaseMs =
        Number.isInteger(granted) && granted > 0 && granted <= MAX_LEASE_MS ? granted : 0;
      if (answer.status === 304) return { entry: 'current', leaseMs };
      if (answer.status === 404) return { entry: undefined, leaseMs: 0 };
      if (answer.status !== 200) {
        throw transport.answerError(nodeUrl, answer.status, answer.body.toString());
      }
      const modified = answer.headers[MODIFIED_HEADER];
      return {
        entry: {
          value: answer.body,
          contentType: answer.headers['content-type'] ?? 'application/octet-stream',
          version: Number(answer.headers[VERSION_HEADER] ?? 0),
          ...(modified !== undefined && { modifiedAt: Number(modified) }),
        },
        leaseMs,
      };
    },

    /** Store an entry; 'stale' when the node holds a newer version. */
    async put(nodeUrl: string, key: string, entry: CacheEntry): Promise<'stored' | 'stale'> {
      const answer = await writeEntry(
        nodeUrl,
        'PUT',
        entryPath(key),
        fence({
          'content-type': entry.contentType,
          [VERSION_HEADER]: String(entry.version),
          ...(entry.modifiedAt !== undefined && { [MODIFIED_HEADER]: String(entry.modifiedAt) }),
        }),
        entry.value,
      );
      if (answer.status === 204) return 'stored';
      if (answer.status === 409) return 'stale';
      throw transport.answerError(nodeUrl, answer.status, answer.text);
    },

    /** Forget `key`; with `version` (the one just committed), the node refuses older ones after. */
    async invalidate(nodeUrl: string, key: string, version?: number): Promise<void> {
      const headers: Record<string, string> =
        version === undefined ? {} : { [VERSION_HEADER]: String(version) };
      const answer = await writeEntry(nodeUrl, 'DELETE', entryPath(key), fence(headers));
      if (answer.status !== 204) throw transport.answerError(nodeUrl, answer.status, answer.text);
    },

    /**
     * Hand a batch (core/entry-batch.ts) to a node: one Buffer, or its parts — a list, or a
     * stream or generator (encodeBatchStream) that the request pulls as the socket drains, so
     * the batch is never built whole. `length`, the batch's bytes, is sent as Content-Length
     * (a list's is summed; without either the body goes chunked).
     */
    async importBatch(
      nodeUrl: string,
      batch: BatchBody,
      length?: number,
    ): Promise<{ accepted: number; refused: number }> {
      const bytes = batchBodyBytes(batch, length);
      const body =
        Buffer.isBuffer(batch) || batch instanceof Readable
          ? batch
          : Readable.from(batch, { objectMode: false });
      const response = await call(
        nodeUrl,
        'POST',
        '/v1/import',
        {
          'content-type': BATCH_CONTENT_TYPE,
          ...(bytes !== undefined && { 'content-length': String(bytes) }),
        },
        body,
      );
      if (response.statusCode !== 200) return failure(nodeUrl, response);
      const { accepted, refused } = (await response.body.json()) as {
        accepted: number;
        refused: number;
      };
      return { accepted, refused };
    },

    close: () => {
      reader.close();
      writer.close();
      return transport.close();
    },
  };
}

export type NodeClient = ReturnType<typeof createNodeClient>;
