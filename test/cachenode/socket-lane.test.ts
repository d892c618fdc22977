/**
 * The cache node's socket lane (http/socket-lane.ts, cachenode/binary-routes.ts entrySocketLane)
 * over raw TCP: requests are written byte for byte as a client could send them (pipelined, cut
 * in two, malformed), and the answers are read back as bytes. Who answered is told by the
 * lane's lower-case `date:` (test/helpers/raw-http.ts).
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { auth, call, startNode, type TestNode } from '../helpers/nodes.ts';
import {
  byLane,
  exchange,
  open,
  parseAnswers,
  type RawAnswer,
  rawClient,
  serverHasRead,
  until,
  within,
} from '../helpers/raw-http.ts';

const AUTH = `Authorization: ${auth.authorization}\r\n`;
const get = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: node\r\n${AUTH}${extra}\r\n`;
const last = (path: string, extra = '') => get(path, `${extra}Connection: close\r\n`);

const value = Buffer.from('\x89PNG\r\n\x1a\n socket lane test value');
const KEY = 'kép-lane';
const PATH = `/v1/entries/${encodeURIComponent(KEY)}`;

// A lane that forgets to answer or to close would otherwise hang the run.
describe('cache node socket lane', { timeout: 30_000 }, () => {
  let node: TestNode;
  before(async () => {
    // The lane, whatever PIXPOOL_SOCKET_LANES says: it is what these tests are about.
    node = await startNode({ capacityMb: 128, socketLanes: true });
    node.cache.put(KEY, { value, contentType: 'image/png', version: 7, modifiedAt: 1234 }, true);
  });
  after(() => node.close());

  it('answers pipelined GETs in order: a hit, a revalidation, a miss', async () => {
    const before = { ...node.cache.stats.totals };
    const answers = await exchange(node.url, [
      get(PATH) + get(PATH, 'x-pixpool-if-version: 7\r\n') + last('/v1/entries/absent'),
    ]);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 304, 404],
    );
    assert.ok(answers.every(byLane), 'the lane answered all three');
    assert.deepEqual(answers[0]?.body, value);
    assert.equal(answers[0]?.headers.connection, 'keep-alive');
    assert.deepEqual(JSON.parse(answers[2]?.body.toString() ?? ''), {
      success: 'false',
      error: { code: 404, message: 'Not in this cache.' },
    });
    assert.equal(answers[2]?.headers.connection, 'close');
    const after = node.cache.stats.totals;
    assert.equal(after.hits - before.hits, 2);
    assert.equal(after.misses - before.misses, 1);
  });

  it('gives the route’s answers: the same status, headers and bytes', async () => {
    // A request for another path first hands the connection to node:http, so the GETs after
    // it reach the route.
    const requests = [
      get(PATH),
      get(PATH, 'x-pixpool-if-version: 7\r\nx-pixpool-lease: 1\r\n'),
      last('/v1/entries/absent'),
    ];
    const lane = await exchange(node.url, [requests.join('')]);
    const route = await exchange(node.url, [get('/health') + requests.join('')]);
    assert.equal(route.shift()?.status, 200);
    assert.ok(lane.every(byLane));
    assert.ok(!route.some(byLane));
    const comparable = (a: RawAnswer) => {
      const { date, connection, 'keep-alive': _alive, ...headers } = a.headers;
      return { status: a.status, headers, body: a.body.toString('latin1') };
    };
    assert.deepEqual(lane.map(comparable), route.map(comparable));
  });

  it('hands the connection to node:http at the first request it does not take, in order', async () => {
    const fresh = Buffer.from('a newer value, put through the handed-over connection');
    // A fill the lane leaves to the route: a value type that is not an image's.
    const put =
      `PUT /v1/entries/lane-put HTTP/1.1\r\nHost: node\r\n${AUTH}` +
      `Content-Type: application/octet-stream\r\nx-pixpool-version: 3\r\nContent-Length: ${fresh.length}\r\n\r\n`;
    // node:http runs pipelined requests' handlers side by side (clients should not pipeline
    // after a PUT), so the GETs after it read a key the PUT does not touch.
    const answers = await exchange(node.url, [
      Buffer.concat([
        Buffer.from(get(PATH) + put),
        fresh,
        Buffer.from(get('/v1/entries/absent') + last(PATH)),
      ]),
    ]);
    assert.deepEqual(
      answers.map((a) => [a.status, byLane(a)]),
      [
        [200, true],
        [204, false],
        [404, false],
        [200, false],
      ],
    );
    assert.deepEqual(answers[0]?.body, value);
    assert.deepEqual(answers[3]?.body, value);
    const stored = await exchange(node.url, [last('/v1/entries/lane-put')]);
    assert.deepEqual(stored[0]?.body, fresh);
  });

  it('never reads a request’s body as another request', async () => {
    const smuggled = get('/v1/entries/absent');
    for (const framing of [
      `Content-Length: ${smuggled.length}\r\n`,
      `Transfer-Encoding: chunked\r\n`,
    ]) {
      const body = framing.startsWith('Content-Length')
        ? smuggled
        : `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
      const answers = await exchange(node.url, [
        `GET ${PATH} HTTP/1.1\r\nHost: node\r\n${AUTH}${framing}Connection: close\r\n\r\n${body}`,
      ]);
      assert.equal(answers.length, 1, `${framing}: one request, one answer`);
      assert.equal(answers[0]?.status, 200);
      assert.ok(!byLane(answers[0] as RawAnswer));
    }
  });

  it('a head cut across two writes is still answered, and so is the next request', async () => {
    const request = get(PATH);
    const serverSide = new Promise<Socket>((resolve) => node.server.once('connection', resolve));
    // Each part is read by the node before the next is written: the lane sees half a head.
    const answers = await exchange(
      node.url,
      [request.slice(0, 20), request.slice(20), last(PATH)],
      async (written) => serverHasRead(await serverSide, written),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200],
    );
    assert.deepEqual(answers[1]?.body, value);
    // The lane hands a cut head, and the connection, to node:http.
    assert.ok(!answers.some(byLane), 'the lane answered a head it saw only half of');
  });

  it('leaves requests of any other shape to node:http', async () => {
    const shapes: [string, string][] = [
      ['HTTP/1.0', `GET ${PATH} HTTP/1.0\r\nHost: node\r\n${AUTH}\r\n`],
      ['a folded header', `GET ${PATH} HTTP/1.1\r\nHost: node\r\n${AUTH}x-a: 1\r\n 2\r\n\r\n`],
      ['a header twice', `GET ${PATH} HTTP/1.1\r\nHost: node\r\nHost: other\r\n${AUTH}\r\n`],
      ['no Host', `GET ${PATH} HTTP/1.1\r\n${AUTH}\r\n`],
      ['a control character', `GET ${PATH} HTTP/1.1\r\nHost: no\x01de\r\n${AUTH}\r\n`],
      ['bare line feeds', `GET ${PATH} HTTP/1.1\nHost: node\n${AUTH.trim()}\n\n`],
      ['a query string', `GET ${PATH}?x=1 HTTP/1.1\r\nHost: node\r\n${AUTH}\r\n`],
      ['a fragment', `GET ${PATH}#x HTTP/1.1\r\nHost: node\r\n${AUTH}\r\n`],
      ['a wrong secret', `GET ${PATH} HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer no\r\n\r\n`],
      ['a bad key', `GET /v1/entries/a%20b HTTP/1.1\r\nHost: node\r\n${AUTH}\r\n`],
      ['another path', `GET /health HTTP/1.1\r\nHost: node\r\n\r\n`],
      ['a POST', `POST ${PATH} HTTP/1.1\r\nHost: node\r\n${AUTH}Content-Length: 0\r\n\r\n`],
      ['101 headers', get(PATH, Array.from({ length: 99 }, (_, i) => `x-${i}: ${i}\r\n`).join(''))],
    ];
    for (const [shape, request] of shapes) {
      const client = await rawClient(node.url);
      client.socket.write(request);
      // node:http answers, or refuses and closes; either way the lane must not have answered.
      // (Should no answer come, the assertions below say so.)
      await client.receives('\r\n\r\n').catch(() => {});
      client.socket.destroy();
      await client.closed;
      const text = client.received().toString('latin1');
      assert.match(text, /^HTTP\/1\.1 \d{3} /, `${shape}: answered`);
      assert.ok(!text.includes('\r\ndate: '), `${shape}: not by the lane:\n${text}`);
    }
  });

  it('stops reading requests while a client does not take its answers', async () => {
    const big = Buffer.alloc(1024 * 1024, 1);
    node.cache.put('lane-big', { value: big, contentType: 'image/png', version: 1 }, true);
    const serverSide = new Promise<Socket>((resolve) => node.server.once('connection', resolve));
    const socket = await open(node.url);
    const server = await serverSide;
    socket.pause();
    try {
      // 32 pipelined GETs of 1 MiB: 32 MiB of answers if the lane wrote them all at once.
      const requests = get('/v1/entries/lane-big').repeat(31) + last('/v1/entries/lane-big');
      socket.write(requests);
      // Every request has reached the node, and the lane has stopped reading them.
      await serverHasRead(server, requests.length);
      await until(() => server.isPaused(), 'the lane to stop reading');
      assert.ok(
        server.writableLength < 4 * 1024 * 1024,
        `the node buffered ${server.writableLength} bytes for a client that does not read`,
      );
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.resume();
      await within(closed, 'the 32 answers', 20_000);
      const answers = parseAnswers(Buffer.concat(received));
      assert.equal(answers.length, 32);
      assert.ok(answers.every((a) => a.status === 200 && a.body.equals(big)));
    } finally {
      // A failure above leaves no connection for the node's close to wait for.
      socket.destroy();
    }
  });

  it('answers a client that half-closes, then closes too', async () => {
    const socket = await open(node.url);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.end(get(PATH) + get(PATH));
    await closed;
    assert.deepEqual(
      parseAnswers(Buffer.concat(received)).map((a) => a.status),
      [200, 200],
    );
  });

  /** With `timeout` set to 200 ms, a connection that sends `requests` is closed, not sooner. */
  async function closedAfter(timeout: 'headersTimeout' | 'keepAliveTimeout', requests: string) {
    const previous = node.server[timeout];
    node.server[timeout] = 200;
    try {
      const socket = await open(node.url);
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.resume();
      if (requests) socket.write(requests);
      const started = Date.now();
      await within(closed, `the ${timeout} to close the connection`, 3000);
      assert.ok(Date.now() - started >= 150, 'closed before the timeout');
      socket.destroy();
    } finally {
      node.server[timeout] = previous;
    }
  }

  it('closes a new connection that sends no request within the headers timeout', () =>
    closedAfter('headersTimeout', ''));

  it('closes a connection idle for longer than the keep-alive timeout', () =>
    closedAfter('keepAliveTimeout', get(PATH)));
});

