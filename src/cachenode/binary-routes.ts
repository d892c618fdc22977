/**
 * The binary path: what frontends and other nodes use. Values travel as raw bytes with their
 * content type and version in headers; no JSON, no base64.
 *
 *   GET    /v1/entries/:key   200 bytes | 404 | 304 when x-pixpool-if-version names the cached one
 *   PUT    /v1/entries/:key   204 stored | 409 a newer version is cached (body: raw bytes)
 *   DELETE /v1/entries/:key   204 (with x-pixpool-version: V, older versions are refused after)
 *   POST   /v1/import         200 {accepted, refused} (body: an entry batch from a hand-over)
 *   POST   /v1/pool-view      200 {version, dropped} (the manager pushes each new pool view)
 *
 * Requests to /v1/entries may carry x-pixpool-map-version; one older than the node's view is
 * turned away with 421 (view.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  IF_VERSION_HEADER,
  MAP_VERSION_HEADER,
  MODIFIED_HEADER,
  VERSION_HEADER,
} from '../clients/node-client.ts';
import { decodeBatch } from '../core/entry-batch.ts';
import { badRequest, conflict, failure } from '../core/errors.ts';
import { keyProblem } from '../core/keys.ts';
import { parsePoolView } from '../core/pool-view.ts';
import type { CacheEntry } from '../core/stores/store.ts';
import type { NodeCache } from './node-cache.ts';
import type { NodeView } from './view.ts';

interface KeyParams {
  key: string;
}

const CONTENT_TYPE = /^[\w.+-]+\/[\w.+-]+$/;

export function checkKey(key: unknown): string {
  const problem = keyProblem(key);
  if (problem) throw badRequest(problem);
  return key as string;
}

export function checkContentType(value: unknown): string {
  const type = typeof value === 'string' ? (value.split(';')[0] ?? '').trim() : '';
  if (!CONTENT_TYPE.test(type)) {
    throw badRequest('A value needs a Content-Type such as image/png.');
  }
  return type;
}

export function parseVersion(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const version = Number(value);
  if (!Number.isSafeInteger(version) || version < 0) {
    throw badRequest(`A version must be a whole number ≥ 0; got ${JSON.stringify(value)}.`);
  }
  return version;
}

export function binaryRoutes(app: FastifyInstance, cache: NodeCache, view: NodeView): void {
  const fenced = {
    onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
      const tagged = parseVersion(request.headers[MAP_VERSION_HEADER]);
      if (!view.admits(tagged)) {
        return reply
          .code(421)
          .send(
            failure(
              421,
              `This request was routed with pool map ${tagged}; this node is at map ${view.version}. Refresh the pool view.`,
            ),
          );
      }
    },
  };

  app.get<{ Params: KeyParams }>('/v1/entries/:key', fenced, async (request, reply) => {
    const entry = cache.get(checkKey(request.params.key));
    if (!entry) return reply.code(404).send(failure(404, 'Not in this cache.'));
    const held = request.headers[IF_VERSION_HEADER];
    if (held !== undefined && held === String(entry.version)) return reply.code(304).send();
    reply.header('content-type', entry.contentType).header(VERSION_HEADER, entry.version);
    if (entry.modifiedAt !== undefined) reply.header(MODIFIED_HEADER, entry.modifiedAt);
    return reply.send(entry.value);
  });

  app.put<{ Params: KeyParams; Body: Buffer }>(
    '/v1/entries/:key',
    fenced,
    async (request, reply) => {
      const key = checkKey(request.params.key);
      if (!Buffer.isBuffer(request.body) || request.body.length === 0) {
        throw badRequest('PUT needs the value as the raw request body.');
      }
      const version = parseVersion(request.headers[VERSION_HEADER]);
      const entry: CacheEntry = {
        value: request.body,
        contentType: checkContentType(request.headers['content-type']),
        version: version ?? 0,
        modifiedAt: parseVersion(request.headers[MODIFIED_HEADER]),
      };
      if (cache.put(key, entry, version !== undefined) === 'stale') {
        throw conflict(
          `A newer version of ${JSON.stringify(key)} is cached; this one was not stored.`,
        );
      }
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: KeyParams }>('/v1/entries/:key', fenced, async (request, reply) => {
    cache.invalidate(checkKey(request.params.key), parseVersion(request.headers[VERSION_HEADER]));
    return reply.code(204).send();
  });

  app.post<{ Body: Buffer }>('/v1/import', async (request) => {
    if (!Buffer.isBuffer(request.body)) {
      throw badRequest('An import needs an entry batch (application/x-pixpool-entries) body.');
    }
    let batch: ReturnType<typeof decodeBatch>;
    try {
      batch = decodeBatch(request.body);
    } catch (error) {
      throw badRequest(`The entry batch is malformed: ${(error as Error).message}.`);
    }
    const entries: [string, CacheEntry][] = batch.map((e) => [
      checkKey(e.key),
      {
        value: e.value,
        contentType: checkContentType(e.contentType),
        version: e.version,
        modifiedAt: e.modifiedAt,
      },
    ]);
    return { success: 'true', ...cache.import(entries) };
  });

  app.post('/v1/pool-view', async (request) => {
    const self = (request.body as { self?: unknown } | undefined)?.self;
    if (self !== undefined && (typeof self !== 'string' || self === '')) {
      throw badRequest('self must be the id the pool gives this node.');
    }
    const dropped = view.adopt(parsePoolView(request.body), self as string | undefined);
    return {
      success: 'true',
      version: view.version,
      adopted: dropped !== undefined,
      dropped: dropped ?? 0,
    };
  });
}
