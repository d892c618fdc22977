/**
 * The metadata store on SQLite (in memory, each test on a fresh database), and what the SQLite
 * driver adds: a file kept across reopen, migrations applied once, `$n` placeholders.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, it } from 'node:test';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { applyMigrations, migrations } from '../../src/storage/migrations.ts';
import { createSqliteDriver, numberedPlaceholders } from '../../src/storage/sqlite-driver.ts';
import { tempDir } from '../helpers/storage.ts';
import { metadataStoreContract, upload } from './metadata-store.contract.ts';

metadataStoreContract('SQLite', () => createMetadataStore(createSqliteDriver()));

let folder: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  folder = await tempDir('sqlite');
});
after(() => folder.remove());

it('SQLite keeps rows and the version counter in its file across close and reopen', async () => {
  const path = join(folder.dir, 'nested', 'pixpool.db');
  const first = await createMetadataStore(createSqliteDriver({ path }));
  const { record } = await first.commit(upload('kept'));
  await first.close();

  const reopened = await createMetadataStore(createSqliteDriver({ path }));
  try {
    assert.deepEqual(await reopened.get('kept'), record);
    const next = await reopened.commit(upload('other'));
    assert.ok(next.record.version > record.version);
  } finally {
    await reopened.close();
  }
});

it('applying the migrations again does nothing', async () => {
  const driver = createSqliteDriver();
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

it('binds $n by number, whatever order they appear in, and leaves $ in literals alone', async () => {
  assert.equal(
    numberedPlaceholders(`SELECT $2, '$1 it''s $3', "a$1", $1 -- $4\n, $10 /* $5 */`),
    `SELECT ?2, '$1 it''s $3', "a$1", ?1 -- $4\n, ?10 /* $5 */`,
  );
  const driver = createSqliteDriver();
  try {
    const { rows } = await driver.query<{ a: unknown; b: unknown; c: unknown; d: unknown }>(
      `SELECT $2 AS a, $1 AS b, $2 || '$1' AS c, $3 / $4 AS d`,
      ['one', 'two', 7, 2],
    );
    // Whole numbers bind as integers: 7 / 2 is SQLite's integer division.
    assert.deepEqual({ ...rows[0] }, { a: 'two', b: 'one', c: 'two$1', d: 3 });
    const { rowCount } = await driver.query('CREATE TABLE t (x INTEGER)');
    assert.equal(rowCount, 0);
    assert.equal((await driver.query('INSERT INTO t VALUES ($1), ($2)', [1, 2])).rowCount, 2);
    assert.equal((await driver.query('UPDATE t SET x = x + 1')).rowCount, 2);
    const returned = await driver.query('DELETE FROM t WHERE x > $1 RETURNING x', [2]);
    assert.deepEqual(returned.rowCount, 1);
    await driver.query('INSERT INTO t VALUES ($1)', [2 ** 53 + 2 ** 10]);
    await assert.rejects(driver.query('SELECT x FROM t WHERE x > 100'), RangeError);
  } finally {
    await driver.close();
  }
});

it('answers queries in the order asked, never inside a transaction that is running', async () => {
  const driver = createSqliteDriver();
  try {
    await driver.query('CREATE TABLE t (x INTEGER)');
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tx = driver.transaction(async (t) => {
      await t.query('INSERT INTO t VALUES (1)');
      await held;
      throw new Error('rolled back');
    });
    // Asked while the transaction holds the connection: must not see (or join) its insert.
    const count = driver.query<{ n: number }>('SELECT count(*) AS n FROM t');
    const write = driver.query('INSERT INTO t VALUES (2)');
    release();
    await assert.rejects(tx, /rolled back/);
    assert.equal((await count).rows[0]?.n, 0);
    await write;
    const { rows } = await driver.query<{ x: number }>('SELECT x FROM t');
    assert.deepEqual(
      rows.map((r) => r.x),
      [2],
    );
  } finally {
    await driver.close();
  }
  await assert.rejects(driver.query('SELECT 1'), /closed/);
});

it('runs a statement asked while the connection is idle at once, without queueing it', async () => {
  const path = join(folder.dir, 'at-once.db');
  const driver = createSqliteDriver({ path });
  try {
    await driver.query('CREATE TABLE t (x INTEGER)');
    const write = driver.query('INSERT INTO t VALUES (1)');
    // Before anything awaited: the insert has committed, as another connection sees.
    const seen = new DatabaseSync(path, { readOnly: true });
    try {
      assert.deepEqual({ ...seen.prepare('SELECT count(*) AS n FROM t').get() }, { n: 1 });
    } finally {
      seen.close();
    }
    assert.equal((await write).rowCount, 1);
  } finally {
    await driver.close();
  }
});
