/**
 * The pool store on a real PostgreSQL (DATABASE_URL, or the local server's `test` database),
 * each store in a throw-away schema; plus what only a server with several connections can show:
 * two managers racing to publish one map version, and two stores migrating one schema at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PixpoolError } from '../../src/core/errors.ts';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { createPoolStore } from '../../src/storage/pool-store.ts';
import { databaseUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';
import { poolStoreContract } from './pool-store.contract.ts';

// Every store gets its own schema; they are all dropped at the end, even after a failure.
const schemas: string[] = [];
const freshDriver = (schema = randomSchema()) => {
  schemas.push(schema);
  return createPgDriver({ connectionString: databaseUrl(), schema });
};

describe('PostgreSQL', () => {
  before(() => requirePostgres());
  after(async () => {
    for (const schema of new Set(schemas)) await dropSchema(schema);
  });

  poolStoreContract('PostgreSQL', () => createPoolStore(freshDriver()));

  it('migrates once when a metadata and two pool stores start on one schema at the same time', async () => {
    const schema = randomSchema();
    const [metadata, a, b] = await Promise.all([
      createMetadataStore(freshDriver(schema)),
      createPoolStore(freshDriver(schema)),
      createPoolStore(freshDriver(schema)),
    ]);
    try {
      await a.setSetting('mode', 'manual');
      assert.equal(await b.getSetting('mode'), 'manual');
      assert.equal(await metadata.countKeys(), 0);
    } finally {
      await Promise.all([metadata.close(), a.close(), b.close()]);
    }
  });

  it('lets exactly one of two racing managers save a map version', async () => {
    const schema = randomSchema();
    const [a, b] = await Promise.all([
      createPoolStore(freshDriver(schema)),
      createPoolStore(freshDriver(schema)),
    ]);
    try {
      for (let version = 1; version <= 10; version++) {
        const results = await Promise.allSettled([
          a.saveMap(createPoolMap(['a1', 'a2'], 'balanced', version)),
          b.saveMap(createPoolMap(['b1'], 'modulo', version)),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
        assert.equal(won.length, 1, `version ${version}`);
        assert.ok(lost[0] instanceof PixpoolError && lost[0].status === 409, String(lost[0]));
        const winner = results[0]?.status === 'fulfilled' ? ['a1', 'a2'] : ['b1'];
        assert.deepEqual((await b.currentMap())?.nodes, winner);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
