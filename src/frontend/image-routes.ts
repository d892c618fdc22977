/**
 * GET/HEAD /images/:key: the raw bytes with their sniffed Content-Type, an ETag from the image's
 * version (versions are globally unique, so an ETag never repeats for other bytes), Last-Modified,
 * and revalidation (304). `no-cache` because a key can be re-uploaded: a browser may keep the
 * bytes but must ask, and the answer to that question is a cheap 304.
 *
 * Every image is served with nosniff and a sandboxing CSP, so an SVG with script in it cannot run
 * in this origin even when opened directly.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { notFound } from '../core/errors.ts';
import { checkKey } from './api-routes.ts';
import type { ImageService } from './images.ts';
import type { FrontendMetrics } from './metrics.ts';

const IMAGE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";

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
  app.get<{ Params: { key: string } }>('/images/:key', async (request, reply) => {
    const started = performance.now();
    const key = checkKey(request.params.key);
    const image = await deps.images.fetch(key);
    if (!image) throw notFound(`No image is stored under the key ${JSON.stringify(key)}.`);
    const etag = `"v${image.version}"`;
    reply
      .header('etag', etag)
      .header('cache-control', 'public, no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', IMAGE_CSP)
      .header('x-pixpool-source', image.source);
    if (image.modifiedAt !== undefined) {
      reply.header('last-modified', new Date(image.modifiedAt).toUTCString());
    }
    deps.metrics.fetchSeconds.observe(
      { source: image.source },
      (performance.now() - started) / 1000,
    );
    if (notModified(request, etag, image.modifiedAt)) return reply.code(304).send();
    return reply.header('content-type', image.contentType).send(image.bytes);
  });
}
