/**
 * A stand-in for the manager's view-lease endpoint (POST /api/manager/nodes/renew), on a real
 * socket, for tests of single cache nodes that are given leased views (src/cachenode/view.ts)
 * without a whole manager. The manager's own side is tested in src/manager/pool and test/manager.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Renewer {
  url: string;
  /** Whether renewals are granted (a 409 refusal otherwise, as the manager words them). */
  granting: boolean;
  leaseMs: number;
  /** Every renewal asked for, in order. */
  readonly asked: { node_id: string; instance: string; version: number }[];
  /** Resolves once node `id` was granted a renewal for map `version`. */
  renewed(id: string, version: number): Promise<void>;
  close(): Promise<void>;
}

export async function startRenewer(leaseMs = 2000): Promise<Renewer> {
  const asked: Renewer['asked'] = [];
  const granted = new Set<string>();
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      const renewal = JSON.parse(body) as Renewer['asked'][number];
      asked.push(renewal);
      response.setHeader('content-type', 'application/json');
      if (!renewer.granting) {
        response.statusCode = 409;
        response.end(JSON.stringify({ success: 'false', error: { code: 409, message: 'no' } }));
        return;
      }
      granted.add(`${renewal.node_id} ${renewal.version}`);
      const ms = renewer.leaseMs;
      response.end(JSON.stringify({ success: 'true', lease_ms: ms, renew_ms: ms / 4 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const renewer: Renewer = {
    url: `http://127.0.0.1:${port}`,
    granting: true,
    leaseMs,
    asked,
    async renewed(id, version) {
      for (let i = 0; !granted.has(`${id} ${version}`); i++) {
        if (i > 200) throw new Error(`node ${id} was never renewed at map ${version}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return renewer;
}
