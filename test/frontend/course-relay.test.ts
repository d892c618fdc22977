/**
 * The course's test clients send every call to the frontend's port (issue 21): the later test
 * API (POST /api/delete_all, configure_cache, getNumNodes, getRate), which the manager owns, is
 * relayed by the frontend with the manager's very answers and effects, held to the manager's
 * authorization, and a 503 envelope when the manager is away. Also the upload shape those clients
 * send: a file part named `file` with the bare filename `file` and no content type.
 *
 * A real manager (admin token set, its cache nodes real processes) and real frontends
 * (frontend/main.ts, sharing the manager's storage as in `pixpool up`). "Beyond loopback" is a
 * frontend listening on 0.0.0.0, which the decision is made on, reached through 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type FrontendOptions, runFrontend } from '../../src/frontend/main.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { imageBytes } from '../helpers/images.ts';
import { startManager, type TestManager } from '../helpers/manager.ts';
import { auth, SECRET } from '../helpers/nodes.ts';

const TOKEN = 'course-admin-token';
const withToken = { authorization: `Bearer ${TOKEN}` };

interface Answer {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
  body: any;
}

async function post(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

const isEnvelope = (a: Answer, status: number) =>
  a.status === status &&
  a.body.success === 'false' &&
  a.body.error.code === status &&
  typeof a.body.error.message === 'string';

describe('the frontend relays the course test API to the manager', { timeout: 120_000 }, () => {
  const driver = createSqliteDriver();
  let m: TestManager;
  let managerUp = false;
  let dir: string;
  const frontends: FastifyInstance[] = [];
  /** A frontend on the manager's storage; its URL through loopback whatever it listens on. */
  async function frontend(options: Partial<FrontendOptions>): Promise<string> {
    const { app } = await runFrontend({
      host: '127.0.0.1',
      port: 0,
      nodes: [],
      managerUrl: m.url,
      secret: SECRET,
      maxUploadMb: 2,
      dataDir: dir,
      storage: {
        metadata: m.metadata,
        objects: m.objects,
        pool: m.store,
        driver,
        description: "the test manager's",
        close: async () => {},
      },
      handleSignals: false,
      logLevel: 'silent',
      ...options,
    });
    frontends.push(app);
    return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }
  // Beyond loopback with the token (the four are checked on it), and without one.
  let fe: string;
  let closed: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pixpool-course-'));
    m = await startManager({ adminToken: TOKEN, driver });
    managerUp = true;
    fe = await frontend({ host: '0.0.0.0', adminToken: TOKEN });
    closed = await frontend({ host: '0.0.0.0' });
  });
  after(async () => {
    for (const app of frontends) await app.close();
    if (managerUp) await m.close({ keepStorage: true });
    await m?.store.close();
    await m?.metadata.close();
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The same call through the frontend and to the manager: same status, same bytes. */
  async function same(path: string): Promise<Answer> {
    const relayed = await post(fe + path, withToken);
    const direct = await post(m.url + path, withToken);
    assert.equal(relayed.status, direct.status, path);
    assert.deepEqual(relayed.body, direct.body, path);
    assert.equal(relayed.text, direct.text, path);
    return relayed;
  }

  async function nodeConfigs() {
    const { map, addresses } = m.pool.view();
    return Promise.all(
      map.nodes.map(async (id) => {
        const response = await fetch(`${addresses[id]}/api/cache/config`, { headers: auth });
        const { content } = (await response.json()) as {
          content: { capacity: number; replacement_policy: string };
        };
        return { capacity: content.capacity, replacement_policy: content.replacement_policy };
      }),
    );
  }

  it('getNumNodes, getRate and configure_cache answer what the manager answers, with its effects', async () => {
    assert.deepEqual((await same('/api/getNumNodes')).body, { success: 'true', numNodes: 1 });
    for (const rate of ['miss', 'hit']) {
      // No reads in the last minute: no rate (null), the same through both doors.
      assert.deepEqual((await same(`/api/getRate?rate=${rate}`)).body, {
        success: 'true',
        rate,
        value: null,
      });
    }
    const configured = await post(
      `${fe}/api/configure_cache?cacheSize=48&policy=RR&numNodes=2`,
      withToken,
    );
    assert.deepEqual(configured.body, {
      success: 'true',
      mode: 'manual',
      numNodes: 2,
      cacheSize: 48,
      policy: 'RR',
    });
    assert.equal(m.pool.size, 2, 'the pool grew');
    assert.deepEqual(await nodeConfigs(), [
      { capacity: 48, replacement_policy: 'RR' },
      { capacity: 48, replacement_policy: 'RR' },
    ]);
    assert.deepEqual((await same('/api/getNumNodes')).body, { success: 'true', numNodes: 2 });
    assert.deepEqual((await same('/api/configure_cache')).body, configured.body);
  });

  it("bad query values get the manager's 4xx envelope through the frontend, changing nothing", async () => {
    const before_ = await nodeConfigs();
    for (const path of [
      '/api/configure_cache?numNodes=9',
      '/api/configure_cache?numNodes=1.5',
      '/api/configure_cache?numNodes=abc',
      '/api/configure_cache?cacheSize=-1',
      '/api/configure_cache?cacheSize=lots',
      '/api/configure_cache?policy=FIFO',
      '/api/configure_cache?mode=evil',
      '/api/configure_cache?mode=auto&maxMiss=2000',
      '/api/getRate?rate=evil',
      '/api/getRate',
      '/api/getRate?rate=miss&rate=hit',
    ]) {
      const answer = await same(path);
      assert.ok(isEnvelope(answer, 400), `${path}: ${answer.text}`);
    }
    assert.deepEqual(await nodeConfigs(), before_);
    assert.equal(m.pool.size, 2);
    assert.equal((await post(`${m.url}/api/configure_cache`, withToken)).body.mode, 'manual');
  });

  it('takes the upload shape of the course clients: part "file", filename "file", no content type', async () => {
    const bytes = imageBytes('png', 900, 3);
    const boundary = 'course-boundary';
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\ncourse-key\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\n\r\n`,
      ),
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const uploaded = await fetch(`${fe}/api/upload`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    assert.deepEqual(await uploaded.json(), { success: 'true', key: 'course-key' });
    const image = await fetch(`${fe}/images/course-key`);
    assert.equal(image.headers.get('content-type'), 'image/png', 'recognised by its bytes');
    assert.ok(Buffer.from(await image.arrayBuffer()).equals(bytes));
  });

  it('delete_all through the frontend answers {"success":"true"} and empties rows, objects and nodes', async () => {
    const form = new FormData();
    form.append('key', 'second');
    form.append('file', new Blob([new Uint8Array(imageBytes('png', 700, 4))]), 'file');
    await fetch(`${fe}/api/upload`, { method: 'POST', body: form });
    const keys = await post(`${fe}/api/list_keys`);
    assert.ok(keys.body.keys.includes('second'), keys.text);
    assert.equal((await fetch(`${fe}/images/second`)).status, 200, 'read, so cached');

    const deleted = await post(`${fe}/api/delete_all`, withToken);
    assert.equal(deleted.status, 200);
    assert.equal(deleted.text, '{"success":"true"}');
    assert.deepEqual((await post(`${fe}/api/list_keys`)).body, { success: 'true', keys: [] });
    assert.equal((await fetch(`${fe}/images/second`)).status, 404);
    assert.equal(await m.metadata.countKeys({}), 0);
    for await (const name of m.objects.list()) assert.fail(`object ${name} is left`);
    const { map, addresses } = m.pool.view();
    for (const id of map.nodes) {
      const stats = await fetch(`${addresses[id]}/api/cache/statistics`, { headers: auth });
      const { content } = (await stats.json()) as { content: { items: number } };
      assert.equal(content.items, 0, `node ${id} is empty`);
    }
    // The manager's own answer is the same bytes.
    assert.equal((await same('/api/delete_all')).text, '{"success":"true"}');
  });

  it("beyond loopback the four need the admin token, as the manager's API does", async () => {
    for (const path of ['/api/getNumNodes', '/api/delete_all', '/api/configure_cache?numNodes=1']) {
      for (const headers of [
        {} as Record<string, string>,
        { authorization: `Bearer ${SECRET}` },
        { authorization: 'Bearer x' },
      ]) {
        const refused = await post(fe + path, headers);
        assert.ok(isEnvelope(refused, 401), `${path}: ${refused.text}`);
        assert.match(refused.body.error.message, /PIXPOOL_ADMIN_TOKEN/);
        // Without a token of its own, such a frontend keeps them closed, token sent or not.
        for (const sent of [headers, withToken]) {
          const shut = await post(closed + path, sent);
          assert.ok(isEnvelope(shut, 403), `${path}: ${shut.text}`);
          assert.match(shut.body.error.message, /--open-course-api/);
        }
      }
    }
    assert.equal(m.pool.size, 2, 'no refused call reached the manager');
    assert.equal((await post(`${closed}/api/list_keys`)).status, 200, 'the rest stays open');
    assert.deepEqual((await post(`${fe}/api/getNumNodes`, withToken)).body, {
      success: 'true',
      numNodes: 2,
    });
  });

  it('--open-course-api opens them beyond loopback without a token, and warns', async (t) => {
    const lines: string[] = [];
    t.mock.method(console, 'error', (line: string) => lines.push(line));
    const open = await frontend({ host: '0.0.0.0', adminToken: TOKEN, openCourseApi: true });
    t.mock.restoreAll();
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0] ?? '', /^frontend: warning: --open-course-api: .*delete_all/);
    // The frontend calls the manager with its own token; the caller sent none.
    assert.deepEqual((await post(`${open}/api/getNumNodes`)).body, {
      success: 'true',
      numNodes: 2,
    });
    const bad = await post(`${open}/api/getRate?rate=often`);
    assert.ok(isEnvelope(bad, 400), bad.text);
  });

  it('with the manager away, each answers 503 in the envelope, saying so', async () => {
    await m.close({ keepStorage: true });
    managerUp = false;
    for (const path of [
      '/api/getNumNodes',
      '/api/getRate?rate=miss',
      '/api/delete_all',
      '/api/configure_cache',
    ]) {
      const answer = await post(fe + path, withToken);
      assert.ok(isEnvelope(answer, 503), `${path}: ${answer.text}`);
      assert.match(answer.body.error.message, /manager does not answer/);
    }
    assert.equal((await post(`${fe}/api/list_keys`)).status, 200, 'the frontend still serves');
  });
});
