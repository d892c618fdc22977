/**
 * The fuzzer's parts: a raw HTTP sender (node:http, so paths go out byte for byte, `..` and
 * percent-encoding untouched, and bodies can be anything), fast-check arbitraries for hostile
 * requests, and the invariant every answer must hold.
 *
 * Hostile values are built to be invalid for the field they land in (wrong types, negative or
 * absurd numbers, unicode and control characters, traversal, huge strings), never a valid
 * setting by accident: a random `capacity: 0.5` would be a legitimate config change, not a bug,
 * and would break the "stored data is unchanged" check for the wrong reason.
 */
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import type { RouteRecord } from '../../src/http/service.ts';
import { securityHeaders } from '../../src/http/web/security.ts';
import { isEnvelope } from './services.ts';

export interface RawRequest {
  method: string;
  /** Sent as is: no normalisation, no encoding. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer | undefined;
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  bytes: Buffer;
  // biome-ignore lint/suspicious/noExplicitAny: answers are read loosely
  body: any;
}

/** One request on a fresh connection (no agent), with a generous timeout. */
export function sendRaw(base: string, req: RawRequest, timeoutMs = 20_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: hostname,
        port,
        method: req.method,
        path: req.path,
        headers: {
          ...req.headers,
          ...(req.body !== undefined && { 'content-length': String(req.body.length) }),
        },
        agent: false,
        insecureHTTPParser: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('error', reject);
        response.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const text = bytes.toString('utf8');
          let body: unknown = text;
          if (String(response.headers['content-type']).includes('json')) {
            try {
              body = JSON.parse(text);
            } catch {}
          }
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text,
            bytes,
            body,
          });
        });
      },
    );
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    r.on('error', reject);
    r.end(req.body);
  });
}

/**
 * The invariant: below 500; a 4xx JSON answer is the failure envelope; an HTML answer carries
 * the UI security headers; an image answer is sandboxed. Returns what is wrong, or undefined.
 */
export function problemWith(req: RawRequest, answer: RawAnswer): string | undefined {
  const where = `${req.method} ${req.path.slice(0, 200)} → ${answer.status} ${answer.text.slice(0, 300)}`;
  if (answer.status >= 500 || answer.status < 100) return `server error: ${where}`;
  const type = String(answer.headers['content-type'] ?? '');
  const sandboxed =
    /(^|;)\s*sandbox\s*(;|$)/.test(String(answer.headers['content-security-policy'])) &&
    answer.headers['x-content-type-options'] === 'nosniff';
  if (type.startsWith('text/html') && !sandboxed) {
    // A page: the UI headers. (A sandboxed answer is a document that cannot run script.)
    for (const [name, value] of Object.entries(securityHeaders)) {
      if (answer.headers[name] !== value) return `HTML without ${name}: ${where}`;
    }
    return undefined;
  }
  if (answer.status >= 400 && req.method !== 'HEAD' && !isEnvelope(answer)) {
    return `4xx without the envelope: ${where}`;
  }
  if (req.path.startsWith('/images/') && answer.status === 200) {
    if (!String(answer.headers['content-security-policy']).includes('sandbox')) {
      return `image without a sandbox CSP: ${where}`;
    }
    if (answer.headers['x-content-type-options'] !== 'nosniff')
      return `image without nosniff: ${where}`;
  }
  return undefined;
}

// Words and numbers that are valid settings somewhere: never produced as hostile values.
const MEANINGFUL = new Set(
  ['lru', 'rr', 'random', 'increase', 'decrease', 'manual', 'automatic', 'true', 'false'].concat([
    'miss',
    'hit',
    'balanced',
    'modulo',
    'sieve',
    's3-fifo',
    'w-tinylfu',
    'grow',
  ]),
);
const harmless = (s: string) =>
  !MEANINGFUL.has(s.trim().toLowerCase()) && !(s.trim() !== '' && Number.isFinite(Number(s)));

