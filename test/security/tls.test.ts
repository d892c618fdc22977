/**
 * Issue 17, TLS between hosts, with services built in this process on real sockets and
 * certificates made by `openssl` (helpers/certs.ts):
 * - a peer whose certificate another CA signed is refused during the handshake, so nothing,
 *   the secret least of all, is ever sent to it, and the frontend reads from storage instead;
 * - what crosses the network between a frontend and a node, and between the manager and its
 *   clients (a frontend, a node, the autoscaler, an operator), recorded by a TCP proxy in the
 *   middle, holds neither the shared secret nor the admin token, while every request succeeds;
 *   the same traffic without TLS holds both, which shows the recording would catch them;
 * - with TLS configured, a client refuses plain http to anything but loopback.
 * The whole pool as processes over HTTPS is tls-pool.test.ts; the flags' refusals are in
 * test/cli.test.ts.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createManagerSource } from '../../src/autoscaler/manager-source.ts';
import { createPublisher } from '../../src/cachenode/publisher.ts';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { createNodeClient } from '../../src/clients/node-client.ts';
import type { PoolView } from '../../src/core/pool-view.ts';
import { createManagerLink } from '../../src/frontend/manager-link.ts';
import { loadTls, NO_TLS, type Tls } from '../../src/http/tls.ts';
import { createNotifier } from '../../src/manager/notifier.ts';
import { createStaticProvider } from '../../src/manager/providers/static.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import type { PoolStore } from '../../src/storage/pool-store.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { makeCertificates, type TestCertificates } from '../helpers/certs.ts';
import { startFrontend } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import { startManager } from '../helpers/manager.ts';
import { SECRET, startNode, type TestNode } from '../helpers/nodes.ts';
import { multipartUpload } from '../helpers/processes.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const TOKEN = 'tls-test-admin-token';
/** An address off this host (TEST-NET, RFC 2544): nothing is ever sent there. */
const AWAY = '198.18.0.7';

/** An upload and two reads through the frontend at `url`, byte-equal, with `client`'s fetch. */
async function uploadAndRead(client: Tls, url: string, key: string, bytes: Buffer) {
  const { body, type } = multipartUpload(key, bytes);
  const uploaded = await client.fetch(`${url}/api/upload`, {
    method: 'POST',
    headers: { 'content-type': type },
    body,
  });
  assert.equal(uploaded.status, 200, await uploaded.text());
  for (let i = 0; i < 2; i++) {
    const read = await client.fetch(`${url}/images/${key}`);
    assert.equal(read.status, 200);
    assert.ok(Buffer.from(await read.arrayBuffer()).equals(bytes), 'byte-equal');
  }
}

/** A proxy that records what crosses it, in front of `node`, as a node the frontend can use. */
async function behindProxy(node: TestNode, scheme: string) {
  const { port } = new URL(node.url);
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(port) }, { record: true });
  return { proxy, node: { ...node, url: `${scheme}://127.0.0.1:${proxy.port}` } };
}

