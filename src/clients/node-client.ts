/**
 * The one client for the cache-node protocol, used by every service that talks to nodes (the
 * frontend's reads and fills, the manager's commands, a node's hand-over to another node).
 *
 * It speaks the binary path (raw bytes, content type and version in headers) over undici pools
 * of kept-alive connections, two per node origin: one for entry reads, one for everything else.
 * A node answers entry reads on the socket while a connection has carried nothing else; the
 * first request of another kind moves that connection to node:http for good
 * (http/socket-lane.ts), so writes on connections of their own keep the reads on the fast path.
 * Every call has a timeout; failures throw NodeRequestError so callers can treat a failing node
 * as a miss.
 */
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { BATCH_CONTENT_TYPE } from '../core/entry-batch.ts';
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

export { nodeUrl, SEED_NODE_PORT } from '../core/node-address.ts';
export { IF_VERSION_HEADER, MAP_VERSION_HEADER, MODIFIED_HEADER, VERSION_HEADER };

export interface NodeClientOptions {
  /** The pool's shared secret, sent as a bearer token. */
  secret?: string | undefined;
  /** Per-request timeout for headers and body, ms. */
  timeoutMs?: number;
  /** The pool map version this client routes with; sent on entry requests (fencing). */
  mapVersion?: () => number | undefined;
  /** Connections kept per node. */
  connections?: number;
}

/** HTTP status a node answers when a request was routed with an outdated pool view. */
export const STALE_VIEW_STATUS = 421;

export class NodeRequestError extends Error {
  override name = 'NodeRequestError';
  readonly node: string;
  readonly status: number | undefined;
  constructor(node: string, status: number | undefined, message: string) {
    super(`cache node ${node}: ${message}`);
    this.node = node;
    this.status = status;
  }
}

