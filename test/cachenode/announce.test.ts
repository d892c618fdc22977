import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startChildService } from '../../src/process/child-service.ts';
import { SECRET } from '../helpers/nodes.ts';
import { cliEnv, waitFor } from '../helpers/processes.ts';

const TOKEN = 'imds-token-7';

async function serve(handler: (req: IncomingMessage, body: string) => [number, unknown]) {
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const [status, answer] = handler(req, body);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof answer === 'string' ? answer : JSON.stringify(answer));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** EC2's instance metadata service, IMDSv2: a token first, then reads that carry it. */
async function fakeImds() {
  let tokenlessReads = 0;
  const { server, url } = await serve((req) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') return [200, TOKEN];
    if (req.headers['x-aws-ec2-metadata-token'] !== TOKEN) {
      tokenlessReads++;
      return [401, ''];
    }
    if (req.url === '/latest/meta-data/instance-id') return [200, 'i-0abc123'];
    if (req.url === '/latest/meta-data/local-ipv4') return [200, '127.0.0.1'];
    return [404, ''];
  });
  return { server, url, tokenlessReads: () => tokenlessReads };
}

/** The manager's register endpoint: refuses the first `refusals` claims, then accepts. */
async function fakeManager(refusals: number) {
  const claims: { url: string; ref: string; authorization?: string }[] = [];
  const { server, url } = await serve((req, body) => {
    if (req.url !== '/api/manager/nodes/register') return [404, {}];
    claims.push({ ...JSON.parse(body), authorization: req.headers.authorization });
    if (claims.length <= refusals) {
      return [403, { success: 'false', error: { code: 403, message: 'not tagged yet' } }];
    }
    return [200, { success: 'true', node_id: 'node-7' }];
  });
  return { server, url, claims };
}

const close = (server: Server) =>
  new Promise((resolve) => {
    server.close(resolve);
    server.closeAllConnections();
  });

describe('a cache node started by an engine announces itself', () => {
  let imds: Awaited<ReturnType<typeof fakeImds>>;
  before(async () => {
    imds = await fakeImds();
  });
  after(() => close(imds.server));

  it('on EC2: names its instance and private address from IMDSv2, until the manager accepts', async () => {
    const manager = await fakeManager(1);
    const node = await startChildService({
      args: ['cache-node', '--port', '0', '--capacity', '8', '--announce', 'ec2'],
      env: cliEnv({
        PIXPOOL_SECRET: SECRET,
        PIXPOOL_MANAGER_URL: manager.url,
        PIXPOOL_EC2_METADATA_URL: imds.url,
      }),
      quiet: true,
    });
    try {
      await waitFor('a second claim', () => manager.claims.length >= 2);
      const port = new URL(node.url).port;
      for (const claim of manager.claims) {
        assert.deepEqual(claim, {
          ref: 'i-0abc123',
          url: `http://127.0.0.1:${port}`,
          authorization: `Bearer ${SECRET}`,
        });
      }
      assert.equal(imds.tokenlessReads(), 0, 'every metadata read carried the IMDSv2 token');
      // Accepted: it asks no more.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(manager.claims.length, 2);
      assert.equal((await fetch(`${node.url}/health`)).status, 200);
    } finally {
      await node.stop();
      await close(manager.server);
    }
  });

  it('on Kubernetes: names its pod and the URL it is told to advertise', async () => {
    const manager = await fakeManager(0);
    const node = await startChildService({
      args: [
        'cache-node',
        '--port',
        '0',
        '--capacity',
        '8',
        '--announce',
        'kubernetes',
        '--advertise-url',
        'http://pixpool-node-2.pixpool-nodes.pix.svc.cluster.local:5001/',
      ],
      env: cliEnv({
        PIXPOOL_SECRET: SECRET,
        PIXPOOL_MANAGER_URL: manager.url,
        POD_NAME: 'pixpool-node-2',
      }),
      quiet: true,
    });
    try {
      await waitFor('a claim', () => manager.claims.length >= 1);
      assert.equal(manager.claims[0]?.ref, 'pixpool-node-2');
      assert.equal(
        manager.claims[0]?.url,
        'http://pixpool-node-2.pixpool-nodes.pix.svc.cluster.local:5001',
      );
    } finally {
      await node.stop();
      await close(manager.server);
    }
  });

  it('refuses to start announcing without a manager, in one clear line', async () => {
    await assert.rejects(
      startChildService({
        args: ['cache-node', '--port', '0', '--announce', 'ec2'],
        env: cliEnv({}),
        quiet: true,
      }),
      /--announce needs --manager-url/,
    );
    await assert.rejects(
      startChildService({
        args: ['cache-node', '--port', '0', '--announce', 'nomad'],
        env: cliEnv({}),
        quiet: true,
      }),
      /Allowed choices are ec2, kubernetes/,
    );
  });
});