describe('TLS between hosts', { timeout: 60_000 }, () => {
  let certs: TestCertificates;
  let foreign: TestCertificates;
  /** A service of the pool: serves with a certificate the pool's CA signed, trusts that CA. */
  let tls: Tls;
  /** The test's own client: trusts the pool's CA. */
  let client: Tls;
  /** A stranger: a certificate from another CA (it trusts only that one). */
  let strangerTls: Tls;
  /** One database for every frontend here: each of its own would cost a PGlite start. */
  let metadata: MetadataStore;

  before(async () => {
    metadata = await createMetadataStore(createSqliteDriver());
    [certs, foreign] = await Promise.all([
      makeCertificates({ ips: [AWAY] }),
      makeCertificates({ name: 'stranger' }),
    ]);
    tls = await loadTls(certs);
    client = await loadTls({ ca: certs.ca });
    strangerTls = await loadTls(foreign);
  });
  after(async () => {
    await Promise.all([tls, client, strangerTls].map((t) => t?.close()));
    await Promise.all([certs, foreign].map((c) => c?.cleanup()));
    await metadata?.close();
  });

  it('the test certificates name 127.0.0.1, ::1, localhost and the addresses asked for', () => {
    const names = new X509Certificate(readFileSync(certs.cert)).subjectAltName ?? '';
    for (const name of ['IP Address:127.0.0.1', 'DNS:localhost', `IP Address:${AWAY}`]) {
      assert.ok(names.includes(name), `${name} in ${names}`);
    }
    assert.ok(
      new X509Certificate(readFileSync(certs.cert)).checkIssued(
        new X509Certificate(readFileSync(certs.ca)),
      ),
    );
    assert.ok(
      !new X509Certificate(readFileSync(foreign.cert)).checkIssued(
        new X509Certificate(readFileSync(certs.ca)),
      ),
      'two calls, two authorities',
    );
  });

  it('a node whose certificate another CA signed is refused at the handshake: nothing is sent to it, uploads are refused, reads come from storage', async () => {
    const stranger = await startNode({ tls: strangerTls });
    let handshakes = 0;
    let refusedHandshakes = 0;
    stranger.server.on('secureConnection', () => handshakes++);
    stranger.server.on('tlsClientError', () => refusedHandshakes++);
    const { proxy, node } = await behindProxy(stranger, 'https');
    const fe = await startFrontend({ nodes: [node], tls, metadata });
    const nodes = createNodeClient({ secret: SECRET, tls });
    try {
      const bytes = imageBytes('png', 20_000, 3);
      // The key's node cannot be told of the upload: stored, not acknowledged (README, "Across
      // hosts"); reads come from storage.
      const { body, type } = multipartUpload('stranger-key', bytes);
      const uploaded = await client.fetch(`${fe.url}/api/upload`, {
        method: 'POST',
        headers: { 'content-type': type },
        body,
      });
      assert.equal(uploaded.status, 503);
      assert.match(await uploaded.text(), /not acknowledged/);
      for (let i = 0; i < 2; i++) {
        const read = await client.fetch(`${fe.url}/images/stranger-key`);
        assert.equal(read.status, 200);
        assert.ok(Buffer.from(await read.arrayBuffer()).equals(bytes), 'byte-equal');
      }
      assert.equal(stranger.cache.items, 0, 'the stranger was never filled');
      // The clear error a client gets, before any request is written.
      await assert.rejects(nodes.get(stranger.url, 'stranger-key'), (error: Error) => {
        assert.match(error.message, /^cache node https:\/\/127\.0\.0\.1:\d+: .*certificate/);
        return true;
      });
      assert.ok(refusedHandshakes > 0, 'the frontend and the client tried');
      assert.equal(handshakes, 0, 'no TLS session, so no request, ever reached the stranger');
      assert.ok(!proxy.recorded().includes(SECRET));
    } finally {
      await nodes.close();
      await fe.close();
      await proxy.close();
      await stranger.close();
    }
  });

  /** Frontend → proxy → node, with or without TLS: what the proxy saw. */
  async function frontendToNode(with_: Tls, server: Tls): Promise<Buffer> {
    const node = await startNode({ tls: server });
    const { proxy, node: proxied } = await behindProxy(node, server.scheme);
    const fe = await startFrontend({ nodes: [proxied], tls: with_, nearCacheMb: 0, metadata });
    try {
      await uploadAndRead(
        with_ === NO_TLS ? NO_TLS : client,
        fe.url,
        'wire',
        imageBytes('png', 30_000, 5),
      );
      assert.ok(node.cache.peek('wire'), 'the node was filled through the proxy');
      return proxy.recorded();
    } finally {
      await fe.close();
      await proxy.close();
      await node.close();
    }
  }

  it('between a frontend and a node, the secret never crosses in plaintext', async () => {
    const encrypted = await frontendToNode(tls, tls);
    assert.ok(encrypted.length > 30_000, 'the image crossed the proxy');
    assert.ok(!encrypted.includes(SECRET), 'no secret in the TLS bytes');
    assert.ok(!encrypted.includes('/v1/entries/'), 'nor any request in the clear');
    const plain = await frontendToNode(NO_TLS, NO_TLS);
    assert.ok(plain.includes(`Bearer ${SECRET}`), 'without TLS the recording sees the secret');
  });

  /**
   * A manager (static provider, one node) behind a recording proxy, and its clients through it:
   * a frontend's link (the secret), a node's statistics (the secret), the autoscaler and an
   * operator (the admin token). What the proxy saw.
   */
  async function managerTraffic(with_: Tls): Promise<Buffer> {
    const node = await startNode({ tls: with_ });
    const admin = createNodeAdmin({ secret: SECRET, tls: with_ });
    const provider = createStaticProvider({ urls: [node.url], admin });
    const m = await startManager({ provider, adminToken: TOKEN, tls: with_ });
    const { port } = new URL(m.url);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(port) }, { record: true });
    const url = `${with_.scheme}://127.0.0.1:${proxy.port}`;
    const operator = with_ === NO_TLS ? NO_TLS : client;
    try {
      const link = createManagerLink({
        managerUrl: url,
        secret: SECRET,
        log: { warn: () => {}, info: () => {} },
        fetch: with_.fetch,
      });
      const view = await link.firstView(5000);
      assert.deepEqual(Object.values(view.addresses), [node.url]);

      const warnings: string[] = [];
      const publisher = createPublisher({
        nodeId: 'published',
        managerUrl: url,
        secret: SECRET,
        sample: () => node.cache.stats.sample(),
        log: { warn: (message) => warnings.push(message), info: () => {} },
        fetch: with_.fetch,
      });
      await publisher.tick();
      assert.deepEqual(warnings, [], 'the manager took the sample');

      const source = createManagerSource({
        managerUrl: url,
        adminToken: TOKEN,
        fetch: with_.fetch,
      });
      assert.equal((await source.read(60)).pool.size, 1);

      const events = await operator.fetch(`${url}/api/manager/events?limit=1`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(events.status, 200);
      return proxy.recorded();
    } finally {
      await proxy.close();
      await m.close();
      await admin.close();
      await node.close();
    }
  }

  it('between the manager and its clients, neither the secret nor the admin token crosses in plaintext', async () => {
    const encrypted = await managerTraffic(tls);
    assert.ok(encrypted.length > 2000, 'the requests crossed the proxy');
    assert.ok(!encrypted.includes(SECRET), 'no secret in the TLS bytes');
    assert.ok(!encrypted.includes(TOKEN), 'no admin token in the TLS bytes');
    const plain = await managerTraffic(NO_TLS);
    assert.ok(plain.includes(`Bearer ${SECRET}`), 'without TLS the recording sees the secret');
    assert.ok(plain.includes(`Bearer ${TOKEN}`), 'and the admin token');
  });

  it('with TLS configured, plain http is refused but on loopback', async () => {
    for (const url of [`http://${AWAY}:5001`, 'http://10.0.0.5', 'http://[2001:db8::1]:5001']) {
      assert.throws(
        () => tls.guard(url, 'the shared secret'),
        /^Error: Refusing to send the shared secret to http:\/\/.+ over plain http/,
      );
      assert.doesNotThrow(() => NO_TLS.guard(url, 'the shared secret'), 'without TLS, as before');
    }
    for (const url of [
      'http://127.0.0.1:5001',
      'http://127.8.9.1',
      'http://localhost:1',
      'http://[::1]:1',
      `https://${AWAY}`,
    ]) {
      assert.doesNotThrow(() => client.guard(url, 'the shared secret'), url);
    }

    // The node client says why, at once, without trying to connect (198.18/15 goes nowhere).
    const nodes = createNodeClient({ secret: SECRET, tls: client, timeoutMs: 5000 });
    const started = Date.now();
    await assert.rejects(
      nodes.get(`http://${AWAY}:5001`, 'k'),
      new RegExp(
        `^NodeRequestError: cache node http://${AWAY}:5001: Refusing to send the shared secret to http://${AWAY}:5001 over plain http`,
      ),
    );
    // Fills and invalidations alike.
    const refused = new RegExp(`^NodeRequestError: cache node http://${AWAY}:5001: Refusing`);
    const entry = { value: Buffer.from('x'), contentType: 'image/png', version: 1 };
    await assert.rejects(nodes.put(`http://${AWAY}:5001`, 'k', entry), refused);
    await assert.rejects(nodes.invalidate(`http://${AWAY}:5001`, 'k', 1), refused);
    assert.ok(Date.now() - started < 1000, 'refused before any connection attempt');
    await nodes.close();

    // The manager does not push a pool view (and the secret) to such a frontend.
    const failures: string[] = [];
    const notify = createNotifier({
      store: {
        listFrontends: async () => [{ url: `http://${AWAY}:5000`, lastSeen: new Date() }],
      } as unknown as PoolStore,
      secret: SECRET,
      journal: { failed: (_operation, error) => failures.push(String(error)) },
      tls,
    });
    await notify({} as PoolView);
    assert.equal(failures.length, 1);
    assert.match(
      failures[0] as string,
      /Refusing to send the shared secret to http:\/\/198\.18\.0\.7:5000/,
    );
  });

  it('a manager with TLS refuses to register a plain-http frontend off loopback', async () => {
    const node = await startNode({ tls });
    const admin = createNodeAdmin({ secret: SECRET, tls });
    const provider = createStaticProvider({ urls: [node.url], admin });
    const m = await startManager({ provider, tls });
    try {
      const register = async (url: string) => {
        const response = await client.fetch(`${m.url}/api/manager/frontends`, {
          method: 'POST',
          headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
          body: JSON.stringify({ url }),
        });
        return {
          status: response.status,
          body: (await response.json()) as { error?: { message?: string } },
        };
      };
      const refused = await register(`http://${AWAY}:5000`);
      assert.equal(refused.status, 400);
      assert.match(refused.body.error?.message ?? '', /over plain http/);
      assert.deepEqual(await m.store.listFrontends({}), [], 'nothing kept');
      assert.equal((await register(`https://${AWAY}:5000`)).status, 200);
      assert.equal((await register('http://127.0.0.1:5000')).status, 200, 'loopback stays open');
      assert.deepEqual((await m.store.listFrontends({})).map((f) => f.url).sort(), [
        'http://127.0.0.1:5000',
        `https://${AWAY}:5000`,
      ]);
    } finally {
      await m.close();
      await node.close();
    }
  });
});
