/**
 * The manager's client for a cache node's control endpoints: one method per endpoint, each answer
 * checked against the shape the node promises before anyone reads it, and every failure a
 * NodeRequestError whose `kind` says whether the node did not answer, refused, or answered
 * nonsense. The entry path has its own client (node-client.ts); both share node-transport.ts.
 */
import type { CacheConfig } from '../core/cache-config.ts';
import type { PoolView } from '../core/pool-view.ts';
import { REGION_COUNT } from '../core/regions.ts';
import {
  createNodeTransport,
  type NodeMethod,
  NodeRequestError,
  type NodeResponse,
  type NodeTransportOptions,
} from './node-transport.ts';

export interface NodeConfigAnswer {
  capacity: number;
  replacement_policy: string;
  capacity_bytes: number;
  /** Entries the change evicted. */
  evicted: number;
}

export interface NodeStatistics {
  items: number;
  bytes: number;
  capacity_bytes: number;
  gets: number;
  hits: number;
  misses: number;
  /** hits / gets, null before the first get. */
  hit_rate: number | null;
}

export interface PushedView {
  /** Whether the view was newer than the node's. */
  adopted: boolean;
  /** The map version the node holds now. */
  version: number;
  /** The node process that answered (a restarted node answers another). */
  instance: string;
}

export interface RegionUsage {
  region: number;
  items: number;
  bytes: number;
}

export interface HandOverOrder {
  /** The receiving node's base URL. */
  to: string;
  regions: number[];
}

export interface HandOverAnswer {
  to: string;
  entries: number;
  bytes: number;
  /** Set when this order failed; the entries not handed over stay on the sender. */
  error?: string;
}

/** The health check's own bound: a node that takes longer is counted as failing. */
export const HEALTH_TIMEOUT_MS = 1000;

type Shape = Record<string, unknown>;

/** Checks that `value` is an object whose `numbers` are finite numbers (or null where allowed). */
function shaped(
  node: string,
  value: unknown,
  what: string,
  numbers: readonly string[],
  nullable: readonly string[] = [],
): Shape {
  const bad = (detail: string) =>
    new NodeRequestError(node, 200, `its ${what} answer is not valid: ${detail}`, 'answer');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('not an object');
  }
  const shape = value as Shape;
  for (const name of numbers) {
    const n = shape[name];
    if (n === null && nullable.includes(name)) continue;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw bad(`${name} is not a number`);
  }
  return shape;
}

function list(node: string, value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new NodeRequestError(node, 200, `its ${what} answer is not a list`, 'answer');
  }
  return value;
}

