/**
 * The key rule for the browser, a copy of src/core/keys.ts: 1–128 characters, no
 * whitespace or control characters, no `/`. Keep the two in step; the server's check is the one
 * that counts, this one only answers sooner.
 */

export const MAX_KEY_LENGTH = 128;

// Same class as keys.ts: \p{Cc} control, \p{Cf} format (zero-width etc.), \p{Z} separators.
const forbidden = /[\s\p{Cc}\p{Cf}\p{Z}/]/u;

/** Why `key` is not a valid key, or undefined when it is (the server's wording). */
export function keyProblem(key) {
  if (typeof key !== 'string' || key.length === 0) return 'A key is required.';
  const length = [...key].length;
  if (length > MAX_KEY_LENGTH) {
    return `A key may have at most ${MAX_KEY_LENGTH} characters; this one has ${length}.`;
  }
  if (!key.isWellFormed()) return 'A key must be valid Unicode text (it has a lone surrogate).';
  const bad = forbidden.exec(key);
  if (bad) {
    const what = bad[0] === '/' ? 'a slash (/)' : 'whitespace or an invisible control character';
    return `A key cannot contain ${what}.`;
  }
  return undefined;
}
