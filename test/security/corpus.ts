/**
 * The hand-written corpus of nasty requests (issue 8): what a fuzzer is unlikely to stumble on —
 * forged and hostile images, precise multipart damage, traversal in keys, forged entry batches,
 * out-of-range settings — each with the answer it must get. Cases marked `regression` are bugs
 * found while building this suite (by the fuzzer, or by this corpus), kept so they stay fixed.
 *
 * Keys uploaded here are new keys (`corpus-…`): the seeded data must stay unchanged.
 */
import assert from 'node:assert/strict';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { type RawAnswer, sendRaw } from './fuzz-kit.ts';
import type { ServiceName, System } from './services.ts';

export interface CorpusCase {
  name: string;
  service: ServiceName;
  method: string;
  /** Sent byte for byte. */
  path: string;
  auth?: 'secret' | 'admin';
  headers?: Record<string, string>;
  contentType?: string;
  /** An object is sent as JSON. */
  body?: Buffer | string | object;
  /** The statuses it may get. */
  expect: number[];
  regression?: boolean;
  /** Further checks on the answer and the system after it. */
  check?: (answer: RawAnswer, system: System) => Promise<void> | void;
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG whose header claims width × height (a decompression-bomb shape), and no pixels. */
export function bombPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write('IHDR', 4, 'latin1');
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr.writeUInt8(8, 16); // bit depth
  ihdr.writeUInt8(6, 17); // RGBA
  return Buffer.concat([PNG_MAGIC, ihdr, Buffer.alloc(64, 0)]);
}

export const SCRIPTED_SVG = Buffer.from(
  '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="document.documentElement.setAttribute(\'data-ran\',\'onload\')"><script>document.documentElement.setAttribute("data-ran","script")</script><rect width="10" height="10"/></svg>',
);

interface Part {
  name: string;
  filename?: string;
  type?: string;
  data: Buffer | string;
}

