/**
 * A small EC2 instance metadata service (IMDSv2) for nodes started as a fake EC2's instances
 * (fake-ec2.ts): `pixpool cache-node --announce ec2 --ec2-metadata-url <url(instance)>` asks it
 * who it is, as a node on EC2 asks 169.254.169.254.
 *
 * One server for every instance: each has its own base path, /<instance-id>/, under which the
 * metadata paths are. The token call is at /latest/api/token whatever the base (the SDK sends it
 * there), so tokens are the server's; a metadata GET without a token it issued is refused 401,
 * as IMDSv2 refuses it, so a node that skipped the token step could not pass here.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeInstance } from './fake-ec2.ts';

export interface FakeImds {
  /** The metadata endpoint of this instance, for --ec2-metadata-url. */
  url(instance: FakeInstance): string;
  close(): Promise<void>;
}

export async function startFakeImds(): Promise<FakeImds> {
  const instances = new Map<string, FakeInstance>();
  const tokens = new Set<string>();
  const server = createServer((request, response) => {
    const answer = (status: number, body = '') => {
      response.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    };
    const path = new URL(request.url ?? '/', 'http://imds').pathname;
    if (path === '/latest/api/token') {
      if (request.method !== 'PUT') return answer(405);
      if (!request.headers['x-aws-ec2-metadata-token-ttl-seconds']) return answer(400);
      const token = randomUUID();
      tokens.add(token);
      return answer(200, token);
    }
    if (request.method !== 'GET') return answer(405);
    if (!tokens.has(String(request.headers['x-aws-ec2-metadata-token']))) return answer(401);
    const [, id, ...rest] = path.split('/');
    const instance = instances.get(id ?? '');
    if (!instance) return answer(404);
    const item = rest.join('/');
    if (item === 'latest/meta-data/instance-id') return answer(200, instance.id);
    if (item === 'latest/meta-data/local-ipv4') return answer(200, instance.privateIp);
    return answer(404);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url(instance) {
      instances.set(instance.id, instance);
      return `http://127.0.0.1:${port}/${instance.id}/`;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
