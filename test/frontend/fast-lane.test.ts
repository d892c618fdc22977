/**
 * The frontend's image fast lane (frontend/image-routes.ts imageFastLane) answers GET /images/:key
 * and bodiless POST /api/key/:key for leased near copies before Fastify sees them. These tests
 * hold it to the routes it stands in front of: same status, headers and bytes; and everything it
 * must not take still goes to the routes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import { startNode, type TestNode } from '../helpers/nodes.ts';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  const headers = Object.fromEntries(response.headers);
  // Set by Node's HTTP server on every answer, whoever wrote it.
  delete headers.date;
  return { status: response.status, headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** The frontend's fetch-time histogram: the lane observes 0, a route the time it took. */
async function fetchTime(fe: TestFrontend): Promise<{ count: number; sum: number }> {
  const text = await (await fetch(`${fe.url}/metrics`)).text();
  const total = (name: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`pixpool_frontend_fetch_seconds_${name}{`))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  return { count: total('count'), sum: total('sum') };
}

describe('frontend fast lane', () => {
  let node: TestNode;
  let fe: TestFrontend;
  const bytes = imageBytes('png', 30_000, 11);
  before(async () => {
    // Leases long enough that the copy stays leased through each test's few requests.
    node = await startNode({ capacityMb: 16, leaseMs: 500 });
    fe = await startFrontend({ nodes: [node] });
    assert.equal((await upload(fe.url, 'lane-kép', bytes)).status, 200);
  });
  after(async () => {
    await fe.close();
    await node.close();
  });

  /** Reads until the frontend holds a leased copy (the node has it; one read brought a lease). */
  async function leased(key: string) {
    const deadline = Date.now() + 5_000;
    while (!node.cache.peek(key)) {
      assert.ok(Date.now() < deadline, `the node never got ${key}`);
      await send(`${fe.url}/images/${encodeURIComponent(key)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await send(`${fe.url}/images/${encodeURIComponent(key)}`);
  }

  it('answers a GET of a leased copy as the route does, without the route', async () => {
    // A stall longer than the lease between the two steps would send the read to the route:
    // the lane must answer at least one of three tries.
    let lane: Answer | undefined;
    let after = { count: 0, sum: 0 };
    for (let attempt = 0; attempt < 3 && !lane; attempt++) {
      await leased('lane-kép');
      const before = await fetchTime(fe);
      const answer = await send(`${fe.url}/images/lane-k%C3%A9p`);
      after = await fetchTime(fe);
      assert.equal(after.count, before.count + 1);
      // The lane observes 0 s; the route the time its fetch took.
      if (after.sum === before.sum) lane = answer;
    }
    assert.ok(lane, 'the lane answered none of three reads of a leased copy');
    // A query string sends the same read to the route.
    const route = await send(`${fe.url}/images/lane-k%C3%A9p?via=route`);
    assert.ok((await fetchTime(fe)).sum > after.sum, 'the route answered this one');
    assert.equal(lane.status, 200);
    assert.deepEqual(lane.body, bytes);
    assert.deepEqual(lane.headers, route.headers);
    assert.deepEqual(lane.body, route.body);
    assert.equal(lane.headers['content-type'], 'image/png');
    assert.equal(lane.headers['x-pixpool-source'], 'cache');
  });

  it('answers revalidations (304) as the route does', async () => {
    await leased('lane-kép');
    const { headers } = await send(`${fe.url}/images/lane-k%C3%A9p`);
    for (const validators of [
      { 'if-none-match': headers.etag as string },
      { 'if-none-match': `"v0", W/${headers.etag}` },
      { 'if-modified-since': headers['last-modified'] as string },
    ]) {
      const lane = await send(`${fe.url}/images/lane-k%C3%A9p`, { headers: validators });
      const route = await send(`${fe.url}/images/lane-k%C3%A9p?via=route`, { headers: validators });
      assert.equal(lane.status, 304, JSON.stringify(validators));
      assert.deepEqual(lane, route);
    }
    const changed = await send(`${fe.url}/images/lane-k%C3%A9p`, {
      headers: { 'if-none-match': '"v0"' },
    });
    assert.equal(changed.status, 200);
  });

  it('answers a bodiless POST /api/key of a leased copy with the route’s JSON', async () => {
    await leased('lane-kép');
    const lane = await send(`${fe.url}/api/key/lane-k%C3%A9p`, { method: 'POST' });
    const route = await send(`${fe.url}/api/key/lane-k%C3%A9p?via=route`, { method: 'POST' });
    assert.equal(lane.status, 200);
    assert.deepEqual(lane, route);
    const json = JSON.parse(lane.body.toString());
    assert.equal(json.key, 'lane-kép');
    assert.equal(json.content, `data:image/png;base64,${bytes.toString('base64')}`);
  });

  it('leaves to the routes what it must not answer', async () => {
    await leased('lane-kép');
    // A POST with a body is parsed by Fastify, which refuses an empty JSON body.
    const emptyJson = await send(`${fe.url}/api/key/lane-k%C3%A9p`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(emptyJson.status, 400);
    const withBody = await send(`${fe.url}/api/key/lane-k%C3%A9p`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(withBody.status, 200);
    // HEAD, a broken percent-encoding, a key nobody stored: the routes word each answer.
    const head = await fetch(`${fe.url}/images/lane-k%C3%A9p`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'image/png');
    const broken = await send(`${fe.url}/images/%E0%A4%A`);
    assert.equal(broken.status, 400);
    assert.equal(JSON.parse(broken.body.toString()).success, 'false');
    for (const [bad, status] of [
      ['x'.repeat(5000), 414],
      ['x'.repeat(300), 400],
      ['a%2Fb', 400],
    ] as const) {
      const answer = await send(`${fe.url}/images/${bad}`);
      assert.equal(answer.status, status, bad.slice(0, 20));
      assert.equal(JSON.parse(answer.body.toString()).success, 'false');
    }
    const missing = await send(`${fe.url}/images/nobody-stored-this`);
    assert.equal(missing.status, 404);
    assert.match(JSON.parse(missing.body.toString()).error.message, /No image is stored/);
  });

  it('serves a new upload at once: the lane never outlives the lease an upload waits for', async () => {
    await leased('lane-kép');
    const next = imageBytes('png', 30_000, 12);
    assert.equal((await upload(fe.url, 'lane-kép', next)).status, 200);
    assert.deepEqual((await send(`${fe.url}/images/lane-k%C3%A9p`)).body, next);
    assert.deepEqual(
      JSON.parse(
        (await send(`${fe.url}/api/key/lane-k%C3%A9p`, { method: 'POST' })).body.toString(),
      ).content,
      `data:image/png;base64,${next.toString('base64')}`,
    );
  });
});