describe('closing a cache node with connections in its socket lane', { timeout: 30_000 }, () => {
  it('ends them at once instead of waiting for the keep-alive timeout', async () => {
    const node = await startNode({ socketLanes: true });
    node.cache.put(KEY, { value, contentType: 'image/png', version: 7 }, true);
    const client = await rawClient(node.url);
    client.socket.write(get(PATH));
    await client.receives(value);
    // Well inside the 65 s keep-alive timeout.
    await within(
      Promise.all([node.close(), client.ended]),
      'the node to close and end the connection',
      3000,
    );
    client.socket.destroy();
  });

  it('answers a fill whose body is still arriving, then ends the connection', async () => {
    const node = await startNode({ socketLanes: true });
    const serverSide = new Promise<Socket>((resolve) => node.server.once('connection', resolve));
    const client = await rawClient(node.url);
    const fill = Buffer.alloc(20_000, 9);
    const head =
      `PUT /v1/entries/closing HTTP/1.1\r\nHost: node\r\n${AUTH}` +
      `Content-Type: image/png\r\nContent-Length: ${fill.length}\r\n\r\n`;
    client.socket.write(Buffer.concat([Buffer.from(head), fill.subarray(0, 5000)]));
    await serverHasRead(await serverSide, head.length + 5000);
    const closed = node.close();
    client.socket.write(fill.subarray(5000));
    await within(
      Promise.all([closed, client.ended]),
      'the node to close and end the connection',
      3000,
    );
    const answers = parseAnswers(client.received());
    assert.deepEqual(
      answers.map((a) => [a.status, byLane(a)]),
      [[204, true]],
    );
    assert.deepEqual(node.cache.peek('closing')?.value, fill);
    client.socket.destroy();
  });
});

