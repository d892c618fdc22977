/**
 * Issue 17, TLS between hosts: a whole pool as processes over HTTPS. A manager (local provider,
 * so its cache nodes are its children and must inherit its TLS files), a frontend and an
 * autoscaler, each given a certificate and key to serve and the test CA to verify its peers,
 * share a real PostgreSQL (a throw-away schema) and an objects folder. Uploads and reads come
 * back byte-equal, a grow hands entries from node to node over TLS, and the socket lanes answer
 * on TLS sockets when on (PIXPOOL_SOCKET_LANES=on) and leave every read to node:http when off.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENTRY_PATH } from '../../src/core/node-protocol.ts';
import { freePort } from '../../src/http/listen.ts';
import { loadTls, type Tls } from '../../src/http/tls.ts';
import { type ChildService, startChildService } from '../../src/process/child-service.ts';
import { makeCertificates, type TestCertificates } from '../helpers/certs.ts';
import { SECRET } from '../helpers/nodes.ts';
import { cliEnv, imageFor, multipartUpload, pidsWithArgs, waitFor } from '../helpers/processes.ts';
import { byLane, exchange } from '../helpers/raw-http.ts';
import { createSchemaUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';

const TOKEN = 'tls-admin-token';
const KEYS = 12;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

for (const lanes of ['on', 'off'] as const) {
  describe(`a pool over HTTPS, as processes, socket lanes ${lanes}`, {
    timeout: 120_000,
  }, () => {
    const schema = randomSchema();
    let certs: TestCertificates;
    let client: Tls;
    let ca: Buffer;
    let dir: string;
    let manager: ChildService | undefined;
    let frontend: ChildService | undefined;
    let autoscaler: ChildService | undefined;

    const get = async (url: string, headers: Record<string, string> = {}) => {
      const response = await client.fetch(url, { headers });
      return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
    };
    const json = async (url: string, init: RequestInit = {}) => {
      const response = await client.fetch(url, init);
      // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
      return { status: response.status, body: (await response.json()) as any };
    };
    const view = async () =>
      (await json(`${manager?.url}/api/manager/pool_view`, { headers: bearer(SECRET) })).body as {
        map: { nodes: string[] };
        addresses: Record<string, string>;
      };

    before(async () => {
      await requirePostgres();
      const url = await createSchemaUrl(schema);
      certs = await makeCertificates();
      ca = readFileSync(certs.ca);
      client = await loadTls({ ca: certs.ca });
      dir = await mkdtemp(join(tmpdir(), 'pixpool-tls-pool-'));
      // Through the environment, as an operator would set it for every service of a host: the
      // nodes the manager starts get the files from it (flags), not from this.
      const env = cliEnv({
        PIXPOOL_SECRET: SECRET,
        PIXPOOL_ADMIN_TOKEN: TOKEN,
        PIXPOOL_SOCKET_LANES: lanes,
      });
      const tlsFlags = ['--tls-cert', certs.cert, '--tls-key', certs.key, '--tls-ca', certs.ca];
      const storage = ['--database-url', url, '--data-dir', dir, '--log-level', 'warn'];
      const port = String(await freePort('127.0.0.1'));
      manager = await startChildService({
        args: ['manager', '--port', port, ...storage, ...tlsFlags],
        env,
        label: 'manager',
        quiet: true,
      });
      frontend = await startChildService({
        args: ['frontend', '--port', '0', '--manager-url', manager.url, ...storage, ...tlsFlags],
        env,
        label: 'frontend',
        quiet: true,
      });
      autoscaler = await startChildService({
        args: ['autoscaler', '--port', '0', '--manager-url', manager.url, '--interval-s', '1'],
        env: {
          ...env,
          PIXPOOL_TLS_CERT: certs.cert,
          PIXPOOL_TLS_KEY: certs.key,
          PIXPOOL_TLS_CA: certs.ca,
        },
        label: 'autoscaler',
        quiet: true,
      });
    });

    after(async () => {
      await autoscaler?.stop();
      await frontend?.stop();
      const ids = manager ? ((await view().catch(() => undefined))?.map.nodes ?? []) : [];
      await manager?.stop(20_000);
      // Whatever happened, no node process of this test may outlive it.
      for (const id of ids)
        for (const pid of pidsWithArgs('--node-id', id)) process.kill(pid, 'SIGKILL');
      await client?.close();
      await certs?.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
      await dropSchema(schema);
    });

    it('every service and node serves HTTPS, and no plain HTTP', async () => {
      const { addresses } = await view();
      const urls = [manager?.url, frontend?.url, autoscaler?.url, ...Object.values(addresses)];
      for (const url of urls) {
        assert.match(String(url), /^https:\/\/127\.0\.0\.1:\d+$/);
        assert.equal((await get(`${url}/health`)).status, 200, String(url));
        // The same port spoken to in plain HTTP: node:https answers with no HTTP at all.
        await assert.rejects(fetch(`${String(url).replace('https:', 'http:')}/health`));
      }
    });

    it('uploads and reads come back byte-equal, and a grow hands entries over node to node', async () => {
      const upload = async (key: string, bytes: Buffer) => {
        const { body, type } = multipartUpload(key, bytes);
        return json(`${frontend?.url}/api/upload`, {
          method: 'POST',
          headers: { 'content-type': type },
          body,
        });
      };
      const readAll = async () => {
        for (let i = 0; i < KEYS; i++) {
          const { status, bytes } = await get(`${frontend?.url}/images/key-${i}`);
          assert.equal(status, 200);
          assert.ok(bytes.equals(imageFor(i)), `key-${i} byte-equal`);
        }
      };
      for (let i = 0; i < KEYS; i++) {
        const { status, body } = await upload(`key-${i}`, imageFor(i));
        assert.equal(status, 200, JSON.stringify(body));
      }
      await readAll(); // from storage, filling the node
      await readAll(); // from the node (or the frontend's leased copy)
      const [first] = (await view()).map.nodes;
      const firstUrl = (await view()).addresses[first as string] as string;
      const stats = await json(`${firstUrl}/api/cache/statistics`, { headers: bearer(SECRET) });
      assert.equal(stats.body.content.items, KEYS, JSON.stringify(stats.body));

      const grown = await json(`${manager?.url}/api/manager/poolsize/manual`, {
        method: 'POST',
        headers: { ...bearer(TOKEN), 'content-type': 'application/json' },
        body: JSON.stringify({ change: 'increase', wait: true }),
      });
      assert.equal(grown.status, 200, JSON.stringify(grown.body));
      const log = await json(`${manager?.url}/api/manager/events?limit=1`, {
        headers: bearer(TOKEN),
      });
      assert.match(log.body.content[0].message, /Grew to 2 nodes/);
      assert.ok(log.body.content[0].details.entries > 0, 'entries were handed over');
      assert.deepEqual(log.body.content[0].details.failed, [], JSON.stringify(log.body));
      const { map, addresses } = await view();
      const second = addresses[map.nodes[1] as string] as string;
      const keys = await json(`${second}/keys`, { headers: bearer(SECRET) });
      assert.ok(keys.body.length > 0, 'the new node holds what it was handed');
      await readAll();
    });

    it(`answers reads ${lanes === 'on' ? 'on the socket lanes' : 'through node:http'} over TLS`, async () => {
      const path = '/images/key-1';
      const head = (target: string, extra = '') =>
        `GET ${target} HTTP/1.1\r\nHost: pixpool\r\n${extra}\r\n`;
      // A plain read, one the lane leaves to node:http (an empty query string: no variant), then
      // a plain one again: after a hand-over the connection stays with node:http.
      const answers = await exchange(
        String(frontend?.url),
        [head(path) + head(`${path}?`) + head(path, 'Connection: close\r\n')],
        0,
        ca,
      );
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200],
      );
      for (const answer of answers) assert.ok(answer.body.equals(imageFor(1)));
      assert.deepEqual(answers.map(byLane), [lanes === 'on', false, false]);

      // A node's entry read, with the secret, on a connection of its own.
      const { map, addresses } = await view();
      const node = addresses[map.nodes[0] as string] as string;
      const [key] = (await json(`${node}/keys`, { headers: bearer(SECRET) })).body as string[];
      const [entry] = await exchange(
        node,
        [head(`${ENTRY_PATH}${key}`, `Authorization: Bearer ${SECRET}\r\nConnection: close\r\n`)],
        0,
        ca,
      );
      assert.equal(entry?.status, 200);
      assert.equal(entry && byLane(entry), lanes === 'on');
    });

    it('the autoscaler reads the pool from the manager over HTTPS with the admin token', async () => {
      const status = await waitFor('a successful tick', async () => {
        const { body } = await json(`${autoscaler?.url}/status`);
        return body.last_success_at ? body : undefined;
      });
      assert.equal(status.consecutive_failures, 0, JSON.stringify(status));
      assert.equal(status.mode, 'manual');
    });
  });
}
