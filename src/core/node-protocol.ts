/**
 * The cache-node protocol's header names, shared by the node (which answers them) and the client
 * (src/clients/node-client.ts, which sends them). Kept apart from the client so a cache node,
 * which needs the names on every request but the client only for hand-overs, does not load an
 * HTTP client library (undici, ~6 MiB of RSS) until it hands entries over.
 */
export const VERSION_HEADER = 'x-pixpool-version';
export const MODIFIED_HEADER = 'x-pixpool-modified';
/** The pool map version a request was routed with; a node that knows a newer one answers 421. */
export const MAP_VERSION_HEADER = 'x-pixpool-map-version';
/** On a GET: "I hold this version"; the node answers 304 without a body if it is current. */
export const IF_VERSION_HEADER = 'x-pixpool-if-version';
