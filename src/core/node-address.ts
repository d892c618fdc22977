/**
 * Addresses one pixpool service is told to call: node addresses as people and the seeds write
 * them (an IP, host:port, or a URL), and the base URL a frontend registers with, each made into
 * the bare origin every client uses.
 *
 * These arrive in requests (pool views, move_keys orders, frontend registrations) that are
 * secret-protected, but a leaked secret or a confused caller must not turn a service into a proxy
 * to anywhere. So the rules are few and strict, checked on the text as sent, before any URL
 * parser gets to normalise it:
 * - http or https only;
 * - a host, with a port or the scheme's default (a bare IP or host gets the seeds' port 5001);
 * - nothing but a bare origin: no userinfo (`user@`), path, query or fragment;
 * - only the characters an origin needs (letters, digits, `.-_:[]/`), so no percent-encoding,
 *   backslashes, whitespace or control characters that parsers read differently;
 * - at most 256 characters.
 * Which hosts a service may call is a question of membership (a node hands entries only to nodes
 * of its pool view: src/cachenode/view.ts), not of address syntax.
 */
import { badRequest } from './errors.ts';

/** The originals address nodes by IP alone, on this port. */
export const SEED_NODE_PORT = 5001;

const MAX_LENGTH = 256;
const ORIGIN_CHARACTERS = /^[A-Za-z0-9._:[\]/-]+$/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/** The input as quoted in an error message: short, so a huge input makes no huge answer. */
const quote = (value: unknown) => {
  const text = typeof value === 'string' ? value : String(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
};

/**
 * A service's base URL (`http(s)://host[:port]`), checked by the rules above; `what` names it in
 * the message ("node address", "frontend URL"). A bare host or host:port gets `http://` and, when
 * it has no port, `defaultPort`.
 */
export function serviceOrigin(address: unknown, what: string, defaultPort?: number): string {
  if (typeof address !== 'string' || address === '') {
    throw badRequest(`A ${what} must be a URL or host:port; got ${quote(address)}.`);
  }
  if (address.length > MAX_LENGTH || !ORIGIN_CHARACTERS.test(address)) {
    throw badRequest(
      `A ${what} is a bare http(s) origin of at most ${MAX_LENGTH} characters, without userinfo, percent-encoding, spaces or backslashes; got ${quote(address)}.`,
    );
  }
  const scheme = SCHEME.exec(address)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    throw badRequest(`A ${what} must use http or https; got ${quote(address)}.`);
  }
  const raw = scheme
    ? address
    : /:\d+$/.test(address) || defaultPort === undefined
      ? `http://${address}`
      : `http://${address}:${defaultPort}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest(`${quote(address)} is not a ${what} (a URL or host:port).`);
  }
  if (!url.hostname || url.username || url.password || url.search || url.hash) {
    throw badRequest(`A ${what} is a bare http(s) origin; got ${quote(address)}.`);
  }
  if (url.pathname !== '/' || !/^https?:\/\/[^/]+\/?$/i.test(raw)) {
    throw badRequest(`A ${what} has no path; got ${quote(address)}.`);
  }
  return url.origin;
}

/** A node address as the seeds send it (an IP, host:port) or a URL, as a base URL. */
export function nodeUrl(address: string): string {
  return serviceOrigin(address, 'node address', SEED_NODE_PORT);
}
