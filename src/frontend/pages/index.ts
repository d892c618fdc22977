/**
 * The frontend's web pages: home, upload, image by key, key list, and their static assets.
 * Server-rendered HTML from template functions, a little vanilla JS, no build.
 *
 * The seam with the rest of the frontend is `PagesDeps`: the pages read metadata through it and
 * never touch storage or the cache pool; the browser uploads through POST /api/upload and loads
 * bytes from GET /images/:key, which app.ts serves. Every response here carries the security
 * headers every pixpool UI shares (src/http/web/security.ts). Routes are public (no shared
 * secret): they are what people open.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { keyProblem } from '../../core/keys.ts';
import type { SafeHtml } from '../../http/web/html.ts';
import { securityHeaders, sendPage } from '../../http/web/security.ts';
import { DEFAULT_SIZES } from '../variants/spec.ts';
import { pageAssets } from './assets.ts';
import { imagePageUrl } from './format.ts';
import { homePage } from './home.ts';
import { imagePage } from './image.ts';
import { keysPage } from './keys.ts';
import { invalidKeyPage, pageNotFoundPage, serverErrorPage, unknownKeyPage } from './problems.ts';
import { uploadPage } from './upload.ts';

export interface PagesDeps {
  getImage(
    key: string,
  ): Promise<
    { key: string; contentType: string; size: number; version: number; updatedAt: Date } | undefined
  >;
  listKeys(options: {
    contains?: string;
    limit: number;
    after?: string;
  }): Promise<{ keys: string[]; next: string | undefined }>;
  countKeys(options?: { contains?: string }): Promise<number>;
  maxUploadMb: number;
  /** The variant sizes GET /images/:key allows (--variant-sizes); the defaults otherwise. */
  variantSizes?: readonly number[] | undefined;
}

export const KEYS_PAGE_SIZE = 50;

type Rendered = { status: number; page: SafeHtml } | { redirect: string };
type Query = Record<string, string | string[] | undefined>;
type PageRequest = FastifyRequest<{ Querystring: Query; Params: { key?: string } }>;

/** A query value as one string; a repeated parameter counts as its first value. */
function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** An HTML 404 for a browser asking for a path no route matched (API clients get JSON). */
export function sendPageNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendPage(reply, 404, pageNotFoundPage(request.url.split('?')[0] ?? '/'));
}

/** Wraps a page handler: a failing dependency becomes a logged 500 page, not a JSON envelope. */
function page(render: (request: PageRequest) => Promise<Rendered>) {
  return async (request: PageRequest, reply: FastifyReply) => {
    let result: Rendered;
    try {
      result = await render(request);
    } catch (error) {
      request.log.error({ err: error }, 'page failed');
      result = { status: 500, page: serverErrorPage() };
    }
    if ('redirect' in result) return reply.headers(securityHeaders).redirect(result.redirect, 303);
    return sendPage(reply, result.status, result.page);
  };
}

export function registerPages(app: FastifyInstance, deps: PagesDeps): void {
  const config = { public: true };
  const sizes = deps.variantSizes ?? DEFAULT_SIZES;

  app.get(
    '/',
    { config },
    page(async () => ({ status: 200, page: homePage({ imageCount: await deps.countKeys() }) })),
  );

  app.get(
    '/upload',
    { config },
    page(async (request) => {
      const key = one(request.query.key) ?? '';
      const problem = key ? keyProblem(key) : undefined;
      const existing = key && !problem ? await deps.getImage(key) : undefined;
      const { maxUploadMb } = deps;
      return { status: 200, page: uploadPage({ key, keyProblem: problem, existing, maxUploadMb }) };
    }),
  );

  // Target of the "open by key" forms: a GET form cannot put the key into the path itself.
  app.get(
    '/image',
    { config },
    page(async (request) => {
      const key = one(request.query.key) ?? '';
      const problem = keyProblem(key);
      if (problem) return { status: 400, page: invalidKeyPage(key, problem) };
      return { redirect: imagePageUrl(key) };
    }),
  );

  app.get(
    '/image/:key',
    { config },
    page(async (request) => {
      const key = request.params.key ?? '';
      const problem = keyProblem(key);
      if (problem) return { status: 400, page: invalidKeyPage(key, problem) };
      const image = await deps.getImage(key);
      if (!image) return { status: 404, page: unknownKeyPage(key) };
      return { status: 200, page: imagePage(image, sizes) };
    }),
  );

  app.get(
    '/keys',
    { config },
    page(async (request) => {
      // Keys hold no whitespace, so surrounding spaces in a search can only be a typing slip.
      const q = (one(request.query.q) ?? '').trim();
      const after = one(request.query.after) || undefined;
      const contains = q ? { contains: q } : {};
      const [listed, total] = await Promise.all([
        deps.listKeys({ ...contains, limit: KEYS_PAGE_SIZE, ...(after && { after }) }),
        deps.countKeys(contains),
      ]);
      return {
        status: 200,
        page: keysPage({ sizes, keys: listed.keys, total, q, after, next: listed.next }),
      };
    }),
  );

  pageAssets.register(app);
}
