import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createTransformer, type Transformer } from '../../src/frontend/variants/transform.ts';
import { type ApiBody, startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import { startNode, type TestNode } from '../helpers/nodes.ts';
import { waitFor } from '../helpers/processes.ts';

/** A real image: `width` × `height` of one colour, PNG. */
const picture = (width: number, height: number, background = '#3a7') =>
  sharp({ create: { width, height, channels: 3, background } })
    .png()
    .toBuffer();

const get = async (url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { response, bytes, status: response.status, headers: response.headers };
};

const sizeOf = async (bytes: Buffer) => {
  const { width, height, format } = await sharp(bytes).metadata();
  return { width, height, format };
};

/** A sample of the frontend's /metrics: `name{labels}` summed over series matching `labels`. */
async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || !line.includes(labels)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * The real transformer, counting its calls, whose transforms can be held back at a gate (each
 * waits with the original in hand, as a slow resize would).
 */
function gated(inner: Transformer) {
  const state = { calls: 0, held: 0, gate: undefined as Promise<void> | undefined };
  const transformer: Transformer = Object.create(inner, {
    transform: {
      value: async (bytes: Uint8Array, spec: Parameters<Transformer['transform']>[1]) => {
        state.calls++;
        const gate = state.gate;
        if (gate) {
          state.held++;
          await gate;
          state.held--;
        }
        return inner.transform(bytes, spec);
      },
    },
  });
  const hold = () => {
    let open = () => {};
    state.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    return () => {
      state.gate = undefined;
      open();
    };
  };
  return { transformer, state, hold };
}

describe('image variants', () => {
  let fe: TestFrontend;
  let gate: ReturnType<typeof gated>;
  let original: Buffer;
  before(async () => {
    gate = gated(createTransformer({ concurrency: 2, maxPixels: 4_000_000 }));
    fe = await startFrontend({ variants: { transformer: gate.transformer } });
    original = await picture(600, 400);
    assert.equal((await upload(fe.url, 'photo', original)).status, 200);
  });
  after(() => fe.close());

  it('makes the size and format asked for', async () => {
    const small = await get(`${fe.url}/images/photo?w=256`);
    assert.equal(small.status, 200);
    assert.equal(small.headers.get('content-type'), 'image/png');
    assert.deepEqual(await sizeOf(small.bytes), { width: 256, height: 171, format: 'png' });
    // Rounded up to the allowlist: 200 is served as 256.
    const rounded = await get(`${fe.url}/images/photo?w=200`);
    assert.ok(rounded.bytes.equals(small.bytes));
    const box = await get(`${fe.url}/images/photo?w=128&h=128&fit=cover&format=webp&q=50`);
    assert.equal(box.headers.get('content-type'), 'image/webp');
    assert.deepEqual(await sizeOf(box.bytes), { width: 128, height: 128, format: 'webp' });
    const inside = await get(`${fe.url}/images/photo?w=128&h=128&fit=inside&format=jpeg`);
    assert.deepEqual(await sizeOf(inside.bytes), { width: 128, height: 85, format: 'jpeg' });
    // No parameters: the original, byte for byte.
    assert.ok((await get(`${fe.url}/images/photo`)).bytes.equals(original));
  });

  it('refuses each bad parameter with a 400 envelope that says what is wrong, before any I/O', async () => {
    const cases: [string, RegExp][] = [
      ['size=3', /Unknown image parameter "size"/],
      ['w=0', /w \(width\) must be 1 to 2560 pixels; got 0/],
      ['w=100000', /w \(width\) must be 1 to 2560 pixels; got 100000/],
      ['h=tall', /h \(height\) must be a whole number of pixels.*"tall"/],
      ['format=tiff', /Unknown format "tiff"/],
      ['q=0', /q \(quality\) must be a whole number from 1 to 100; got "0"/],
      ['q=101', /q \(quality\) must be a whole number from 1 to 100; got "101"/],
    ];
    const transforms = gate.state.calls;
    for (const [query, message] of cases) {
      // A key nobody stored: the parameters are refused before the key is looked up.
      for (const key of ['photo', 'nobody-stored-this']) {
        const { status, bytes } = await get(`${fe.url}/images/${key}?${query}`);
        const body = JSON.parse(bytes.toString()) as ApiBody;
        assert.equal(status, 400, query);
        assert.equal(body.success, 'false');
        assert.equal(body.error.code, 400);
        assert.match(body.error.message, message);
      }
    }
    assert.equal(gate.state.calls, transforms);
    const missing = await get(`${fe.url}/images/nobody-stored-this?w=256`);
    assert.equal(missing.status, 404);
    assert.equal((JSON.parse(missing.bytes.toString()) as ApiBody).error.code, 404);
  });

  it('refuses an image it cannot transform with a 4xx, and still serves the original', async () => {
    const fake = imageBytes('png', 3000, 9); // a PNG signature, and no PNG behind it
    await upload(fe.url, 'not-really', fake);
    const refused = await get(`${fe.url}/images/not-really?w=64`);
    assert.equal(refused.status, 415);
    assert.match(
      (JSON.parse(refused.bytes.toString()) as ApiBody).error.message,
      /cannot be transformed.*The original is still served/,
    );
    assert.ok((await get(`${fe.url}/images/not-really`)).bytes.equals(fake));
    assert.equal(
      await metric(fe.url, 'pixpool_frontend_variant_refusals_total', 'reason="unreadable"'),
      1,
    );
  });

  it('refuses a pixel bomb from its header and a still of an animation, and serves both originals', async () => {
    // 6 million pixels in a few KB: refused by the pixel limit (4 million here), not decoded.
    const bomb = await picture(3000, 2000);
    await upload(fe.url, 'bomb', bomb);
    const refused = await get(`${fe.url}/images/bomb?w=64`);
    assert.equal(refused.status, 413);
    assert.match(
      (JSON.parse(refused.bytes.toString()) as ApiBody).error.message,
      /3000×2000 pixels; variants are made of images up to 4,000,000 pixels/,
    );
    assert.ok((await get(`${fe.url}/images/bomb`)).bytes.equals(bomb));
    const frames = await Promise.all(['#f00', '#0f0', '#00f'].map((c) => picture(200, 100, c)));
    const gif = await sharp(frames, { join: { animated: true } })
      .gif()
      .toBuffer();
    await upload(fe.url, 'spinner', gif);
    const still = await get(`${fe.url}/images/spinner?w=64&format=jpeg`);
    assert.equal(still.status, 400);
    assert.match(
      (JSON.parse(still.bytes.toString()) as ApiBody).error.message,
      /animated, and jpeg holds one frame/,
    );
    const small = await get(`${fe.url}/images/spinner?w=64`);
    assert.equal(small.headers.get('content-type'), 'image/gif');
    const meta = await sharp(small.bytes, { animated: true }).metadata();
    assert.deepEqual([meta.width, meta.pages], [64, 3], 'every frame kept');
    assert.ok((await get(`${fe.url}/images/spinner`)).bytes.equals(gif));
    for (const reason of ['too_large', 'animated']) {
      assert.equal(
        await metric(fe.url, 'pixpool_frontend_variant_refusals_total', `reason="${reason}"`),
        1,
      );
    }
  });

  it('answers like an image: its own ETag, 304, type, nosniff, CSP; Vary: Accept for auto', async () => {
    const plain = await get(`${fe.url}/images/photo`);
    const small = await get(`${fe.url}/images/photo?w=64`);
    const webp = await get(`${fe.url}/images/photo?w=64&format=webp`);
    const etag = small.headers.get('etag') as string;
    assert.match(etag, /^"v\d+-w64h\.inside\.same\.q"$/);
    const tags = [plain, small, webp].map((r) => r.headers.get('etag'));
    assert.equal(new Set(tags).size, 3, `distinct ETags: ${tags}`);
    for (const r of [small, webp]) {
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.match(r.headers.get('content-security-policy') ?? '', /sandbox/);
      assert.equal(
        r.headers.get('content-security-policy'),
        plain.headers.get('content-security-policy'),
      );
      assert.equal(r.headers.get('vary'), null);
    }
    const again = await get(`${fe.url}/images/photo?w=64`, { 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.bytes.length, 0);
    assert.equal(again.headers.get('etag'), etag);
    const auto = await get(`${fe.url}/images/photo?w=64&format=auto`, {
      accept: 'image/avif,image/webp,*/*',
    });
    assert.equal(auto.headers.get('content-type'), 'image/avif');
    assert.equal(auto.headers.get('vary'), 'Accept');
    const noModern = await get(`${fe.url}/images/photo?w=64&format=auto`, { accept: '*/*' });
    assert.equal(noModern.headers.get('content-type'), 'image/png');
    assert.equal(noModern.headers.get('vary'), 'Accept');
    assert.notEqual(noModern.headers.get('etag'), auto.headers.get('etag'));
    const head = await fetch(`${fe.url}/images/photo?w=64&format=webp`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'image/webp');
    assert.equal(head.headers.get('etag'), webp.headers.get('etag'));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });

  it('is kept in the pool: the next read is a hit on the owning node', async () => {
    const entry = (key: string) =>
      fe.nodes[0]?.cache.keys().find((k) => k.startsWith(`${key}/w320h.`));
    await get(`${fe.url}/images/photo?w=320`);
    await waitFor('the node to hold the variant', () => entry('photo') !== undefined);
    const hits = await metric(fe.url, 'pixpool_frontend_variant_lookups_total', 'result="hit"');
    const transforms = gate.state.calls;
    const again = await get(`${fe.url}/images/photo?w=320`);
    assert.equal(again.headers.get('x-pixpool-source'), 'cache');
    assert.deepEqual(await sizeOf(again.bytes), { width: 320, height: 213, format: 'png' });
    assert.equal(gate.state.calls, transforms);
    assert.equal(
      await metric(fe.url, 'pixpool_frontend_variant_lookups_total', 'result="hit"'),
      hits + 1,
    );
  });

  it('20 concurrent misses of one variant make one transform', async () => {
    // The original is on the node first, so each miss has it in one node read.
    await waitFor('the original cached', () => fe.nodes[0]?.cache.peek('photo') !== undefined);
    const calls = gate.state.calls;
    const misses = await metric(fe.url, 'pixpool_frontend_variant_lookups_total', 'result="miss"');
    const hits = await metric(fe.url, 'pixpool_frontend_cache_lookups_total', 'result="hit"');
    const made = await metric(fe.url, 'pixpool_frontend_variant_transform_seconds_count');
    const open = gate.hold();
    const reads = Array.from({ length: 20 }, () => get(`${fe.url}/images/photo?w=480&format=webp`));
    // Each read misses the variant, then has the original from the node or its leased near
    // copy, and joins the transform in the same run of microtasks as that hit is counted: once
    // 20 such hits are counted, a read that did not join would have made a second transform.
    await waitFor(
      'the 20 reads to miss the variant and have the original',
      async () =>
        (await metric(fe.url, 'pixpool_frontend_variant_lookups_total', 'result="miss"')) >=
          misses + 20 &&
        (await metric(fe.url, 'pixpool_frontend_cache_lookups_total', 'result="hit"')) >= hits + 20,
      { everyMs: 10 },
    );
    open();
    const answers = await Promise.all(reads);
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.ok(a.bytes.equals((answers[0] as (typeof answers)[0]).bytes));
    }
    assert.equal(gate.state.calls - calls, 1);
    assert.equal(
      await metric(fe.url, 'pixpool_frontend_variant_transform_seconds_count'),
      made + 1,
    );
  });

  it('distinct variants are made at most `concurrency` at once', async () => {
    const big = await picture(2000, 1500);
    await upload(fe.url, 'big', big);
    const widths = [32, 64, 128, 256, 320, 480, 640, 800];
    const answers = await Promise.all(widths.map((w) => get(`${fe.url}/images/big?w=${w}`)));
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 200);
      assert.equal((await sizeOf(a.bytes)).width, widths[i]);
    }
    assert.equal(gate.transformer.peak, 2);
  });
});