export function createNodeAdmin(options: NodeTransportOptions = {}) {
  const transport = createNodeTransport(options);

  /** A JSON endpoint of the node; resolves with the answer's parsed body. */
  async function json(
    node: string,
    method: NodeMethod,
    path: string,
    body?: unknown,
    { timeout = transport.timeoutMs, accept = [200] } = {},
  ): Promise<Shape> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = payload ? { 'content-type': 'application/json' } : {};
    const response: NodeResponse = await transport.call(
      node,
      method,
      path,
      headers,
      payload,
      timeout,
    );
    if (!accept.includes(response.statusCode)) return transport.failure(node, response);
    try {
      return shaped(node, await response.body.json(), path, []);
    } catch (error) {
      if (error instanceof NodeRequestError) throw error;
      throw new NodeRequestError(node, response.statusCode, `${path}: not JSON`, 'answer');
    }
  }

  return {
    /** Whether /health answers 200 within HEALTH_TIMEOUT_MS; never throws. */
    async healthy(node: string): Promise<boolean> {
      try {
        const response = await transport.call(
          node,
          'GET',
          '/health',
          {},
          undefined,
          HEALTH_TIMEOUT_MS,
        );
        await response.body.dump();
        return response.statusCode === 200;
      } catch {
        return false;
      }
    },

    /**
     * Tells a node the pool's view, which it serves only under a view lease (cachenode/view.ts);
     * `self` is the id it has in the pool, null when the view leaves it out. Answers the version
     * the node holds now and which process took it.
     */
    async pushView(node: string, view: PoolView, self: string | null): Promise<PushedView> {
      const answer = await json(node, 'POST', '/v1/pool-view', { ...view, self, leased: true });
      const { adopted, version, instance } = answer;
      if (
        typeof adopted !== 'boolean' ||
        !Number.isSafeInteger(version) ||
        typeof instance !== 'string' ||
        instance === ''
      ) {
        throw new NodeRequestError(
          node,
          200,
          'its pool-view answer lacks adopted, version or instance',
          'answer',
        );
      }
      return { adopted, version: version as number, instance };
    },

    async configure(node: string, config: CacheConfig): Promise<NodeConfigAnswer> {
      const { content } = await json(node, 'POST', '/api/cache/config', {
        capacity: config.capacity,
        replacement_policy: config.replacement_policy,
      });
      const c = shaped(node, content, 'config', ['capacity', 'capacity_bytes', 'evicted']);
      return {
        capacity: c.capacity as number,
        replacement_policy: String(c.replacement_policy),
        capacity_bytes: c.capacity_bytes as number,
        evicted: c.evicted as number,
      };
    },

    async statistics(node: string, timeout?: number): Promise<NodeStatistics> {
      const { content } = await json(node, 'GET', '/api/cache/statistics', undefined, {
        ...(timeout !== undefined && { timeout }),
      });
      const s = shaped(
        node,
        content,
        'statistics',
        ['items', 'bytes', 'capacity_bytes', 'gets', 'hits', 'misses', 'hit_rate'],
        ['hit_rate'],
      );
      return {
        items: s.items as number,
        bytes: s.bytes as number,
        capacity_bytes: s.capacity_bytes as number,
        gets: s.gets as number,
        hits: s.hits as number,
        misses: s.misses as number,
        hit_rate: s.hit_rate as number | null,
      };
    },

    /** Items and bytes the node holds in each region. */
    async regions(node: string): Promise<RegionUsage[]> {
      const { content } = await json(node, 'GET', '/api/cache/regions');
      return list(node, content, 'regions').map((r) => {
        const s = shaped(node, r, 'regions', ['region', 'items', 'bytes']);
        const region = s.region as number;
        if (!Number.isInteger(region) || region < 0 || region >= REGION_COUNT) {
          throw new NodeRequestError(
            node,
            200,
            `its regions answer names region ${region}`,
            'answer',
          );
        }
        return { region, items: s.items as number, bytes: s.bytes as number };
      });
    },

    /** Empties the node (answered once no read lease on anything remains). */
    async clear(node: string): Promise<void> {
      await json(node, 'DELETE', '/api/cache');
    },

    /**
     * Has the node hand the entries of `orders`' regions to their receivers, node to node. With
     * `keep`, it keeps serving them (a transitional view). A receiver that fails is the node's
     * 502, whose answer still says what became of every order: it resolves, with `error` set.
     */
    async handOver(
      node: string,
      orders: HandOverOrder[],
      { keep, timeout }: { keep: boolean; timeout: number },
    ): Promise<HandOverAnswer[]> {
      const { content } = await json(
        node,
        'POST',
        '/api/cache/move_keys',
        { keep, moves: orders },
        { timeout, accept: [200, 502] },
      );
      return list(node, content, 'hand-over').map((r) => {
        const s = shaped(node, r, 'hand-over', ['entries', 'bytes']);
        return {
          to: String(s.to),
          entries: s.entries as number,
          bytes: s.bytes as number,
          ...(typeof s.error === 'string' && { error: s.error }),
        };
      });
    },

    close: () => transport.close(),
  };
}

export type NodeAdmin = ReturnType<typeof createNodeAdmin>;
