import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { PixpoolError } from '../../src/core/errors.ts';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { newObjectName } from '../../src/storage/object-store.ts';
import { tempDir } from '../helpers/storage.ts';
import { objectStoreContract } from './object-store.contract.ts';

let root: Awaited<ReturnType<typeof tempDir>>;
let count = 0;
before(async () => {
  root = await tempDir('fs-store');
});
after(() => root.remove());

const freshDir = () => join(root.dir, `store-${count++}`);

objectStoreContract('folder', async () => createFsObjectStore({ dir: freshDir() }));

it('folder store refuses names that could leave its folder or hide among temp files', async () => {
  const store = createFsObjectStore({ dir: freshDir() });
  const bad = ['', '../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/', '.tmp/x', 'a\\b', 'a/.b', '.'];
  for (const name of bad) {
    await assert.rejects(store.put(name, Buffer.from('x'), 'image/png'), TypeError, name);
    await assert.rejects(store.get(name), TypeError, name);
    await assert.rejects(store.delete(name), TypeError, name);
  }
});

it('folder store never shows a half-written file to a reader of a name being replaced', async () => {
  const store = createFsObjectStore({ dir: freshDir() });
  const name = newObjectName('k');
  const size = 1024 * 1024;
  await store.put(name, Buffer.alloc(size, 0), 'image/png');
  const reads: Promise<Buffer | undefined>[] = [];
  const writes = Array.from({ length: 10 }, (_, i) => {
    reads.push(store.get(name));
    return store.put(name, Buffer.alloc(size, i + 1), 'image/png');
  });
  await Promise.all(writes);
  for (const read of await Promise.all(reads)) {
    assert.ok(read);
    assert.equal(read.length, size);
    assert.ok(
      read.every((byte) => byte === read[0]),
      'a read mixed two versions',
    );
  }
});

it('folder store lists neither temp files nor stray dot files, and leaves no temp file behind', async () => {
  const dir = freshDir();
  const store = createFsObjectStore({ dir });
  const name = newObjectName('k');
  await store.put(name, Buffer.from('x'), 'image/png');
  // A new name is written in place; a replacement goes through the temp folder.
  await store.put(name, Buffer.from('y'), 'image/png');
  assert.deepEqual(await readdir(join(dir, '.tmp')), []);
  assert.deepEqual(await store.get(name), Buffer.from('y'));
  await mkdir(join(dir, '.tmp'), { recursive: true });
  await writeFile(join(dir, '.tmp', 'leftover'), 'half');
  await writeFile(join(dir, '.DS_Store'), 'x');
  const listed: string[] = [];
  for await (const n of store.list()) listed.push(n);
  assert.deepEqual(listed, [name]);
  assert.deepEqual(await store.deleteAll(), { deleted: 1, failed: [] });
});

it('folder store treats a folder that does not exist yet as empty', async () => {
  const store = createFsObjectStore({ dir: join(freshDir(), 'not', 'yet') });
  assert.equal(await store.get(newObjectName('k')), undefined);
  await store.delete(newObjectName('k'));
  assert.deepEqual(await store.deleteAll(), { deleted: 0, failed: [] });
});

it('folder store: a folder it cannot use is a 503 that names the folder only in its detail', async () => {
  const dir = freshDir();
  await writeFile(dir, 'a file where the folder should be');
  const store = createFsObjectStore({ dir });
  const refused = (doing: string) => (error: PixpoolError) => {
    assert.ok(error instanceof PixpoolError, String(error));
    assert.equal(error.status, 503);
    assert.equal(
      error.message,
      `Image storage could not ${doing}: it is not set up correctly. Try again later.`,
    );
    assert.equal(error.detail, `The image folder ${dir} cannot be used to ${doing} (ENOTDIR).`);
    assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOTDIR');
    return true;
  };
  await assert.rejects(
    store.put(newObjectName('k'), Buffer.from('x'), 'image/png'),
    refused('store the image'),
  );
  await assert.rejects(store.list()[Symbol.asyncIterator]().next(), refused('list images'));
});
