/**
 * The socket lane's promised answers (src/http/socket-lane.ts): a lane that needs I/O before it
 * can answer (the frontend revalidating an image) makes its connection wait. These tests hold
 * the waiting to what a client relies on: order, hand-over, half-close, timeouts, graceful close.
 *
 * The server is a plain node:http server with the lane and keepResponsesOnClose installed as
 * service.ts installs them; its route answers `route <method> <url>`. The lane answers
 * `/now/<x>` at once and makes `/gate/<name>` wait until the test opens that gate (or has it
 * promise no answer, or fail). Nothing waits for time to pass: each step waits for the state it
 * needs (the lane waiting at a gate, an answer arriving, the server having read the bytes), and
 * fails if that does not come within a few seconds.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { keepResponsesOnClose } from '../../src/http/keep-responses.ts';
import { installSocketLane, type LaneAnswer, type SocketLane } from '../../src/http/socket-lane.ts';
import {
  byLane,
  exchange,
  parseAnswers,
  type RawAnswer,
  rawClient,
  serverHasRead,
  until,
  within,
} from '../helpers/raw-http.ts';

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
const last = (path: string) => get(path, 'Connection: close\r\n');
const laneAnswer = (text: string): LaneAnswer => ({
  status: 200,
  headers: { 'content-type': 'text/plain' },
  body: `lane ${text}`,
});

/** A request the lane waits at: the test settles it. */
interface Gate {
  /** The connection's socket on the server's side. */
  socket: Socket;
  /** Answers `lane <name>`. */
  open(): void;
  /** Settles with no answer: the connection goes to node:http with this request first. */
  decline(): void;
  /** Fails: as a decline. */
  fail(): void;
}

