import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { afterEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawServer } from '../../test/helpers/raw-server.ts';
import { createEntryReader, type EntryReader } from './entry-reader.ts';
import { NodeRequestError } from './node-transport.ts';

/** A server that answers each request head with whatever `answer` writes. */
const scriptedServer = (answer: (socket: Socket, head: string, n: number) => void) =>
  rawServer((request, socket, n) => answer(socket, request.head, n));

const okHead = (body: Buffer, extra = '') =>
  `HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: ${body.length}\r\nx-pixpool-version: 7\r\n${extra}\r\n`;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
function reader(options = { timeoutMs: 1000, connections: 4 }): EntryReader {
  const r = createEntryReader(options);
  cleanups.push(() => r.close());
  return r;
}
async function server(answer: Parameters<typeof scriptedServer>[0]) {
  const s = await scriptedServer(answer);
  cleanups.push(() => s.close());
  return s;
}

/** The failure kind of a read that must fail. */
async function failureOf(read: Promise<unknown>): Promise<string> {
  const error = await read.then(
    () => assert.fail('the read should have failed'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof NodeRequestError, String(error));
  return error.kind;
}

test('a body cut into many pieces, with its head cut too, arrives whole', async () => {
  const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  const s = await server(async (socket) => {
    const all = Buffer.concat([Buffer.from(okHead(body)), body]);
    // The head is cut after 5 bytes, inside "\r\n\r\n", then the body in odd pieces.
    const cuts = [5, okHead(body).length - 2, okHead(body).length + 1, 70_001, 200_003, all.length];
    let from = 0;
    for (const cut of cuts) {
      socket.write(all.subarray(from, cut));
      from = cut;
      await sleep(5);
    }
  });
  const answer = await reader().get(s.url, '/v1/entries/a', { 'x-pixpool-lease': '1' });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers['content-type'], 'image/png');
  assert.equal(answer.headers['x-pixpool-version'], '7');
  assert.ok(answer.body.equals(body));
});

test('the request carries the path, Host and the given headers', async () => {
  const s = await server((socket) =>
    socket.write('HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}'),
  );
  const answer = await reader().get(s.url, '/v1/entries/k%C3%A9p', {
    authorization: 'Bearer s3cret',
    'x-pixpool-map-version': '12',
  });
  assert.equal(answer.status, 404);
  assert.equal(answer.body.toString(), '{}');
  const [requestLine, ...lines] = (s.heads[0] as string).split('\r\n');
  assert.equal(requestLine, 'GET /v1/entries/k%C3%A9p HTTP/1.1');
  assert.deepEqual(lines.sort(), [
    'authorization: Bearer s3cret',
    `host: ${new URL(s.url).host}`,
    'x-pixpool-map-version: 12',
  ]);
});

test('304 and 204 have no body, and the connection is kept for the next read', async () => {
  const s = await server((socket, _head, n) =>
    socket.write(
      n === 1
        ? 'HTTP/1.1 304 Not Modified\r\nx-pixpool-lease: 100\r\n\r\n'
        : 'HTTP/1.1 204 No Content\r\n\r\n',
    ),
  );
  const r = reader();
  const first = await r.get(s.url, '/v1/entries/a', {});
  assert.equal(first.status, 304);
  assert.equal(first.body.length, 0);
  assert.equal(first.headers['x-pixpool-lease'], '100');
  const second = await r.get(s.url, '/v1/entries/a', {});
  assert.equal(second.status, 204);
  assert.equal(s.connections(), 1);
});

test('at most `connections` per node; the rest wait their turn and are all answered', async () => {
  const body = Buffer.alloc(50_000, 3);
  const s = await server((socket) => {
    setTimeout(() => socket.write(Buffer.concat([Buffer.from(okHead(body)), body])), 5);
  });
  const r = reader({ timeoutMs: 2000, connections: 3 });
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => r.get(s.url, `/v1/entries/${i}`, {})),
  );
  assert.ok(answers.every((a) => a.status === 200 && a.body.equals(body)));
  assert.equal(s.connections(), 3);
});

test('a kept-alive connection the node closed is replaced, once, without failing the read', async () => {
  const body = Buffer.from('abc');
  // Each connection's first request is answered; its second finds the connection closing, as one
  // written just as the node's idle timeout closed it would.
  const served = new WeakSet<Socket>();
  const s = await server((socket) => {
    if (served.has(socket)) return void socket.destroy();
    served.add(socket);
    socket.write(Buffer.concat([Buffer.from(okHead(body)), body]));
  });
  const r = reader();
  assert.equal((await r.get(s.url, '/v1/entries/a', {})).status, 200);
  assert.equal((await r.get(s.url, '/v1/entries/b', {})).status, 200);
  assert.equal(s.connections(), 2);
  assert.deepEqual(
    s.heads.map((h) => h.split(' ')[1]),
    ['/v1/entries/a', '/v1/entries/b', '/v1/entries/b'],
  );
});

test('a new connection closed without an answer fails the read, and is not retried', async () => {
  const s = await server((socket) => socket.destroy());
  assert.equal(await failureOf(reader().get(s.url, '/v1/entries/a', {})), 'unreachable');
  assert.equal(s.connections(), 1);
});

test('answers the reader does not take fail as `answer`, and their connection is closed', async () => {
  const cases = [
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-type: image/png\r\n\r\nabc',
    'HTTP/1.1 200 OK\r\ncontent-length: -3\r\n\r\nabc',
    'HTTP/1.1 100 Continue\r\n\r\n',
    'SSH-2.0-OpenSSH\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 0\r\n\r\n',
    `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(17 * 1024)}\r\ncontent-length: 0\r\n\r\n`,
  ];
  for (const text of cases) {
    const s = await server((socket) => socket.write(text));
    const r = reader();
    assert.equal(await failureOf(r.get(s.url, '/v1/entries/a', {})), 'answer', text.slice(0, 40));
    // The next read opens a new connection (and fails the same way).
    await failureOf(r.get(s.url, '/v1/entries/a', {}));
    assert.equal(s.connections(), 2, text.slice(0, 40));
  }
});

