/**
 * A frontend's GET /ready (src/frontend/ready-route.ts) over real sockets: a frontend on a real
 * PostgreSQL, reached through a TCP proxy that is cut and black-holed for real, answers 503 with
 * the envelope while its metadata store cannot answer and 200 once it can again, with no
 * restart; /health answers 200 throughout (liveness only).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { startFrontend, type TestFrontend } from '../helpers/frontend.ts';
import { call } from '../helpers/nodes.ts';
import { waitFor } from '../helpers/processes.ts';
import { databaseUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

/** GET without any credentials: probes carry none. */
const probe = (url: string, path = '/ready') => call(url, 'GET', path, undefined, {});

const readyAs = (fe: TestFrontend, status: number) =>
  waitFor(
    `/ready to answer ${status}`,
    async () => {
      const answer = await probe(fe.url);
      return answer.status === status ? answer : undefined;
    },
    { timeoutMs: 30_000, everyMs: 100 },
  );

describe('a frontend is ready only while its metadata store answers', { timeout: 90_000 }, () => {
  let proxy: TcpProxy;
  let metadata: MetadataStore;
  let fe: TestFrontend;
  const schema = randomSchema();

  before(async () => {
    await requirePostgres();
    const target = new URL(databaseUrl());
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(databaseUrl());
    viaProxy.host = proxy.address;
    metadata = await createMetadataStore(
      createPgDriver({
        connectionString: viaProxy.toString(),
        schema,
        connectTimeoutMs: 1000,
        queryTimeoutMs: 5000,
        onIdleError: () => {},
      }),
    );
    fe = await startFrontend({ metadata });
  });
  after(async () => {
    await fe?.close();
    await metadata?.close();
    await proxy?.close();
    await dropSchema(schema);
  });

  it('answers 200 with its view version while the database answers, to a caller with no credentials', async () => {
    const answer = await probe(fe.url);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, {
      success: 'true',
      status: 'ready',
      view_version: fe.routing.view.map.version,
    });
  });

  it('answers 503 while the database is cut off, and 200 once it is back', async () => {
    await proxy.cut();
    const down = await readyAs(fe, 503);
    assert.deepEqual(down.body, {
      success: 'false',
      error: {
        code: 503,
        message: 'This frontend is not ready: its metadata store does not answer.',
      },
    });
    assert.equal((await probe(fe.url, '/health')).status, 200, 'still alive');
    await proxy.restore();
    await readyAs(fe, 200);
  });

  it('answers 503 within its deadline while the database hangs, and 200 once it answers', async () => {
    proxy.blackHole();
    const hung = await readyAs(fe, 503);
    assert.match(hung.body.error.message, /not ready: its metadata store did not answer within/);
    await proxy.restore();
    await readyAs(fe, 200);
  });

  it('refuses other methods with the 404 envelope', async () => {
    const answer = await call(fe.url, 'POST', '/ready', {}, {});
    assert.equal(answer.status, 404);
    assert.equal(answer.body.success, 'false');
    assert.match(answer.body.error.message, /no endpoint POST \/ready/);
  });
});
