/**
 * The behaviour every ObjectStore must have, run by each backend's test file against the real
 * thing (a temp folder, an s3rver). Listing and delete-all go past one S3 page (1000 names),
 * which is where the originals lost objects.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { forEachLimited, newObjectName, type ObjectStore } from '../../src/storage/object-store.ts';

export type ObjectStoreFactory = () => Promise<ObjectStore>;

/** More names than one ListObjectsV2 page holds. */
export const MANY_OBJECTS = 1100;

async function collect<T>(names: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const name of names) all.push(name);
  return all;
}

async function withStore(open: ObjectStoreFactory, fn: (store: ObjectStore) => Promise<void>) {
  const store = await open();
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

export function objectStoreContract(name: string, open: ObjectStoreFactory): void {
  describe(`${name} object store contract`, () => {
    it('returns the stored bytes exactly, from 1 byte to 5 MB', () =>
      withStore(open, async (store) => {
        const tiny = newObjectName('tiny');
        const big = newObjectName('big');
        const bigBytes = randomBytes(5 * 1024 * 1024);
        await store.put(tiny, Buffer.from([0]), 'image/png');
        await store.put(big, bigBytes, 'image/jpeg');
        assert.deepEqual(await store.get(tiny), Buffer.from([0]));
        const read = await store.get(big);
        assert.ok(read);
        assert.equal(read.length, bigBytes.length);
        assert.ok(read.equals(bigBytes), 'the 5 MB object came back changed');
      }));

    it('returns the bytes it holds whatever size the caller expects', () =>
      withStore(open, async (store) => {
        const name = newObjectName('sized');
        const bytes = randomBytes(100 * 1024);
        await store.put(name, bytes, 'image/png');
        for (const size of [bytes.length, 0, 1, bytes.length - 1, bytes.length + 1, 1e9]) {
          const read = await store.get(name, size);
          assert.ok(read?.equals(bytes), `get with size ${size} did not return the object`);
        }
        const empty = newObjectName('empty');
        await store.put(empty, Buffer.alloc(0), 'image/png');
        assert.deepEqual(await store.get(empty, 0), Buffer.alloc(0));
        assert.deepEqual(await store.get(empty, 5), Buffer.alloc(0));
        assert.equal(await store.get(newObjectName('absent'), 3), undefined);
      }));

    it('answers undefined for an absent object and deletes idempotently', () =>
      withStore(open, async (store) => {
        const name = newObjectName('k');
        assert.equal(await store.get(name), undefined);
        await store.delete(name);
        await store.put(name, Buffer.from('abc'), 'image/png');
        await store.delete(name);
        await store.delete(name);
        assert.equal(await store.get(name), undefined);
        assert.deepEqual(await collect(store.list()), []);
      }));

    it('replaces an object put twice under one name, and lists it once', () =>
      withStore(open, async (store) => {
        const name = newObjectName('k');
        await store.put(name, Buffer.from('first version'), 'image/png');
        await store.put(name, Buffer.from('second'), 'image/gif');
        assert.deepEqual(await store.get(name), Buffer.from('second'));
        assert.deepEqual(await collect(store.list()), [name]);
      }));

    it('deletes all of an empty store without complaint', () =>
      withStore(open, async (store) => {
        assert.deepEqual(await store.deleteAll(), { deleted: 0, failed: [] });
        assert.deepEqual(await collect(store.list()), []);
      }));

    it(`lists and deletes all ${MANY_OBJECTS} objects, past the first page`, () =>
      withStore(open, async (store) => {
        const names = Array.from({ length: MANY_OBJECTS }, (_, i) => newObjectName(`key${i}`));
        await forEachLimited(names, 32, (n) => store.put(n, Buffer.from(n), 'image/png'));
        const listed = await collect(store.list());
        assert.equal(listed.length, MANY_OBJECTS);
        assert.deepEqual(listed.toSorted(), names.toSorted());
        const withAge = await collect(store.listWithAge());
        assert.deepEqual(withAge.map((o) => o.name).toSorted(), names.toSorted());

        assert.deepEqual(await store.deleteAll(), { deleted: MANY_OBJECTS, failed: [] });
        assert.deepEqual(await collect(store.list()), []);
        assert.equal(await store.get(names[0] as string), undefined);
        assert.equal(await store.get(names.at(-1) as string), undefined);
      }));

    it('lists each object with its last-modified time, and no leftovers after clean puts', () =>
      withStore(open, async (store) => {
        // S3 keeps whole seconds and its own clock: allow a little on both sides.
        const before = Date.now() - 2000;
        const names = [newObjectName('a'), newObjectName('b'), newObjectName('c')];
        for (const n of names) await store.put(n, Buffer.from(n), 'image/png');
        const after = Date.now() + 2000;
        const listed = await collect(store.listWithAge());
        assert.deepEqual(listed.map((o) => o.name).toSorted(), names.toSorted());
        for (const { name, modifiedAt } of listed) {
          assert.ok(modifiedAt instanceof Date, name);
          const t = modifiedAt.getTime();
          assert.ok(t >= before && t <= after, `${name} modified at ${modifiedAt.toISOString()}`);
        }
        // Leftovers are only what interrupted puts leave: the objects themselves stay.
        assert.equal(await store.deleteLeftovers(new Date(Date.now() + 60_000)), 0);
        assert.deepEqual((await collect(store.list())).toSorted(), names.toSorted());
        assert.equal((await collect(store.listWithAge())).length, 3);
      }));

    it('keeps other objects when one is deleted', () =>
      withStore(open, async (store) => {
        const [a, b] = [newObjectName('a'), newObjectName('b')];
        await store.put(a, Buffer.from('A'), 'image/png');
        await store.put(b, Buffer.from('B'), 'image/png');
        await store.delete(a);
        assert.deepEqual(await store.get(b), Buffer.from('B'));
        assert.deepEqual(await collect(store.list()), [b]);
      }));
  });
}
