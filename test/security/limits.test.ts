/**
 * Limits and headers (issue 8): every service's server has its timeouts and connection cap
 * (src/http/service.ts), oversized headers and bodies get 431/413 envelopes and the service keeps
 * answering, a client that drips its request is cut without hurting others, and every HTML page
 * of every UI carries the security headers (src/http/web/security.ts).
 *
 * The slow-client and connection-cap cases run against a service made by the same createService
 * with shorter limits: the real services' 20 s / 120 s would make a test of minutes. That the real
 * services have the real values is checked separately, by reading them.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  createService,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_TIMEOUTS,
  routeInventory,
} from '../../src/http/service.ts';
import { securityHeaders } from '../../src/http/web/security.ts';
import { sendRaw } from './fuzz-kit.ts';
import {
  ADMIN_TOKEN,
  bearer,
  isEnvelope,
  SECRET,
  type ServiceName,
  type System,
  send,
  startSystem,
} from './services.ts';

/** Opens a raw connection; resolves once connected. */
function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Everything the server sends until it closes the connection (or `ms` pass). */
function readUntilClosed(socket: Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (closed: boolean) => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('utf8'), closed });
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => done(true));
    socket.on('error', () => {});
  });
}

async function until(condition: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const json = (status: string) => JSON.parse(status.slice(status.indexOf('\r\n\r\n') + 4));

describe('limits and security headers', { timeout: 180_000 }, () => {
  let system: System;
  before(async () => {
    system = await startSystem();
  });
  after(() => system?.close());

  const entries = () =>
    Object.entries(system.services) as [ServiceName, { app: never; url: string }][];

  it('every service has header and request timeouts and a connection cap', () => {
    for (const [name, { app }] of Object.entries(system.services)) {
      const server = app.server;
      assert.equal(server.headersTimeout, DEFAULT_TIMEOUTS.headersMs, name);
      assert.equal(server.requestTimeout, DEFAULT_TIMEOUTS.requestMs, name);
      assert.equal(server.maxConnections, DEFAULT_MAX_CONNECTIONS, name);
      assert.equal(server.keepAliveTimeout, 65_000, name);
      assert.ok(server.headersTimeout <= server.requestTimeout, name);
    }
  });

  it('a 64 KiB header gets a 431 envelope and the service keeps answering', async () => {
    for (const [name, { url }] of entries()) {
      const answer = await sendRaw(url, {
        method: 'GET',
        path: '/health',
        headers: { 'x-big': 'x'.repeat(64 * 1024) },
      });
      assert.equal(answer.status, 431, name);
      assert.ok(isEnvelope(answer), `${name}: ${answer.text}`);
      assert.equal((await send(url, 'GET', '/health')).status, 200, name);
    }
  });

  it('bodies beyond a route’s limit get a 413 envelope, before the body is read', async () => {
    const frontend = system.services.frontend.url;
    const manager = system.services.manager.url;
    const node = system.services['cache-node'].url;
    const declared: [string, string, string, Record<string, string>, number][] = [
      [frontend, 'POST', '/api/notify', bearer(SECRET), 2 * 1024 * 1024],
      [frontend, 'POST', '/api/list_keys', {}, 2 * 1024 * 1024],
      [manager, 'POST', '/api/manager/config', bearer(ADMIN_TOKEN), 2 * 1024 * 1024],
      [manager, 'POST', '/api/manager/samples', bearer(SECRET), 2 * 1024 * 1024],
      [node, 'PUT', '/v1/entries/big', bearer(SECRET), 200 * 1024 * 1024],
      [node, 'POST', '/api/cache/content', bearer(SECRET), 200 * 1024 * 1024],
    ];
    for (const [url, method, path, headers, length] of declared) {
      // Only the headers go out: the answer must come without the body ever being sent.
      const socket = await open(url);
      const head = Object.entries({
        host: 'localhost',
        'content-type': path.startsWith('/v1/') ? 'image/png' : 'application/json',
        'content-length': String(length),
        ...headers,
      })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n`);
      const { text } = await readUntilClosed(socket, 10_000);
      socket.destroy();
      assert.match(text, /^HTTP\/1\.1 413 /, `${method} ${path}: ${text.slice(0, 200)}`);
      const body = json(text);
      assert.deepEqual([body.success, body.error.code], ['false', 413]);
      assert.equal((await send(url, 'GET', '/health')).status, 200);
    }
  });

  it('an upload beyond MAX_UPLOAD_MB gets a 413 envelope and stores nothing', async () => {
    const { url } = system.services.frontend;
    const form = new FormData();
    form.append('key', 'too-big');
    const bytes = Buffer.alloc(2 * 1024 * 1024 + 1, 1);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(bytes);
    form.append('file', new Blob([new Uint8Array(bytes)]), 'big.png');
    const answer = await send(url, 'POST', '/api/upload', { body: form });
    assert.equal(answer.status, 413);
    assert.ok(isEnvelope(answer));
    assert.match(answer.body.error.message, /upload limit of 2 MB/);
    assert.equal(await system.metadata.get('too-big'), undefined);
  });

  it('every HTML page of every UI carries the security headers', async (t) => {
    const pages: string[] = [];
    const [imageKey] = system.seeded.images;
    for (const name of ['frontend', 'manager'] as const) {
      const { app, url } = system.services[name];
      const paths = routeInventory(app)
        .filter((r) => r.method === 'GET')
        .flatMap((r) =>
          r.url.includes(':name')
            ? [] // static assets, checked below
            : r.url.includes(':key')
              ? [r.url.replace(':key', imageKey as string), r.url.replace(':key', 'bad%20key')]
              : [r.url, `${r.url}?key=bad%20key&q=%3Cscript%3E&after=%00`],
        );
      paths.push('/no-such-page');
      for (const path of paths) {
        const answer = await send(url, 'GET', path, { headers: { accept: 'text/html' } });
        if (!answer.headers.get('content-type')?.startsWith('text/html')) continue;
        pages.push(`${name} ${path} ${answer.status}`);
        for (const [header, value] of Object.entries(securityHeaders)) {
          assert.equal(answer.headers.get(header), value, `${name} ${path}: ${header}`);
        }
        assert.match(answer.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
        assert.doesNotMatch(answer.text, /<script>alert|%3Cscript%3E<\/|<script>[^<]*bad key/);
      }
    }
    t.diagnostic(`HTML answers checked: ${pages.join(', ')}`);
    for (const expected of [
      'frontend / 200',
      'frontend /upload 200',
      'frontend /keys 200',
      'manager / 200',
    ]) {
      assert.ok(pages.includes(expected), `${expected} was not checked`);
    }
    assert.ok(pages.some((p) => p.startsWith('frontend /image/seeded-') && p.endsWith(' 200')));
    assert.ok(pages.includes('frontend /image/bad%20key 400'));
    assert.ok(pages.includes('frontend /no-such-page 404'));
  });

  it('a client that drips its request is cut by the timeouts; others are served meanwhile', async () => {
    const { app } = createService({
      service: 'slow-test',
      timeouts: { headersMs: 1500, requestMs: 3000, checkEveryMs: 250 },
    });
    app.post('/echo', { config: { public: true } }, async (request) => ({
      success: 'true',
      got: request.body,
    }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    try {
      // Headers, one byte at a time, never finished.
      const headers = await open(url);
      const headersCut = readUntilClosed(headers, 30_000);
      const request = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ';
      let i = 0;
      const drip1 = setInterval(() => {
        if (!headers.destroyed) headers.write(request[i++ % request.length] ?? 'a');
      }, 200);
      // A body, one byte at a time, never finished.
      const body = await open(url);
      const bodyCut = readUntilClosed(body, 30_000);
      body.write(
        'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n',
      );
      const drip2 = setInterval(() => {
        if (!body.destroyed) body.write(' ');
      }, 200);
      // Meanwhile, other clients are served.
      let served = 0;
      while (served < 5) {
        assert.equal((await send(url, 'GET', '/health')).status, 200);
        served++;
      }
      const [h, b] = await Promise.all([headersCut, bodyCut]);
      clearInterval(drip1);
      clearInterval(drip2);
      assert.ok(h.closed, 'the dripping headers were cut');
      assert.ok(b.closed, 'the dripping body was cut');
      assert.match(h.text, /^HTTP\/1\.1 408 /);
      assert.equal(json(h.text).error.code, 408);
      assert.equal((await send(url, 'GET', '/health')).status, 200);
    } finally {
      await app.close();
    }
  });

  it('connections beyond maxConnections are dropped at once; the others keep working', async () => {
    const { app } = createService({ service: 'cap-test', maxConnections: 4 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const count = () =>
      new Promise<number>((resolve) => app.server.getConnections((_e, n) => resolve(n)));
    try {
      const held = await Promise.all(Array.from({ length: 4 }, () => open(url)));
      await until(async () => (await count()) === 4);
      const extra = await open(url);
      const dropped = await readUntilClosed(extra, 10_000);
      assert.ok(dropped.closed, 'the fifth connection was closed');
      assert.equal(dropped.text, '');
      // A held connection still gets answers.
      const [first] = held as [Socket];
      const answer = readUntilClosed(first, 2000);
      first.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match((await answer).text, /^HTTP\/1\.1 200 /);
      for (const socket of held) socket.destroy();
      await until(async () => (await count()) === 0);
      assert.equal((await send(url, 'GET', '/health')).status, 200);
    } finally {
      await app.close();
    }
  });
});
