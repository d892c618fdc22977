// Key → region routing: the key space is cut into 16 contiguous regions by the top 4 bits of
// MD5(UTF-8 key), i.e. the first hex digit of the digest, as the original system did, so keys
// it cached land in the same regions.
// Limits: MD5 is used for spread, not security; anyone can pick keys that all hit one region.
// A string with lone surrogates is encoded with U+FFFD, as Buffer.from(key, 'utf8') would.
// An image variant's entry key (`key/variant`, keys.ts) is in its key's region: a key's variants
// are owned, leased, handed over and dropped with it.

import { hash } from 'node:crypto';
import { baseKey } from './keys.ts';

export const REGION_COUNT = 16;

/** The region (0..15) that owns `key` (or the entry key of one of its variants). */
export function regionOf(key: string): number {
  // One-shot hash() skips the Hash object that createHash() allocates: measurably faster on
  // short keys. A string input is hashed as UTF-8. Called on every request, so no hex strings.
  return hash('md5', baseKey(key), 'buffer').readUInt8(0) >> 4;
}