describe('variants and uploads: none made from an old version is served after the ack', () => {
  const LEASE_MS = 500;
  let node: TestNode;
  let a: TestFrontend;
  let b: TestFrontend;
  let gate: ReturnType<typeof gated>;
  // Told apart by shape: a variant of v1 is wide, of v2 tall.
  let v1: Buffer;
  let v2: Buffer;
  const heightOf = async (url: string) => {
    const { status, bytes } = await get(url);
    assert.equal(status, 200);
    return (await sizeOf(bytes)).height;
  };
  before(async () => {
    node = await startNode({ capacityMb: 16, leaseMs: LEASE_MS });
    gate = gated(createTransformer());
    a = await startFrontend({ nodes: [node], variants: { transformer: gate.transformer } });
    b = await startFrontend({ nodes: [node], metadata: a.metadata, objects: a.objects });
    [v1, v2] = await Promise.all([picture(600, 400, '#c00'), picture(400, 600, '#00c')]);
  });
  after(async () => {
    await b.close();
    await a.close();
    await node.close();
  });
  const variantOnNode = (key: string, id: string) => node.cache.peek(`${key}/${id}`);

  it('an upload removes the cached variants: the next read, through either frontend, is of v2', async () => {
    await upload(a.url, 'cat', v1);
    assert.equal(await heightOf(`${a.url}/images/cat?w=256`), 171);
    await waitFor('the variant cached', () => variantOnNode('cat', 'w256h.inside.same.q'));
    assert.equal(await heightOf(`${b.url}/images/cat?w=256`), 171);
    assert.equal((await upload(a.url, 'cat', v2)).status, 200);
    assert.equal(variantOnNode('cat', 'w256h.inside.same.q'), undefined);
    assert.equal(await heightOf(`${b.url}/images/cat?w=256`), 384);
    assert.equal(await heightOf(`${a.url}/images/cat?w=256`), 384);
  });

  it('a variant of v1 being made when v2 is acknowledged is refused by the node', async () => {
    await upload(a.url, 'dog', v1);
    const stale = await metric(a.url, 'pixpool_frontend_fills_total', 'outcome="stale"');
    const open = gate.hold();
    // This read has v1 and waits at the transform...
    const slow = get(`${a.url}/images/dog?w=128`);
    await waitFor('the transform of v1 to be held', () => gate.state.held === 1, { everyMs: 10 });
    gate.state.gate = undefined;
    // ...while v2 is uploaded and acknowledged...
    assert.equal((await upload(a.url, 'dog', v2)).status, 200);
    // A read begun after the ack makes its own transform of v2, joining none of v1's.
    const calls = gate.state.calls;
    const fresh = get(`${a.url}/images/dog?w=128`);
    try {
      await waitFor('a transform for the read after the ack', () => gate.state.calls > calls, {
        everyMs: 10,
        timeoutMs: 5000,
      });
      assert.equal((await sizeOf((await fresh).bytes)).height, 192);
    } finally {
      open();
    }
    // ...so its late fill of v1's variant is refused, and every later read is of v2.
    assert.equal((await sizeOf((await slow).bytes)).height, 85, 'begun before the upload: v1');
    await waitFor(
      'the node to refuse the late fill of v1',
      async () => (await metric(a.url, 'pixpool_frontend_fills_total', 'outcome="stale"')) > stale,
      { everyMs: 10 },
    );
    const version = (await a.metadata.get('dog'))?.version;
    for (const fe of [a, b, a]) {
      assert.equal(await heightOf(`${fe.url}/images/dog?w=128`), 192);
    }
    await waitFor('the node to hold the variant of v2', () => {
      const held = variantOnNode('dog', 'w128h.inside.same.q');
      assert.ok(held === undefined || held.version === version, 'v1’s variant on the node');
      return held !== undefined;
    });
  });

  it('a frontend holding a leased copy of a variant does not serve it after the ack', async () => {
    await upload(a.url, 'owl', v1);
    const url = `${b.url}/images/owl?w=64&format=webp`;
    assert.equal(await heightOf(url), 43);
    await waitFor('the variant cached', () => variantOnNode('owl', 'w64h.inside.webp.q'));
    // This read brings b the variant from the node, and a lease on it.
    const leased = await get(url);
    assert.equal(leased.headers.get('x-pixpool-source'), 'cache');
    assert.equal(await heightOf(url), 43);
    assert.equal((await upload(a.url, 'owl', v2)).status, 200);
    assert.equal(await heightOf(url), 96, 'b served its leased copy of v1 after v2');
  });
});