/** Strings people and parsers trip over. */
export const NASTY_STRINGS = [
  '',
  ' ',
  '../../../../etc/passwd',
  '..%2f..%2f..%2fetc%2fpasswd',
  '%2e%2e%2f%2e%2e%2f',
  '%252e%252e%252f',
  '..\\..\\windows\\win.ini',
  '....//....//',
  'a\u0000b',
  '\u0000',
  '%00',
  '\u202egnp.exe',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\u0007\u001b[31m',
  '\r\nX-Injected: yes',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "' OR 1=1; DROP TABLE images; --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template injection attempt, on purpose
  '${process.exit()}',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'prototype',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  'undefined',
  '[]',
  '{}',
  'ｆｕｌｌｗｉｄｔｈ',
  'e\u0301',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '\uFEFFbom',
  'http://169.254.169.254/latest/meta-data/',
  'file:///etc/passwd',
  'http://user:pass@127.0.0.1:1',
  'x'.repeat(129),
  'k'.repeat(5000),
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).filter(harmless) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).filter(harmless) },
  { weight: 1, arbitrary: fc.string({ minLength: 2000, maxLength: 20_000 }).filter(harmless) },
);

const hostileNumber = fc.oneof(
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 }),
  fc.double({ min: -1e308, max: -1e-300, noNaN: true }),
  fc.constantFrom(1e308, 2 ** 64, Number.MAX_SAFE_INTEGER + 2, -0.5),
);

/** Any JSON value that is wrong for whatever field it lands in. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileNumber },
  {
    weight: 1,
    arbitrary: fc.constantFrom(null, [], {}, [[[]]], JSON.parse('{"__proto__":{"polluted":1}}')),
  },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, hostileString, { maxKeys: 3 }) },
);

/** Every field name any endpoint reads, so hostile values land where they are parsed. */
export const FIELD_NAMES = [
  'key',
  'value',
  'version',
  'capacity',
  'replacement_policy',
  'policy',
  'region',
  'to',
  'regions',
  'keys',
  'moves',
  'dest',
  'port',
  'keep',
  'change',
  'wait',
  'mode',
  'max_miss_rate_threshold',
  'min_miss_rate_threshold',
  'expand_ratio',
  'shrink_ratio',
  'node_id',
  'samples',
  'url',
  'limit',
  'prefix',
  'cursor',
  'q',
  'after',
  'state',
  'outcome',
  'target_size',
  'map',
  'addresses',
  'previous',
  'self',
  'rate',
  'numNodes',
  'cacheSize',
  'expRatio',
  'shrinkRatio',
  'maxMiss',
  'minMiss',
  'window_s',
  'v',
  '__proto__',
  'constructor',
];

const fieldName = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...FIELD_NAMES) },
  { weight: 1, arbitrary: hostileString },
);

/** Percent-encodes every byte of `s` (as UTF-8) but those `keep` allows; lone surrogates too. */
const pct = (s: string, keep = /[A-Za-z0-9\-_.~]/) =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      keep.test(String.fromCharCode(b)) && b < 0x80
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

/** How a string goes into a URL path or query: each of these has fooled some parser. */
const encodings: ((s: string) => string)[] = [
  (s) => pct(s),
  (s) => pct(pct(s)),
  // Raw: only what node:http will put on the wire (no spaces or control characters).
  (s) => pct(s, /[\x21-\x7e]/),
  (s) => pct(s, /[A-Za-z0-9\-_.~/]/),
  (s) => pct(s).replace(/%2F/g, '\\'),
];

const encoded = fc
  .tuple(hostileString, fc.nat({ max: encodings.length - 1 }))
  .map(([s, i]) => (encodings[i] as (s: string) => string)(s));

/** A route's path with its parameters replaced by hostile, variously encoded text. */
export function hostilePath(url: string): fc.Arbitrary<string> {
  const params = url.match(/:\w+/g) ?? [];
  return fc
    .tuple(
      fc.array(encoded, { minLength: params.length, maxLength: params.length }),
      fc.option(
        fc.array(
          fc.tuple(
            fieldName.map((f) => pct(f)),
            encoded,
          ),
          { maxLength: 4 },
        ),
      ),
      fc.oneof(
        { weight: 12, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom('/', '/..', '/%2e%2e', '//', ';x=1', '#frag') },
      ),
    )
    .map(([values, query, suffix]) => {
      let i = 0;
      const path = url.replace(/:\w+/g, () => values[i++] || 'x') + suffix;
      const qs = query?.map(([k, v]) => `${k}=${v}`).join('&');
      return qs ? `${path}?${qs}` : path;
    });
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'image/png',
  'text/html',
  'multipart/form-data',
  'multipart/form-data; boundary=',
  'application/x-pixpool-entries',
  'garbage',
  '*/*',
  'application/json%00',
];

export interface HostileBody {
  contentType?: string | undefined;
  body?: Buffer | undefined;
}

