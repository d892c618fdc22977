/**
 * The embedded SQLite database as `pixpool up` now uses it: durable (every commit fsynced) and
 * shared by several processes writing at once. Two drivers in this process and one child
 * process commit uploads of one shared key and of their own keys at the same time; lock waits
 * (SQLITE_BUSY) are retried, so every commit succeeds, each replacing exactly the one before.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, it } from 'node:test';
import { PixpoolError } from '../../src/core/errors.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import { openStorage } from '../../src/storage/open.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { tempDir } from '../helpers/storage.ts';
import { upload } from './metadata-store.contract.ts';

type Committed = Awaited<ReturnType<MetadataStore['commit']>>;

let folder: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  folder = await tempDir('sqlite-sharing');
});
after(() => folder.remove());

it('openStorage puts the embedded database in WAL mode with synchronous=FULL', async () => {
  const dataDir = join(folder.dir, 'durable');
  const storage = await openStorage({ dataDir });
  try {
    const mode = await storage.driver.query<{ journal_mode: string }>('PRAGMA journal_mode');
    const sync = await storage.driver.query<{ synchronous: number }>('PRAGMA synchronous');
    assert.equal(mode.rows[0]?.journal_mode, 'wal');
    // 2 = FULL: the WAL is fsynced at every commit (NORMAL, 1, may lose the last on power loss).
    assert.equal(sync.rows[0]?.synchronous, 2);
  } finally {
    await storage.close();
  }
});

it('two drivers and a child process commit at once: all succeed, versions chain, each sees the others', async () => {
  const dataDir = join(folder.dir, 'shared');
  const storage = await openStorage({ dataDir });
  const second = await createMetadataStore(
    createSqliteDriver({ path: join(dataDir, 'pixpool.db') }),
  );
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(import.meta.dirname, 'fixtures', 'sqlite-writer.ts'),
      dataDir,
      'child',
      '60',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const closed = once(child, 'close');
  // A child that fails prints no line: fail instead of waiting for it.
  const next = async () =>
    String(
      (
        await Promise.race([
          lines.next(),
          closed.then(() => {
            throw new Error(`the child process ended (exit code ${child.exitCode})`);
          }),
        ])
      ).value,
    );
  try {
    assert.equal(await next(), 'ready');
    child.stdin.write('go\n');
    const mine = (store: MetadataStore, name: string) =>
      Array.from({ length: 60 }, (_, i) =>
        store.commit(upload(i % 2 ? 'shared' : `${name}-${i}`, `${name} ${i}`)),
      );
    const [here, there, fromChild] = await Promise.all([
      Promise.all(mine(storage.metadata, 'first')),
      Promise.all(mine(second, 'second')),
      next().then((line) => JSON.parse(line) as Committed[]),
    ]);
    const all = [...here, ...there, ...fromChild];
    assert.equal(all.length, 180);
    assert.equal(new Set(all.map((r) => r.record.version)).size, 180, 'versions are unique');

    const shared = all
      .filter((r) => r.record.key === 'shared')
      .toSorted((a, b) => a.record.version - b.record.version);
    assert.equal(shared.length, 90);
    assert.equal(shared[0]?.previousObject, undefined);
    for (let i = 1; i < shared.length; i++) {
      assert.equal(
        shared[i]?.previousObject,
        shared[i - 1]?.record.object,
        'each commit of the shared key replaced the one with the next lower version',
      );
    }
    assert.equal((await second.get('shared'))?.object, shared.at(-1)?.record.object);

    // Each process reads the others' rows.
    assert.equal((await storage.metadata.get('child-0'))?.object, fromChild[0]?.record.object);
    assert.equal((await second.get('first-58'))?.version, here[58]?.record.version);
    child.stdin.write('read\n');
    const seen = JSON.parse(await next()) as string[];
    assert.equal(seen.length, 91);
    assert.ok(seen.includes('first-0') && seen.includes('second-58') && seen.includes('shared'));
    await exited;
    assert.equal(child.exitCode, 0);
  } finally {
    child.kill();
    await second.close();
    await storage.close();
  }
});

it('a write lock held past the busy timeout is a 503, and commits go on once it is released', async () => {
  const path = join(folder.dir, 'locked', 'pixpool.db');
  const holder = createSqliteDriver({ path });
  const store = await createMetadataStore(createSqliteDriver({ path, busyTimeoutMs: 300 }));
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  try {
    const holding = holder.transaction(async (tx) => {
      await tx.query('SELECT 1');
      await released;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await assert.rejects(store.commit(upload('blocked')), (error: PixpoolError) => {
      assert.ok(error instanceof PixpoolError, String(error));
      assert.equal(error.status, 503);
      assert.doesNotMatch(error.message, /pixpool\.db/);
      assert.match(error.detail ?? '', /pixpool\.db/);
      return true;
    });
    assert.ok(Date.now() - started >= 250, 'it retried before giving up');
    release();
    await holding;
    assert.equal((await store.commit(upload('after'))).previousObject, undefined);
  } finally {
    release();
    await store.close();
    await holder.close();
  }
});
