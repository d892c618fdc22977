import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { afterEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Received, rawServer } from '../../test/helpers/raw-server.ts';
import { createEntryReader } from './entry-reader.ts';
import { createNodeClient, NodeRequestError } from './node-client.ts';

/** A server that answers each request with the text `answer` returns (undefined: none). */
const writesServer = (answer: (request: Received, socket: Socket) => string | undefined) =>
  rawServer((request, socket) => {
    const text = answer(request, socket);
    if (text !== undefined) socket.write(text);
  });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
async function server(answer: Parameters<typeof writesServer>[0]) {
  const s = await writesServer(answer);
  cleanups.push(() => s.close());
  return s;
}

const NO_CONTENT = 'HTTP/1.1 204 No Content\r\n\r\n';
const headerLines = (head: string) => head.split('\r\n').slice(1).sort();

test('PUTs made together go to a node in one write, each head followed by its body', async () => {
  const s = await server(() => NO_CONTENT);
  const writer = createEntryReader({ timeoutMs: 1000, connections: 4 });
  cleanups.push(() => writer.close());
  const bodies = [300_000, 5, 0, 70_000].map((n, i) => Buffer.alloc(n, i + 1));
  const answers = await Promise.all(
    bodies.map((body, i) => writer.request(s.url, 'PUT', `/v1/entries/k${i}`, {}, body)),
  );
  assert.ok(answers.every((a) => a.status === 204 && a.body.length === 0));
  assert.equal(s.connections(), 1);
  assert.deepEqual(
    s.received.map((r) => r.head.split('\r\n')[0]),
    bodies.map((_, i) => `PUT /v1/entries/k${i} HTTP/1.1`),
  );
  s.received.forEach((r, i) => {
    assert.ok(r.body.equals(bodies[i] as Buffer), `body ${i}`);
    assert.ok(r.head.includes(`\r\ncontent-length: ${bodies[i]?.length}`), r.head);
  });
});

test('fills and invalidations over plain http: the secret, the fence, pipelined on one connection', async () => {
  const s = await server((request) =>
    request.head.startsWith('PUT /v1/entries/old ')
      ? 'HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n{}'
      : NO_CONTENT,
  );
  const client = createNodeClient({ secret: 's3cret', mapVersion: () => 12 });
  cleanups.push(() => client.close());
  const value = Buffer.alloc(2000, 7);
  const entry = { value, contentType: 'image/png', version: 3, modifiedAt: 1700000000000 };
  const results = await Promise.all([
    client.put(s.url, 'a', entry),
    client.put(s.url, 'old', entry),
    client.put(s.url, 'b', entry),
    client.invalidate(s.url, 'c', 4),
  ]);
  assert.deepEqual(results, ['stored', 'stale', 'stored', undefined]);
  // undici's pool opens a connection per request under way and writes each on its own.
  assert.equal(s.connections(), 1);
  assert.equal(s.reads(), 1, 'the four requests came in one write');
  const [put, , , del] = s.received as Received[];
  assert.ok(put?.body.equals(value));
  const host = `host: ${new URL(s.url).host}`;
  assert.deepEqual(headerLines(put?.head as string), [
    'authorization: Bearer s3cret',
    `content-length: ${value.length}`,
    'content-type: image/png',
    host,
    'x-pixpool-map-version: 12',
    'x-pixpool-modified: 1700000000000',
    'x-pixpool-version: 3',
  ]);
  assert.equal(del?.head.split('\r\n')[0], 'DELETE /v1/entries/c HTTP/1.1');
  assert.deepEqual(headerLines(del?.head as string), [
    'authorization: Bearer s3cret',
    host,
    'x-pixpool-map-version: 12',
    'x-pixpool-version: 4',
  ]);
  assert.equal(del?.body.length, 0);
});

test("a write's unwanted answer fails with the node's message; no answer, as unreachable", async () => {
  const s = await server((request) => {
    if (request.head.includes('/v1/entries/silent ')) return undefined;
    const text = JSON.stringify({ error: { code: 'unauthorized', message: 'wrong secret' } });
    return `HTTP/1.1 401 Unauthorized\r\ncontent-length: ${text.length}\r\n\r\n${text}`;
  });
  const client = createNodeClient({ timeoutMs: 200 });
  cleanups.push(() => client.close());
  const entry = { value: Buffer.from('x'), contentType: 'image/png', version: 1 };
  const refused = await client.put(s.url, 'a', entry).catch((e: unknown) => e);
  assert.ok(refused instanceof NodeRequestError);
  assert.equal(refused.kind, 'status');
  assert.equal(refused.status, 401);
  assert.match(refused.message, /401 wrong secret/);
  const deleted = await client.invalidate(s.url, 'a').catch((e: unknown) => e);
  assert.ok(deleted instanceof NodeRequestError && deleted.status === 401);
  const silent = await client.put(s.url, 'silent', entry).catch((e: unknown) => e);
  assert.ok(silent instanceof NodeRequestError);
  assert.equal(silent.kind, 'unreachable');
});

test('a PUT on a kept-alive connection the node closed is sent again, body and all', async () => {
  // Each connection's first request is answered; its second finds it closing (an idle close).
  const served = new WeakSet<Socket>();
  const s = await server((_request, socket) => {
    if (served.has(socket)) {
      socket.destroy();
      return undefined;
    }
    served.add(socket);
    return NO_CONTENT;
  });
  const client = createNodeClient();
  cleanups.push(() => client.close());
  const entry = { value: Buffer.alloc(1000, 9), contentType: 'image/png', version: 1 };
  assert.equal(await client.put(s.url, 'a', entry), 'stored');
  await sleep(10);
  assert.equal(await client.put(s.url, 'b', entry), 'stored');
  assert.equal(s.connections(), 2);
  const last = s.received.at(-1) as Received;
  assert.ok(last.head.startsWith('PUT /v1/entries/b '));
  assert.ok(last.body.equals(entry.value));
});

test('a header value with CR or LF is refused before anything is sent', async () => {
  const s = await server(() => NO_CONTENT);
  const client = createNodeClient();
  cleanups.push(() => client.close());
  const entry = { value: Buffer.from('x'), contentType: 'image/png\r\nx-injected: 1', version: 1 };
  const refused = await client.put(s.url, 'a', entry).catch((e: unknown) => e);
  assert.ok(refused instanceof NodeRequestError);
  assert.match(refused.message, /content-type header with CR or LF/);
  assert.equal(s.connections(), 0);
});
