/**
 * Node addresses as people and the seeds write them (an IP, host:port, or a URL), made into the
 * bare origin every client uses.
 */
import { badRequest } from './errors.ts';

/** The originals address nodes by IP alone, on this port. */
export const SEED_NODE_PORT = 5001;

/** A node address as the seeds send it (an IP, host:port) or a URL, as a base URL. */
export function nodeUrl(address: string): string {
  const raw = /^https?:\/\//i.test(address)
    ? address
    : /:\d+$/.test(address)
      ? `http://${address}`
      : `http://${address}:${SEED_NODE_PORT}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest(`${JSON.stringify(address)} is not a node address (a URL or host:port).`);
  }
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/') {
    throw badRequest(`A node address is a bare http(s) origin; got ${JSON.stringify(address)}.`);
  }
  return url.origin;
}
