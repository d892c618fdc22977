/**
 * The frontend's near cache: recently served images kept in this process, so a hot image does
 * not cross the frontend → node hop on every request.
 *
 * It never answers on its own authority. A use either asks the owning node "is version V still
 * current?" (a bodiless 304 when it is), or, within a read lease the node granted on its last
 * answer (src/cachenode/leases.ts), trusts the copy because the node will not acknowledge an
 * invalidation of the key until the lease has run out. The node is where uploads invalidate, so
 * an upload acknowledged by any frontend is seen by the next read through every frontend; what
 * the near cache saves is the transfer of the bytes, and within a lease the question too. A
 * failing node makes a near entry unusable once its lease ends (the read goes to storage).
 * Bounded by bytes, LRU.
 *
 * An entry may also carry its image's POST /api/key answer (the base64 data URL as JSON, 4/3 of
 * the bytes), encoded once on the first such request and counted in the entry's size. It belongs
 * to the entry's version: a newer version is a new entry, so it can never be served stale.
 */
import { LRUCache } from 'lru-cache';
import type { FetchedImage } from './fetched-image.ts';

export function createNearCache(maxBytes: number) {
  if (maxBytes <= 0) {
    return {
      get: (_key: string) => undefined,
      set: (_key: string, _image: FetchedImage) => {},
      delete: (_key: string) => {},
      attach: (_key: string, _image: FetchedImage, _body: Buffer) => {},
    };
  }
  const cache = new LRUCache<string, FetchedImage>({
    maxSize: maxBytes,
    sizeCalculation: (image) => Math.max(1, image.bytes.length + (image.dataUrlJson?.length ?? 0)),
  });
  return {
    get: (key: string) => cache.get(key),
    set(key: string, image: FetchedImage) {
      if (image.bytes.length <= maxBytes) cache.set(key, image);
    },
    delete: (key: string) => {
      cache.delete(key);
    },
    /** Adds the encoded answer to `image` if it is still the entry for `key` (and fits). */
    attach(key: string, image: FetchedImage, body: Buffer) {
      if (cache.peek(key) !== image || image.bytes.length + body.length > maxBytes) return;
      // A new object for the same version (lru-cache recounts the size only for a new value).
      cache.set(key, { ...image, dataUrlJson: body });
    },
  };
}

export type NearCache = ReturnType<typeof createNearCache>;
