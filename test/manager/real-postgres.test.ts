import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import type { SqlDriver } from '../../src/storage/sql-driver.ts';
import { managerCall, startManager } from '../helpers/manager.ts';
import { SECRET } from '../helpers/nodes.ts';
import { databaseUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';

const nodes = createNodeAdmin({ secret: SECRET });

describe('manager on a real PostgreSQL with real node processes', () => {
  const schema = randomSchema();
  let driver: SqlDriver;
  before(async () => {
    await requirePostgres();
    driver = createPgDriver({ connectionString: databaseUrl(), schema });
  });
  after(async () => {
    await driver.close();
    await dropSchema(schema);
    await nodes.close();
  });

  it('grows, restarts with the same pool, and replaces a node killed with SIGKILL', async () => {
    const first = await startManager({ driver });
    await managerCall(first.url, 'POST', '/api/manager/poolsize/manual', {
      change: 'increase',
      wait: true,
    });
    const ids = first.pool.view().map.nodes;
    await first.close({ keepStorage: true });

    const second = await startManager({ driver });
    try {
      assert.deepEqual(second.pool.view().map.nodes, ids, 'the same pool after a restart');
      const { map, addresses } = second.pool.view();
      const victim = map.nodes[1] as string;
      const health = (await (await fetch(`${addresses[victim]}/health`)).json()) as { pid: number };
      process.kill(health.pid, 'SIGKILL');
      const version = map.version;
      // A first new version says the node is down; the next one brings its new address.
      for (let i = 0; i < 100 && second.pool.view().addresses[victim] === addresses[victim]; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const after = second.pool.view();
      assert.ok(after.map.version > version, 'a new map version announces the new address');
      assert.deepEqual(after.map.nodes, ids, 'same ids, same regions');
      assert.deepEqual(after.map.owner, map.owner);
      assert.notEqual(after.addresses[victim], addresses[victim]);
      assert.equal(await nodes.healthy(after.addresses[victim] as string), true);
      const log = await managerCall(second.url, 'GET', '/api/manager/events?limit=1');
      assert.match(log.body.content[0].message, /died and was restarted/);
    } finally {
      await second.close({ keepStorage: true });
    }
  });
});