describe('a cache node with its socket lane off', { timeout: 30_000 }, () => {
  it('answers the same reads through node:http', async () => {
    const node = await startNode({ socketLanes: false });
    try {
      node.cache.put(KEY, { value, contentType: 'image/png', version: 7 }, true);
      const answers = await exchange(node.url, [
        get(PATH) + get(PATH, 'x-pixpool-if-version: 7\r\n') + last('/v1/entries/absent'),
      ]);
      assert.deepEqual(
        answers.map((a) => [a.status, byLane(a)]),
        [
          [200, false],
          [304, false],
          [404, false],
        ],
      );
      assert.deepEqual(answers[0]?.body, value);
    } finally {
      await node.close();
    }
  });
});

describe('fills on the cache node socket lane', { timeout: 30_000 }, () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ capacityMb: 1, socketLanes: true });
  });
  after(() => node.close());

  const put = (key: string, body: Buffer, extra = '', type = 'image/png') =>
    Buffer.concat([
      Buffer.from(
        `PUT /v1/entries/${encodeURIComponent(key)} HTTP/1.1\r\nHost: node\r\n${AUTH}` +
          `Content-Type: ${type}\r\n${extra}Content-Length: ${body.length}\r\n\r\n`,
      ),
      body,
    ]);

  it('stores a fill whose body comes in pieces, and answers the requests after it in order', async () => {
    const first = Buffer.alloc(100 * 1024, 1);
    const second = Buffer.alloc(3000, 2);
    const fills = Buffer.concat([
      put('fill-a', first, 'x-pixpool-version: 5\r\nx-pixpool-modified: 77\r\n'),
      put('fill-b', second, 'x-pixpool-version: 6\r\n'),
    ]);
    const bytes = Buffer.concat([
      fills,
      Buffer.from(get('/v1/entries/fill-a') + last('/v1/entries/fill-b')),
    ]);
    const serverSide = new Promise<Socket>((resolve) => node.server.once('connection', resolve));
    // Cut twice inside the first body, inside the second, and right after it. (A head cut in
    // two would go to node:http, as any other.)
    const cuts = [200, 70_000, fills.length - 10, fills.length];
    const parts = [0, ...cuts].map((from, i) => bytes.subarray(from, cuts[i] ?? bytes.length));
    const answers = await exchange(node.url, parts, async (written) =>
      serverHasRead(await serverSide, written),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [204, 204, 200, 200],
    );
    assert.ok(answers.every(byLane), 'the lane answered all four');
    assert.deepEqual(answers[2]?.body, first);
    assert.equal(answers[2]?.headers['x-pixpool-version'], '5');
    assert.equal(answers[2]?.headers['x-pixpool-modified'], '77');
    assert.deepEqual(answers[3]?.body, second);
    const stored = node.cache.peek('fill-a');
    assert.equal(stored?.contentType, 'image/png');
    // Memory of its own, exactly the value's size (not a slice of a read buffer).
    assert.equal(stored?.value.buffer.byteLength, first.length);
  });

  const del = (key: string, extra = '') =>
    `DELETE /v1/entries/${encodeURIComponent(key)} HTTP/1.1\r\nHost: node\r\n${AUTH}${extra}\r\n`;

  it('gives the route’s answers to fills and invalidations: 204, 409 an older version', async () => {
    const value = Buffer.alloc(5000, 3);
    const requests = (key: string) =>
      Buffer.concat([
        put(key, value, 'x-pixpool-version: 9\r\n'),
        put(key, value, 'x-pixpool-version: 8\r\n'),
        Buffer.from(del(key, 'x-pixpool-version: 12\r\n')),
        // The invalidation's version stays: an older fill after it is refused.
        put(key, value, 'x-pixpool-version: 10\r\n'),
        Buffer.from(last(`/v1/entries/${key}`)),
      ]);
    const lane = await exchange(node.url, [requests('lane-fill')]);
    // A request for another path first hands the connection to node:http.
    const route = await exchange(node.url, [Buffer.from(get('/health')), requests('node-fill')]);
    assert.equal(route.shift()?.status, 200);
    assert.ok(lane.slice(0, 4).every(byLane), 'the lane took the fills and the invalidation');
    assert.ok(!route.some(byLane));
    const comparable = (a: RawAnswer) => {
      const { date, connection, 'keep-alive': _alive, ...headers } = a.headers;
      return {
        status: a.status,
        headers,
        body: a.body.toString('latin1').replace('node-fill', 'lane-fill'),
      };
    };
    assert.deepEqual(lane.map(comparable), route.map(comparable));
    assert.deepEqual(
      lane.map((a) => a.status),
      [204, 409, 204, 409, 404],
    );
  });

  it('answers an invalidation once the read leases on its key have run out', async () => {
    const leased = await startNode({ socketLanes: true, leaseMs: 300 });
    try {
      leased.cache.put(
        'held',
        { value: Buffer.from('v'), contentType: 'image/png', version: 1 },
        true,
      );
      const read = await exchange(leased.url, [last('/v1/entries/held', 'x-pixpool-lease: 1\r\n')]);
      assert.equal(read[0]?.headers['x-pixpool-lease'], '300');
      const started = Date.now();
      const answers = await exchange(leased.url, [
        Buffer.from(del('held', 'x-pixpool-version: 2\r\n') + last('/v1/entries/held')),
      ]);
      assert.ok(Date.now() - started >= 200, 'answered while a lease still ran');
      assert.deepEqual(
        answers.map((a) => [a.status, byLane(a)]),
        [
          [204, true],
          [404, true],
        ],
      );
    } finally {
      await leased.close();
    }
  });

  it('leaves writes of any other shape to the route, which words them, body and all', async () => {
    const value = Buffer.alloc(2000, 4);
    const shapes: [string, Buffer, number][] = [
      [
        'no secret',
        Buffer.from(put('k', value).toString('latin1').replace(AUTH, ''), 'latin1'),
        401,
      ],
      ['a bad key', put('a b', value), 400],
      ['a DELETE without the secret', Buffer.from(del('k').replace(AUTH, '')), 401],
      ['a DELETE of a bad version', Buffer.from(del('k', 'x-pixpool-version: -1\r\n')), 400],
      ['a DELETE with a body', Buffer.from(`${del('k', 'Content-Length: 1\r\n')}x`), 204],
      ['a text body', put('k', value, '', 'text/plain'), 400],
      ['a type with parameters', put('k', value, '', 'image/png; q=1'), 204],
      ['a bad version', put('k', value, 'x-pixpool-version: soon\r\n'), 400],
      ['an empty body', put('k', Buffer.alloc(0)), 400],
      ['a value over the capacity', put('k', Buffer.alloc(2 * 1024 * 1024, 1)), 413],
      [
        'a chunked body',
        Buffer.from(
          `PUT /v1/entries/k HTTP/1.1\r\nHost: node\r\n${AUTH}Content-Type: image/png\r\n` +
            `Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
        ),
        204,
      ],
      [
        'a Content-Length with a sign',
        Buffer.from(put('k', value).toString('latin1').replace('Length: ', 'Length: +'), 'latin1'),
        400,
      ],
    ];
    for (const [shape, request, status] of shapes) {
      const answers = await exchange(node.url, [request, Buffer.from(last('/v1/entries/absent'))]);
      assert.equal(answers[0]?.status, status, `${shape}: status`);
      assert.ok(!answers.some(byLane), `${shape}: not by the lane`);
      if (status >= 400)
        assert.equal(JSON.parse(answers[0]?.body.toString() ?? '').error.code, status);
    }
  });

  it('turns away writes routed with an older pool map as the route does (421)', async () => {
    const fenced = await startNode({ socketLanes: true });
    try {
      const pushed = await call(fenced.url, 'POST', '/v1/pool-view', {
        map: createPoolMap([fenced.url], 'balanced', 4),
        addresses: { [fenced.url]: fenced.url },
      });
      assert.equal(pushed.body.adopted, true);
      const value = Buffer.alloc(1000, 5);
      const answers = await exchange(fenced.url, [
        Buffer.from(del('k', 'x-pixpool-map-version: 3\r\n')),
        put('k', value, 'x-pixpool-map-version: 4\r\nx-pixpool-version: 1\r\n'),
        put('k', value, 'x-pixpool-map-version: 3\r\nx-pixpool-version: 1\r\n'),
        Buffer.from(last('/v1/entries/k')),
      ]);
      assert.deepEqual(
        answers.map((a) => [a.status, byLane(a)]),
        [
          [421, true],
          [204, true],
          [421, false],
          [200, false],
        ],
      );
      for (const i of [0, 2]) {
        assert.equal(JSON.parse(answers[i]?.body.toString() ?? '').error.code, 421);
      }
    } finally {
      await fenced.close();
    }
  });

  it('gives node:http a body cut short by the client’s end, and stores nothing', async () => {
    const socket = await open(node.url);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const whole = put('cut-short', Buffer.alloc(10_000, 6));
    socket.end(whole.subarray(0, whole.length - 100));
    await within(closed, 'the node to close the connection');
    assert.equal(node.cache.peek('cut-short'), undefined);
    const text = Buffer.concat(received).toString('latin1');
    assert.ok(!text.includes('\r\ndate: '), `the lane answered:\n${text}`);
  });

  it('gives node:http a body that is slower than the request timeout', async () => {
    const previous = node.server.requestTimeout;
    node.server.requestTimeout = 200;
    try {
      const whole = put('slow', Buffer.alloc(10_000, 7));
      const serverSide = new Promise<Socket>((resolve) => node.server.once('connection', resolve));
      const answers = await exchange(
        node.url,
        [
          whole.subarray(0, 5000),
          Buffer.concat([whole.subarray(5000), Buffer.from(last('/health'))]),
        ],
        async (written) => {
          await serverHasRead(await serverSide, written);
          await new Promise((resolve) => setTimeout(resolve, 400));
        },
      );
      // node:http took the rest of the body (its own timeout counts from when it got it).
      assert.deepEqual(
        answers.map((a) => [a.status, byLane(a)]),
        [
          [204, false],
          [200, false],
        ],
      );
      assert.deepEqual(node.cache.peek('slow')?.value, Buffer.alloc(10_000, 7));
    } finally {
      node.server.requestTimeout = previous;
    }
  });
});
