/**
 * The socket lane's promised answers (src/http/socket-lane.ts): a lane that needs I/O before it
 * can answer (the frontend revalidating an image) makes its connection wait. These tests hold
 * the waiting to what a client relies on: order, hand-over, half-close, timeouts, graceful close.
 *
 * The server is a plain node:http server with the lane and keepResponsesOnClose installed as
 * service.ts installs them; its route answers `route <method> <url>`. The lane answers
 * `/now/<x>` at once, `/later/<ms>/<x>` after ms, `/gate/<x>` when the test opens the gate, and
 * promises no answer (`/decline/<ms>`) or fails (`/fail/<ms>`) after ms.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { keepResponsesOnClose } from '../../src/http/keep-responses.ts';
import { installSocketLane, type LaneAnswer, type SocketLane } from '../../src/http/socket-lane.ts';
import { byLane, exchange, open, parseAnswers, type RawAnswer } from '../helpers/raw-http.ts';

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
const last = (path: string) => get(path, 'Connection: close\r\n');
const laneAnswer = (text: string): LaneAnswer => ({
  status: 200,
  headers: { 'content-type': 'text/plain' },
  body: `lane ${text}`,
});

interface TestServer {
  url: string;
  server: Server;
  /** Opens the gate of `/gate/<name>`. */
  open(name: string): void;
  /** What service.ts's close does: the lane stops taking requests, the server closes. */
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  let closing = false;
  const gates = new Map<string, () => void>();
  const lane: SocketLane = ({ target }) => {
    const [, kind, a = '', b = ''] = target.split('/');
    const ms = Number(a);
    if (kind === 'now') return laneAnswer(a);
    if (kind === 'later') return sleep(ms).then(() => laneAnswer(b));
    if (kind === 'decline') return sleep(ms).then(() => undefined);
    if (kind === 'fail') return sleep(ms).then(() => Promise.reject(new Error('store down')));
    if (kind === 'gate') {
      return new Promise((resolve) => gates.set(a, () => resolve(laneAnswer(a))));
    }
    return undefined;
  };
  const server = createServer((request, response) => {
    const body = `route ${request.method} ${request.url}`;
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    response.end(body);
  });
  installSocketLane(server, lane, () => closing);
  keepResponsesOnClose(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    open: (name) => gates.get(name)?.(),
    close: () =>
      new Promise((resolve) => {
        closing = true;
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** Each answer's body, marked when node:http (not the lane) wrote it. */
const texts = (answers: RawAnswer[]) =>
  answers.map((a) => `${byLane(a) ? '' : '(http) '}${a.body.toString()}`);

describe('socket lane: promised answers', { timeout: 30_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.close());

  it('answers a promised answer in its turn: pipelined requests after it wait for it', async () => {
    const answers = await exchange(t.url, [
      get('/now/a') + get('/later/60/b') + get('/now/c') + get('/later/5/d') + last('/now/e'),
    ]);
    assert.deepEqual(
      answers.map((a) => [byLane(a), a.body.toString()]),
      [
        [true, 'lane a'],
        [true, 'lane b'],
        [true, 'lane c'],
        [true, 'lane d'],
        [true, 'lane e'],
      ],
    );
    assert.equal(answers[3]?.headers.connection, 'keep-alive');
    assert.equal(answers[4]?.headers.connection, 'close');
  });

  it('serves requests that arrive while it waits once the answer is out', async () => {
    const answers = await exchange(t.url, [get('/later/150/a'), get('/now/b'), last('/now/c')], 40);
    assert.deepEqual(
      answers.map((a) => a.body.toString()),
      ['lane a', 'lane b', 'lane c'],
    );
    assert.ok(answers.every(byLane));
  });

  for (const kind of ['decline', 'fail']) {
    it(`hands the connection over with the request first when a promise ${kind}s`, async () => {
      const answers = await exchange(t.url, [
        get('/now/a') + get(`/${kind}/30`) + get('/now/b') + last('/later/5/c'),
      ]);
      assert.deepEqual(texts(answers), [
        'lane a',
        `(http) route GET /${kind}/30`,
        // Handed over for good: node:http answers what the lane would have taken.
        '(http) route GET /now/b',
        '(http) route GET /later/5/c',
      ]);
    });
  }

  it('answers a client that half-closes while it waits, then ends', async () => {
    const socket = await open(t.url);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.end(get('/later/80/a') + get('/now/b') + get('/later/20/c'));
    await closed;
    assert.deepEqual(texts(parseAnswers(Buffer.concat(received))), ['lane a', 'lane b', 'lane c']);
  });

  it('runs no idle timeout while it waits for an answer', async () => {
    const { server } = t;
    const previous = [server.headersTimeout, server.keepAliveTimeout];
    server.headersTimeout = 100;
    server.keepAliveTimeout = 100;
    try {
      const answers = await exchange(t.url, [get('/now/a') + last('/later/400/b')]);
      assert.deepEqual(
        answers.map((a) => a.body.toString()),
        ['lane a', 'lane b'],
      );
    } finally {
      [server.headersTimeout, server.keepAliveTimeout] = previous as [number, number];
    }
  });

  it('keeps serving others when a client leaves while its answer is awaited', async () => {
    const socket = await open(t.url);
    socket.write(get('/gate/gone'));
    await sleep(20);
    socket.destroy();
    await sleep(20);
    t.open('gone');
    const answers = await exchange(t.url, [last('/now/after')]);
    assert.equal(answers[0]?.body.toString(), 'lane after');
  });
});

describe('socket lane: a graceful close with an answer awaited', { timeout: 30_000 }, () => {
  it('ends idle connections at once, and a waiting one once its answer is out', async () => {
    const t = await startServer();
    const connect = async (requests: string) => {
      const socket = await open(t.url);
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const ended = new Promise<Buffer>((resolve) =>
        socket.once('end', () => resolve(Buffer.concat(received))),
      );
      socket.write(requests);
      return { socket, received, ended };
    };
    const idle = await connect(get('/now/idle'));
    const waiting = await connect(get('/now/first') + get('/gate/slow'));
    while (!Buffer.concat(idle.received).includes('lane idle')) await sleep(5);
    while (!Buffer.concat(waiting.received).includes('lane first')) await sleep(5);

    let closed = false;
    const closing = t.close().then(() => {
      closed = true;
    });
    assert.deepEqual(texts(parseAnswers(await idle.ended)), ['lane idle']);
    await sleep(100);
    assert.ok(!closed, 'the server closed while an answer was still owed');
    assert.ok(!waiting.socket.readableEnded, 'the waiting connection was ended before its answer');

    t.open('slow');
    assert.deepEqual(texts(parseAnswers(await waiting.ended)), ['lane first', 'lane slow']);
    await closing;
    idle.socket.destroy();
    waiting.socket.destroy();
  });
});
