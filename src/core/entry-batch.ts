/**
 * The wire format for handing cache entries from one node to another (a hand-over on resize).
 *
 * A batch is a sequence of frames, each
 *   u32 BE header length | header JSON {"k": key, "t": content type, "v": version, "m"?: ms}
 *   | u32 BE value length | value bytes
 * Raw bytes, no base64: a hand-over of 100 MB should cost close to a copy of 100 MB.
 *
 * Both ends avoid whole-batch buffers. The sender frames a batch lazily as a sequence of buffers
 * — each large cached value itself, uncopied, between small parts that join the frame prefixes
 * (the two lengths around the header) and small values — that the HTTP client pulls and writes
 * to the socket as it drains (encodeBatchStream). The receiver
 * decodes the body as it arrives (BatchDecoder): each value is copied exactly once, from the
 * socket's chunks into a Buffer of its own exact size, so a kept entry never pins a chunk or a
 * batch, and no 8 MiB body is collected first. Decoding checks every length against the limits
 * before allocating, and a batch that ends mid-frame is refused, so a truncated or forged batch
 * fails with a clear error instead of reading out of bounds or allocating what a length claims.
 */
import type { Readable } from 'node:stream';

export interface BatchEntry {
  key: string;
  contentType: string;
  version: number;
  modifiedAt?: number | undefined;
  value: Buffer;
}

export const BATCH_CONTENT_TYPE = 'application/x-pixpool-entries';
const MAX_HEADER_BYTES = 64 * 1024;

/** A value at least this large is sent as it is; smaller ones are joined with their neighbours. */
const OWN_PART_BYTES = 16 * 1024;
/** Joined small pieces are flushed as one part once they reach this size. */
const JOINED_PART_BYTES = 64 * 1024;

/**
 * The batch as buffers to send in order, made one at a time as the reader asks for them, so a
 * sender streams a batch instead of building it. A large value is its own part (the cached
 * Buffer itself, not a copy); frame prefixes and small values are joined into parts of up to
 * 64 KB, so a batch of many small images is not thousands of tiny socket writes.
 */
export function* encodeBatchStream(entries: Iterable<BatchEntry>): Generator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  function* flush() {
    if (pending.length === 1) yield pending[0] as Buffer;
    else if (pending.length > 1) yield Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
  }
  for (const entry of entries) {
    const prefix = framePrefix(entry);
    pending.push(prefix);
    pendingBytes += prefix.length;
    const { value } = entry;
    if (value.length >= OWN_PART_BYTES) {
      yield* flush();
      yield value;
    } else {
      pending.push(value);
      pendingBytes += value.length;
      if (pendingBytes >= JOINED_PART_BYTES) yield* flush();
    }
  }
  yield* flush();
}

/** A batch as a sender takes it: one Buffer, its parts, or a stream or generator of them. */
export type BatchBody = Buffer | readonly Buffer[] | Iterable<Buffer> | Readable;

/**
 * A batch body's bytes (its Content-Length) when they are known without reading it: `length` as
 * given, else a Buffer's or a list's; undefined for a stream or generator.
 */
export function batchBodyBytes(batch: BatchBody, length?: number): number | undefined {
  if (length !== undefined) return length;
  if (Buffer.isBuffer(batch)) return batch.length;
  if (Array.isArray(batch)) return (batch as Buffer[]).reduce((sum, part) => sum + part.length, 0);
  return undefined;
}

/** The bytes `entry` takes in a batch (its prefix and value), without encoding it. */
export function frameBytes(entry: BatchEntry): number {
  return 8 + Buffer.byteLength(frameHeader(entry)) + entry.value.length;
}

const frameHeader = ({ key, contentType, version, modifiedAt }: BatchEntry) =>
  JSON.stringify({ k: key, t: contentType, v: version, m: modifiedAt });

/** The two lengths around the header, and the header. */
function framePrefix(entry: BatchEntry): Buffer {
  const header = frameHeader(entry);
  const headerLength = Buffer.byteLength(header);
  const prefix = Buffer.allocUnsafe(4 + headerLength + 4);
  prefix.writeUInt32BE(headerLength, 0);
  prefix.write(header, 4, 'utf8');
  prefix.writeUInt32BE(entry.value.length, 4 + headerLength);
  return prefix;
}

/** The whole batch's parts at once (encodeBatchStream, collected). */
export function encodeBatchParts(entries: Iterable<BatchEntry>): Buffer[] {
  return [...encodeBatchStream(entries)];
}

/** The batch as one buffer (tests, small batches). */
export function encodeBatch(entries: Iterable<BatchEntry>): Buffer {
  return Buffer.concat(encodeBatchParts(entries));
}

export class BatchFormatError extends Error {
  override name = 'BatchFormatError';
}