interface TestServer {
  url: string;
  server: Server;
  /** The targets the lane was asked about, in order, with their sockets on the server's side. */
  asked: { target: string; socket: Socket }[];
  /** Resolves once the lane waits at `/gate/<name>`; fails if it does not within 5 s. */
  reached(name: string): Promise<Gate>;
  /** What service.ts's close does: the lane stops taking requests, the server closes. */
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  let closing = false;
  const gates = new Map<string, { reached: Promise<Gate>; reach: (gate: Gate) => void }>();
  const gate = (name: string) => {
    let entry = gates.get(name);
    if (!entry) {
      let reach: (gate: Gate) => void = () => {};
      const reached = new Promise<Gate>((resolve) => {
        reach = resolve;
      });
      entry = { reached, reach };
      gates.set(name, entry);
    }
    return entry;
  };
  const asked: TestServer['asked'] = [];
  const lane: SocketLane = ({ target, socket }) => {
    asked.push({ target, socket });
    const [, kind, name = ''] = target.split('/');
    if (kind === 'now') return laneAnswer(name);
    if (kind === 'gate') {
      return new Promise((resolve, reject) =>
        gate(name).reach({
          socket,
          open: () => resolve(laneAnswer(name)),
          decline: () => resolve(undefined),
          fail: () => reject(new Error('store down')),
        }),
      );
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
    asked,
    reached: (name) => within(gate(name).reached, `the lane waiting at /gate/${name}`),
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
  after(() => within(t.close(), 'the server to close'));

  /** The targets asked since `from` (an index into t.asked). */
  const askedSince = (from: number) => t.asked.slice(from).map((a) => a.target);

  it('answers a promised answer in its turn: pipelined requests after it wait for it', async () => {
    const from = t.asked.length;
    const client = await rawClient(t.url);
    client.socket.write(
      get('/now/a') + get('/gate/b') + get('/now/c') + get('/gate/d') + last('/now/e'),
    );
    const b = await t.reached('b');
    await client.receives('lane a');
    assert.deepEqual(askedSince(from), ['/now/a', '/gate/b'], 'nothing read past the wait');
    b.open();
    const d = await t.reached('d');
    await client.receives('lane c');
    assert.deepEqual(askedSince(from), ['/now/a', '/gate/b', '/now/c', '/gate/d']);
    assert.ok(!client.received().includes('lane e'), 'e was answered before d');
    d.open();
    await within(client.closed, 'the connection to close after e');
    const answers = parseAnswers(client.received());
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

  it('answers pipelined requests that came in one read in one write', async () => {
    const client = await rawClient(t.url);
    client.socket.write(get('/gate/one') + get('/now/a') + get('/now/b') + last('/now/c'));
    const gate = await t.reached('one');
    // Counts the server socket's writes to the kernel from here on (its handle's write calls).
    const handle = (gate.socket as unknown as { _handle: Record<string, unknown> })._handle;
    let writes = 0;
    for (const name of ['writev', 'writeBuffer', 'writeLatin1String', 'writeUtf8String']) {
      const original = handle[name] as (...args: unknown[]) => unknown;
      handle[name] = (...args: unknown[]) => {
        writes++;
        return original.apply(handle, args);
      };
    }
    gate.open();
    await within(client.closed, 'the connection to close after c');
    const answers = parseAnswers(client.received());
    assert.deepEqual(
      answers.map((a) => a.body.toString()),
      ['lane one', 'lane a', 'lane b', 'lane c'],
    );
    // The awaited answer in one write, then the three read with it in one more.
    assert.equal(writes, 2);
  });

  it('serves requests that arrive while it waits once the answer is out', async () => {
    const from = t.asked.length;
    const client = await rawClient(t.url);
    const parts = [get('/gate/a'), get('/now/b'), last('/now/c')];
    let written = 0;
    const write = (part: string) => {
      client.socket.write(part);
      written += part.length;
    };
    write(parts[0] as string);
    const a = await t.reached('a');
    // Each later request reaches the server while it waits, each in its own read.
    for (const part of parts.slice(1)) {
      write(part);
      await serverHasRead(a.socket, written);
    }
    assert.deepEqual(askedSince(from), ['/gate/a']);
    assert.equal(client.received().length, 0);
    a.open();
    await within(client.closed, 'the connection to close after c');
    const answers = parseAnswers(client.received());
    assert.deepEqual(texts(answers), ['lane a', 'lane b', 'lane c']);
  });

  for (const settle of ['decline', 'fail'] as const) {
    it(`hands the connection over with the request first when a promise ${settle}s`, async () => {
      const from = t.asked.length;
      const client = await rawClient(t.url);
      client.socket.write(
        get('/now/a') + get(`/gate/${settle}`) + get('/now/b') + last('/gate/never'),
      );
      (await t.reached(settle))[settle]();
      await within(client.closed, 'the connection to close');
      assert.deepEqual(texts(parseAnswers(client.received())), [
        'lane a',
        `(http) route GET /gate/${settle}`,
        // Handed over for good: node:http answers what the lane would have taken.
        '(http) route GET /now/b',
        '(http) route GET /gate/never',
      ]);
      assert.deepEqual(askedSince(from), ['/now/a', `/gate/${settle}`]);
    });
  }

  it('answers a client that half-closes while it waits, then ends', async () => {
    const client = await rawClient(t.url);
    client.socket.write(get('/gate/h1'));
    const h1 = await t.reached('h1');
    const rest = get('/now/h2') + get('/gate/h3');
    client.socket.end(rest);
    // The lane has stopped reading, so no event tells that the client's end has arrived: the
    // stream's own state does.
    const state = (h1.socket as unknown as { _readableState: { ended: boolean } })._readableState;
    await until(() => state.ended, 'the client’s end reaching the server');
    assert.equal(h1.socket.bytesRead, get('/gate/h1').length + rest.length);
    h1.open();
    const h3 = await t.reached('h3');
    // Read on after h1, the end comes while the lane waits for h3: it must not end yet.
    await until(() => h3.socket.readableEnded, 'the lane reading the end');
    assert.ok(!h3.socket.writableEnded, 'the lane ended the connection before its last answer');
    h3.open();
    assert.deepEqual(texts(parseAnswers(await within(client.ended, 'the lane to end'))), [
      'lane h1',
      'lane h2',
      'lane h3',
    ]);
  });

  it('hands a request over after the client’s end came in while it waited', async () => {
    const client = await rawClient(t.url);
    client.socket.write(get('/gate/e1'));
    const e1 = await t.reached('e1');
    const rest = get('/now/e2') + get('/gate/e3');
    client.socket.end(rest);
    const state = (e1.socket as unknown as { _readableState: { ended: boolean } })._readableState;
    await until(() => state.ended, 'the client’s end reaching the server');
    e1.open();
    const e3 = await t.reached('e3');
    await until(() => e3.socket.readableEnded, 'the lane reading the end');
    // The stream takes no bytes back after its end: node:http must still get e3, and the end.
    e3.decline();
    assert.deepEqual(texts(parseAnswers(await within(client.ended, 'the connection to end'))), [
      'lane e1',
      'lane e2',
      '(http) route GET /gate/e3',
    ]);
  });

  it('runs no idle timeout while it waits for an answer', async () => {
    const { server } = t;
    const previous = [server.headersTimeout, server.keepAliveTimeout];
    server.headersTimeout = 100;
    server.keepAliveTimeout = 100;
    try {
      const waiting = await rawClient(t.url);
      waiting.socket.write(get('/now/w1') + last('/gate/w2'));
      const w2 = await t.reached('w2');
      // A connection answered after the waiting one was last active: once its keep-alive
      // timeout has closed it, the waiting one's would have fired too, were it running.
      const idle = await rawClient(t.url);
      idle.socket.write(get('/now/idle'));
      await within(idle.closed, 'the keep-alive timeout to close an idle connection');
      assert.ok(!w2.socket.destroyed, 'the waiting connection was closed');
      w2.open();
      await within(waiting.closed, 'the connection to close after w2');
      assert.deepEqual(texts(parseAnswers(waiting.received())), ['lane w1', 'lane w2']);
    } finally {
      [server.headersTimeout, server.keepAliveTimeout] = previous as [number, number];
    }
  });

  it('keeps serving others when a client leaves while its answer is awaited', async () => {
    const client = await rawClient(t.url);
    client.socket.write(get('/gate/gone'));
    const gone = await t.reached('gone');
    client.socket.destroy();
    await within(client.closed, 'the client to leave');
    // The lane, not reading while it waits, learns that the client left when it answers.
    const noticed = new Promise((resolve) => gone.socket.once('close', resolve));
    gone.open();
    await within(noticed, 'the server to close the connection of the client that left');
    const answers = await exchange(t.url, [last('/now/after')]);
    assert.deepEqual(texts(answers), ['lane after']);
  });
});

describe('socket lane: a graceful close with an answer awaited', { timeout: 30_000 }, () => {
  it('ends idle connections at once, and a waiting one once its answer is out', async () => {
    const t = await startServer();
    const idle = await rawClient(t.url);
    idle.socket.write(get('/now/idle'));
    const waiting = await rawClient(t.url);
    waiting.socket.write(get('/now/first') + get('/gate/slow'));
    await idle.receives('lane idle');
    await waiting.receives('lane first');
    const slow = await t.reached('slow');
    const idleOnServer = t.asked.find((a) => a.target === '/now/idle')?.socket;

    let closed = false;
    const closing = t.close().then(() => {
      closed = true;
    });
    // closeIdleConnections ran in close(): it ended the idle connection, not the waiting one.
    assert.ok(idleOnServer?.writableEnded, 'the idle connection was not ended');
    assert.ok(!slow.socket.writableEnded, 'the waiting connection was ended before its answer');
    assert.deepEqual(texts(parseAnswers(await within(idle.ended, 'the idle end'))), ['lane idle']);
    assert.ok(!closed, 'the server closed while an answer was still owed');
    assert.ok(!waiting.socket.readableEnded, 'the waiting connection was ended before its answer');

    slow.open();
    const answered = await within(waiting.ended, 'the waiting connection to end');
    assert.deepEqual(texts(parseAnswers(answered)), ['lane first', 'lane slow']);
    await within(closing, 'the server to close');
    idle.socket.destroy();
    waiting.socket.destroy();
  });
});

describe('socket lane: Connection: close', { timeout: 30_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => within(t.close(), 'the server to close'));

  // node:http closes such a connection once the answer is out, whatever the client does (the
  // route case shows it); a client that keeps its end open must not keep the lane's open either.
  for (const kind of ['route', 'now', 'gate'] as const) {
    it(`closes the connection after the answer (${kind}), though the client keeps its end open`, async () => {
      const { port } = new URL(t.url);
      const client = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
      const received: Buffer[] = [];
      client.on('data', (chunk: Buffer) => received.push(chunk));
      const ended = new Promise((resolve) => client.once('end', resolve));
      // A request after the last one too: the lane must not wait for it to be read.
      client.write(last(`/${kind}/bye`) + get('/now/unread'));
      if (kind === 'gate') (await t.reached('bye')).open();
      await within(ended, 'the server to end the connection');
      const onServer = t.asked.find((a) => a.target === `/${kind}/bye`)?.socket;
      assert.ok(onServer, 'the lane was not asked');
      if (!onServer.destroyed) {
        await within(
          new Promise((resolve) => onServer.once('close', resolve)),
          'the server to close its end',
        );
      }
      assert.deepEqual(texts(parseAnswers(Buffer.concat(received))), [
        kind === 'route' ? '(http) route GET /route/bye' : 'lane bye',
      ]);
      client.destroy();
    });
  }
});