test('a head over 16 KiB with no end in sight is refused without buffering more', async () => {
  const s = await server((socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(40 * 1024)}`);
  });
  assert.equal(await failureOf(reader().get(s.url, '/v1/entries/a', {})), 'answer');
});

test('bytes after the answer: the answer stands, the connection is not used again', async () => {
  const body = Buffer.from('abc');
  const s = await server((socket) =>
    socket.write(Buffer.concat([Buffer.from(okHead(body)), body, Buffer.from('HTTP/1.1 200')])),
  );
  const r = reader();
  const first = await r.get(s.url, '/v1/entries/a', {});
  assert.ok(first.body.equals(body));
  await r.get(s.url, '/v1/entries/b', {});
  assert.equal(s.connections(), 2);
});

test('Connection: close is honoured', async () => {
  const body = Buffer.from('abc');
  const s = await server((socket) =>
    socket.write(Buffer.concat([Buffer.from(okHead(body, 'connection: close\r\n')), body])),
  );
  const r = reader();
  await r.get(s.url, '/v1/entries/a', {});
  await r.get(s.url, '/v1/entries/b', {});
  assert.equal(s.connections(), 2);
});

test('no answer within the timeout, or nobody listening, fails as unreachable', async () => {
  const s = await server(() => {});
  const started = performance.now();
  assert.equal(
    await failureOf(reader({ timeoutMs: 150, connections: 1 }).get(s.url, '/v1/entries/a', {})),
    'unreachable',
  );
  const took = performance.now() - started;
  assert.ok(took >= 140 && took < 1500, `failed after ${took} ms`);
  await s.close();
  assert.equal(await failureOf(reader().get(s.url, '/v1/entries/a', {})), 'unreachable');
});

test('close() fails the reads under way and waiting, and refuses later ones', async () => {
  const s = await server(() => {});
  const r = createEntryReader({ timeoutMs: 5000, connections: 1 });
  const under = r.get(s.url, '/v1/entries/a', {});
  const waiting = r.get(s.url, '/v1/entries/b', {});
  await sleep(20);
  r.close();
  assert.equal(await failureOf(under), 'unreachable');
  assert.equal(await failureOf(waiting), 'unreachable');
  assert.equal(await failureOf(r.get(s.url, '/v1/entries/c', {})), 'unreachable');
});

test('reads made together go to a node in one write, pipelined, each getting its own answer', async () => {
  const s = await server((socket, head) => {
    const path = head.split(' ')[1] as string;
    const body = Buffer.from(path.repeat(1000));
    socket.write(Buffer.concat([Buffer.from(okHead(body)), body]));
  });
  const r = reader({ timeoutMs: 1000, connections: 4 });
  const paths = Array.from({ length: 6 }, (_, i) => `/v1/entries/k${i}`);
  const answers = await Promise.all(paths.map((p) => r.get(s.url, p, {})));
  answers.forEach((a, i) => {
    assert.equal(a.body.toString(), (paths[i] as string).repeat(1000));
  });
  assert.equal(s.connections(), 1);
  assert.equal(s.reads(), 1, 'the six heads came in one write');
  assert.deepEqual(
    s.heads.map((h) => h.split(' ')[1]),
    paths,
  );
});

test('a node closing under a pipelined batch: answered reads stand, the rest go again', async () => {
  const body = Buffer.from('abc');
  let answeredOnFirst = 0;
  const firstSocket: Socket[] = [];
  const s = await server((socket) => {
    if (firstSocket.length === 0) firstSocket.push(socket);
    if (socket === firstSocket[0]) {
      // The first connection answers one read, then (the batch of three behind it in) closes.
      if (answeredOnFirst++ === 0) socket.write(Buffer.concat([Buffer.from(okHead(body)), body]));
      else if (answeredOnFirst === 4) socket.destroy();
      return;
    }
    socket.write(Buffer.concat([Buffer.from(okHead(body)), body]));
  });
  const r = reader();
  assert.equal((await r.get(s.url, '/v1/entries/warm', {})).status, 200);
  const answers = await Promise.all(
    ['a', 'b', 'c'].map((k) => r.get(s.url, `/v1/entries/${k}`, {})),
  );
  assert.ok(answers.every((a) => a.status === 200 && a.body.equals(body)));
  assert.equal(s.connections(), 2);
});

test('no read waits behind an answer over 1 MiB on its connection', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 1);
  const small = Buffer.from('small');
  let release: () => void = () => {};
  const s = await server((socket, head) => {
    if (head.includes('/big ')) {
      // The head and 1 MiB + 1 byte now, the rest once the small read was answered.
      const all = Buffer.concat([Buffer.from(okHead(big)), big]);
      const cut = okHead(big).length + 1024 * 1024 + 1;
      socket.write(all.subarray(0, cut));
      release = () => socket.write(all.subarray(cut));
    } else socket.write(Buffer.concat([Buffer.from(okHead(small)), small]));
  });
  const r = reader();
  const bigRead = r.get(s.url, '/v1/entries/big', {});
  await sleep(50);
  const smallAnswer = await r.get(s.url, '/v1/entries/small', {});
  assert.ok(smallAnswer.body.equals(small));
  release();
  assert.ok((await bigRead).body.equals(big));
  assert.equal(s.connections(), 2);
});
