// Key → region routing: the key space is cut into 16 contiguous regions by the top 4 bits of
// MD5(UTF-8 key), i.e. the first hex digit of the digest, as the original system did, so keys
// it cached land in the same regions.
// Limits: MD5 is used for spread, not security; anyone can pick keys that all hit one region.
// A string with lone surrogates is encoded with U+FFFD, as Buffer.from(key, 'utf8') would.

import { hash } from 'node:crypto';

export const REGION_COUNT = 16;

/** The region (0..15) that owns `key`. Called on every request, so it avoids hex strings. */
export function regionOf(key: string): number {
  // One-shot hash() skips the Hash object that createHash() allocates: measurably faster on
  // short keys. A string input is hashed as UTF-8.
  return hash('md5', key, 'buffer').readUInt8(0) >> 4;
}
