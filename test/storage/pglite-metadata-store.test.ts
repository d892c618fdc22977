import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { applyMigrations, migrations } from '../../src/storage/migrations.ts';
import { createPgliteDriver } from '../../src/storage/pglite-driver.ts';
import { tempDir } from '../helpers/storage.ts';
import { metadataStoreContract, upload } from './metadata-store.contract.ts';

// Each test gets a fresh database loaded from one made at start: initdb once, not per test.
let template: Blob;
before(async () => {
  const db = await PGlite.create();
  template = await db.dumpDataDir('none');
  await db.close();
});

metadataStoreContract('PGlite', () =>
  createMetadataStore(createPgliteDriver({ loadDataDir: template })),
);

let folder: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  folder = await tempDir('pglite');
});
after(() => folder.remove());

it('PGlite keeps rows and the version sequence in its data folder across close and reopen', async () => {
  const dataDir = join(folder.dir, 'db');
  const first = await createMetadataStore(createPgliteDriver({ dataDir }));
  const { record } = await first.commit(upload('kept'));
  await first.close();

  const reopened = await createMetadataStore(createPgliteDriver({ dataDir }));
  try {
    assert.deepEqual(await reopened.get('kept'), record);
    const next = await reopened.commit(upload('other'));
    assert.ok(next.record.version > record.version);
  } finally {
    await reopened.close();
  }
});

it('applying the migrations again does nothing', async () => {
  const driver = createPgliteDriver();
  try {
    assert.deepEqual(
      await applyMigrations(driver),
      migrations.map((m) => m.version),
    );
    assert.deepEqual(await applyMigrations(driver), []);
    const { rows } = await driver.query('SELECT version FROM schema_migrations');
    assert.equal(rows.length, migrations.length);
  } finally {
    await driver.close();
    await driver.close();
  }
});

it('PGlite has no autovacuum: a store vacuums at open a table filled elsewhere, and after 1,000 writes of its own', async () => {
  const driver = createPgliteDriver({ loadDataDir: template });
  const visibility = async () =>
    (
      await driver.query<{ pages: number; visible: number }>(
        `SELECT relpages AS pages, relallvisible AS visible FROM pg_class WHERE relname = 'images'`,
      )
    ).rows[0];
  const first = await createMetadataStore(driver, { ownsDriver: false });
  try {
    // Rows written straight into the table (an import, or another tool), then analyzed: pages
    // counted, none marked all-visible.
    await driver.query(
      `INSERT INTO images (key, object, content_type, size, sha256, version)
       SELECT 'filled-' || i, 'object-' || i, 'image/png', 1, 'ab', nextval('image_versions')
       FROM generate_series(1, 5000) AS i`,
    );
    await driver.query('ANALYZE images');
    const before = await visibility();
    assert.ok(before && before.pages > 0 && before.visible === 0, JSON.stringify(before));
    // Opening a store on it (a restart) vacuums before serving.
    await createMetadataStore(driver, { ownsDriver: false });
    const after = await visibility();
    assert.ok(after && after.visible === after.pages, JSON.stringify(after));
    assert.equal(await first.maintain(), false, 'nothing due right after');

    // Re-uploads leave dead rows behind; 1,000 of them make the next vacuum due.
    for (let i = 0; i < 999; i++) await first.commit(upload(`filled-${(i % 50) + 1}`));
    assert.equal(await first.maintain(), false, '999 writes on a 5,000-row table: not yet');
    await first.commit(upload('filled-1'));
    assert.equal(await first.maintain(), true);
    const { rows } = await driver.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM images WHERE key LIKE 'filled-%'`,
    );
    assert.equal(rows[0]?.n, 5000, 'vacuum removed no live row');
  } finally {
    await first.close();
    await driver.close();
  }
});
