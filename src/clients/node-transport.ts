/**
 * The HTTP under both node clients (node-client.ts for entries, node-admin.ts for the manager's
 * commands): undici pools of kept-alive connections, two per node origin, the shared secret on
 * every request, a timeout on every call, and one error type for every way a call can fail.
 *
 * Over https the pools verify each node's certificate against the process's CA (http/tls.ts),
 * and with TLS configured the secret goes to no plain-http node off this host.
 *
 * Two pools per origin because a node answers entry reads on the socket only while a connection
 * has carried nothing else (http/socket-lane.ts): reads get connections of their own, so writes
 * and commands never move a read connection to node:http. (Entry reads from plain-http nodes do
 * not come here at all: entry-reader.ts.)
 */
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { ENTRY_PATH, nodeMessage } from '../core/node-protocol.ts';
import type { Tls } from '../http/tls.ts';

export interface NodeTransportOptions {
  /** The pool's shared secret, sent as a bearer token. */
  secret?: string | undefined;
  /** Per-request timeout for headers and body, ms. */
  timeoutMs?: number;
  /** Connections kept per node and kind (reads, the rest). */
  connections?: number;
  /** The process's TLS (its CA for https nodes, its guard); none: Node's defaults. */
  tls?: Pick<Tls, 'connect' | 'guard'> | undefined;
}

/**
 * Why a call failed: `unreachable` (no answer: refused, reset, timed out), `status` (an answer
 * the call does not accept; `status` says which), `answer` (a 2xx whose body is not what the
 * protocol promises).
 */
export type NodeFailure = 'unreachable' | 'status' | 'answer';

export class NodeRequestError extends Error {
  override name = 'NodeRequestError';
  readonly node: string;
  readonly status: number | undefined;
  readonly kind: NodeFailure;
  constructor(node: string, status: number | undefined, message: string, kind?: NodeFailure) {
    super(`cache node ${node}: ${message}`);
    this.node = node;
    this.status = status;
    this.kind = kind ?? (status === undefined ? 'unreachable' : 'status');
  }
}

export type NodeMethod = 'GET' | 'PUT' | 'DELETE' | 'POST';
export type NodeResponse = Awaited<ReturnType<Pool['request']>>;

export function createNodeTransport(options: NodeTransportOptions = {}) {
  const { secret, timeoutMs = 2000, connections = 32, tls } = options;
  const pools = new Map<string, Pool>();
  const auth: Record<string, string> = secret ? { authorization: `Bearer ${secret}` } : {};

  /**
   * Throws, as a NodeRequestError, when the process's TLS forbids sending the secret to the node
   * (checked once per node URL: the entry reader asks on every request, the pools on their first).
   */
  const guarded = new Set<string>();
  function guard(nodeUrl: string): void {
    if (guarded.has(nodeUrl)) return;
    try {
      tls?.guard(new URL(nodeUrl).origin, 'the shared secret');
    } catch (error) {
      throw new NodeRequestError(nodeUrl, undefined, (error as Error).message);
    }
    guarded.add(nodeUrl);
  }

  function poolFor(nodeUrl: string, read: boolean): Pool {
    const origin = new URL(nodeUrl).origin;
    const name = `${read ? 'read' : 'other'} ${origin}`;
    let pool = pools.get(name);
    if (!pool) {
      guard(nodeUrl);
      // A connect that hangs (a host gone from the network) fails as fast as a slow answer, so
      // a dead node costs a read at most `timeoutMs` before it falls back to storage; undici's
      // own connect timeout is 10 s.
      pool = new Pool(origin, {
        connections,
        keepAliveTimeout: 30_000,
        connect: { timeout: timeoutMs, ...tls?.connect },
      });
      pools.set(name, pool);
    }
    return pool;
  }

  /** The error for an answer a call does not accept, with the node's message from `text`. */
  function answerError(nodeUrl: string, status: number, text: string): NodeRequestError {
    return new NodeRequestError(nodeUrl, status, `${status} ${nodeMessage(text)}`);
  }

  return {
    timeoutMs,
    connections,
    /** The Authorization header every request to a node carries (none without a secret). */
    auth,
    answerError,
    guard,

    /** One request; a failure to get an answer is a NodeRequestError of kind `unreachable`. */
    async call(
      nodeUrl: string,
      method: NodeMethod,
      path: string,
      headers: Record<string, string> = {},
      body?: Buffer | Readable,
      timeout = timeoutMs,
    ): Promise<NodeResponse> {
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
        if (error instanceof NodeRequestError) throw error;
        throw new NodeRequestError(nodeUrl, undefined, (error as Error).message);
      }
    },

    /** Reads an unwanted answer and throws it as a NodeRequestError with the node's message. */
    async failure(nodeUrl: string, response: NodeResponse): Promise<never> {
      const text = await response.body.text().catch(() => '');
      throw answerError(nodeUrl, response.statusCode, text);
    },

    async close(): Promise<void> {
      await Promise.all([...pools.values()].map((pool) => pool.close()));
      pools.clear();
    },
  };
}

export type NodeTransport = ReturnType<typeof createNodeTransport>;
