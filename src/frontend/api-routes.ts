/**
 * The frontend's public API, shaped exactly like the originals' (`success` is the string "true",
 * HTTP status = error code, `content` a data URL, `key` echoed), plus the internal
 * POST /api/notify through which the manager pushes pool views.
 *
 * Two answers are written as bytes rather than through Fastify's serializer, identical to what
 * it would give: POST /api/key (a 100 KB image is a 137 KB JSON string: images.ts dataUrlJson,
 * kept with the near copy's version, so a hot key is encoded once), and the full POST /api/list_keys
 * (no limit), streamed a page at a time with backpressure so a million keys never sit in memory.
 * A streamed listing that fails after its first page cannot turn into an error envelope (the 200
 * is out): the response is cut short instead, and the failure logged.
 */
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound, PixpoolError, tooLarge } from '../core/errors.ts';
import { keyProblem, MAX_KEY_LENGTH } from '../core/keys.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { ImageService } from './images.ts';
import { parsePoolView, type Routing } from './routing.ts';

export interface ApiDeps {
  images: ImageService;
  metadata: MetadataStore;
  routing: Routing;
  maxUploadBytes: number;
}

const LIST_PAGE = 1000;

/** A query parameter given at most once (a repeated one arrives as an array: a 400). */
function queryText(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`Give ${name} at most once, as text.`);
  // A cursor is a key and a prefix part of one: longer text can only be a mistake.
  if ([...value].length > MAX_KEY_LENGTH) {
    throw badRequest(`${name} may have at most ${MAX_KEY_LENGTH} characters.`);
  }
  return value;
}

/**
 * The rest of the full listing after `first`, as JSON text: `{"success":"true","keys":[`, the
 * keys a page at a time (the next page's query runs while this one is written; Readable.from
 * pulls only as fast as the socket drains, so memory does not grow with the key count), `]}` —
 * the bytes JSON.stringify of the whole answer would give. A failure after the first page cannot
 * become an error answer any more (the 200 and part of the body are out): it is logged and the
 * stream fails, so the client sees a truncated response (an aborted chunked body), never a
 * complete-looking partial list.
 */
async function* streamAllKeys(
  metadata: MetadataStore,
  prefix: string | undefined,
  first: { keys: string[]; next: string | undefined },
  log: FastifyBaseLogger,
): AsyncGenerator<string> {
  let page = first;
  let pages = 1;
  let chunk = '{"success":"true","keys":[';
  try {
    for (;;) {
      const ahead =
        page.next === undefined
          ? undefined
          : metadata.listKeys({ prefix, limit: LIST_PAGE, after: page.next });
      // Settled later by the await below; this keeps a failure from being "unhandled" meanwhile.
      ahead?.catch(() => {});
      if (page.keys.length > 0) {
        const keys = page.keys.map((key) => JSON.stringify(key)).join(',');
        chunk += pages > 1 ? `,${keys}` : keys;
      }
      if (!ahead) break;
      yield chunk;
      chunk = '';
      page = await ahead;
      pages++;
    }
  } catch (error) {
    log.error({ err: error, pages }, 'list_keys failed mid-stream; the answer is cut short');
    throw error;
  }
  yield `${chunk}]}`;
}

export function checkKey(key: unknown): string {
  const problem = keyProblem(key);
  if (problem) throw badRequest(problem);
  return key as string;
}

/** Reads the multipart fields `key` and `file`; every malformed body becomes a clear 4xx. */
async function readUpload(request: FastifyRequest, maxBytes: number) {
  if (!request.isMultipart()) {
    throw badRequest('Send the upload as multipart/form-data with the fields key and file.');
  }
  let key: unknown;
  let file: Buffer | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file' || file) {
          await part.toBuffer();
          throw badRequest('Send exactly one file, in the field named "file".');
        }
        file = await part.toBuffer();
      } else if (part.fieldname === 'key') {
        // Two keys are ambiguous (which one did a proxy or a log see?): refused, not last-wins.
        if (key !== undefined) throw badRequest('Send the field "key" once.');
        key = part.value;
      }
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof PixpoolError) throw error;
    if (code === 'FST_REQ_FILE_TOO_LARGE') {
      throw tooLarge(`The image is larger than the upload limit of ${maxBytes / 1024 / 1024} MB.`);
    }
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      throw badRequest('The upload has too many parts: send the fields key and file only.');
    }
    throw badRequest(`The multipart body is malformed (${(error as Error).message}).`);
  }
  if (key === undefined) throw badRequest('The upload has no "key" field.');
  if (!file) throw badRequest('The upload has no file: send the image in the field "file".');
  return { key: checkKey(key), file };
}

export function apiRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { images, metadata, routing, maxUploadBytes } = deps;

  app.post('/api/upload', async (request) => {
    const { key, file } = await readUpload(request, maxUploadBytes);
    await images.upload(key, file);
    return { success: 'true', key };
  });

  app.post<{ Params: { key: string } }>('/api/key/:key', async (request, reply) => {
    const key = checkKey(request.params.key);
    const image = await images.fetch(key);
    if (!image) throw notFound(`No image is stored under the key ${JSON.stringify(key)}.`);
    return reply.type('application/json; charset=utf-8').send(images.dataUrlJsonOf(key, image));
  });

  app.post<{ Querystring: Record<string, unknown> }>('/api/list_keys', async (request, reply) => {
    const prefix = queryText(request.query, 'prefix');
    const cursor = queryText(request.query, 'cursor');
    const limit = queryText(request.query, 'limit');
    if (limit === undefined) {
      // The originals' shape, every key: the first page is read before answering (so an early
      // failure is still a clean 5xx envelope), the rest streams page by page.
      const first = await metadata.listKeys({ prefix, limit: LIST_PAGE, after: cursor });
      const stream = Readable.from(streamAllKeys(metadata, prefix, first, request.log), {
        objectMode: false,
      });
      return reply.type('application/json; charset=utf-8').send(stream);
    }
    const n = Number(limit);
    if (!/^\d+$/.test(limit) || !Number.isInteger(n) || n < 1 || n > LIST_PAGE) {
      throw badRequest(`limit must be a whole number from 1 to ${LIST_PAGE}.`);
    }
    const page = await metadata.listKeys({ prefix, limit: n, after: cursor });
    return { success: 'true', keys: page.keys, ...(page.next && { next: page.next }) };
  });

  app.post('/api/notify', { config: { secret: true } }, async (request) => {
    const view = parsePoolView(request.body);
    const adopted = routing.update(view);
    return { success: 'true', adopted, version: routing.view.map.version };
  });
}
