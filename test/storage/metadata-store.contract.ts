/**
 * The behaviour every MetadataStore must have, run on SQLite and on a real PostgreSQL, each test
 * on a fresh, empty database (or schema). The concurrency case is the one the originals got wrong
 * with table locks: racing uploads of one key must each replace exactly one object.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ImageUpload, MetadataStore } from '../../src/storage/metadata-store.ts';
import { newObjectName } from '../../src/storage/object-store.ts';

export type MetadataStoreFactory = () => Promise<MetadataStore>;

export function upload(key: string, bytes = `bytes of ${key}`): ImageUpload {
  return {
    key,
    object: newObjectName(key),
    contentType: 'image/png',
    size: Buffer.byteLength(bytes),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

async function collect(items: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** Code-point (UTF-8 byte) order, which is how the database sorts keys. */
const byCodePoint = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function withStore(open: MetadataStoreFactory, fn: (store: MetadataStore) => Promise<void>) {
  const store = await open();
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

async function commitAll(store: MetadataStore, keys: string[]): Promise<void> {
  for (const key of keys) await store.commit(upload(key));
}

export function metadataStoreContract(name: string, open: MetadataStoreFactory): void {
  describe(`${name} metadata store contract`, () => {
    it('answers undefined for an unknown key, and a full record once committed', () =>
      withStore(open, async (store) => {
        assert.equal(await store.get('cat'), undefined);
        const up = upload('cat');
        const before = Date.now();
        const { record, previousObject } = await store.commit(up);
        assert.equal(previousObject, undefined);
        assert.deepEqual(
          { ...record, version: 0, createdAt: 0, updatedAt: 0 },
          {
            ...up,
            version: 0,
            createdAt: 0,
            updatedAt: 0,
          },
        );
        assert.ok(Number.isSafeInteger(record.version) && record.version > 0);
        assert.ok(record.createdAt instanceof Date);
        assert.ok(Math.abs(record.createdAt.getTime() - before) < 60_000);
        assert.deepEqual(await store.get('cat'), record);
        assert.equal(await store.get('Cat'), undefined, 'keys are case-sensitive');
      }));

    it('replaces a committed key with a higher version and reports the object it replaced', () =>
      withStore(open, async (store) => {
        const first = await store.commit(upload('k', 'one'));
        const second = await store.commit({ ...upload('k', 'second'), contentType: 'image/gif' });
        assert.equal(second.previousObject, first.record.object);
        assert.ok(second.record.version > first.record.version);
        assert.equal(second.record.contentType, 'image/gif');
        assert.equal(second.record.size, 6);
        assert.deepEqual(second.record.createdAt, first.record.createdAt);
        assert.ok(second.record.updatedAt >= first.record.updatedAt);
        assert.deepEqual(await store.get('k'), second.record);
        // The same object committed again (a retried request) must not be reported as replaced.
        const again = await store.commit({
          ...upload('k', 'second'),
          object: second.record.object,
        });
        assert.equal(again.previousObject, undefined);
        assert.ok(again.record.version > second.record.version);
      }));

    it('gives 20 racing commits of one key 20 versions, each replacing the one before', () =>
      withStore(open, async (store) => {
        const uploads = Array.from({ length: 20 }, (_, i) => upload('hot', `image ${i}`));
        const results = await Promise.all(uploads.map((up) => store.commit(up)));
        const inOrder = results.toSorted((a, b) => a.record.version - b.record.version);
        assert.equal(new Set(results.map((r) => r.record.version)).size, 20);
        assert.equal(inOrder[0]?.previousObject, undefined);
        for (let i = 1; i < inOrder.length; i++) {
          assert.equal(inOrder[i]?.previousObject, inOrder[i - 1]?.record.object);
        }
        const final = await store.get('hot');
        assert.equal(final?.object, inOrder.at(-1)?.record.object);
        const reported = results.flatMap((r) => (r.previousObject ? [r.previousObject] : []));
        assert.deepEqual(
          [...reported, final?.object].toSorted(),
          uploads.map((up) => up.object).toSorted(),
          'every object is either current or reported replaced, exactly once',
        );
      }));

    it('lists 250 keys in pages of 100, each key once and in order', () =>
      withStore(open, async (store) => {
        const keys = Array.from({ length: 250 }, (_, i) => `key-${String(i).padStart(3, '0')}`);
        await commitAll(store, keys.toReversed());
        const seen: string[] = [];
        const sizes: number[] = [];
        let after: string | undefined;
        do {
          const page = await store.listKeys({ limit: 100, after });
          seen.push(...page.keys);
          sizes.push(page.keys.length);
          after = page.next;
        } while (after !== undefined);
        assert.deepEqual(sizes, [100, 100, 50]);
        assert.deepEqual(seen, keys);
        const exact = await store.listKeys({ limit: 250 });
        assert.equal(exact.next, undefined, 'a page that holds the rest has no next');
      }));

    it('matches prefix and contains literally, % _ and \\ included', () =>
      withStore(open, async (store) => {
        await commitAll(store, ['a%b', 'axb', 'a_c', 'abc', 'a\\d', 'ad', 'x%y', 'zz']);
        const list = async (filter: { prefix?: string; contains?: string }) =>
          (await store.listKeys({ ...filter, limit: 1000 })).keys;
        assert.deepEqual(await list({ prefix: 'a%' }), ['a%b']);
        assert.deepEqual(await list({ prefix: 'a_' }), ['a_c']);
        assert.deepEqual(await list({ prefix: 'a\\' }), ['a\\d']);
        assert.deepEqual(await list({ contains: '%' }), ['a%b', 'x%y']);
        assert.deepEqual(await list({ contains: '_' }), ['a_c']);
        assert.deepEqual(await list({ prefix: 'a', contains: 'b' }), ['a%b', 'abc', 'axb']);
        assert.deepEqual(await list({ prefix: '' }), await list({}));
        assert.equal(await store.countKeys({ prefix: 'a' }), 6);
        assert.equal(await store.countKeys({ contains: '%' }), 2);
        assert.equal(await store.countKeys({ prefix: 'a_' }), 1);
        assert.equal(await store.countKeys(), 8);
        // Text from a query string may hold a NUL, which PostgreSQL text cannot: no match, no error.
        assert.deepEqual(await list({ prefix: 'a\0' }), []);
        assert.equal(await store.countKeys({ contains: '\0' }), 0);
        assert.deepEqual(
          (await store.listKeys({ limit: 2, after: 'a\\d\0zz' })).keys,
          (await store.listKeys({ limit: 2, after: 'a\\d' })).keys,
        );
        // Case-sensitive, and other engines' wildcards are plain characters too.
        assert.deepEqual(await list({ prefix: 'A' }), []);
        assert.equal(await store.countKeys({ contains: 'ZZ' }), 0);
        await commitAll(store, ['g*1', 'g?2', 'g[3]', 'g3']);
        assert.deepEqual(await list({ prefix: 'g*' }), ['g*1']);
        assert.deepEqual(await list({ contains: '?' }), ['g?2']);
        assert.deepEqual(await list({ contains: '[3' }), ['g[3]']);
        assert.deepEqual(await list({ contains: '3]' }), ['g[3]']);
        assert.deepEqual(await list({ prefix: 'g' }), ['g*1', 'g3', 'g?2', 'g[3]']);
      }));

    it('keeps unicode keys intact and sorts them by code point', () =>
      withStore(open, async (store) => {
        const keys = ['ünïcødé', '日本語のキー', '🐱cat', 'Zebra', 'apple', 'émoji-😀', 'ｆｕｌｌ'];
        await commitAll(store, keys);
        for (const key of keys) assert.equal((await store.get(key))?.key, key);
        const { keys: listed } = await store.listKeys({ limit: 10 });
        assert.deepEqual(listed, keys.toSorted(byCodePoint));
        assert.deepEqual((await store.listKeys({ prefix: '🐱', limit: 10 })).keys, ['🐱cat']);
        assert.deepEqual((await store.listKeys({ contains: '本', limit: 10 })).keys, [
          '日本語のキー',
        ]);
      }));

    it('refuses a limit outside 1..1000 with a TypeError', () =>
      withStore(open, async (store) => {
        for (const limit of [0, -1, 1001, 1.5, Number.NaN]) {
          await assert.rejects(store.listKeys({ limit }), TypeError, String(limit));
        }
        assert.deepEqual(await store.listKeys({ limit: 1000 }), { keys: [], next: undefined });
      }));

    it('deletes all rows, returns their objects, and keeps versions growing afterwards', () =>
      withStore(open, async (store) => {
        assert.deepEqual(await store.deleteAll(), { rows: 0, objects: [] });
        const first = await Promise.all(['a', 'b', 'c'].map((k) => store.commit(upload(k))));
        const last = await store.commit(upload('a'));
        const highest = Math.max(last.record.version, ...first.map((r) => r.record.version));
        const { rows, objects } = await store.deleteAll();
        assert.equal(rows, 3);
        assert.deepEqual(
          objects.toSorted(),
          [last.record.object, first[1]?.record.object, first[2]?.record.object].toSorted(),
        );
        assert.equal(await store.countKeys(), 0);
        assert.equal(await store.get('a'), undefined);
        assert.deepEqual(await collect(store.referencedObjects()), []);
        const again = await store.commit(upload('a'));
        assert.equal(again.previousObject, undefined);
        assert.ok(again.record.version > highest, 'a re-uploaded key must not reuse a version');
      }));

    it('yields every referenced object, past its internal page size', () =>
      withStore(open, async (store) => {
        const committed = await Promise.all(
          Array.from({ length: 1005 }, (_, i) => store.commit(upload(`k${i}`))),
        );
        await store.commit(upload('k0'));
        const current = await store.get('k0');
        const expected = committed.slice(1).map((r) => r.record.object);
        expected.push(current?.object as string);
        assert.deepEqual(
          (await collect(store.referencedObjects())).toSorted(),
          expected.toSorted(),
        );
      }));
  });
}
