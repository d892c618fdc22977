/**
 * Makes a variant's bytes from an original with sharp (libvips). libvips works on libuv's thread
 * pool, off the event loop; a bound on transforms in flight (and on those waiting) keeps a burst
 * of distinct misses from holding hundreds of decoded images at once: past the queue's bound a
 * request is refused with a 503 to retry, not queued.
 *
 * What it refuses, each with a 4xx that says why, leaving the original servable:
 * - an image of more pixels than the limit (a decompression bomb is refused from its header,
 *   before any decoding: 413);
 * - an image libvips cannot read (a BMP, a damaged file: 415);
 * - an animation asked as a still format (JPEG, PNG, AVIF): half of it would be lost (400).
 * An SVG is rasterised by librsvg from the bytes alone: it has no base URL and librsvg loads
 * nothing over a network, so an SVG cannot make the server fetch anything.
 */
import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import type { Metadata, Sharp } from 'sharp';
import { badRequest, PixpoolError, tooLarge, unavailable } from '../../core/errors.ts';
import { DEFAULT_MAX_PIXELS, type OutputFormat, type VariantSpec } from './spec.ts';

export { DEFAULT_MAX_PIXELS };

export interface Variant {
  bytes: Buffer;
  contentType: string;
}

export interface TransformerOptions {
  maxPixels?: number;
  /** Transforms at once; default: one per core (each runs on a libuv thread). */
  concurrency?: number;
  /** Transforms waiting for a turn before more are refused (503). */
  maxQueued?: number;
  /** Bytes of originals the transforms running and waiting may hold before more are refused (503). */
  maxQueuedBytes?: number;
}

// sharp (libvips and its JavaScript) costs a frontend process tens of MB from the moment it is
// imported; most frontends make no variant for a long time, or ever. Loaded on the first one.
let loadedSharp: Promise<typeof import('sharp')> | undefined;
async function loadSharp() {
  loadedSharp ??= import('sharp');
  return (await loadedSharp).default;
}

type Output = OutputFormat | 'gif';
const CONTENT_TYPE: Record<Output, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
};

export function createTransformer(options: TransformerOptions = {}) {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const limit = pLimit(options.concurrency ?? availableParallelism());
  // A wait costs only the original it holds (usually the near cache's copy as well), so many may
  // wait; the bytes they hold are what is bounded.
  const maxQueued = options.maxQueued ?? 4096;
  const maxQueuedBytes = options.maxQueuedBytes ?? 256 * 1024 * 1024;
  let queuedBytes = 0;
  /** The most transforms ever running at once (for a test of the bound, and curiosity). */
  let peak = 0;

  async function run(original: Uint8Array, spec: VariantSpec): Promise<Variant> {
    const sharp = await loadSharp();
    if (isJpeg(original)) {
      // A JPEG is one still frame in libvips, so its output format is known from its first bytes
      // and sharp's own check of the header (width × height, before any decoding) is ours: no
      // second parse of the header per variant. Over the limit, the header is read below, for
      // the 413's words.
      const input = sharp(original, {
        animated: true,
        limitInputPixels: maxPixels,
        failOn: 'error',
      });
      try {
        return await encode(input, outputFormat('jpeg', false, spec), spec);
      } catch (error) {
        if (!/exceeds pixel limit/.test((error as Error).message)) throw cannotRead(error);
      }
    }
    // One instance for the header and the pipeline. Its pixel limit is ours, checked below from
    // the header (the pixels of every frame, as libvips counts them) before any is decoded.
    const input = sharp(original, { animated: true, limitInputPixels: false, failOn: 'error' });
    let meta: Metadata;
    try {
      meta = await input.metadata();
    } catch (error) {
      throw cannotRead(error);
    }
    const pages = meta.pages ?? 1;
    const pixels = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0) * pages;
    if (pixels > maxPixels) {
      throw tooLarge(
        `This image is ${meta.width}×${meta.pageHeight ?? meta.height} pixels${pages > 1 ? ` in ${pages} frames` : ''}; variants are made of images up to ${maxPixels.toLocaleString('en')} pixels. The original is still served without parameters.`,
      );
    }
    const output = outputFormat(meta.format, pages > 1, spec);
    try {
      return await encode(input, output, spec);
    } catch (error) {
      throw cannotRead(error);
    }
  }

  return {
    transform(original: Uint8Array, spec: VariantSpec): Promise<Variant> {
      if (limit.pendingCount >= maxQueued || queuedBytes + original.length > maxQueuedBytes) {
        return Promise.reject(
          unavailable('Too many image variants are being made right now; try again shortly.'),
        );
      }
      queuedBytes += original.length;
      return limit(() => {
        peak = Math.max(peak, limit.activeCount);
        return run(original, spec);
      }).finally(() => {
        queuedBytes -= original.length;
      });
    },
    get active() {
      return limit.activeCount;
    },
    get queued() {
      return limit.pendingCount;
    },
    get peak() {
      return peak;
    },
  };
}

export type Transformer = ReturnType<typeof createTransformer>;

/** EXIF rotation, the resize, and the output: the variant's bytes (sharp's errors as they are). */
async function encode(input: Sharp, output: Output, spec: VariantSpec): Promise<Variant> {
  let pipeline = input.rotate();
  if (spec.width !== undefined || spec.height !== undefined) {
    pipeline = pipeline.resize({
      width: spec.width,
      height: spec.height,
      fit: spec.fit,
      withoutEnlargement: true,
      // contain pads: transparent where the format keeps alpha, white in a JPEG.
      background: output === 'jpeg' ? '#ffffff' : { r: 0, g: 0, b: 0, alpha: 0 },
    });
  }
  if (output === 'jpeg') pipeline = pipeline.flatten({ background: '#ffffff' });
  pipeline = pipeline.toFormat(output, spec.quality === undefined ? {} : { quality: spec.quality });
  return { bytes: await pipeline.toBuffer(), contentType: CONTENT_TYPE[output] };
}

/** Whether `bytes` start as a JPEG does (SOI and a marker), which is how libvips tells one. */
const isJpeg = (bytes: Uint8Array) => bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;

/** The format a variant is written in, or a 400 when it would lose an animation's frames. */
function outputFormat(input: string | undefined, animated: boolean, spec: VariantSpec): Output {
  if (animated) {
    if (spec.auto) return spec.auto.webp ? 'webp' : 'gif';
    if (spec.format === undefined || spec.format === 'webp') return spec.format ?? 'gif';
    throw badRequest(
      `This image is animated, and ${spec.format} holds one frame: ask for format=webp, or no format to keep it a GIF.`,
    );
  }
  if (spec.auto?.avif) return 'avif';
  if (spec.auto?.webp) return 'webp';
  if (spec.format) return spec.format;
  // The original's own format; SVG (and anything else libvips reads) becomes a PNG.
  return input === 'jpeg' || input === 'webp' || input === 'gif' ? input : 'png';
}

function cannotRead(error: unknown): PixpoolError {
  const message = (error as Error).message ?? String(error);
  return new PixpoolError(
    'UNSUPPORTED_MEDIA_TYPE',
    'This image cannot be transformed (its format or its bytes are not readable as an image for resizing). The original is still served without parameters.',
    { detail: message, cause: error },
  );
}
