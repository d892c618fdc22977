/**
 * GET/HEAD /images/:key: the raw bytes with their sniffed Content-Type, an ETag from the image's
 * version (versions are globally unique, so an ETag never repeats for other bytes), Last-Modified,
 * and revalidation (304). `no-cache` because a key can be re-uploaded: a browser may keep the
 * bytes but must ask, and the answer to that question is a cheap 304.
 *
 * Every image is served with nosniff and a sandboxing CSP, so an SVG with script in it cannot run
 * in this origin even when opened directly.
 *
 * This is the hot path: the constant headers are one object built once, and an image's ETag and
 * Last-Modified strings are built once per near-cached version (a WeakMap on the image object),
 * not per request.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { notFound } from '../core/errors.ts';
import { checkKey } from './api-routes.ts';
import type { FetchedImage, ImageService } from './images.ts';
import type { FrontendMetrics } from './metrics.ts';

const IMAGE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";
const CONSTANT_HEADERS = {
  'cache-control': 'public, no-cache',
  'x-content-type-options': 'nosniff',
  'content-security-policy': IMAGE_CSP,
};

interface Validators {
  etag: string;
  lastModified: string | undefined;
}
const validators = new WeakMap<FetchedImage, Validators>();

/** The image's ETag and Last-Modified, built on its first answer and kept with it. */
function validatorsOf(image: FetchedImage): Validators {
  let v = validators.get(image);
  if (!v) {
    v = {
      etag: `"v${image.version}"`,
      lastModified:
        image.modifiedAt === undefined ? undefined : new Date(image.modifiedAt).toUTCString(),
    };
    validators.set(image, v);
  }
  return v;
}

function notModified(request: FastifyRequest, etag: string, modifiedAt: number | undefined) {
  const inm = request.headers['if-none-match'];
  if (inm !== undefined) {
    return inm
      .split(',')
      .map((t) => t.trim().replace(/^W\//, ''))
      .some((t) => t === etag || t === '*');
  }
  const ims = request.headers['if-modified-since'];
  if (ims !== undefined && modifiedAt !== undefined) {
    const since = Date.parse(ims);
    return !Number.isNaN(since) && Math.floor(modifiedAt / 1000) * 1000 <= since;
  }
  return false;
}

export function imageRoutes(
  app: FastifyInstance,
  deps: { images: ImageService; metrics: FrontendMetrics },
): void {
  const observe = {
    cache: deps.metrics.fetchSeconds.labels('cache'),
    storage: deps.metrics.fetchSeconds.labels('storage'),
  };
  app.get<{ Params: { key: string } }>('/images/:key', async (request, reply) => {
    const started = performance.now();
    const key = checkKey(request.params.key);
    const image = await deps.images.fetch(key);
    if (!image) throw notFound(`No image is stored under the key ${JSON.stringify(key)}.`);
    const { etag, lastModified } = validatorsOf(image);
    reply.headers(CONSTANT_HEADERS).header('etag', etag).header('x-pixpool-source', image.source);
    if (lastModified !== undefined) reply.header('last-modified', lastModified);
    observe[image.source].observe((performance.now() - started) / 1000);
    if (notModified(request, etag, image.modifiedAt)) return reply.code(304).send();
    return reply.header('content-type', image.contentType).send(image.bytes);
  });
}
