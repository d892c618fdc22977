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
 * near-cached version (a WeakMap on the image object), not per request. Most reads are answered
 * by imageSocketLane, on the socket before node:http and Fastify, with the same headers
 * (imageAnswer gives them to both).
 *
 * With a query (`?w=&h=&fit=&format=&q=`, variants/spec.ts) the route answers a variant of the
 * image (images.fetchVariant): checked before any I/O (400), with an ETag of the original's
 * version and the variant's id, the variant's type, and `Vary: Accept` for `format=auto`. The
 * socket lane answers variants too (a leased near copy at once, else once made), and leaves to
 * this route what it would refuse or word (bad parameters, a refused transform).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../core/errors.ts';
import { keyInPath, keyProblem } from '../core/keys.ts';
import type { LaneAnswer, SocketLane } from '../http/socket-lane.ts';
import { checkKey } from './api-routes.ts';
import type { FetchedImage } from './fetched-image.ts';
import type { ImageService } from './images.ts';
import type { FrontendMetrics } from './metrics.ts';
import { DEFAULT_SIZES, parseVariant, type VariantSpec, variesOnAccept } from './variants/spec.ts';

const IMAGE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";
const CACHE_CONTROL = 'public, no-cache';

interface Answers {
  etag: string;
  lastModified: string | undefined;
  /** The headers of a 304 and of a 200 for this image (Node does not change what it is given). */
  notModified: OutgoingHttpHeaders;
  ok: OutgoingHttpHeaders;
}
const answers = new WeakMap<FetchedImage, Answers>();

/** Last-Modified texts by time: formatting a date was a measurable part of a read. */
const httpDates = new Map<number, string>();
function httpDateOf(ms: number): string {
  let text = httpDates.get(ms);
  if (text === undefined) {
    if (httpDates.size >= 4096) httpDates.clear();
    text = new Date(ms).toUTCString();
    httpDates.set(ms, text);
  }
  return text;
}

/** The image's validators and answer headers, built on its first answer and kept with it. */
function answersOf(image: FetchedImage): Answers {
  let a = answers.get(image);
  if (!a) {
    // A variant's ETag names its id too: each variant of a version is other bytes.
    const etag = image.variant ? `"v${image.version}-${image.variant}"` : `"v${image.version}"`;
    const lastModified = image.modifiedAt === undefined ? undefined : httpDateOf(image.modifiedAt);
    // Built property by property, in one order: spreads of optional parts were a measurable
    // part of a read that crosses the pool, whose image is a new object each time.
    const notModified: OutgoingHttpHeaders = {
      'cache-control': CACHE_CONTROL,
      'x-content-type-options': 'nosniff',
      'content-security-policy': IMAGE_CSP,
      etag,
      'x-pixpool-source': image.source,
    };
    if (lastModified !== undefined) notModified['last-modified'] = lastModified;
    if (image.variant !== undefined && variesOnAccept(image.variant)) notModified.vary = 'Accept';
    const ok: OutgoingHttpHeaders = Object.assign({}, notModified);
    ok['content-type'] = image.contentType;
    ok['content-length'] = image.bytes.length;
    a = { etag, lastModified, notModified, ok };
    answers.set(image, a);
  }
  return a;
}

/** A request's validators, as sent. */
interface Validators {
  inm: string | undefined;
  ims: string | undefined;
}

