/**
 * The public API of SPEC §3, shaped exactly like the originals' (`success` is the string "true",
 * HTTP status = error code, `content` a data URL, `key` echoed), plus the internal
 * POST /api/notify through which the manager pushes pool views.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound, PixpoolError, tooLarge } from '../core/errors.ts';
import { keyProblem } from '../core/keys.ts';
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

  app.post<{ Params: { key: string } }>('/api/key/:key', async (request) => {
    const key = checkKey(request.params.key);
    const image = await images.fetch(key);
    if (!image) throw notFound(`No image is stored under the key ${JSON.stringify(key)}.`);
    const content = `data:${image.contentType};base64,${image.bytes.toString('base64')}`;
    return { success: 'true', key, content };
  });

  app.post<{ Querystring: Record<string, string | undefined> }>(
    '/api/list_keys',
    async (request) => {
      const { prefix, cursor, limit } = request.query;
      if (limit === undefined) {
        // The originals' shape: every key. Read in pages so no query is unbounded.
        const keys: string[] = [];
        let after = cursor;
        do {
          const page = await metadata.listKeys({ prefix, limit: LIST_PAGE, after });
          keys.push(...page.keys);
          after = page.next;
        } while (after !== undefined);
        return { success: 'true', keys };
      }
      const n = Number(limit);
      if (!Number.isInteger(n) || n < 1 || n > LIST_PAGE) {
        throw badRequest(`limit must be a whole number from 1 to ${LIST_PAGE}.`);
      }
      const page = await metadata.listKeys({ prefix, limit: n, after: cursor });
      return { success: 'true', keys: page.keys, ...(page.next && { next: page.next }) };
    },
  );

  app.post('/api/notify', { config: { secret: true } }, async (request) => {
    const view = parsePoolView(request.body);
    const adopted = routing.update(view);
    return { success: 'true', adopted, version: routing.view.map.version };
  });
}
