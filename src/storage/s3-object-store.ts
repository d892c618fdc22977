/**
 * ObjectStore over an S3 bucket (AWS, or anything speaking the S3 API: MinIO, s3rver).
 *
 * Objects hold the raw image bytes with their Content-Type, so a bucket can be browsed directly.
 * Listing follows every ListObjectsV2 page, and deleteAll sends DeleteObjects per page (at most
 * 1000 names, never an empty list), reporting the names S3 refused instead of throwing after a
 * partial delete (the originals' bug: one page, and a 500 on an empty bucket).
 *
 * SDK errors become PixpoolErrors here, at the adapter boundary, only when they mean "storage is
 * down" (no connection, timeouts, 5xx): those are `unavailable` (503), naming the bucket and the
 * endpoint only in their detail (for the log). Anything else (access denied, no such bucket) is a
 * configuration problem and stays the SDK's error, for the logs (a generic 500 to clients).
 * Credentials come from the SDK's default chain unless given.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
  paginateListObjectsV2,
  S3Client,
} from '@aws-sdk/client-s3';
import { unavailable } from '../core/errors.ts';
import type { DeleteAllResult, ObjectInfo, ObjectStore } from './object-store.ts';
import { NETWORK_ERROR_CODES } from './outage.ts';

export interface S3ObjectStoreOptions {
  bucket: string;
  /** A custom endpoint (MinIO, s3rver); AWS's own when undefined. */
  endpoint?: string | undefined;
  /** Defaults to the SDK's chain (AWS_REGION, profile), or us-east-1 with a custom endpoint. */
  region?: string | undefined;
  /** Path-style URLs (`endpoint/bucket/name`), which most S3 look-alikes need. */
  forcePathStyle?: boolean | undefined;
  credentials?:
    | { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined }
    | undefined;
  /** Tries per request, the first included (SDK default 3). */
  maxAttempts?: number | undefined;
  /** How long to wait for a TCP connection (default 3000 ms). */
  connectTimeoutMs?: number | undefined;
  /** How long a request may go without any data moving before it fails (default 10000 ms: with
   * the SDK's 3 tries, a hung S3 holds an upload ~30 s at most before it answers 503). */
  idleTimeoutMs?: number | undefined;
  /** A ready client, e.g. shared or instrumented; the options above are then ignored. */
  client?: S3Client | undefined;
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const MAX_DELETE_BATCH = 1000;

export function createS3ObjectStore(options: S3ObjectStoreOptions): ObjectStore {
  const { bucket } = options;
  if (typeof bucket !== 'string' || bucket === '') {
    throw new TypeError('createS3ObjectStore needs a bucket name');
  }
  const ownsClient = options.client === undefined;
  const client =
    options.client ??
    new S3Client({
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      ...(options.region !== undefined
        ? { region: options.region }
        : options.endpoint !== undefined && { region: 'us-east-1' }),
      ...(options.forcePathStyle !== undefined && { forcePathStyle: options.forcePathStyle }),
      ...(options.credentials !== undefined && { credentials: options.credentials }),
      ...(options.maxAttempts !== undefined && { maxAttempts: options.maxAttempts }),
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? 3000,
        socketTimeout: options.idleTimeoutMs ?? 10_000,
      },
    });
  const where = options.endpoint
    ? `S3 bucket "${bucket}" at ${options.endpoint}`
    : `S3 bucket "${bucket}"`;

  /** `error` as a 503 PixpoolError when it means the backend is unreachable or failing. */
  function translate(error: unknown, doing: string): unknown {
    const e = (error ?? {}) as SdkError;
    const status = e.$metadata?.httpStatusCode;
    let reason: string | undefined;
    if (status !== undefined && status >= 500) reason = `it answered HTTP ${status} (${e.name})`;
    else if (e.name === 'TimeoutError') reason = 'it did not answer in time';
    else if (e.code !== undefined && NETWORK_ERROR_CODES.has(e.code))
      reason = `no connection (${e.code})`;
    if (reason === undefined) return error;
    // The bucket and the endpoint are the operator's business: in the detail, for the log.
    return unavailable(
      `Image storage is unavailable: could not ${doing}; ${reason}. Try again shortly.`,
      { detail: `Could not ${doing} in the ${where}; ${reason}.`, cause: error },
    );
  }

  /** The listing with LastModified (S3's clock); an object without one counts as brand new. */
  async function* namesWithAge(): AsyncGenerator<ObjectInfo> {
    try {
      for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket })) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          yield { name: object.Key, modifiedAt: object.LastModified ?? new Date() };
        }
      }
    } catch (error) {
      throw translate(error, 'list images');
    }
  }

  async function* names(): AsyncGenerator<string> {
    for await (const { name } of namesWithAge()) yield name;
  }

  async function deleteBatch(batch: string[], result: DeleteAllResult): Promise<void> {
    try {
      const response = await client.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const refused = (response.Errors ?? []).map((e) => e.Key ?? '(an unnamed object)');
      result.failed.push(...refused);
      result.deleted += batch.length - refused.length;
    } catch {
      // The whole batch is reported; the caller decides whether to retry or give up.
      result.failed.push(...batch);
    }
  }

  return {
    async put(name, bytes, contentType) {
      try {
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: name,
            Body: bytes,
            ContentType: contentType,
            ContentLength: bytes.length,
          }),
        );
      } catch (error) {
        throw translate(error, 'store an image');
      }
    },

    async get(name) {
      try {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: name }));
        if (response.Body === undefined) return Buffer.alloc(0);
        const bytes = await response.Body.transformToByteArray();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (error) {
        if ((error as SdkError | undefined)?.name === 'NoSuchKey') return undefined;
        throw translate(error, 'read an image');
      }
    },

    async delete(name) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: name }));
      } catch (error) {
        throw translate(error, 'delete an image');
      }
    },

    list: names,

    listWithAge: namesWithAge,

    // A PutObject is all-or-nothing: nothing is left behind. (pixpool starts no multipart
    // uploads; a bucket lifecycle rule is the tool for other writers' abandoned ones.)
    deleteLeftovers: async () => 0,

    async deleteAll() {
      const result: DeleteAllResult = { deleted: 0, failed: [] };
      let batch: string[] = [];
      // Listing continues after the last name returned, so deleting a page as soon as it has
      // been read never makes the listing skip anything.
      for await (const name of names()) {
        batch.push(name);
        if (batch.length === MAX_DELETE_BATCH) {
          await deleteBatch(batch, result);
          batch = [];
        }
      }
      if (batch.length > 0) await deleteBatch(batch, result);
      return result;
    },

    async close() {
      if (ownsClient) client.destroy();
    },
  };
}