/** Whether the request's validators (If-None-Match, else If-Modified-Since) match the image. */
function notModified({ inm, ims }: Validators, etag: string, modifiedAt: number | undefined) {
  if (inm !== undefined) {
    return inm
      .split(',')
      .map((t) => t.trim().replace(/^W\//, ''))
      .some((t) => t === etag || t === '*');
  }
  if (ims !== undefined && modifiedAt !== undefined) {
    const since = Date.parse(ims);
    return !Number.isNaN(since) && Math.floor(modifiedAt / 1000) * 1000 <= since;
  }
  return false;
}

/** The answer to a GET of `image`: 304 (headers only) or 200 with its bytes and type. */
function imageAnswer(validators: Validators, image: FetchedImage): LaneAnswer {
  const a = answersOf(image);
  if (notModified(validators, a.etag, image.modifiedAt)) {
    return { status: 304, headers: a.notModified, body: undefined };
  }
  return { status: 200, headers: a.ok, body: image.bytes, written: image.release };
}

/** The fetch-time histogram's series, bound once per source. */
const observers = (metrics: FrontendMetrics) => ({
  cache: metrics.fetchSeconds.labels('cache'),
  storage: metrics.fetchSeconds.labels('storage'),
  transform: metrics.fetchSeconds.labels('transform'),
});

export function imageRoutes(
  app: FastifyInstance,
  deps: {
    images: ImageService;
    metrics: FrontendMetrics;
    /** The widths and heights variants may have (--variant-sizes). */
    variantSizes?: readonly number[] | undefined;
  },
): void {
  const observe = observers(deps.metrics);
  const sizes = deps.variantSizes ?? DEFAULT_SIZES;
  app.get<{ Params: { key: string } }>('/images/:key', async (request, reply) => {
    const started = performance.now();
    const key = checkKey(request.params.key);
    const query = request.url.indexOf('?');
    // Bad parameters are refused before any I/O.
    const spec =
      query < 0
        ? undefined
        : parseVariant(request.url.slice(query + 1), request.headers.accept, sizes);
    const image = spec ? await deps.images.fetchVariant(key, spec) : await deps.images.fetch(key);
    if (!image) throw notFound(`No image is stored under the key ${JSON.stringify(key)}.`);
    observe[image.source].observe((performance.now() - started) / 1000);
    const { headers } = request;
    const validators = { inm: headers['if-none-match'], ims: headers['if-modified-since'] };
    const answer = imageAnswer(validators, image);
    reply.code(answer.status).headers(answer.headers);
    return answer.body ? reply.send(answer.body) : reply.send();
  });
}

const IMAGE_PATH = '/images/';
/** Variant queries the socket lane keeps parsed. */
const MAX_SPECS = 1024;
const KEY_PATH = '/api/key/';
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };

/**
 * GET /images/:key and bodiless POST /api/key/:key, answered on the socket (http/socket-lane.ts)
 * as the routes above answer them 200 or 304, with the same headers and bytes: a near copy under
 * a read lease at once, without any I/O; any other stored image once images.fetch has it (the
 * lane waits for it, and the connection with it). Whatever the routes would refuse or word
 * themselves (an odd URL, a bad key, a key nobody stored, a failing store, bad variant parameters,
 * a refused transform, a POST with a content type that Fastify would parse) is declined, and the
 * connection goes to them. Variants (a query string) are answered like originals.
 *
 * Why on the socket: a leased answer is a lookup and a write, and node:http's per-request
 * machinery, then Fastify's routing and reply, were most of its CPU (bench/RESULTS.md). Why the
 * lane also waits for fetches: a connection it declines leaves the lane for good, so a lane that
 * only took leased copies would lose every connection at the first lease that ran out.
 */
export function imageSocketLane(deps: {
  images: ImageService;
  metrics: FrontendMetrics;
  /** The widths and heights variants may have (--variant-sizes). */
  variantSizes?: readonly number[] | undefined;
}): SocketLane {
  const { images } = deps;
  const observe = observers(deps.metrics);
  const sizes = deps.variantSizes ?? DEFAULT_SIZES;
  /** `answer` for the key in `target` after `prefix`: now, later, or (undefined) by the route. */
  function answerAt(
    target: string,
    prefix: string,
    answer: (key: string, image: FetchedImage) => LaneAnswer,
  ): LaneAnswer | Promise<LaneAnswer | undefined> | undefined {
    const key = keyInPath(target, prefix);
    if (key === undefined) return undefined;
    // The near cache holds only checked keys: a leased copy needs no check.
    const leased = images.leasedCopy(key);
    if (leased) return answer(key, leased);
    if (keyProblem(key) !== undefined) return undefined;
    return images.fetch(key).then((image) => image && answer(key, image));
  }
  /**
   * Parsed queries, so a hot variant's query is not parsed again on every read: by query (and
   * Accept, which `format=auto` reads). Only good ones; emptied when full.
   */
  const specs = new Map<string, VariantSpec | undefined>();
  /** The variant a query asks for (undefined: the original), null for one the route refuses. */
  function specOf(query: string, accept: string | undefined): VariantSpec | undefined | null {
    const id = query.includes('auto') ? `${query}\u0000${accept ?? ''}` : query;
    const known = specs.get(id);
    if (known !== undefined || specs.has(id)) return known;
    let spec: VariantSpec | undefined;
    try {
      spec = parseVariant(query, accept, sizes);
    } catch {
      return null;
    }
    if (specs.size >= MAX_SPECS) specs.clear();
    specs.set(id, spec);
    return spec;
  }
  /**
   * A variant (GET /images/:key?w=…): its near copy under a lease at once, else once made. Bad
   * parameters, a bad key or a refused transform go to the route, which words the 4xx (a refusal
   * is found again from the original's header: no pixel was decoded for it).
   */
  function variantAt(
    target: string,
    query: number,
    accept: string | undefined,
    answer: (image: FetchedImage) => LaneAnswer,
  ): LaneAnswer | Promise<LaneAnswer | undefined> | undefined {
    const key = keyInPath(target.slice(0, query), IMAGE_PATH);
    if (key === undefined || keyProblem(key) !== undefined) return undefined;
    const spec = specOf(target.slice(query + 1), accept);
    // Bad parameters (the route words the 400), or only the cache-buster (the original).
    if (!spec) return undefined;
    const leased = images.leasedVariant(key, spec);
    if (leased) return answer(leased);
    return images.fetchVariant(key, spec).then((image) => image && answer(image));
  }
  return ({ method, target, headers }) => {
    if (method === 'GET') {
      if (!target.startsWith(IMAGE_PATH)) return undefined;
      const started = performance.now();
      const validators = {
        inm: headers.get('if-none-match'),
        ims: headers.get('if-modified-since'),
      };
      const answer = (image: FetchedImage) => {
        observe[image.source].observe((performance.now() - started) / 1000);
        return imageAnswer(validators, image);
      };
      const query = target.indexOf('?');
      if (query >= 0) return variantAt(target, query, headers.get('accept'), answer);
      return answerAt(target, IMAGE_PATH, (_key, image) => answer(image));
    }
    // Fastify parses a body of any content type, and may refuse an empty one.
    if (!target.startsWith(KEY_PATH) || headers.has('content-type')) return undefined;
    return answerAt(target, KEY_PATH, (key, image) => ({
      status: 200,
      headers: JSON_TYPE,
      body: images.dataUrlJsonOf(key, image),
    }));
  };
}