/** The batch is larger than the receiver accepts (an HTTP 413, not a 400). */
export class BatchTooLargeError extends BatchFormatError {
  override name = 'BatchTooLargeError';
}

/**
 * Decodes a batch from chunks as they arrive: push() each chunk, then end() for the entries.
 * Throws BatchFormatError (from push or end) as soon as the bytes cannot be a valid batch.
 */
export class BatchDecoder {
  readonly entries: BatchEntry[] = [];
  readonly #maxBytes: number;
  /** Bytes consumed so far (for messages and the size limit). */
  #at = 0;
  /** What the next bytes are. */
  #field: 'header length' | 'header' | 'value length' | 'value' = 'header length';
  /** Where a length field split across chunks is put together. */
  readonly #length = Buffer.allocUnsafe(4);
  /** The current field's bytes (the whole value, or a length or header split across chunks). */
  #buffer: Buffer = this.#length;
  #filled = 0;
  #header: Header | undefined;

  constructor(options: { maxBytes?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  }

  push(chunk: Buffer): void {
    if (this.#at + chunk.length > this.#maxBytes) {
      throw new BatchTooLargeError(`batch is larger than ${this.#maxBytes} bytes`);
    }
    let offset = 0;
    while (offset < chunk.length) {
      const want = this.#buffer.length - this.#filled;
      const take = Math.min(want, chunk.length - offset);
      const start = offset;
      offset += take;
      this.#at += take;
      if (this.#filled === 0 && take === want && this.#field !== 'value') {
        // The whole field is in this chunk: read it in place (it is parsed, not kept).
        this.#complete(chunk.subarray(start, offset));
      } else {
        chunk.copy(this.#buffer, this.#filled, start, offset);
        this.#filled += take;
        if (this.#filled === this.#buffer.length) this.#complete(this.#buffer);
      }
    }
  }

  /** The entries, once the batch has ended exactly at a frame boundary. */
  end(): BatchEntry[] {
    if (this.#field !== 'header length' || this.#filled !== 0) {
      throw new BatchFormatError(
        `batch is truncated: a ${this.#field} at byte ${this.#at - this.#filled} runs past the end`,
      );
    }
    return this.entries;
  }

  /** A field's bytes are all here: act on them and set up the next field. */
  #complete(bytes: Buffer): void {
    this.#filled = 0;
    switch (this.#field) {
      case 'header length': {
        const length = bytes.readUInt32BE(0);
        if (length > MAX_HEADER_BYTES) {
          throw new BatchFormatError(`batch header of ${length} bytes is too long`);
        }
        this.#expect('header', length);
        break;
      }
      case 'header':
        this.#header = parseHeader(bytes);
        this.#expect('value length', 4);
        break;
      case 'value length': {
        const length = bytes.readUInt32BE(0);
        if (this.#at + length > this.#maxBytes) {
          throw new BatchTooLargeError(
            `batch value of ${length} bytes at byte ${this.#at} goes past the ${this.#maxBytes}-byte limit`,
          );
        }
        // The value's own memory, exactly its size, outside Node's shared 8 KB pool: it may stay
        // in the cache for hours and must pin nothing else.
        this.#field = 'value';
        this.#buffer = Buffer.allocUnsafeSlow(length);
        if (length === 0) this.#complete(this.#buffer);
        break;
      }
      case 'value': {
        const header = this.#header as Header;
        this.entries.push({
          key: header.k,
          contentType: header.t,
          version: header.v,
          ...(header.m !== undefined && { modifiedAt: header.m }),
          value: bytes,
        });
        this.#header = undefined;
        this.#expect('header length', 4);
        break;
      }
    }
  }

  #expect(field: 'header length' | 'header' | 'value length', bytes: number): void {
    this.#field = field;
    this.#buffer = field === 'header' ? Buffer.allocUnsafe(bytes) : this.#length;
    if (bytes === 0) this.#complete(this.#buffer);
  }
}

/** A whole batch in one buffer; values are copied out of it (they do not pin it). */
export function decodeBatch(batch: Buffer): BatchEntry[] {
  const decoder = new BatchDecoder();
  decoder.push(batch);
  return decoder.end();
}

interface Header {
  k: string;
  t: string;
  v: number;
  m?: number;
}

function parseHeader(bytes: Buffer): Header {
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BatchFormatError('batch header is not valid JSON');
  }
  const h = header as Record<string, unknown>;
  if (
    typeof h !== 'object' ||
    h === null ||
    typeof h.k !== 'string' ||
    typeof h.t !== 'string' ||
    !Number.isSafeInteger(h.v)
  ) {
    throw new BatchFormatError('batch header needs k (string), t (string) and v (integer)');
  }
  if (h.m !== undefined && !Number.isSafeInteger(h.m)) {
    throw new BatchFormatError('batch header m must be an integer (ms since the epoch)');
  }
  return h as unknown as Header;
}
