/**
 * The cache-node protocol's header names, shared by the node (which answers them) and the client
 * (src/clients/node-client.ts, which sends them). Kept apart from the client so a cache node,
 * which needs the names on every request but the client only for hand-overs, does not load an
 * HTTP client library (undici) until it hands entries over: a node's memory is for images (bench
 * case node-memory).
 */
export const VERSION_HEADER = 'x-pixpool-version';
export const MODIFIED_HEADER = 'x-pixpool-modified';
/** The pool map version a request was routed with; a node that knows a newer one answers 421. */
export const MAP_VERSION_HEADER = 'x-pixpool-map-version';
/** On a GET: "I hold this version"; the node answers 304 without a body if it is current. */
export const IF_VERSION_HEADER = 'x-pixpool-if-version';
/**
 * Read leases (src/cachenode/leases.ts). On a GET, "1" asks for one; on the answer (200 or 304),
 * the lease the node granted, in milliseconds, counted by the frontend from when it sent the GET.
 */
export const LEASE_HEADER = 'x-pixpool-lease';
/**
 * The longest lease a node grants (and a frontend accepts): under a frontend's 1 s node timeout
 * (an invalidation may wait this long) and its 1.5 s of invalidation retries, so a node that
 * dies cannot leave a lease that outlives an upload acknowledged without reaching it.
 */
export const MAX_LEASE_MS = 500;
/** Where a node's entries live: GET, PUT and DELETE `${ENTRY_PATH}<percent-encoded key>`. */
export const ENTRY_PATH = '/v1/entries/';
/** The message of a node's error envelope in `text`, else the start of `text`. */
export function nodeMessage(text: string): string {
  try {
    return JSON.parse(text).error.message ?? text.slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}

/** The lease a node grants unless told otherwise (--lease-ms). */
export const DEFAULT_LEASE_MS = 100;
