import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PoolView } from '../../src/core/pool-view.ts';
import { type ApiBody, startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes, svgWithScript } from '../helpers/images.ts';
import { SECRET } from '../helpers/nodes.ts';

const post = async (url: string, init: RequestInit = {}) => {
  const response = await fetch(url, { method: 'POST', ...init });
  return { status: response.status, body: (await response.json()) as ApiBody };
};

async function countObjects(fe: TestFrontend) {
  let n = 0;
  for await (const _ of fe.objects.list()) n++;
  return n;
}

describe('frontend API over real sockets, embedded storage, a real cache node', () => {
  let fe: TestFrontend;
  before(async () => {
    fe = await startFrontend({ maxUploadMb: 1 });
  });
  after(() => fe.close());

  it('an upload is acknowledged with the key and read back byte-exact, as data URL and raw', async () => {
    const png = imageBytes('png', 5000, 1);
    assert.deepEqual(await upload(fe.url, 'cat', png), {
      status: 200,
      body: { success: 'true', key: 'cat' },
    });
    const json = await post(`${fe.url}/api/key/cat`);
    assert.deepEqual(json, {
      status: 200,
      body: {
        success: 'true',
        key: 'cat',
        content: `data:image/png;base64,${png.toString('base64')}`,
      },
    });
    const raw = await fetch(`${fe.url}/images/cat`);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('content-type'), 'image/png');
    assert.equal(raw.headers.get('x-content-type-options'), 'nosniff');
    assert.match(raw.headers.get('etag') ?? '', /^"v\d+"$/);
    assert.ok(raw.headers.get('last-modified'));
    assert.equal(raw.headers.get('cache-control'), 'public, no-cache');
    assert.ok(Buffer.from(await raw.arrayBuffer()).equals(png));
  });

  it('a miss fills the owning node, and the next fetch is a hit with the same headers', async () => {
    const jpeg = imageBytes('jpeg', 3000, 2);
    await upload(fe.url, 'fill-me', jpeg);
    const first = await fetch(`${fe.url}/images/fill-me`);
    await first.arrayBuffer();
    assert.equal(first.headers.get('x-pixpool-source'), 'storage');
    for (let i = 0; i < 50 && !fe.nodes[0]?.cache.peek('fill-me'); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const second = await fetch(`${fe.url}/images/fill-me`);
    assert.equal(second.headers.get('x-pixpool-source'), 'cache');
    assert.equal(second.headers.get('etag'), first.headers.get('etag'));
    assert.equal(second.headers.get('last-modified'), first.headers.get('last-modified'));
    assert.equal(second.headers.get('content-type'), 'image/jpeg');
    assert.ok(Buffer.from(await second.arrayBuffer()).equals(jpeg));
  });

  it('HEAD has the headers without a body; If-None-Match and If-Modified-Since give 304', async () => {
    await upload(fe.url, 'etag', imageBytes('gif', 100, 3));
    const head = await fetch(`${fe.url}/images/etag`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'image/gif');
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const etag = head.headers.get('etag') ?? '';
    const revalidated = await fetch(`${fe.url}/images/etag`, {
      headers: { 'if-none-match': `W/${etag}, "x"` },
    });
    assert.equal(revalidated.status, 304);
    const since = await fetch(`${fe.url}/images/etag`, {
      headers: { 'if-modified-since': head.headers.get('last-modified') ?? '' },
    });
    assert.equal(since.status, 304);
    const other = await fetch(`${fe.url}/images/etag`, { headers: { 'if-none-match': '"v0"' } });
    assert.equal(other.status, 200);
  });

  it('a re-upload replaces the image, changes the ETag and deletes the old object', async () => {
    await upload(fe.url, 'again', imageBytes('png', 800, 4));
    const before = await fetch(`${fe.url}/images/again`);
    await before.arrayBuffer();
    const objectsBefore = await countObjects(fe);
    const newer = imageBytes('gif', 900, 5);
    await upload(fe.url, 'again', newer);
    const after = await fetch(`${fe.url}/images/again`);
    assert.equal(after.headers.get('content-type'), 'image/gif');
    assert.notEqual(after.headers.get('etag'), before.headers.get('etag'));
    assert.ok(Buffer.from(await after.arrayBuffer()).equals(newer));
    for (let i = 0; i < 50 && (await countObjects(fe)) !== objectsBefore; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await countObjects(fe), objectsBefore, 'the replaced object is gone');
  });

  it('POST /api/key answers the originals’ JSON byte for byte, and never a replaced image', async () => {
    const keys = [
      'plain',
      'q"uote',
      'back\\slash',
      'ünï-ключ-画像',
      '😀emoji',
      '<tag>&amp;',
      'a+b%c?#',
    ];
    for (const [i, key] of keys.entries()) {
      const first = imageBytes('png', 3000 + i, 20 + i);
      await upload(fe.url, key, first);
      const url = `${fe.url}/api/key/${encodeURIComponent(key)}`;
      const expected = (bytes: Buffer, type: string) =>
        JSON.stringify({
          success: 'true',
          key,
          content: `data:${type};base64,${bytes.toString('base64')}`,
        });
      // Until the node has it (so the near cache keeps the encoded answer), then twice more:
      // the later answers come from the kept encoding.
      for (let n = 0; n < 100; n++) {
        const got = await fetch(`${fe.url}/images/${encodeURIComponent(key)}`);
        await got.arrayBuffer();
        if (got.headers.get('x-pixpool-source') === 'cache') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      for (let n = 0; n < 3; n++) {
        const response = await fetch(url, { method: 'POST' });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
        assert.equal(await response.text(), expected(first, 'image/png'), key);
      }
      const second = imageBytes('jpeg', 2000 + i, 40 + i);
      await upload(fe.url, key, second);
      const text = await (await fetch(url, { method: 'POST' })).text();
      assert.deepEqual(JSON.parse(text), JSON.parse(expected(second, 'image/jpeg')), key);
      assert.equal(text, expected(second, 'image/jpeg'), key);
    }
  });

  it('list_keys returns every key, or pages of them with prefix and cursor', async () => {
    for (const key of ['list-a', 'list-b', 'list-c', 'other']) {
      await upload(fe.url, key, imageBytes('png', 64, 6));
    }
    const all = await post(`${fe.url}/api/list_keys`);
    assert.equal(all.body.success, 'true');
    for (const key of ['list-a', 'list-b', 'list-c', 'other', 'cat'])
      assert.ok(all.body.keys.includes(key));
    const page1 = await post(`${fe.url}/api/list_keys?prefix=list-&limit=2`);
    assert.deepEqual(page1.body, { success: 'true', keys: ['list-a', 'list-b'], next: 'list-b' });
    const page2 = await post(`${fe.url}/api/list_keys?prefix=list-&limit=2&cursor=list-b`);
    assert.deepEqual(page2.body, { success: 'true', keys: ['list-c'] });
  });

  it('an SVG is served with a sandboxing CSP so its script cannot run in this origin', async () => {
    assert.equal((await upload(fe.url, 'vector', svgWithScript, 'x.svg')).status, 200);
    const svg = await fetch(`${fe.url}/images/vector`);
    assert.equal(svg.headers.get('content-type'), 'image/svg+xml');
    assert.match(svg.headers.get('content-security-policy') ?? '', /sandbox/);
    assert.match(svg.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(svg.headers.get('x-content-type-options'), 'nosniff');
  });

  /** `view`, one version on, with every node at an address where nothing listens. */
  const nowhere = (view: PoolView): PoolView => ({
    map: { ...view.map, version: view.map.version + 1 },
    addresses: Object.fromEntries(
      Object.keys(view.addresses).map((id) => [id, 'http://127.0.0.1:1']),
    ),
  });

  it('a failing cache node is a miss; an upload it cannot be told of is refused, not lost', async () => {
    const png = imageBytes('png', 700, 7);
    await upload(fe.url, 'resilient', png);
    const view = fe.routing.view;
    fe.routing.update(nowhere(view));
    try {
      const raw = await fetch(`${fe.url}/images/resilient`);
      assert.equal(raw.status, 200);
      assert.ok(Buffer.from(await raw.arrayBuffer()).equals(png));
      // The node might still serve an older copy to someone who reaches it: no acknowledgement.
      const newer = imageBytes('png', 800, 9);
      const refused = await upload(fe.url, 'resilient', newer);
      assert.equal(refused.status, 503);
      assert.match(refused.body.error.message, /not acknowledged/);
      const stored = await fetch(`${fe.url}/images/resilient`);
      assert.ok(Buffer.from(await stored.arrayBuffer()).equals(newer), 'stored all the same');
    } finally {
      fe.routing.update({ ...view, map: { ...view.map, version: view.map.version + 2 } });
    }
  });

  it('a node the view says is down is neither read nor told: uploads acknowledged, reads from storage', async () => {
    const png = imageBytes('png', 710, 7);
    await upload(fe.url, 'replaced-node', png);
    const view = fe.routing.view;
    // Nothing listens where the view says the nodes are: any read or invalidation would fail.
    fe.routing.update({ ...nowhere(view), down: [...view.map.nodes] });
    const triedNodes = async () => {
      const text = await (await fetch(`${fe.url}/metrics`)).text();
      const counts = text.match(
        /^pixpool_frontend_(node_errors|fills|invalidation_failures)_total(\{[^}]*\})? \d+/gm,
      );
      return (counts ?? []).reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    };
    try {
      const before = await triedNodes();
      const newer = imageBytes('png', 810, 9);
      const acknowledged = await upload(fe.url, 'replaced-node', newer);
      assert.equal(acknowledged.status, 200, JSON.stringify(acknowledged.body));
      const read = await fetch(`${fe.url}/images/replaced-node`);
      assert.equal(read.headers.get('x-pixpool-source'), 'storage');
      assert.ok(Buffer.from(await read.arrayBuffer()).equals(newer));
      assert.equal(await triedNodes(), before, 'no node was asked, filled or told');
    } finally {
      fe.routing.update({ ...view, map: { ...view.map, version: view.map.version + 2 } });
    }
  });

  it('bad input gets a clear 4xx envelope, and nothing stored changes', async () => {
    const keep = imageBytes('png', 300, 8);
    await upload(fe.url, 'keep', keep);
    const keysBefore = (await post(`${fe.url}/api/list_keys`)).body.keys;
    const png = imageBytes('png', 100, 9);
    const rawForm = (body: string, boundary = 'XyZ') => ({
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    const twoFiles = new FormData();
    twoFiles.append('key', 'keep');
    twoFiles.append('file', new Blob([new Uint8Array(png)]), 'a.png');
    twoFiles.append('file', new Blob([new Uint8Array(png)]), 'b.png');
    type Answer = {
      status: number;
      body: { success: string; error: { code: number; message: string } };
    };
    const cases: [string, () => Promise<Answer>, number, RegExp][] = [
      ['no key', () => upload(fe.url, undefined, png), 400, /no "key" field/],
      ['no file', () => upload(fe.url, 'keep'), 400, /no file/],
      ['empty key', () => upload(fe.url, '', png), 400, /key is required/],
      ['space in key', () => upload(fe.url, 'a b', png), 400, /whitespace/],
      ['slash in key', () => upload(fe.url, 'a/b', png), 400, /slash/],
      ['long key', () => upload(fe.url, 'k'.repeat(129), png), 400, /at most 128/],
      ['control char', () => upload(fe.url, 'a\u0007b', png), 400, /control/],
      [
        'not an image',
        () => upload(fe.url, 'keep', Buffer.from('just text, not an image')),
        415,
        /not an image/,
      ],
      [
        'forged name',
        () => upload(fe.url, 'keep', Buffer.from('MZ executable'), 'x.png'),
        415,
        /not an image/,
      ],
      ['empty file', () => upload(fe.url, 'keep', Buffer.alloc(0)), 400, /empty/],
      [
        'too large',
        () => upload(fe.url, 'keep', imageBytes('png', 1024 * 1024 + 1)),
        413,
        /upload limit of 1 MB/,
      ],
      [
        'two files',
        () => post(`${fe.url}/api/upload`, { body: twoFiles }),
        400,
        /exactly one file|too many parts/,
      ],
      [
        'json not multipart',
        () =>
          post(`${fe.url}/api/upload`, {
            headers: { 'content-type': 'application/json' },
            body: '{"key":"keep"}',
          }),
        400,
        /multipart/,
      ],
      [
        'truncated multipart',
        () =>
          post(
            `${fe.url}/api/upload`,
            rawForm(
              '--XyZ\r\nContent-Disposition: form-data; name="key"\r\n\r\nkeep\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG',
            ),
          ),
        400,
        /malformed|no file/,
      ],
      [
        'garbage multipart',
        () => post(`${fe.url}/api/upload`, rawForm('this is not multipart at all')),
        400,
        /malformed|no "key"/,
      ],
      [
        'unknown key',
        () => post(`${fe.url}/api/key/nope`),
        404,
        /No image is stored under the key "nope"/,
      ],
      ['bad key in path', () => post(`${fe.url}/api/key/a%20b`), 400, /whitespace/],
      ['bad list limit', () => post(`${fe.url}/api/list_keys?limit=0`), 400, /limit must be/],
      [
        'raw unknown',
        async () => {
          const r = await fetch(`${fe.url}/images/nope`);
          return { status: r.status, body: (await r.json()) as ApiBody };
        },
        404,
        /No image/,
      ],
      [
        'notify without secret',
        () =>
          post(`${fe.url}/api/notify`, {
            headers: { 'content-type': 'application/json' },
            body: '{}',
          }),
        401,
        /shared secret/,
      ],
      [
        'notify with a bad map',
        () =>
          post(`${fe.url}/api/notify`, {
            headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
            body: '{"map":{"version":1}}',
          }),
        400,
        /pool map is not valid/,
      ],
      [
        'notify with a down node the map does not name',
        () =>
          post(`${fe.url}/api/notify`, {
            headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
            body: JSON.stringify({ ...fe.routing.view, down: ['no-such-node'] }),
          }),
        400,
        /down must list node ids of the map/,
      ],
    ];
    for (const [name, send, status, message] of cases) {
      const { status: got, body } = await send();
      assert.equal(got, status, name);
      assert.equal(body.success, 'false', name);
      assert.equal(body.error.code, status, name);
      assert.match(body.error.message, message, name);
    }
    assert.deepEqual((await post(`${fe.url}/api/list_keys`)).body.keys, keysBefore);
    const still = await fetch(`${fe.url}/images/keep`);
    assert.ok(Buffer.from(await still.arrayBuffer()).equals(keep));
  });

  it('notify adopts a newer pool view and ignores an older one', async () => {
    const view = fe.routing.view;
    const send = (version: number) =>
      post(`${fe.url}/api/notify`, {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
        body: JSON.stringify({ map: { ...view.map, version }, addresses: view.addresses }),
      });
    const newer = await send(view.map.version + 10);
    assert.deepEqual(newer.body, {
      success: 'true',
      adopted: true,
      version: view.map.version + 10,
    });
    const older = await send(view.map.version + 1);
    assert.deepEqual(older.body, {
      success: 'true',
      adopted: false,
      version: view.map.version + 10,
    });
  });
});

describe('unknown paths', () => {
  it('a browser gets a 404 page, an API client the JSON envelope', async () => {
    const fe = await startFrontend();
    try {
      const page = await fetch(`${fe.url}/no/such/page`, { headers: { accept: 'text/html' } });
      assert.equal(page.status, 404);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src/);
      const api = await fetch(`${fe.url}/api/nothing`, { method: 'POST' });
      assert.equal(api.status, 404);
      assert.deepEqual(await api.json(), {
        success: 'false',
        error: { code: 404, message: 'There is no endpoint POST /api/nothing.' },
      });
    } finally {
      await fe.close();
    }
  });
});
