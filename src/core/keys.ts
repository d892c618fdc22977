/**
 * What a key may be: 1–128 characters, no whitespace or control characters, no `/`.
 *
 * `/` is refused because a key must round-trip through a URL path segment (`/images/:key`);
 * whitespace and control characters because they are invisible in pages and logs. Keys are
 * case-sensitive and otherwise any well-formed Unicode.
 */

export const MAX_KEY_LENGTH = 128;

// \p{Cc} control, \p{Cf} format (zero-width etc.), \p{Z} separators, \s the ASCII whitespace.
const forbidden = /[\s\p{Cc}\p{Cf}\p{Z}/]/u;

/** Returns why `key` is not a valid key, or undefined when it is. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'A key is required.';
  const length = [...key].length;
  if (length > MAX_KEY_LENGTH) {
    return `A key may have at most ${MAX_KEY_LENGTH} characters; this one has ${length}.`;
  }
  // A lone surrogate half is not a character: PostgreSQL would store it as U+FFFD, so two such
  // keys could end up as one row.
  if (!key.isWellFormed()) return 'A key must be valid Unicode text (it has a lone surrogate).';
  const bad = forbidden.exec(key);
  if (bad) {
    const what = bad[0] === '/' ? 'a slash (/)' : 'whitespace or an invisible control character';
    return `A key cannot contain ${what}.`;
  }
  return undefined;
}

/** What ends a key's path segment for the router: another segment, a query, a fragment. */
const SEGMENT_END = /[/?#]/;

/**
 * The key in a request target after `prefix` (`/images/`, `/v1/entries/`), percent-decoded, as
 * the router would give it to the route; undefined where it would give none or another one (the
 * target does not start with `prefix`, the segment is empty, a `/`, `?` or `#` follows, the
 * percent-encoding is broken). For the socket lanes, which answer before the router runs: whether
 * the key is valid is keyProblem's question.
 */
export function keyInPath(target: string, prefix: string): string | undefined {
  if (!target.startsWith(prefix)) return undefined;
  const raw = target.slice(prefix.length);
  if (raw === '' || SEGMENT_END.test(raw)) return undefined;
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * A cache entry's key is a key, or a variant of one: `${key}/${variantId}`
 * (src/frontend/variants/spec.ts). A key never contains `/`, so what precedes the first one is
 * the key the entry belongs to. Whatever routes or groups entries (regions, leases, versions,
 * invalidation, hand-over) does it by this base key, so a key's variants live and die with it.
 */
export const VARIANT_SEPARATOR = '/';

/** The key an entry key belongs to: itself, or the key a variant was made from. */
export function baseKey(entryKey: string): string {
  const at = entryKey.indexOf(VARIANT_SEPARATOR);
  return at < 0 ? entryKey : entryKey.slice(0, at);
}

/** The variant id of a variant's entry key; undefined for an original's. */
export function variantOf(entryKey: string): string | undefined {
  const at = entryKey.indexOf(VARIANT_SEPARATOR);
  return at < 0 ? undefined : entryKey.slice(at + 1);
}

/** The entry key of `key`'s variant `variantId`. */
export const variantEntryKey = (key: string, variantId: string): string =>
  `${key}${VARIANT_SEPARATOR}${variantId}`;

const VARIANT_ID = /^[\w.-]{1,64}$/;

/** Returns why `entryKey` is not a valid entry key (a key, or a key's variant), or undefined. */
export function entryKeyProblem(entryKey: unknown): string | undefined {
  if (typeof entryKey !== 'string') return keyProblem(entryKey);
  const variant = variantOf(entryKey);
  const problem = keyProblem(variant === undefined ? entryKey : baseKey(entryKey));
  if (problem || variant === undefined || VARIANT_ID.test(variant)) return problem;
  return 'A variant id is 1 to 64 letters, digits, dots, dashes or underscores.';
}
