/** Starts cache nodes on real sockets (port 0) inside the test process, and talks to them. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildCacheNode } from '../../src/cachenode/app.ts';
import { createNodeCache } from '../../src/cachenode/node-cache.ts';
import type { PolicyName } from '../../src/core/stores/store.ts';
import type { Tls } from '../../src/http/tls.ts';
import { onOff } from '../../src/process/flags.ts';

export const SECRET = 'test-secret';

/**
 * Whether services built in this process run their socket lanes: as PIXPOOL_SOCKET_LANES says,
 * as the command would (on when unset), so that `PIXPOOL_SOCKET_LANES=off` runs every test
 * without them. Tests of a lane itself set it on.
 */
export const socketLanes = (): boolean => onOff(process.env.PIXPOOL_SOCKET_LANES ?? 'on');
export const auth = { authorization: `Bearer ${SECRET}` };

export interface TestNode {
  url: string;
  cache: ReturnType<typeof createNodeCache>;
  /** The node's HTTP server (its connections, its keepAliveTimeout). */
  server: Server;
  close(): Promise<void>;
}

export async function startNode(
  options: {
    capacityMb?: number;
    policy?: PolicyName;
    secret?: string | undefined;
    bodyLimit?: number;
    random?: () => number;
    /** Read leases granted to frontends, ms (the node's default when absent). */
    leaseMs?: number;
    /** A fixed port (to restart a node at the same address); 0, any free one, by default. */
    port?: number;
    /** The node's socket lane; default: as PIXPOOL_SOCKET_LANES says (socketLanes above). */
    socketLanes?: boolean;
    /** Where the node renews its view lease (a manager, or test/helpers/renewer.ts). */
    managerUrl?: string;
    /** Serve HTTPS, hand over with its CA (test/helpers/certs.ts makes the files). */
    tls?: Tls;
  } = {},
): Promise<TestNode> {
  const cache = createNodeCache({
    policy: options.policy ?? 'LRU',
    capacityMb: options.capacityMb ?? 10,
    maxCapacityMb: 4096,
    ...(options.random && { random: options.random }),
  });
  const secret = 'secret' in options ? options.secret : SECRET;
  const app = await buildCacheNode({
    nodeId: 'test-node',
    cache,
    secret,
    ...(options.bodyLimit && { bodyLimit: options.bodyLimit }),
    ...(options.leaseMs !== undefined && { leaseMs: options.leaseMs }),
    socketLanes: options.socketLanes ?? socketLanes(),
    ...(options.managerUrl && { managerUrl: options.managerUrl }),
    tls: options.tls,
  });
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `${options.tls?.scheme ?? 'http'}://127.0.0.1:${port}`,
    cache,
    server: app.server,
    close: () => app.close(),
  };
}

/** JSON request with the shared secret; returns status and parsed body. */
export async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = auth,
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
): Promise<{ status: number; body: any }> {
  const response = await fetch(url + path, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, body: parsed };
}

/** The smallest valid PNG header plus filler, so sniffing sees a PNG. */
export function png(bytes = 100, fill = 7): Buffer {
  const b = Buffer.alloc(bytes, fill);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b);
  return b;
}

export const dataUrl = (bytes: Buffer, type = 'image/png') =>
  `data:${type};base64,${bytes.toString('base64')}`;
