import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { createS3ObjectStore } from '../../src/storage/s3-object-store.ts';
import { startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import {
  databaseUrl,
  dropSchema,
  randomSchema,
  requirePostgres,
  startS3Server,
  type TestS3,
} from '../helpers/storage.ts';

describe('the frontend on a real PostgreSQL and a real S3-protocol server', () => {
  const schema = randomSchema();
  let s3: TestS3;
  let metadata: MetadataStore;
  let objects: ObjectStore;
  let fe: TestFrontend;
  before(async () => {
    await requirePostgres();
    s3 = await startS3Server();
    metadata = await createMetadataStore(
      createPgDriver({ connectionString: databaseUrl(), schema }),
    );
    objects = createS3ObjectStore(s3.storeOptions());
    fe = await startFrontend({ metadata, objects });
  });
  after(async () => {
    await fe.close();
    await metadata.close();
    await objects.close();
    await s3.close();
    await dropSchema(schema);
  });

  it('uploads, fetches byte-exact (miss then hit), replaces, lists and deletes the old object', async () => {
    const v1 = imageBytes('jpeg', 120_000, 1);
    assert.deepEqual((await upload(fe.url, 'on-s3', v1)).body, { success: 'true', key: 'on-s3' });
    const miss = await fetch(`${fe.url}/images/on-s3`);
    assert.equal(miss.headers.get('x-pixpool-source'), 'storage');
    assert.ok(Buffer.from(await miss.arrayBuffer()).equals(v1));
    for (let i = 0; i < 50 && !fe.nodes[0]?.cache.peek('on-s3'); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const hit = await fetch(`${fe.url}/images/on-s3`);
    assert.equal(hit.headers.get('x-pixpool-source'), 'cache');
    assert.ok(Buffer.from(await hit.arrayBuffer()).equals(v1));

    const v2 = imageBytes('png', 90_000, 2);
    await upload(fe.url, 'on-s3', v2);
    const after = await fetch(`${fe.url}/images/on-s3`);
    assert.ok(
      Buffer.from(await after.arrayBuffer()).equals(v2),
      'the re-upload is what comes back',
    );
    const list = await fetch(`${fe.url}/api/list_keys`, { method: 'POST' });
    assert.deepEqual(((await list.json()) as { keys: string[] }).keys, ['on-s3']);
    let names: string[] = [];
    for (let i = 0; i < 50; i++) {
      names = [];
      for await (const name of objects.list()) names.push(name);
      if (names.length === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(names.length, 1, 'the replaced object was deleted from the bucket');
    assert.equal((await metadata.get('on-s3'))?.object, names[0]);
  });
});