const jsonBody = (value: unknown): HostileBody => ({
  contentType: 'application/json',
  body: Buffer.from(JSON.stringify(value) ?? 'null'),
});

/** Bodies: none, hostile JSON objects, other JSON, broken JSON, forms, bytes, multipart. */
export const hostileBody: fc.Arbitrary<HostileBody> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<HostileBody>({}) },
  {
    weight: 6,
    arbitrary: fc.dictionary(fieldName, hostileValue, { maxKeys: 5 }).map(jsonBody),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map(jsonBody) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.constantFrom('{', '{"key":', '[1,2', '{"a":1}}', '\u0000', '{"__proto__":{"x":1}}'),
      )
      .map((text) => ({ contentType: 'application/json', body: Buffer.from(text) })),
  },
  {
    weight: 2,
    arbitrary: fc.array(fc.tuple(fieldName, hostileString), { maxLength: 5 }).map((pairs) => ({
      contentType: 'application/x-www-form-urlencoded',
      body: Buffer.from(pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&')),
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...CONTENT_TYPES, undefined),
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
      )
      .map(([contentType, bytes, png]) => ({
        contentType,
        body: Buffer.concat([
          png ? Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) : Buffer.alloc(0),
          Buffer.from(bytes),
        ]),
      })),
  },
  { weight: 2, arbitrary: hostileMultipart() },
);

/** Multipart bodies that are wrong in one way or several. */
export function hostileMultipart(): fc.Arbitrary<HostileBody> {
  const part = fc.record({
    name: fc.oneof(fc.constantFrom('key', 'file', 'other'), hostileString),
    filename: fc.option(
      fc.oneof(fc.constantFrom('x.png', '../../x.png', 'a"b.png'), hostileString),
    ),
    type: fc.option(fc.constantFrom('image/png', 'text/html', 'image/svg+xml', 'x')),
    data: fc.oneof(
      hostileString.map((s) => Buffer.from(s)),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    ),
  });
  return fc
    .tuple(
      fc.array(part, { maxLength: 4 }),
      fc.constantFrom('b0undary', 'x'.repeat(80), ''),
      fc.constantFrom('good', 'truncated', 'no-final', 'wrong-boundary', 'lf-only'),
    )
    .map(([parts, boundary, damage]) => {
      const eol = damage === 'lf-only' ? '\n' : '\r\n';
      const chunks: Buffer[] = [];
      for (const p of parts) {
        const disposition = `form-data; name="${p.name.replace(/[\r\n"]/g, '_')}"${
          p.filename !== null ? `; filename="${p.filename.replace(/[\r\n]/g, '_')}"` : ''
        }`;
        chunks.push(
          Buffer.from(
            `--${boundary}${eol}Content-Disposition: ${disposition}${eol}${
              p.type ? `Content-Type: ${p.type}${eol}` : ''
            }${eol}`,
          ),
          p.data,
          Buffer.from(eol),
        );
      }
      if (damage !== 'no-final') chunks.push(Buffer.from(`--${boundary}--${eol}`));
      let body = Buffer.concat(chunks);
      if (damage === 'truncated') body = body.subarray(0, Math.floor(body.length / 2));
      const declared = damage === 'wrong-boundary' ? 'other' : boundary;
      return { contentType: `multipart/form-data; boundary=${declared}`, body };
    });
}

/** Printable-ASCII header values (what an HTTP client can send) for the headers we parse. */
export const hostileHeaders: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.constantFrom(
    'x-pixpool-map-version',
    'x-pixpool-version',
    'x-pixpool-if-version',
    'x-pixpool-modified',
    'if-none-match',
    'if-modified-since',
    'accept',
    'range',
    'accept-encoding',
  ),
  hostileString.map((s) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 2000)),
  { maxKeys: 3 },
);

/** Which credentials a fuzzed request carries: mostly the right ones, so handlers are reached. */
export type Credentials = 'right' | 'none' | 'wrong' | 'other-token';

export function authHeader(
  access: RouteRecord['access'],
  credentials: Credentials,
  tokens: { secret: string; admin: string; wrong: string },
): Record<string, string> {
  if (credentials === 'none') return {};
  if (credentials === 'wrong') return { authorization: `Bearer ${tokens.wrong}` };
  const right = access === 'admin' ? tokens.admin : tokens.secret;
  const other = access === 'admin' ? tokens.secret : tokens.admin;
  return { authorization: `Bearer ${credentials === 'right' ? right : other}` };
}