/** A multipart body, optionally damaged; returns its content type too. */
export function multipart(
  parts: Part[],
  damage: 'none' | 'truncated' | 'no-final' | 'wrong-boundary' = 'none',
): { contentType: string; body: Buffer } {
  const boundary = 'corpusBoundary42';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const file = p.filename !== undefined ? `; filename="${p.filename}"` : '';
    const type = p.type ? `\r\nContent-Type: ${p.type}` : '';
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${file}${type}\r\n\r\n`,
      ),
      Buffer.from(p.data),
      Buffer.from('\r\n'),
    );
  }
  if (damage !== 'no-final') chunks.push(Buffer.from(`--${boundary}--\r\n`));
  let body = Buffer.concat(chunks);
  if (damage === 'truncated') body = body.subarray(0, body.length - 30);
  const declared = damage === 'wrong-boundary' ? 'anotherBoundary' : boundary;
  return { contentType: `multipart/form-data; boundary=${declared}`, body };
}

const upload = (
  name: string,
  parts: Part[],
  expect: number[],
  extra: Partial<CorpusCase> = {},
  damage: Parameters<typeof multipart>[1] = 'none',
): CorpusCase => {
  const { contentType, body } = multipart(parts, damage);
  return {
    name,
    service: 'frontend',
    method: 'POST',
    path: '/api/upload',
    contentType,
    body,
    expect,
    ...extra,
  };
};

/** After an upload was accepted: the image is served byte-exact, typed and sandboxed. */
const servedSafely =
  (key: string, bytes: Buffer, type: string) => async (_answer: RawAnswer, system: System) => {
    // Every byte percent-encoded, so no client normalises `..` away before it is sent.
    const path = `/images/${[...Buffer.from(key)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`;
    const response = await sendRaw(system.services.frontend.url, {
      method: 'GET',
      path,
      headers: {},
    });
    assert.equal(response.status, 200, key);
    assert.equal(response.headers['content-type'], type, key);
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.match(
      String(response.headers['content-security-policy']),
      /default-src 'none'.*sandbox/,
    );
    assert.ok(response.bytes.equals(bytes), `${key} byte-exact`);
  };

const refusedWithMessage = (pattern: RegExp) => (answer: RawAnswer) => {
  assert.match(answer.body?.error?.message ?? '', pattern);
};

/** An entry-batch frame whose value length claims `claimed` bytes but carries `carried`. */
function forgedBatch(claimed: number, carried: number): Buffer {
  const header = Buffer.from(JSON.stringify({ k: 'forged', t: 'image/png', v: 1 }));
  const frame = Buffer.alloc(4 + header.length + 4);
  frame.writeUInt32BE(header.length, 0);
  header.copy(frame, 4);
  frame.writeUInt32BE(claimed, 4 + header.length);
  return Buffer.concat([frame, Buffer.alloc(carried, 1)]);
}

const html = Buffer.from('<!doctype html><html><script>alert(document.cookie)</script></html>');
const gifPolyglot = Buffer.concat([
  Buffer.from('GIF89a'),
  Buffer.from('<script>alert(1)</script>'),
]);
const forgedPng = Buffer.concat([PNG_MAGIC, Buffer.from('this is not a png at all')]);
const bomb = bombPng(100_000, 100_000);
const png = Buffer.concat([PNG_MAGIC, Buffer.alloc(100, 3)]);

export const CORPUS: CorpusCase[] = [
  // Forged and hostile images: recognised by bytes, stored as bytes, served typed and sandboxed.
  upload(
    'PNG magic and garbage is a PNG by its bytes: stored, served as image/png',
    [
      { name: 'key', data: 'corpus-forged-png' },
      { name: 'file', filename: 'x.png', type: 'image/png', data: forgedPng },
    ],
    [200],
    { check: servedSafely('corpus-forged-png', forgedPng, 'image/png') },
  ),
  upload(
    'HTML claiming to be image/png is refused',
    [
      { name: 'key', data: 'corpus-html' },
      { name: 'file', filename: 'x.png', type: 'image/png', data: html },
    ],
    [400, 415],
    {
      check: async (answer, system) => {
        refusedWithMessage(/PNG|image/i)(answer);
        assert.equal(await system.metadata.get('corpus-html'), undefined);
      },
    },
  ),
  upload(
    'an SVG with <script> and onload is stored and served only under a sandbox CSP',
    [
      { name: 'key', data: 'corpus-scripted-svg' },
      { name: 'file', filename: 'x.svg', type: 'image/svg+xml', data: SCRIPTED_SVG },
    ],
    [200],
    { check: servedSafely('corpus-scripted-svg', SCRIPTED_SVG, 'image/svg+xml') },
  ),
  upload(
    'a PNG header claiming 100000×100000 is stored as bytes (never decoded here)',
    [
      { name: 'key', data: 'corpus-bomb' },
      { name: 'file', filename: 'bomb.png', data: bomb },
    ],
    [200],
    { check: servedSafely('corpus-bomb', bomb, 'image/png') },
  ),
  upload(
    'a GIF/HTML polyglot is served as image/gif with nosniff',
    [
      { name: 'key', data: 'corpus-polyglot' },
      { name: 'file', filename: 'x.html', type: 'text/html', data: gifPolyglot },
    ],
    [200],
    { check: servedSafely('corpus-polyglot', gifPolyglot, 'image/gif') },
  ),
  upload(
    'an empty file is refused',
    [
      { name: 'key', data: 'corpus-empty' },
      { name: 'file', filename: 'x.png', data: '' },
    ],
    [400, 415],
  ),
  // Multipart damage.
  upload('no key field', [{ name: 'file', filename: 'x.png', data: png }], [400], {
    check: refusedWithMessage(/no "key" field/),
  }),
  upload('no file', [{ name: 'key', data: 'corpus-nofile' }], [400], {
    check: refusedWithMessage(/no file/),
  }),
  upload(
    'a "file" part without a filename is a field, not a file',
    [
      { name: 'key', data: 'corpus-nofilename' },
      { name: 'file', data: png },
    ],
    [400],
  ),
  upload(
    'two files',
    [
      { name: 'key', data: 'corpus-two' },
      { name: 'file', filename: 'a.png', data: png },
      { name: 'file', filename: 'b.png', data: png },
    ],
    [400],
  ),
  upload(
    'the key sent twice is ambiguous and refused',
    [
      { name: 'key', data: 'corpus-dup-a' },
      { name: 'key', data: 'corpus-dup-b' },
      { name: 'file', filename: 'a.png', data: png },
    ],
    [400],
    {
      regression: true,
      check: async (_a, system) => {
        assert.equal(await system.metadata.get('corpus-dup-a'), undefined);
        assert.equal(await system.metadata.get('corpus-dup-b'), undefined);
      },
    },
  ),
  upload('a file in the key field', [{ name: 'key', filename: 'k.png', data: png }], [400]),
  upload(
    'a truncated body',
    [
      { name: 'key', data: 'corpus-truncated' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [400],
    {},
    'truncated',
  ),
  upload(
    'no final boundary',
    [
      { name: 'key', data: 'corpus-nofinal' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [400],
    {},
    'no-final',
  ),
  upload(
    'a boundary that is not the declared one',
    [
      { name: 'key', data: 'corpus-wrongb' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [400],
    {},
    'wrong-boundary',
  ),
  {
    name: 'multipart without a boundary',
    service: 'frontend',
    method: 'POST',
    path: '/api/upload',
    contentType: 'multipart/form-data',
    body: 'x',
    expect: [400],
  },
  {
    name: 'an upload sent as JSON',
    service: 'frontend',
    method: 'POST',
    path: '/api/upload',
    body: { key: 'corpus-json', file: png.toString('base64') },
    expect: [400, 415],
  },
  // Keys: traversal and tricks never reach the object store (objects have generated names).
  upload(
    'a key with a slash (traversal) is refused',
    [
      { name: 'key', data: '../../etc/passwd' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [400],
    { check: refusedWithMessage(/slash/) },
  ),
  upload(
    'a key with a NUL is refused',
    [
      { name: 'key', data: 'corpus\u0000nul' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [400],
  ),
  upload(
    'a key with an RTL override is refused (invisible)',
    [
      { name: 'key', data: 'corpus\u202egnp' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [400],
  ),
  upload(
    'a 129-character key is refused',
    [
      { name: 'key', data: 'k'.repeat(129) },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [400],
  ),
  upload(
    'the key ".." is a key like any other (no path is built from it)',
    [
      { name: 'key', data: '..' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [200],
    { check: servedSafely('..', png, 'image/png') },
  ),
  upload(
    'a key with a backslash and percent signs is a key like any other',
    [
      { name: 'key', data: '..\\..\\%2e%2e' },
      { name: 'file', filename: 'x.png', data: png },
    ],
    [200],
    { check: servedSafely('..\\..\\%2e%2e', png, 'image/png') },
  ),
  ...[
    ['/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd', [400]],
    ['/images/..%2f..%2f', [400]],
    ['/images/%252e%252e%252f', [404]],
    ['/images/..%5c..%5cwindows', [404]],
    ['/images/%00', [400]],
    ['/images/%ED%A0%80', [400]],
    ['/images/%E2%80%AE', [400]],
    ['/images/%', [400]],
    ['/images/%zz', [400]],
    ['/images/../../../../etc/passwd', [404]],
    ['/images/..', [200]],
    [`/images/${'%41'.repeat(3000)}`, [414]],
    [`/images/${'a'.repeat(20_000)}`, [431]],
    // Image variant parameters are checked before the key is looked up.
    ['/images/a?'.concat('x='.repeat(3000)), [400]],
    ['/images/a?w=256&w=512', [400]],
    ['/images/a?w=1e3', [400]],
    ['/images/a?format=svg', [400]],
    ['/images/a?w=256', [404]],
  ].map(([path, expect]) => ({
    name: `GET ${String(path).slice(0, 60)}`,
    service: 'frontend' as const,
    method: 'GET',
    path: path as string,
    expect: expect as number[],
    regression: String(path).includes('%41') || String(path).includes('%ED'),
  })),
  {
    name: 'HEAD with an overlong URL gets a 431 without a body',
    service: 'frontend',
    method: 'HEAD',
    path: `/images/${'a'.repeat(20_000)}`,
    expect: [431],
    regression: true,
  },
  {
    name: 'list_keys with a limit out of range',
    service: 'frontend',
    method: 'POST',
    path: '/api/list_keys?limit=-1',
    expect: [400],
  },
  {
    name: 'list_keys with LIKE wildcards in the prefix (taken literally)',
    service: 'frontend',
    method: 'POST',
    path: '/api/list_keys?prefix=%25_%25&limit=5',
    expect: [200],
    check: (answer) => assert.deepEqual(answer.body.keys, []),
  },
  {
    name: 'notify with a view naming an unknown owner',
    service: 'frontend',
    method: 'POST',
    path: '/api/notify',
    auth: 'secret',
    body: {
      map: { ...createPoolMap(['a'], 'balanced', 50), owner: Array(16).fill('b') },
      addresses: { a: 'http://127.0.0.1:1' },
    },
    expect: [400],
  },
  // Cache node.
  {
    name: 'an entry batch claiming a 4 GiB value is refused without allocating it',
    service: 'cache-node',
    method: 'POST',
    path: '/v1/import',
    auth: 'secret',
    contentType: 'application/x-pixpool-entries',
    body: forgedBatch(0xffffffff, 10),
    expect: [400, 413],
  },
  {
    name: 'an entry batch cut mid-value is refused',
    service: 'cache-node',
    method: 'POST',
    path: '/v1/import',
    auth: 'secret',
    contentType: 'application/x-pixpool-entries',
    body: forgedBatch(100, 10),
    expect: [400],
  },
  ...[
    { capacity: 'abc' },
    { capacity: -1 },
    { capacity: 0 },
    { capacity: 1e12 },
    { capacity: true },
    { capacity: [1] },
    { replacement_policy: 'FIFO' },
    { replacement_policy: { $ne: 1 } },
    {},
  ].map((body) => ({
    name: `node config ${JSON.stringify(body)}`,
    service: 'cache-node' as const,
    method: 'POST',
    path: '/api/cache/config',
    auth: 'secret' as const,
    body,
    expect: [400],
  })),
  ...[
    { moves: [null] },
    { moves: 'x' },
    { moves: [] },
    { to: 'http://127.0.0.1:1', regions: [16] },
    { to: 'http://127.0.0.1:1', regions: [-1, 0.5] },
    { to: 'http://127.0.0.1:1', keys: [1, 2] },
    { to: 'http://127.0.0.1:1' },
    { dest: 'x' },
    { dest: { 'http://127.0.0.1:1': 'k' } },
  ].map((body) => ({
    name: `move_keys ${JSON.stringify(body)}`,
    service: 'cache-node' as const,
    method: 'POST',
    path: '/api/cache/move_keys',
    auth: 'secret' as const,
    body,
    expect: [400],
  })),
  {
    name: 'a seed value that is a data URL of HTML is stored as bytes, never interpreted',
    service: 'cache-node',
    method: 'POST',
    path: '/api/cache/content',
    auth: 'secret',
    body: { key: 'corpus-node-html', value: `data:text/html;base64,${html.toString('base64')}` },
    expect: [200],
  },
  {
    name: 'an HTML value stored on a node (the secret holder says text/html)',
    service: 'cache-node',
    method: 'PUT',
    path: '/v1/entries/corpus-node-page',
    auth: 'secret',
    contentType: 'text/html',
    body: html,
    expect: [204],
  },
  {
    name: 'is served back sandboxed and unsniffed, never as a live page',
    service: 'cache-node',
    method: 'GET',
    path: '/v1/entries/corpus-node-page',
    auth: 'secret',
    expect: [200],
    regression: true,
    check: (answer) => {
      assert.equal(answer.headers['content-type'], 'text/html');
      assert.equal(answer.headers['x-content-type-options'], 'nosniff');
      assert.match(String(answer.headers['content-security-policy']), /sandbox/);
    },
  },
  {
    name: 'a pool view whose previous owners are the wrong length',
    service: 'cache-node',
    method: 'POST',
    path: '/v1/pool-view',
    auth: 'secret',
    body: {
      map: createPoolMap(['a'], 'balanced', 50),
      addresses: { a: 'http://127.0.0.1:1' },
      previous: ['a'],
    },
    expect: [400],
  },
  {
    name: 'a PUT with a content type that is not a type',
    service: 'cache-node',
    method: 'PUT',
    path: '/v1/entries/corpus-ct',
    auth: 'secret',
    contentType: 'x',
    body: png,
    expect: [400, 415],
  },
  // Manager.
  ...[
    { max_miss_rate_threshold: 'abc' },
    { max_miss_rate_threshold: 2 },
    { min_miss_rate_threshold: -0.1 },
    { expand_ratio: 0.5 },
    { shrink_ratio: 3 },
    { max_miss_rate_threshold: 0.1, min_miss_rate_threshold: 0.9 },
    { expand_ratio: 'NaN' },
  ].map((body) => ({
    name: `automatic mode with ${JSON.stringify(body)}`,
    service: 'manager' as const,
    method: 'POST',
    path: '/api/manager/poolsize/automatic',
    auth: 'admin' as const,
    body,
    expect: [400],
  })),
  ...(
    [
      ...[
        '/api/configure_cache?numNodes=9',
        '/api/configure_cache?numNodes=0',
        '/api/configure_cache?numNodes=1.5',
        '/api/configure_cache?numNodes=abc',
        '/api/configure_cache?cacheSize=-1',
        '/api/configure_cache?policy=FIFO',
        '/api/configure_cache?mode=evil',
        '/api/getRate?rate=evil',
        '/api/manager/events?limit=0',
        '/api/manager/events?limit=1e9',
      ].map((path) => ['manager', path]),
      // The course API relayed by the frontend (frontend/course-api.ts): the manager's answers.
      ...[
        '/api/configure_cache?numNodes=9',
        '/api/configure_cache?policy=FIFO',
        '/api/getRate?rate=evil',
      ].map((path) => ['frontend', path]),
    ] as ['manager' | 'frontend', string][]
  ).map(([service, path]) => ({
    name: `${service} ${path}`,
    service,
    method: path.includes('events') ? 'GET' : 'POST',
    path,
    auth: 'admin' as const,
    expect: [400],
  })),
  ...[{ change: 'increase ' }, { change: ['increase'] }, { change: { toString: 'increase' } }].map(
    (body) => ({
      name: `manual resize ${JSON.stringify(body)}`,
      service: 'manager' as const,
      method: 'POST',
      path: '/api/manager/poolsize/manual',
      auth: 'admin' as const,
      body,
      expect: [400],
    }),
  ),
  {
    name: 'a statistics post with 1001 samples',
    service: 'manager',
    method: 'POST',
    path: '/api/manager/samples',
    auth: 'secret',
    body: { node_id: 'n', samples: Array(1001).fill({}) },
    expect: [400],
  },
  {
    name: 'a statistics post with negative counters',
    service: 'manager',
    method: 'POST',
    path: '/api/manager/samples',
    auth: 'secret',
    body: { node_id: 'n', samples: [{ gets: -1 }] },
    expect: [400],
  },
  {
    name: 'a decision whose numbers do not follow from its state',
    service: 'manager',
    method: 'POST',
    path: '/api/manager/autoscaler/decisions',
    auth: 'admin',
    body: { state: { forged: true }, outcome: 'grow', target_size: 8 },
    expect: [400],
  },
  // Autoscaler.
  {
    name: 'autoscaler POST /status',
    service: 'autoscaler',
    method: 'POST',
    path: '/status',
    expect: [404],
  },
  {
    name: 'autoscaler traversal',
    service: 'autoscaler',
    method: 'GET',
    path: '/status/../../etc/passwd',
    expect: [404],
  },
];
