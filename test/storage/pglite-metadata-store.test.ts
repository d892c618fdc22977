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
