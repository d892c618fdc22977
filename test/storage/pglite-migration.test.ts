/**
 * A data folder written by pixpool before SQLite (a PGlite database in `db/`, written through
 * the same stores and PostgreSQL statements as then) is moved to `pixpool.db` on first open:
 * every row, versions kept and the counter above the old sequence, the old folder kept as
 * `db.pglite-migrated/`; once only, also when several open it at once or an earlier attempt died.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createPoolMap, resizePoolMap } from '../../src/core/pool-map.ts';
import { quietSample } from '../../src/core/stats.ts';
import { createMetadataStore, type ImageRecord } from '../../src/storage/metadata-store.ts';
import { openStorage } from '../../src/storage/open.ts';
import { openPgliteDriver } from '../../src/storage/pglite-migration.ts';
import { createPoolStore } from '../../src/storage/pool-store.ts';
import { tempDir } from '../helpers/storage.ts';
import { upload } from './metadata-store.contract.ts';

let folder: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  folder = await tempDir('pglite-migration');
});
after(() => folder.remove());

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const maps = [createPoolMap(['a', 'b'], 'balanced')];
maps.push(resizePoolMap(maps[0] as (typeof maps)[0], ['a', 'b', 'c']));

/** An old data folder: what pixpool wrote with PGlite, through its stores. */
async function oldFolder(name: string): Promise<{ dataDir: string; images: ImageRecord[] }> {
  const dataDir = join(folder.dir, name);
  // As the PGlite driver did: PGlite creates its folder, not the folder's parents.
  await mkdir(dataDir, { recursive: true });
  const driver = await openPgliteDriver(join(dataDir, 'db'));
  try {
    const metadata = await createMetadataStore(driver, { ownsDriver: false });
    const pool = await createPoolStore(driver, { ownsDriver: false });
    for (const key of ['cat', 'dog', 'ünï', 'cat', 'bird']) await metadata.commit(upload(key));
    await metadata.commit(upload('dog'));
    // Versions drawn and never used (as an insert that finds its key taken draws one): the
    // sequence is ahead of every row.
    await driver.query(`SELECT nextval('image_versions') FROM generate_series(1, 5)`);
    for (const map of maps) await pool.saveMap(map);
    await pool.setSetting('cache', { capacityMb: 64, policy: 'LRU' });
    await pool.upsertNode({
      id: 'n1',
      address: 'http://127.0.0.1:5101',
      state: 'active',
      provider: 'local',
    });
    await pool.registerFrontend('http://127.0.0.1:5000');
    await pool.addEvent({ kind: 'resize', message: 'grew to 3', details: { from: 2, to: 3 } });
    await pool.addEvent({ kind: 'config', message: 'cache set' });
    await pool.addSample(
      'n1',
      quietSample(T0, { gets: 10, hits: 7, misses: 3, items: 5, bytes: 500 }),
    );
    const images = [];
    for (const key of ['bird', 'cat', 'dog', 'ünï'])
      images.push((await metadata.get(key)) as ImageRecord);
    return { dataDir, images };
  } finally {
    await driver.close();
  }
}

it('moves every row of a PGlite folder to SQLite once, and keeps the old folder aside', async () => {
  const { dataDir, images } = await oldFolder('plain');
  const lines: string[] = [];
  const storage = await openStorage({ dataDir, log: (line) => lines.push(line) });
  try {
    assert.equal(lines.length, 1);
    assert.match(
      lines[0] ?? '',
      /4 images, 1 nodes, 2 maps, 1 settings, 2 events, 1 frontends, 1 samples/,
    );
    for (const image of images) assert.deepEqual(await storage.metadata.get(image.key), image);
    assert.equal(await storage.metadata.countKeys(), 4);
    const highest = Math.max(...images.map((image) => image.version));
    const next = await storage.metadata.commit(upload('new'));
    // Above the old sequence, which had drawn five more versions than any row holds.
    assert.ok(next.record.version > highest + 5, `${next.record.version} vs ${highest}`);
    const replaced = await storage.metadata.commit(upload('cat'));
    assert.equal(replaced.previousObject, images[1]?.object);

    assert.deepEqual(await storage.pool.currentMap(), maps[1]);
    assert.deepEqual(await storage.pool.getSetting('cache'), { capacityMb: 64, policy: 'LRU' });
    assert.deepEqual(
      (await storage.pool.listNodes()).map((n) => [n.id, n.state]),
      [['n1', 'active']],
    );
    assert.deepEqual(
      (await storage.pool.listFrontends()).map((f) => f.url),
      ['http://127.0.0.1:5000'],
    );
    const events = await storage.pool.listEvents({ limit: 10 });
    assert.deepEqual(
      events.map((e) => [e.kind, e.details]),
      [
        ['config', null],
        ['resize', { from: 2, to: 3 }],
      ],
    );
    const added = await storage.pool.addEvent({ kind: 'config', message: 'after' });
    assert.ok(added.id > (events[0]?.id ?? 0), 'event ids go on above the old ones');
    const totals = await storage.pool.windowTotals({ from: new Date(T0), to: new Date(T0 + 1) });
    assert.equal(totals.gets, 10);
  } finally {
    await storage.close();
  }
  assert.deepEqual((await readdir(dataDir)).toSorted(), ['db.pglite-migrated', 'pixpool.db']);

  const again = await openStorage({ dataDir, log: (line) => lines.push(line) });
  try {
    assert.equal(lines.length, 1, 'the second open does not migrate');
    assert.equal(await again.metadata.countKeys(), 5);
  } finally {
    await again.close();
  }
});

it('an interrupted migration (temp file and lock of a dead process left) migrates cleanly', async () => {
  const { dataDir, images } = await oldFolder('interrupted');
  await writeFile(join(dataDir, 'pixpool.db.migrating'), 'half a database');
  await writeFile(join(dataDir, 'pixpool.db.migrating-journal'), 'garbage');
  // The pid of a process that has exited.
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)']).stdout;
  await writeFile(join(dataDir, 'migrate.lock'), String(dead).trim());
  const lines: string[] = [];
  const storage = await openStorage({ dataDir, log: (line) => lines.push(line) });
  try {
    assert.equal(lines.length, 1);
    for (const image of images) assert.deepEqual(await storage.metadata.get(image.key), image);
  } finally {
    await storage.close();
  }
  for (const left of [
    'pixpool.db.migrating',
    'pixpool.db.migrating-journal',
    'migrate.lock',
    'db',
  ]) {
    assert.equal(existsSync(join(dataDir, left)), false, left);
  }
});

it('several opening an old folder at once migrate it once, and all see the rows', async () => {
  const { dataDir, images } = await oldFolder('concurrent');
  const lines: string[] = [];
  const opened = await Promise.all(
    Array.from({ length: 3 }, () => openStorage({ dataDir, log: (line) => lines.push(line) })),
  );
  try {
    assert.equal(lines.length, 1);
    for (const storage of opened) {
      assert.equal((await storage.metadata.get('cat'))?.version, images[1]?.version);
    }
  } finally {
    await Promise.all(opened.map((storage) => storage.close()));
  }
});
