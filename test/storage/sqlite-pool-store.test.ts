/**
 * The pool store on SQLite (in memory, each test on a fresh database), and the shared-driver
 * arrangement `pixpool up` depends on: the metadata and pool stores on one embedded database,
 * both usable, the driver closed exactly once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { openStorage } from '../../src/storage/open.ts';
import { createPoolStore } from '../../src/storage/pool-store.ts';
import type { SqlDriver } from '../../src/storage/sql-driver.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { tempDir } from '../helpers/storage.ts';
import { upload } from './metadata-store.contract.ts';
import { poolStoreContract } from './pool-store.contract.ts';

poolStoreContract('SQLite', () => createPoolStore(createSqliteDriver()));

/** A driver that counts close() calls, to check who closes a shared driver. */
function counting(driver: SqlDriver): SqlDriver & { closes: number } {
  const counted = {
    kind: driver.kind,
    closes: 0,
    query: driver.query.bind(driver),
    transaction: driver.transaction.bind(driver),
    async close() {
      counted.closes++;
      await driver.close();
    },
  } as SqlDriver & { closes: number };
  return counted;
}

describe('metadata and pool stores sharing one SQLite driver', () => {
  it('both work on one driver; neither closes it when told it does not own it', async () => {
    const driver = counting(createSqliteDriver());
    try {
      // Started together, as two services in one process might: migrating twice is harmless.
      const [metadata, pool] = await Promise.all([
        createMetadataStore(driver, { ownsDriver: false }),
        createPoolStore(driver, { ownsDriver: false }),
      ]);
      await metadata.commit(upload('cat'));
      await pool.setSetting('cache', { capacityMb: 32, policy: 'LRU' });
      await pool.saveMap(createPoolMap(['n1'], 'balanced'));
      await metadata.close();
      await pool.close();
      assert.equal(driver.closes, 0);
      // Still usable after both stores' close().
      assert.equal((await metadata.get('cat'))?.key, 'cat');
      assert.deepEqual(await pool.getSetting('cache'), { capacityMb: 32, policy: 'LRU' });
      const { rows } = await driver.query<{ version: number }>(
        'SELECT version FROM schema_migrations ORDER BY version',
      );
      assert.deepEqual(
        rows.map((r) => Number(r.version)),
        [1, 2],
      );
    } finally {
      await driver.close();
    }
    assert.equal(driver.closes, 1);
  });

  it('a pool store owns its driver by default, and closes an owned one if migrating fails', async () => {
    const driver = counting(createSqliteDriver());
    const pool = await createPoolStore(driver);
    await pool.close();
    assert.equal(driver.closes, 1);

    const broken = counting(createSqliteDriver());
    const failing: SqlDriver = {
      ...broken,
      transaction: () => Promise.reject(new Error('disk on fire')),
      close: () => broken.close(),
    };
    await assert.rejects(createPoolStore(failing), /disk on fire/);
    assert.equal(broken.closes, 1);
    const shared = counting(createSqliteDriver());
    await assert.rejects(
      createPoolStore({ ...failing, close: () => shared.close() }, { ownsDriver: false }),
      /disk on fire/,
    );
    assert.equal(shared.closes, 0, 'a shared driver stays open for its owner');
    await shared.close();
  });
});

describe('openStorage with the pool store', () => {
  let folder: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    folder = await tempDir('open-pool');
  });
  after(() => folder.remove());

  it('opens metadata and pool on one embedded database, closes once, and keeps both', async () => {
    const dataDir = join(folder.dir, 'data');
    const first = await openStorage({ dataDir });
    await first.metadata.commit(upload('kept'));
    await first.pool.upsertNode({
      id: 'n1',
      address: 'http://127.0.0.1:5101',
      state: 'active',
      provider: 'local',
    });
    await first.pool.addEvent({ kind: 'resize', message: 'started with 1 node' });
    await Promise.all([first.close(), first.close()]);
    await first.close();

    // Reopening works only if the first process's database was really closed.
    const second = await openStorage({ dataDir });
    try {
      assert.equal((await second.metadata.get('kept'))?.key, 'kept');
      assert.deepEqual(
        (await second.pool.listNodes()).map((n) => [n.id, n.state]),
        [['n1', 'active']],
      );
      assert.equal((await second.pool.listEvents({ limit: 5 }))[0]?.message, 'started with 1 node');
    } finally {
      await second.close();
    }
  });
});
