/**
 * Small formatters shared by the page templates: byte sizes, dates and the URLs of a key's pages.
 *
 * Every URL built from a key goes through `encodeURIComponent`, so a key with `?`, `#`, `%` or
 * non-ASCII characters lands in one path segment or one query value (Fastify decodes it back).
 */

const UNITS = ['KB', 'MB', 'GB', 'TB'] as const;

/** 1536 → "1.5 KB". Binary multiples, as MAX_UPLOAD_MB is (1 MB = 1024 × 1024 bytes). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = value < 10 ? 1 : 0;
  return `${value.toFixed(digits).replace(/\.0$/, '')} ${UNITS[unit]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** "21 Nov 2025, 09:18 UTC": the server does not know the reader's zone; app.js localises it. */
export function formatUtc(date: Date): string {
  const text = date.toLocaleString('en-GB', {
    timeZone: 'UTC',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
  return `${text} UTC`;
}

export const imageUrl = (key: string) => `/images/${encodeURIComponent(key)}`;
/** A variant's URL (GET /images/:key with parameters, in the order they are documented). */
export function variantUrl(
  key: string,
  params: { w?: number; h?: number; fit?: string; format?: string; q?: number },
): string {
  const query = new URLSearchParams();
  for (const name of ['w', 'h', 'fit', 'format', 'q'] as const) {
    const value = params[name];
    if (value !== undefined) query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${imageUrl(key)}?${text}` : imageUrl(key);
}
export const imagePageUrl = (key: string) => `/image/${encodeURIComponent(key)}`;
export const uploadUrl = (key?: string) =>
  key ? `/upload?key=${encodeURIComponent(key)}` : '/upload';

export function keysUrl(options: { q?: string | undefined; after?: string | undefined }): string {
  const params = new URLSearchParams();
  if (options.q) params.set('q', options.q);
  if (options.after) params.set('after', options.after);
  const query = params.toString();
  return query ? `/keys?${query}` : '/keys';
}
