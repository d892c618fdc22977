/**
 * An image as the frontend fetched it, from a cache node or from storage: what the image
 * service (images.ts) gives the routes and the near cache (near-cache.ts) keeps. A module of its
 * own so that those two need not import each other for it.
 */
export interface FetchedImage {
  bytes: Buffer;
  contentType: string;
  version: number;
  modifiedAt: number | undefined;
  /** Where it came from: a cache node, storage, or (a variant) made just now from its original. */
  source: 'cache' | 'storage' | 'transform';
  /** A variant's id (frontend/variants/spec.ts); undefined for an original. */
  variant?: string | undefined;
  /** The POST /api/key answer for this version, once encoded (kept with a near-cached image). */
  dataUrlJson?: Buffer;
  /**
   * A near-cached image's read lease (src/cachenode/leases.ts): until `until` (performance.now()),
   * `node` will not acknowledge an invalidation of this key, so the copy is served without asking.
   */
  lease?: { node: string; until: number };
  /**
   * Gives the bytes back to the pool they were read into, once an answer has written them: set
   * only on an image that nothing else holds (not near-cached, not shared with other reads, not
   * filling a node). Not calling it is always safe.
   */
  release?: (() => void) | undefined;
}
