/**
 * The pages' static files (CSS, JS modules, icon) served from /assets/<name>, read from
 * ./assets/ once, on first use, and kept in memory: a few kilobytes that never change while the
 * process runs.
 *
 * Pages link `/assets/<name>?v=<content hash>`; a request carrying the current hash is cached for
 * a year (`immutable`), anything else for five minutes, and every answer has an ETag (304 on a
 * match). Limits: a flat folder, no compression (the files are small), no directory listing.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface Asset {
  body: Buffer;
  contentType: string;
  hash: string;
}

const contentTypes: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const folder = new URL('./assets/', import.meta.url);

let loaded: ReadonlyMap<string, Asset> | undefined;

export function assets(): ReadonlyMap<string, Asset> {
  if (loaded) return loaded;
  const map = new Map<string, Asset>();
  for (const name of readdirSync(folder)) {
    const contentType = contentTypes[extname(name)];
    if (!contentType) continue;
    const body = readFileSync(new URL(name, folder));
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
    map.set(name, { body, contentType, hash });
  }
  loaded = map;
  return map;
}

/** `/assets/app.css?v=…`; throws on a name that is not in the folder, so a typo fails loudly. */
export function assetUrl(name: string): string {
  const asset = assets().get(name);
  if (!asset) throw new Error(`No asset ${name} in ${folder.pathname}`);
  return `/assets/${name}?v=${asset.hash}`;
}

export function sendAsset(
  request: FastifyRequest<{ Params: { name: string }; Querystring: { v?: string } }>,
  reply: FastifyReply,
): FastifyReply | undefined {
  const asset = assets().get(request.params.name);
  if (!asset) return undefined;
  const etag = `"${asset.hash}"`;
  reply
    .header('content-type', asset.contentType)
    .header('etag', etag)
    .header(
      'cache-control',
      request.query.v === asset.hash
        ? 'public, max-age=31536000, immutable'
        : 'public, max-age=300',
    );
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  return reply.send(asset.body);
}
