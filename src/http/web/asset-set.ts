/**
 * A UI's static files (CSS, JS modules, icons) served from `<urlPrefix><name>`: the files of its
 * own flat folder plus the ones every pixpool UI shares (./assets/ beside this module: app.css,
 * icon.svg). Read once, on first use, and kept in memory: a few kilobytes that never change while
 * the process runs.
 *
 * Pages link `url(name)`, i.e. `<urlPrefix><name>?v=<content hash>`; a request carrying the
 * current hash is cached for a year (`immutable`), anything else for five minutes, and every
 * answer has an ETag (304 on a match). Limits: flat folders, no compression (the files are
 * small), no directory listing; a UI file named like a shared one is an error, not an override.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { securityHeaders } from './security.ts';

export interface Asset {
  body: Buffer;
  contentType: string;
  hash: string;
}

export interface AssetSetOptions {
  /**
   * Files from outside the folder, served under the same prefix (e.g. a script vendored from
   * node_modules), by name; called once, on first use. The name's extension sets the type.
   */
  extra?: () => Readonly<Record<string, Buffer>>;
}

export interface AssetSet {
  /** Every file by name; reads them on the first call, so calling it at start fails early. */
  load(): ReadonlyMap<string, Asset>;
  /** `<urlPrefix><name>?v=…`; throws on a name that is not in the set, so a typo fails loudly. */
  url(name: string): string;
  /** GET `<urlPrefix>:name`: public, with the security headers; an unknown name is a 404. */
  register(app: FastifyInstance): void;
}

type AssetRequest = FastifyRequest<{ Params: { name: string }; Querystring: { v?: string } }>;

const contentTypes: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const sharedFolder = new URL('./assets/', import.meta.url);

function asset(body: Buffer, contentType: string): Asset {
  return { body, contentType, hash: createHash('sha256').update(body).digest('hex').slice(0, 12) };
}

export function createAssetSet(
  folderUrl: URL,
  urlPrefix: string,
  options: AssetSetOptions = {},
): AssetSet {
  let loaded: ReadonlyMap<string, Asset> | undefined;

  function load(): ReadonlyMap<string, Asset> {
    if (loaded) return loaded;
    const map = new Map<string, Asset>();
    const add = (name: string, contentType: string, body: Buffer, from: string) => {
      if (map.has(name)) throw new Error(`Two assets named ${name} (the second in ${from})`);
      map.set(name, asset(body, contentType));
    };
    for (const folder of [sharedFolder, folderUrl]) {
      for (const name of readdirSync(folder)) {
        const contentType = contentTypes[extname(name)];
        if (!contentType) continue;
        add(name, contentType, readFileSync(new URL(name, folder)), folder.pathname);
      }
    }
    for (const [name, body] of Object.entries(options.extra?.() ?? {})) {
      const contentType = contentTypes[extname(name)];
      if (!contentType) throw new Error(`Extra asset ${name}: no known type for its extension`);
      add(name, contentType, body, 'the extra assets');
    }
    loaded = map;
    return map;
  }

  function url(name: string): string {
    const found = load().get(name);
    if (!found) throw new Error(`No asset ${name} in ${folderUrl.pathname} or the shared ones`);
    return `${urlPrefix}${name}?v=${found.hash}`;
  }

  function send(request: AssetRequest, reply: FastifyReply): FastifyReply | undefined {
    const found = load().get(request.params.name);
    if (!found) return undefined;
    const etag = `"${found.hash}"`;
    reply
      .header('content-type', found.contentType)
      .header('etag', etag)
      .header(
        'cache-control',
        request.query.v === found.hash
          ? 'public, max-age=31536000, immutable'
          : 'public, max-age=300',
      );
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.send(found.body);
  }

  function register(app: FastifyInstance): void {
    app.get<{ Params: { name: string }; Querystring: { v?: string } }>(
      `${urlPrefix}:name`,
      { config: { public: true } },
      (request, reply) => {
        reply.headers(securityHeaders);
        return send(request, reply) ?? reply.callNotFound();
      },
    );
  }

  return { load, url, register };
}
