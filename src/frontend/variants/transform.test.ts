import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { PixpoolError } from '../../core/errors.ts';
import { parseVariant, type VariantSpec } from './spec.ts';
import { createTransformer } from './transform.ts';

const spec = (query: string, accept?: string) => parseVariant(query, accept) as VariantSpec;
const solid = (width: number, height: number, background = '#3a7') =>
  sharp({ create: { width, height, channels: 3, background } });
const metaOf = (bytes: Buffer) => sharp(bytes, { animated: true }).metadata();

/** A PNG whose header claims width × height pixels, with no pixel data behind it. */
function claimedPng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const refusal = (status: number, message: RegExp) => (error: unknown) =>
  error instanceof PixpoolError && error.status === status && message.test(error.message);

describe('making variants with sharp', () => {
  const transformer = createTransformer({ maxPixels: 4_000_000 });
  let jpeg: Buffer;
  let png: Buffer;
  let gif: Buffer;
  before(async () => {
    jpeg = await solid(800, 600).jpeg().toBuffer();
    png = await solid(300, 200).png().toBuffer();
    const frames = await Promise.all(
      ['#f00', '#0f0', '#00f'].map((c) => solid(400, 300, c).png().toBuffer()),
    );
    gif = await sharp(frames, { join: { animated: true } })
      .gif()
      .toBuffer();
  });

  it('resizes by width or height keeping proportions, in the original format', async () => {
    const byWidth = await transformer.transform(jpeg, spec('w=200'));
    assert.equal(byWidth.contentType, 'image/jpeg');
    const m = await metaOf(byWidth.bytes);
    assert.deepEqual([m.format, m.width, m.height], ['jpeg', 256, 192]);
    const byHeight = await metaOf((await transformer.transform(jpeg, spec('h=64'))).bytes);
    assert.deepEqual([byHeight.width, byHeight.height], [85, 64]);
  });

  it('cover and contain fill the box exactly; inside fits in it; nothing is upscaled', async () => {
    const box = async (query: string, original = jpeg) => {
      const m = await metaOf((await transformer.transform(original, spec(query))).bytes);
      return [m.width, m.height];
    };
    assert.deepEqual(await box('w=128&h=128'), [128, 128]);
    assert.deepEqual(await box('w=128&h=128&fit=contain'), [128, 128]);
    assert.deepEqual(await box('w=128&h=128&fit=inside'), [128, 96]);
    assert.deepEqual(await box('w=1024', png), [300, 200], 'a 300 px original stays 300 px');
  });

  it('converts to each format, with its content type, and applies quality', async () => {
    for (const [format, type] of [
      ['jpeg', 'image/jpeg'],
      ['png', 'image/png'],
      ['webp', 'image/webp'],
      ['avif', 'image/avif'],
    ] as const) {
      const out = await transformer.transform(png, spec(`w=64&format=${format}`));
      assert.equal(out.contentType, type);
      assert.equal((await metaOf(out.bytes)).format, format === 'avif' ? 'heif' : format);
    }
    const noisy = await sharp({
      create: {
        width: 200,
        height: 200,
        channels: 3,
        background: '#888',
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    })
      .png()
      .toBuffer();
    const low = await transformer.transform(noisy, spec('format=webp&q=10'));
    const high = await transformer.transform(noisy, spec('format=webp&q=100'));
    assert.ok(low.bytes.length < high.bytes.length, `${low.bytes.length} < ${high.bytes.length}`);
  });

  it('format=auto picks AVIF, then WebP, else keeps the original format', async () => {
    const type = async (accept: string | undefined, original = png) =>
      (await transformer.transform(original, spec('w=64&format=auto', accept))).contentType;
    assert.equal(await type('image/avif,image/webp,*/*'), 'image/avif');
    assert.equal(await type('image/webp,*/*'), 'image/webp');
    assert.equal(await type('*/*'), 'image/png');
    assert.equal(await type(undefined, jpeg), 'image/jpeg');
  });

  it('keeps an animation whole or refuses: never one frame of it', async () => {
    const frames = async (query: string, accept?: string) => {
      const out = await transformer.transform(gif, spec(query, accept));
      const m = await metaOf(out.bytes);
      return [out.contentType, m.pages, m.width];
    };
    assert.deepEqual(await frames('w=128'), ['image/gif', 3, 128]);
    assert.deepEqual(await frames('w=128&format=webp'), ['image/webp', 3, 128]);
    assert.deepEqual(await frames('w=128&format=auto', 'image/avif,image/webp'), [
      'image/webp',
      3,
      128,
    ]);
    assert.deepEqual(await frames('w=128&format=auto', 'image/avif'), ['image/gif', 3, 128]);
    for (const format of ['jpeg', 'png', 'avif']) {
      await assert.rejects(
        transformer.transform(gif, spec(`w=128&format=${format}`)),
        refusal(400, new RegExp(`animated, and ${format} holds one frame: ask for format=webp`)),
      );
    }
  });

  it('refuses a decompression bomb from its header, before decoding it', async () => {
    const bomb = claimedPng(100_000, 100_000);
    assert.ok(bomb.length < 100, 'a few bytes claiming 10 billion pixels');
    const rssBefore = process.memoryUsage().rss;
    await assert.rejects(
      transformer.transform(bomb, spec('w=64')),
      refusal(413, /100000×100000 pixels; variants are made of images up to 4,000,000 pixels/),
    );
    assert.ok(process.memoryUsage().rss - rssBefore < 50 * 1024 * 1024, 'nothing was decoded');
    // Just over the limit is refused too; just under is made.
    await assert.rejects(
      transformer.transform(claimedPng(2001, 2000), spec('w=64')),
      refusal(413, /pixels/),
    );
    const under = await transformer.transform(
      await solid(2000, 2000).png().toBuffer(),
      spec('w=64'),
    );
    assert.equal((await metaOf(under.bytes)).width, 64);
  });

  it('refuses a JPEG over the pixel limit with the same 413, and makes one just under it', async () => {
    // A JPEG skips the separate header read: sharp's own check refuses it, and the 413 still
    // names its size.
    const over = await solid(2001, 2000).jpeg().toBuffer();
    await assert.rejects(
      transformer.transform(over, spec('w=64')),
      refusal(413, /This image is 2001×2000 pixels; variants are made of images up to 4,000,000/),
    );
    const under = await transformer.transform(
      await solid(2000, 2000).jpeg().toBuffer(),
      spec('w=64'),
    );
    assert.deepEqual([under.contentType, (await metaOf(under.bytes)).width], ['image/jpeg', 64]);
  });

  it('an image it cannot read gets a 415 that says the original is still served', async () => {
    const bmp = Buffer.alloc(58);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(58, 2);
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(1, 18);
    bmp.writeInt32LE(1, 22);
    bmp.writeUInt16LE(1, 26);
    bmp.writeUInt16LE(24, 28);
    const damaged = Buffer.concat([jpeg.subarray(0, 200), Buffer.alloc(200, 0x55)]);
    for (const original of [bmp, damaged, Buffer.from('not an image')]) {
      await assert.rejects(
        transformer.transform(original, spec('w=64')),
        refusal(415, /cannot be transformed.*The original is still served without parameters/),
      );
    }
  });

  describe('an SVG', () => {
    let requests = 0;
    const server = createServer((_request, response) => {
      requests++;
      response.end();
    });
    before(() => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)));
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('is rasterised to PNG without fetching what it references', async () => {
      const { port } = server.address() as AddressInfo;
      const origin = `http://127.0.0.1:${port}`;
      const svg = Buffer.from(
        `<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="200" height="100">
  <style>@import url("${origin}/style.css");</style>
  <rect width="200" height="100" fill="#08f"/>
  <image href="${origin}/image.png" width="50" height="50"/>
  <image xlink:href="${origin}/old.png" width="50" height="50"/>
  <use href="${origin}/sprite.svg#a"/>
</svg>`,
      );
      const out = await transformer.transform(svg, spec('w=64'));
      const m = await metaOf(out.bytes);
      assert.deepEqual([out.contentType, m.width, m.height], ['image/png', 64, 32]);
      assert.equal(requests, 0, 'the SVG made the server fetch nothing');
    });

    it('with an external entity is refused, and the entity is not fetched', async () => {
      const { port } = server.address() as AddressInfo;
      const svg = Buffer.from(
        `<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY ext SYSTEM "http://127.0.0.1:${port}/entity">]>
<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><text>&ext;</text></svg>`,
      );
      await assert.rejects(
        transformer.transform(svg, spec('w=64')),
        refusal(415, /cannot be transformed/),
      );
      assert.equal(requests, 0);
    });
  });

  it('bounds the transforms waiting: past the bound a request gets a 503 to retry', async () => {
    const narrow = createTransformer({ concurrency: 1, maxQueued: 1 });
    const big = await solid(1600, 1600).png().toBuffer();
    const first = narrow.transform(big, spec('w=640&format=avif'));
    const second = narrow.transform(big, spec('w=320&format=avif'));
    assert.deepEqual([narrow.active, narrow.queued], [1, 1]);
    await assert.rejects(
      narrow.transform(big, spec('w=256')),
      refusal(503, /Too many image variants are being made right now; try again shortly/),
    );
    await Promise.all([first, second]);
    assert.equal((await narrow.transform(big, spec('w=256'))).contentType, 'image/png');
  });

  it('bounds the bytes of originals waiting, not only their number', async () => {
    const big = await solid(1600, 1600).png().toBuffer();
    const narrow = createTransformer({ concurrency: 1, maxQueuedBytes: big.length * 3 });
    const running = narrow.transform(big, spec('w=640&format=avif'));
    const waiting = [narrow.transform(big, spec('w=320')), narrow.transform(big, spec('w=256'))];
    assert.deepEqual([narrow.active, narrow.queued], [1, 2]);
    await assert.rejects(
      narrow.transform(big, spec('w=128')),
      refusal(503, /Too many image variants are being made right now/),
    );
    await Promise.all([running, ...waiting]);
    assert.equal(narrow.queued, 0);
    assert.equal((await narrow.transform(big, spec('w=128'))).contentType, 'image/png');
  });
});
