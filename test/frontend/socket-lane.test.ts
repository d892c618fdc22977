/**
 * The frontend's socket lane (frontend/image-routes.ts imageSocketLane) answers GET /images/:key
 * and bodiless POST /api/key/:key on the socket: a leased near copy at once, anything else once
 * the image service has it. These tests hold it to the routes it stands in front of (same status,
 * headers and bytes), to the order of pipelined requests across its waits, and check that what it
 * must not take still goes to the routes. Requests go over raw TCP; the lane's answers are the
 * ones with a lower-case `date:` (test/helpers/raw-http.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import { startNode, type TestNode } from '../helpers/nodes.ts';
import { byLane, exchange, type RawAnswer } from '../helpers/raw-http.ts';

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: fe\r\n${extra}\r\n`;
const post = (path: string, extra = '') => `POST ${path} HTTP/1.1\r\nHost: fe\r\n${extra}\r\n`;
const close = 'Connection: close\r\n';

/** An answer without what differs between two writers of the same answer. */
function comparable(a: RawAnswer) {
  const { date, connection, 'keep-alive': _alive, ...headers } = a.headers;
  return { status: a.status, headers, body: a.body.toString('latin1') };
}

/** The frontend's fetch-time histogram's count: every answered read observes one. */
async function fetchCount(fe: TestFrontend): Promise<number> {
  const text = await (await fetch(`${fe.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('pixpool_frontend_fetch_seconds_count{'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

describe('frontend socket lane', { timeout: 60_000 }, () => {
  let node: TestNode;
  let fe: TestFrontend;
  const KEY = 'lane-kép';
  const PATH = '/images/lane-k%C3%A9p';
  const bytes = imageBytes('png', 30_000, 11);
  before(async () => {
    node = await startNode({ capacityMb: 16, leaseMs: 300 });
    // The lane, whatever PIXPOOL_SOCKET_LANES says: it is what these tests are about.
    fe = await startFrontend({ nodes: [node], socketLanes: true });
    assert.equal((await upload(fe.url, KEY, bytes)).status, 200);
    // From storage, then from the node: near-cached with a lease.
    await exchange(fe.url, [get(PATH) + get(PATH, close)]);
    assert.ok(node.cache.peek(KEY), 'the node was filled');
  });
  after(async () => {
    await fe.close();
    await node.close();
  });

  it('answers GETs, revalidations and bodiless POSTs as the routes do', async () => {
    const [first] = await exchange(fe.url, [get(PATH, close)]);
    const { etag = '', 'last-modified': modified = '' } = first?.headers ?? {};
    const requests = [
      get(PATH),
      get(PATH, `If-None-Match: ${etag}\r\n`),
      get(PATH, `If-None-Match: "v0", W/${etag}\r\n`),
      get(PATH, `If-Modified-Since: ${modified}\r\n`),
      get(PATH, 'If-None-Match: "v0"\r\n'),
      post('/api/key/lane-k%C3%A9p'),
      post('/api/key/lane-k%C3%A9p', `Content-Length: 0\r\n${close}`),
    ];
    const counted = await fetchCount(fe);
    const lane = await exchange(fe.url, [requests.join('')]);
    assert.equal(await fetchCount(fe), counted + 5, 'each GET the lane answered was observed');
    // A query string is the routes' to answer (an empty one asks for no variant): that request
    // hands the connection over.
    const route = await exchange(fe.url, [get(`${PATH}?`) + requests.join('')]);
    assert.equal(route.shift()?.status, 200);
    assert.ok(lane.every(byLane), 'the lane answered all of them');
    assert.ok(!route.some(byLane), 'the routes answered all of them');
    assert.deepEqual(
      lane.map((a) => a.status),
      [200, 304, 304, 304, 200, 200, 200],
    );
    assert.deepEqual(lane.map(comparable), route.map(comparable));
    assert.deepEqual(lane[0]?.body, bytes);
    assert.equal(lane[0]?.headers['content-type'], 'image/png');
    assert.equal(lane[0]?.headers['x-pixpool-source'], 'cache');
    const json = JSON.parse(lane[5]?.body.toString() ?? '');
    assert.equal(json.key, KEY);
    assert.equal(json.content, `data:image/png;base64,${bytes.toString('base64')}`);
  });

  it('asks the node when the lease has run out, and keeps the connection', async () => {
    const hits = node.cache.stats.totals.hits;
    // 400 ms apart: the 300 ms lease runs out before each of the later two.
    const answers = await exchange(fe.url, [get(PATH), get(PATH), get(PATH, close)], 400);
    assert.ok(answers.every(byLane), 'the lane answered every read');
    assert.ok(answers.every((a) => a.status === 200 && a.body.equals(bytes)));
    assert.ok(
      node.cache.stats.totals.hits - hits >= 2,
      'each read after a lease ran out revalidated the copy with the node',
    );
  });

  it('answers a first read from storage, and keeps pipelined reads in order', async () => {
    const cold = [imageBytes('png', 20_000, 21), imageBytes('gif', 25_000, 22)];
    for (const [i, image] of cold.entries()) {
      assert.equal((await upload(fe.url, `lane-cold-${i}`, image)).status, 200);
    }
    const answers = await exchange(fe.url, [
      get(PATH) +
        get('/images/lane-cold-0') +
        get(PATH) +
        get('/images/lane-cold-1') +
        post('/api/key/lane-cold-0') +
        get(PATH, close),
    ]);
    assert.ok(answers.every(byLane), 'the lane answered every read');
    assert.deepEqual(
      answers.map((a) => [a.status, a.headers['x-pixpool-source']]),
      [
        [200, 'cache'],
        [200, 'storage'],
        [200, 'cache'],
        [200, 'storage'],
        [200, undefined],
        [200, 'cache'],
      ],
    );
    assert.deepEqual(answers[1]?.body, cold[0]);
    assert.deepEqual(answers[3]?.body, cold[1]);
    assert.equal(answers[3]?.headers['content-type'], 'image/gif');
    assert.equal(
      JSON.parse(answers[4]?.body.toString() ?? '').content,
      `data:image/png;base64,${cold[0]?.toString('base64')}`,
    );
    assert.deepEqual(answers[5]?.body, bytes);
  });

  it('leaves a key nobody stored to the route, with the requests after it in order', async () => {
    const answers = await exchange(fe.url, [
      get(PATH) + get('/images/nobody-stored-this') + post('/api/key/nor-this') + get(PATH, close),
    ]);
    assert.deepEqual(
      answers.map((a) => [a.status, byLane(a)]),
      [
        [200, true],
        [404, false],
        [404, false],
        [200, false],
      ],
    );
    assert.match(JSON.parse(answers[1]?.body.toString() ?? '').error.message, /No image is stored/);
    assert.deepEqual(answers[3]?.body, bytes);
  });

  it('leaves to the routes what it must not answer', async () => {
    // A POST with a content type is parsed by Fastify, which refuses an empty JSON body.
    const [emptyJson] = await exchange(fe.url, [
      post(
        '/api/key/lane-k%C3%A9p',
        `Content-Type: application/json\r\nContent-Length: 0\r\n${close}`,
      ),
    ]);
    assert.equal(emptyJson?.status, 400);
    assert.ok(emptyJson && !byLane(emptyJson));
    const withBody = await fetch(`${fe.url}/api/key/lane-k%C3%A9p`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(withBody.status, 200);
    // HEAD, a broken percent-encoding, keys the routes refuse: the routes word each answer.
    const head = await fetch(`${fe.url}${PATH}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'image/png');
    for (const [bad, status] of [
      ['%E0%A4%A', 400],
      ['x'.repeat(5000), 414],
      ['x'.repeat(300), 400],
      ['a%2Fb', 400],
      ['a%20b', 400],
    ] as const) {
      const [answer] = await exchange(fe.url, [get(`/images/${bad}`, close)]);
      assert.equal(answer?.status, status, bad.slice(0, 20));
      assert.ok(answer && !byLane(answer), bad.slice(0, 20));
      assert.equal(JSON.parse(answer?.body.toString() ?? '').success, 'false');
    }
  });

  it('answers variants as the route does, made or near-copied, and leaves refusals to it', async () => {
    const photo = await sharp({
      create: { width: 400, height: 300, channels: 3, background: '#3a7' },
    })
      .png()
      .toBuffer();
    assert.equal((await upload(fe.url, 'lane-photo', photo)).status, 200);
    const webp = '/images/lane-photo?w=128&format=webp';
    const auto = '/images/lane-photo?w=128&format=auto';
    // A miss: the lane waits while the variant is made.
    const [made] = await exchange(fe.url, [get(webp, close)]);
    assert.ok(made && byLane(made), 'the lane answered the miss');
    assert.equal(made?.status, 200);
    assert.equal(made?.headers['content-type'], 'image/webp');
    assert.equal((await sharp(made?.body).metadata()).width, 128);
    const etag = made?.headers.etag ?? '';
    const requests = [
      get(webp),
      get(webp, `If-None-Match: ${etag}\r\n`),
      get(auto, 'Accept: image/avif,image/webp,*/*\r\n'),
      get(auto, 'Accept: image/webp\r\n'),
    ];
    const lane = await exchange(fe.url, [requests.join('') + get(webp, close)]);
    const route = await exchange(fe.url, [
      get('/images/lane-photo?') + requests.join('') + get(webp, close),
    ]);
    route.shift();
    assert.ok(lane.every(byLane), 'the lane answered all of them');
    assert.ok(!route.some(byLane), 'the routes answered all of them');
    assert.deepEqual(
      lane.map((a) => [a.status, a.headers['content-type'], a.headers.vary]),
      [
        [200, 'image/webp', undefined],
        [304, undefined, undefined],
        [200, 'image/avif', 'Accept'],
        [200, 'image/webp', 'Accept'],
        [200, 'image/webp', undefined],
      ],
    );
    const sourceless = (a: RawAnswer) => {
      const { 'x-pixpool-source': _source, ...rest } = comparable(a).headers;
      return { ...comparable(a), headers: rest };
    };
    assert.deepEqual(lane.map(sourceless), route.map(sourceless));

    // Bad parameters and a refused transform: the route words the 4xx, on the same connection.
    const refused = await exchange(fe.url, [
      get('/images/lane-photo?w=0') + get(`${PATH}?w=64`) + get(webp, close),
    ]);
    assert.deepEqual(
      refused.map((a) => [a.status, byLane(a)]),
      [
        [400, false],
        [415, false],
        [200, false],
      ],
    );
  });

  it('serves a new upload at once: the lane never outlives the lease an upload waits for', async () => {
    await exchange(fe.url, [get(PATH) + get(PATH, close)]);
    const next = imageBytes('png', 30_000, 12);
    assert.equal((await upload(fe.url, KEY, next)).status, 200);
    const answers = await exchange(fe.url, [get(PATH) + post('/api/key/lane-k%C3%A9p', close)]);
    assert.ok(answers.every(byLane));
    assert.deepEqual(answers[0]?.body, next);
    assert.equal(
      JSON.parse(answers[1]?.body.toString() ?? '').content,
      `data:image/png;base64,${next.toString('base64')}`,
    );
  });
});

describe('a frontend with its socket lane off', { timeout: 60_000 }, () => {
  it('answers the same reads through node:http and Fastify', async () => {
    const fe = await startFrontend({ socketLanes: false });
    try {
      const bytes = imageBytes('png', 5_000, 31);
      assert.equal((await upload(fe.url, 'off-lane', bytes)).status, 200);
      const answers = await exchange(fe.url, [
        get('/images/off-lane') + get('/images/off-lane') + post('/api/key/off-lane', close),
      ]);
      assert.deepEqual(
        answers.map((a) => [a.status, byLane(a)]),
        [
          [200, false],
          [200, false],
          [200, false],
        ],
      );
      assert.deepEqual(answers[1]?.body, bytes);
      assert.equal(JSON.parse(answers[2]?.body.toString() ?? '').key, 'off-lane');
    } finally {
      await fe.close();
    }
  });
});
