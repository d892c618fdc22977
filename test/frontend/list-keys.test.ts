/**
 * POST /api/list_keys over real sockets and a real (in-memory SQLite) database holding many
 * keys: the streamed full listing (no limit) must be exactly what the originals' collect-all
 * answer was — JSON.stringify({success: 'true', keys}) byte for byte — and equal the keyset pages
 * walked with limit and cursor, across page boundaries, with a prefix, with unicode keys.
 *
 * The rows are inserted with SQL (not uploaded): listing reads the rows only, and 25k uploads
 * would take minutes. A store that fails on its Nth page shows what a mid-stream failure does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import type { SqlDriver } from '../../src/storage/sql-driver.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { type ApiBody, startFrontend, type TestFrontend } from '../helpers/frontend.ts';

const post = async (url: string) => {
  const response = await fetch(url, { method: 'POST' });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    text: await response.text(),
  };
};

/** 25,000+ keys: ASCII, accented, Cyrillic, CJK, astral emoji, quotes and backslashes. */
function manyKeys(): string[] {
  const keys: string[] = [];
  for (let i = 0; i < 20_000; i++) keys.push(`k${String(i).padStart(5, '0')}`);
  for (let i = 0; i < 2500; i++) keys.push(`é-${i}`, `ключ-${i}`);
  for (let i = 0; i < 1200; i++) keys.push(`😀${i}`, `画像-${i}`);
  for (let i = 0; i < 300; i++) keys.push(`"q${i}"`, `back\\slash${i}`, `<${i}>&`, `\u2028x${i}`);
  return keys;
}

/** Code point order, which is how the key column (COLLATE "C") sorts. */
const byCodePoint = (a: string, b: string) => {
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  }
  return x.length - y.length;
};

async function insertKeys(driver: SqlDriver, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 5000) {
    // Versions i + 1, i + 2, …: the counter is set past them below, as commits would leave it.
    await driver.query(
      `INSERT INTO images (key, object, content_type, size, sha256, version)
       SELECT j.value, 'obj-' || j.value, 'image/png', 1, 'x', $2 + j.key FROM json_each($1) AS j`,
      [JSON.stringify(keys.slice(i, i + 5000)), i + 1],
    );
  }
  await driver.query('UPDATE image_versions SET value = $1', [keys.length]);
}

/** Every key via the paged form (limit=1000 and the cursor), as a client would walk it. */
async function walkPages(url: string, query: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const c = cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const answer = await post(`${url}/api/list_keys?limit=1000${query}${c}`);
    assert.equal(answer.status, 200, answer.text);
    const body = JSON.parse(answer.text) as ApiBody;
    keys.push(...body.keys);
    if (body.next === undefined) return keys;
    cursor = body.next;
  }
  throw new Error('more than 1000 pages');
}

describe('list_keys streams the full listing, equal to the pages', () => {
  let fe: TestFrontend;
  let driver: SqlDriver;
  let metadata: MetadataStore;
  const keys = manyKeys().sort(byCodePoint);
  before(async () => {
    driver = createSqliteDriver();
    metadata = await createMetadataStore(driver);
    await insertKeys(driver, keys);
    fe = await startFrontend({ metadata });
  });
  after(async () => {
    await fe.close();
    await metadata.close();
  });

  it('every key, streamed: byte-identical to the collect-all answer and to the pages', async () => {
    const full = await post(`${fe.url}/api/list_keys`);
    assert.equal(full.status, 200);
    assert.equal(full.type, 'application/json; charset=utf-8');
    assert.equal(full.text, JSON.stringify({ success: 'true', keys }));
    assert.deepEqual(await walkPages(fe.url, ''), keys);
  });

  it('with a prefix (unicode too) and with a starting cursor, the stream equals the pages', async () => {
    for (const prefix of ['k1', 'ключ-1', '😀', '"q', 'back\\', 'k%', 'k_', 'zzz']) {
      const q = `&prefix=${encodeURIComponent(prefix)}`;
      const expected = keys.filter((k) => k.startsWith(prefix));
      const full = await post(`${fe.url}/api/list_keys?${q.slice(1)}`);
      assert.equal(full.status, 200);
      assert.equal(full.text, JSON.stringify({ success: 'true', keys: expected }), prefix);
      assert.deepEqual(await walkPages(fe.url, q), expected, prefix);
    }
    const cursor = keys[12_345] as string;
    const rest = await post(`${fe.url}/api/list_keys?cursor=${encodeURIComponent(cursor)}`);
    assert.equal(rest.text, JSON.stringify({ success: 'true', keys: keys.slice(12_346) }));
    const end = await post(
      `${fe.url}/api/list_keys?cursor=${encodeURIComponent(keys.at(-1) as string)}`,
    );
    assert.equal(end.text, '{"success":"true","keys":[]}');
  });

  it('bad limit, cursor or prefix gets a 400 envelope', async () => {
    const long = 'x'.repeat(129);
    for (const query of [
      'limit=0',
      'limit=1001',
      'limit=1.5',
      'limit=abc',
      'limit=',
      'limit=1e2',
      'limit=5&limit=6',
      'prefix=a&prefix=b',
      'cursor=a&cursor=b',
      `cursor=${long}`,
      `prefix=${long}`,
    ]) {
      const answer = await post(`${fe.url}/api/list_keys?${query}`);
      assert.equal(answer.status, 400, query);
      const body = JSON.parse(answer.text) as ApiBody;
      assert.equal(body.success, 'false', query);
      assert.equal(body.error.code, 400, query);
      assert.match(body.error.message, /limit|prefix|cursor/, query);
    }
  });
});

describe('list_keys when the database fails', () => {
  let driver: SqlDriver;
  let metadata: MetadataStore;
  before(async () => {
    driver = createSqliteDriver();
    metadata = await createMetadataStore(driver);
    await insertKeys(driver, manyKeys().slice(0, 5000));
  });
  after(() => metadata.close());

  /** The real store, except that its `failOn`th listKeys call fails. */
  const failingOn = (failOn: number): MetadataStore => {
    let calls = 0;
    return {
      ...metadata,
      listKeys: (options) => {
        calls++;
        return calls === failOn
          ? Promise.reject(new Error('connection lost'))
          : metadata.listKeys(options);
      },
    };
  };

  it('on the first page: a 5xx envelope; later: the answer is cut short, never a whole JSON', async () => {
    const early = await startFrontend({ metadata: failingOn(1) });
    try {
      const answer = await post(`${early.url}/api/list_keys`);
      assert.ok(answer.status >= 500, String(answer.status));
      assert.equal((JSON.parse(answer.text) as ApiBody).success, 'false');
    } finally {
      await early.close();
    }
    const late = await startFrontend({ metadata: failingOn(3) });
    try {
      const response = await fetch(`${late.url}/api/list_keys`, { method: 'POST' });
      assert.equal(response.status, 200, 'the status went out with the first page');
      // undici rejects a chunked body that ends without its last chunk.
      await assert.rejects(response.text());
      // The frontend still answers afterwards.
      const page = await post(`${late.url}/api/list_keys?limit=2`);
      assert.equal(page.status, 200);
    } finally {
      await late.close();
    }
  });
});
