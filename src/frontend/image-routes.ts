/**
 * GET/HEAD /images/:key: the raw bytes with their sniffed Content-Type, an ETag from the image's
 * version (versions are globally unique, so an ETag never repeats for other bytes), Last-Modified,
 * and revalidation (304). `no-cache` because a key can be re-uploaded: a browser may keep the
 * bytes but must ask, and the answer to that question is a cheap 304.
 *
 * Every image is served with nosniff and a sandboxing CSP, so an SVG with script in it cannot run
 * in this origin even when opened directly.
 *
 * This is the hot path: an image's ETag, Last-Modified and whole answer headers are built once per
 * near-cached version (a WeakMap on the image object), not per request. A near-cached image under
 * a read lease is answered by imageFastLane, before Fastify, with the same headers (imageAnswer
 * gives them to both).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../core/errors.ts';
import { keyInPath } from '../core/keys.ts';
import type { FastLane } from '../http/service.ts';
import { checkKey } from './api-routes.ts';
import type { FetchedImage, ImageService } from './images.ts';
import type { FrontendMetrics } from './metrics.ts';

const IMAGE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";
const CONSTANT_HEADERS = {
  'cache-control': 'public, no-cache',
  'x-content-type-options': 'nosniff',
  'content-security-policy': IMAGE_CSP,
};

interface Answers {
  etag: string;
  lastModified: string | undefined;
  /** The headers of a 304 and of a 200 for this image (Node does not change what it is given). */
  notModified: OutgoingHttpHeaders;
  ok: OutgoingHttpHeaders;
}
const answers = new WeakMap<FetchedImage, Answers>();

/** The image's validators and answer headers, built on its first answer and kept with it. */
function answersOf(image: FetchedImage): Answers {
  let a = answers.get(image);
  if (!a) {
    const etag = `"v${image.version}"`;
    const lastModified =
      image.modifiedAt === undefined ? undefined : new Date(image.modifiedAt).toUTCString();
    const notModified: OutgoingHttpHeaders = {
      ...CONSTANT_HEADERS,
      etag,
      'x-pixpool-source': image.source,
      ...(lastModified !== undefined && { 'last-modified': lastModified }),
    };
    a = {
      etag,
      lastModified,
      notModified,
      ok: {
        ...notModified,
        'content-type': image.contentType,
        'content-length': image.bytes.length,
      },
    };
    answers.set(image, a);
  }
  return a;
}

/** Whether the request's validators (If-None-Match, else If-Modified-Since) match the image. */
function notModified(headers: IncomingHttpHeaders, etag: string, modifiedAt: number | undefined) {
  const inm = headers['if-none-match'];
  if (inm !== undefined) {
    return inm
      .split(',')
      .map((t) => t.trim().replace(/^W\//, ''))
      .some((t) => t === etag || t === '*');
  }
  const ims = headers['if-modified-since'];
  if (ims !== undefined && modifiedAt !== undefined) {
    const since = Date.parse(ims);
    return !Number.isNaN(since) && Math.floor(modifiedAt / 1000) * 1000 <= since;
  }
  return false;
}

/** The answer to a GET of `image`: 304 (headers only) or 200 with its bytes and type. */
function imageAnswer(headers: IncomingHttpHeaders, image: FetchedImage) {
  const a = answersOf(image);
  if (notModified(headers, a.etag, image.modifiedAt)) {
    return { status: 304, headers: a.notModified, body: undefined };
  }
  return { status: 200, headers: a.ok, body: image.bytes };
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
    observe[image.source].observe((performance.now() - started) / 1000);
    const answer = imageAnswer(request.headers, image);
    reply.code(answer.status).headers(answer.headers);
    return answer.body ? reply.send(answer.body) : reply.send();
  });
}

const IMAGE_PATH = '/images/';
const KEY_PATH = '/api/key/';

/**
 * The key in `url` after `prefix` with its near copy, when a read lease vouches for it; undefined
 * for anything else (odd URLs included), which the routes answer and word themselves.
 */
function leasedAt(images: ImageService, url: string, prefix: string) {
  const key = keyInPath(url, prefix);
  if (key === undefined) return undefined;
  const image = images.leasedCopy(key);
  return image && { key, image };
}

/**
 * GET /images/:key and POST /api/key/:key for an image the near cache holds under a read lease,
 * answered before Fastify sees the request (as the cache node's entry lane does): such an answer
 * needs no I/O at all, and Fastify's routing and reply were most of its CPU. It answers only what
 * the routes would answer 200 or 304 from the same copy, with the same headers and bytes; anything
 * else (no lease, a query string, a POST with a body that Fastify would parse, odd URLs) goes to
 * the routes. A key is not checked here: only checked keys are ever near-cached.
 */
export function imageFastLane(deps: { images: ImageService; metrics: FrontendMetrics }): FastLane {
  const observeCache = deps.metrics.fetchSeconds.labels('cache');
  return (request, response) => {
    const url = request.url ?? '';
    if (request.method === 'GET' && url.startsWith(IMAGE_PATH)) {
      const leased = leasedAt(deps.images, url, IMAGE_PATH);
      if (!leased) return false;
      observeCache.observe(0);
      const answer = imageAnswer(request.headers, leased.image);
      response.writeHead(answer.status, answer.headers).end(answer.body);
      return true;
    }
    if (request.method === 'POST' && url.startsWith(KEY_PATH)) {
      // Only a bodiless POST: Fastify would parse (and might refuse) any body or content type.
      const { headers } = request;
      if (headers['content-type'] !== undefined || headers['transfer-encoding'] !== undefined) {
        return false;
      }
      if (headers['content-length'] !== undefined && headers['content-length'] !== '0')
        return false;
      const leased = leasedAt(deps.images, url, KEY_PATH);
      if (!leased) return false;
      const body = deps.images.dataUrlJsonOf(leased.key, leased.image);
      response
        .writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': body.length,
        })
        .end(body);
      return true;
    }
    return false;
  };
}