export function createNodeClient(options: NodeClientOptions = {}) {
  const { secret, timeoutMs = 2000, connections = 32, mapVersion } = options;
  /** By `read <origin>` (GET /v1/entries/…) or `other <origin>`. */
  const pools = new Map<string, Pool>();
  const auth: Record<string, string> = secret ? { authorization: `Bearer ${secret}` } : {};

  function poolFor(nodeUrl: string, read: boolean): Pool {
    const origin = new URL(nodeUrl).origin;
    const name = `${read ? 'read' : 'other'} ${origin}`;
    let pool = pools.get(name);
    if (!pool) {
      // A connect that hangs (a host gone from the network) fails as fast as a slow answer, so
      // a dead node costs a read at most `timeoutMs` before it falls back to storage; undici's
      // own connect timeout is 10 s.
      pool = new Pool(origin, {
        connections,
        keepAliveTimeout: 30_000,
        connect: { timeout: timeoutMs },
      });
      pools.set(name, pool);
    }
    return pool;
  }

  async function call(
    nodeUrl: string,
    method: 'GET' | 'PUT' | 'DELETE' | 'POST',
    path: string,
    headers: Record<string, string> = {},
    body?: Buffer | Readable,
    timeout = timeoutMs,
  ) {
    try {
      const read = method === 'GET' && path.startsWith(ENTRY_PATH);
      return await poolFor(nodeUrl, read).request({
        method,
        path,
        headers: { ...auth, ...headers },
        ...(body && { body }),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (error) {
      throw new NodeRequestError(nodeUrl, undefined, (error as Error).message);
    }
  }

  async function failure(
    nodeUrl: string,
    response: Awaited<ReturnType<typeof call>>,
  ): Promise<never> {
    const text = await response.body.text().catch(() => '');
    let message = text.slice(0, 300);
    try {
      message = JSON.parse(text).error.message ?? message;
    } catch {}
    throw new NodeRequestError(nodeUrl, response.statusCode, `${response.statusCode} ${message}`);
  }

  const entryPath = (key: string) => `${ENTRY_PATH}${encodeURIComponent(key)}`;
  /** Headers for an entry request: the map version it was routed with, when there is one. */
  const fence = (headers: Record<string, string> = {}) => {
    const version = mapVersion?.();
    return version === undefined ? headers : { ...headers, [MAP_VERSION_HEADER]: String(version) };
  };

  return {
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
      const response = await call(nodeUrl, 'GET', entryPath(key), fence(headers));
      const granted = lease ? Number(response.headers[LEASE_HEADER] ?? 0) : 0;
      // Anything but a whole number of ms within the protocol's bound is no lease at all.
      const leaseMs =
        Number.isInteger(granted) && granted > 0 && granted <= MAX_LEASE_MS ? granted : 0;
      if (response.statusCode === 304) {
        await response.body.dump();
        return { entry: 'current', leaseMs };
      }
      if (response.statusCode === 404) {
        await response.body.dump();
        return { entry: undefined, leaseMs: 0 };
      }
      if (response.statusCode !== 200) return failure(nodeUrl, response);
      const value = Buffer.from(await response.body.arrayBuffer());
      const modified = response.headers[MODIFIED_HEADER];
      return {
        entry: {
          value,
          contentType: String(response.headers['content-type'] ?? 'application/octet-stream'),
          version: Number(response.headers[VERSION_HEADER] ?? 0),
          ...(modified !== undefined && { modifiedAt: Number(modified) }),
        },
        leaseMs,
      };
    },

    /** Store an entry; 'stale' when the node holds a newer version. */
    async put(nodeUrl: string, key: string, entry: CacheEntry): Promise<'stored' | 'stale'> {
      const response = await call(
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
      if (response.statusCode === 204) return 'stored';
      if (response.statusCode === 409) {
        await response.body.dump();
        return 'stale';
      }
      return failure(nodeUrl, response);
    },

    /** Forget `key`; with `version` (the one just committed), the node refuses older ones after. */
    async invalidate(nodeUrl: string, key: string, version?: number): Promise<void> {
      const headers: Record<string, string> =
        version === undefined ? {} : { [VERSION_HEADER]: String(version) };
      const response = await call(nodeUrl, 'DELETE', entryPath(key), fence(headers));
      if (response.statusCode !== 204) return failure(nodeUrl, response);
    },

    /**
     * Hand a batch (core/entry-batch.ts) to a node: one Buffer, or its parts from
     * encodeBatchParts, written to the socket one after the other without joining them first.
     */
    async importBatch(
      nodeUrl: string,
      batch: Buffer | readonly Buffer[],
    ): Promise<{ accepted: number; refused: number }> {
      const length = Buffer.isBuffer(batch)
        ? batch.length
        : batch.reduce((sum, part) => sum + part.length, 0);
      const response = await call(
        nodeUrl,
        'POST',
        '/v1/import',
        { 'content-type': BATCH_CONTENT_TYPE, 'content-length': String(length) },
        Buffer.isBuffer(batch) ? batch : Readable.from(batch, { objectMode: false }),
      );
      if (response.statusCode !== 200) return failure(nodeUrl, response);
      const { accepted, refused } = (await response.body.json()) as {
        accepted: number;
        refused: number;
      };
      return { accepted, refused };
    },

    /** A node's seed-style JSON endpoint; resolves with the envelope's `content`. */
    async command<T = unknown>(
      nodeUrl: string,
      method: 'GET' | 'POST' | 'DELETE',
      path: string,
      body?: unknown,
      timeout = timeoutMs,
    ): Promise<T> {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string> = payload ? { 'content-type': 'application/json' } : {};
      const response = await call(nodeUrl, method, path, headers, payload, timeout);
      if (response.statusCode !== 200) return failure(nodeUrl, response);
      return ((await response.body.json()) as { content: T }).content;
    },

    /** Tells a node the pool's new view; resolves with whether it was newer than the node's. */
    async pushView(nodeUrl: string, view: object, self?: string): Promise<boolean> {
      const payload = Buffer.from(JSON.stringify({ ...view, self }));
      const response = await call(
        nodeUrl,
        'POST',
        '/v1/pool-view',
        {
          'content-type': 'application/json',
        },
        payload,
      );
      if (response.statusCode !== 200) return failure(nodeUrl, response);
      return ((await response.body.json()) as { adopted: boolean }).adopted;
    },

    async healthy(nodeUrl: string): Promise<boolean> {
      try {
        const response = await call(nodeUrl, 'GET', '/health', {}, undefined, 1000);
        await response.body.dump();
        return response.statusCode === 200;
      } catch {
        return false;
      }
    },

    async close(): Promise<void> {
      await Promise.all([...pools.values()].map((pool) => pool.close()));
      pools.clear();
    },
  };
}

export type NodeClient = ReturnType<typeof createNodeClient>;
