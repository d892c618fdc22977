/**
 * The wire format for handing cache entries from one node to another (a hand-over on resize).
 *
 * A batch is a sequence of frames, each
 *   u32 BE header length | header JSON {"k": key, "t": content type, "v": version, "m"?: ms}
 *   | u32 BE value length | value bytes
 * Raw bytes, no base64: a hand-over of 100 MB should cost close to a copy of 100 MB. Decoding
 * checks every length against what is left, so a truncated or forged batch fails with a clear
 * error instead of reading out of bounds.
 */

export interface BatchEntry {
  key: string;
  contentType: string;
  version: number;
  modifiedAt?: number | undefined;
  value: Buffer;
}

export const BATCH_CONTENT_TYPE = 'application/x-pixpool-entries';
const MAX_HEADER_BYTES = 64 * 1024;

export function encodeBatch(entries: Iterable<BatchEntry>): Buffer {
  const parts: Buffer[] = [];
  for (const { key, contentType, version, modifiedAt, value } of entries) {
    const header = Buffer.from(
      JSON.stringify({ k: key, t: contentType, v: version, m: modifiedAt }),
    );
    const lengths = Buffer.allocUnsafe(4);
    lengths.writeUInt32BE(header.length);
    const valueLength = Buffer.allocUnsafe(4);
    valueLength.writeUInt32BE(value.length);
    parts.push(lengths, header, valueLength, value);
  }
  return Buffer.concat(parts);
}

export class BatchFormatError extends Error {
  override name = 'BatchFormatError';
}

export function decodeBatch(batch: Buffer): BatchEntry[] {
  const entries: BatchEntry[] = [];
  let at = 0;
  const need = (bytes: number, what: string) => {
    if (at + bytes > batch.length) {
      throw new BatchFormatError(`batch is truncated: ${what} at byte ${at} runs past the end`);
    }
  };
  while (at < batch.length) {
    need(4, 'a header length');
    const headerLength = batch.readUInt32BE(at);
    at += 4;
    if (headerLength > MAX_HEADER_BYTES) {
      throw new BatchFormatError(`batch header of ${headerLength} bytes is too long`);
    }
    need(headerLength, 'a header');
    const header = parseHeader(batch.subarray(at, at + headerLength));
    at += headerLength;
    need(4, 'a value length');
    const valueLength = batch.readUInt32BE(at);
    at += 4;
    need(valueLength, 'a value');
    // Copy out of the request buffer so one kept entry does not pin the whole batch in memory.
    const value = Buffer.from(batch.subarray(at, at + valueLength));
    at += valueLength;
    entries.push({
      key: header.k,
      contentType: header.t,
      version: header.v,
      ...(header.m !== undefined && { modifiedAt: header.m }),
      value,
    });
  }
  return entries;
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
  if (typeof h.k !== 'string' || typeof h.t !== 'string' || !Number.isSafeInteger(h.v)) {
    throw new BatchFormatError('batch header needs k (string), t (string) and v (integer)');
  }
  if (h.m !== undefined && !Number.isSafeInteger(h.m)) {
    throw new BatchFormatError('batch header m must be an integer (ms since the epoch)');
  }
  return h as unknown as Header;
}
