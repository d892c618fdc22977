import assert from 'node:assert/strict';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PixpoolError } from '../../src/core/errors.ts';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { applyMigrations, migrations } from '../../src/storage/migrations.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import type { SqlDriver } from '../../src/storage/sql-driver.ts';
import {
  databaseUrl,
  deadPort,
  dropSchema,
  randomSchema,
  requirePostgres,
} from '../helpers/storage.ts';
import { metadataStoreContract, upload } from './metadata-store.contract.ts';

// Every store gets its own schema; they are all dropped at the end, even after a failure.
const schemas: string[] = [];
const freshSchema = () => {
  const schema = randomSchema();
  schemas.push(schema);
  return schema;
};
const freshDriver = (schema = randomSchema()) => {
  schemas.push(schema);
  return createPgDriver({ connectionString: databaseUrl(), schema });
};

describe('PostgreSQL', () => {
  before(() => requirePostgres());
  after(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  metadataStoreContract('PostgreSQL', () => createMetadataStore(freshDriver()));

  it('applies each migration once when several services start at the same time', async () => {
    const schema = randomSchema();
    const drivers = Array.from({ length: 5 }, () => freshDriver(schema));
    const [first, second] = drivers as [SqlDriver, SqlDriver];
    try {
      const applied = await Promise.all(drivers.map((driver) => applyMigrations(driver)));
      assert.deepEqual(
        applied.flat().toSorted(),
        migrations.map((m) => m.version),
      );
      const { rows } = await first.query('SELECT version FROM schema_migrations');
      assert.equal(rows.length, migrations.length);
      assert.deepEqual(await applyMigrations(second), []);
    } finally {
      await Promise.all(drivers.map((driver) => driver.close()));
    }
  });

  it('puts every connection in its own schema, keeping options the URL already sets', async () => {
    const url = new URL(databaseUrl());
    url.searchParams.set('options', '-c statement_timeout=4321');
    const schema = randomSchema();
    schemas.push(schema);
    const driver = createPgDriver({ connectionString: url.toString(), schema });
    try {
      const settings = await Promise.all(
        Array.from({ length: 3 }, () =>
          driver.transaction(async (tx) => {
            const path = await tx.query<{ search_path: string }>('SHOW search_path');
            const timeout = await tx.query<{ statement_timeout: string }>('SHOW statement_timeout');
            return `${path.rows[0]?.search_path} ${timeout.rows[0]?.statement_timeout}`;
          }),
        ),
      );
      assert.deepEqual(settings, Array(3).fill(`${schema} 4321ms`));
      await createMetadataStore(driver);
      const { rows } = await driver.query<{ schema: string }>(
        `SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relname = 'images' AND n.nspname = $1`,
        [schema],
      );
      assert.deepEqual(rows, [{ schema }]);
    } finally {
      await driver.close();
    }
  });

  it('answers 503 while the database is unreachable and recovers without a restart', async () => {
    const target = new URL(databaseUrl());
    const proxy = await startProxy(target.hostname, Number(target.port || 5432));
    const url = new URL(target);
    url.host = `127.0.0.1:${proxy.port}`;
    const store = await createMetadataStore(
      createPgDriver({
        connectionString: url.toString(),
        schema: freshSchema(),
        connectTimeoutMs: 1000,
      }),
    );
    try {
      await store.commit(upload('before'));
      await proxy.stop();
      await assert.rejects(store.get('before'), (e: PixpoolError) => e.status === 503);
      await assert.rejects(store.commit(upload('during')), (e: PixpoolError) => e.status === 503);
      await proxy.start();
      assert.equal((await store.get('before'))?.key, 'before');
      assert.equal((await store.commit(upload('after'))).previousObject, undefined);
    } finally {
      await store.close();
      await proxy.stop();
    }
  });

  it('keeps racing commits exact across two services on separate pools', async () => {
    const schema = randomSchema();
    const [a, b] = await Promise.all([
      createMetadataStore(freshDriver(schema)),
      createMetadataStore(freshDriver(schema)),
    ]);
    try {
      const uploads = Array.from({ length: 30 }, (_, i) => upload('shared', `v${i}`));
      const results = await Promise.all(uploads.map((up, i) => (i % 2 ? a : b).commit(up)));
      const final = await a.get('shared');
      const reported = results.flatMap((r) => (r.previousObject ? [r.previousObject] : []));
      assert.equal(new Set(results.map((r) => r.record.version)).size, 30);
      assert.deepEqual(
        [...reported, final?.object].toSorted(),
        uploads.map((up) => up.object).toSorted(),
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});

it('PostgreSQL being unreachable is a 503 whose message names no server; its detail names it, not the password', async () => {
  const port = await deadPort();
  const driver = createPgDriver({
    connectionString: `postgres://pixpool:s3cret@127.0.0.1:${port}/nowhere`,
    connectTimeoutMs: 1000,
  });
  try {
    const started = Date.now();
    await assert.rejects(createMetadataStore(driver), (error: PixpoolError) => {
      assert.ok(error instanceof PixpoolError, String(error));
      assert.equal(error.status, 503);
      assert.match(error.message, /database cannot be reached/);
      assert.doesNotMatch(error.message, /127\.0\.0\.1|nowhere|pixpool|s3cret/);
      // The detail is for the log: where the database is, never the password.
      assert.match(error.detail ?? '', new RegExp(`127\\.0\\.0\\.1:${port}/nowhere`));
      assert.doesNotMatch(error.detail ?? '', /s3cret/);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  } finally {
    await driver.close();
  }
});

/** A TCP proxy to PostgreSQL that can be cut (every connection dropped) and restored on one port. */
async function startProxy(host: string, port: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let listenPort = 0;
  const start = async () => {
    server = createServer((client) => {
      const upstream = connect(port, host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server?.listen(listenPort, '127.0.0.1', resolve));
    listenPort = (server.address() as AddressInfo).port;
  };
  const stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };
  await start();
  return { port: listenPort, start, stop };
}
