/**
 * The metadata store's commit is two single statements without a transaction (insert, else a
 * replace that locks the row), so its exactness under races rests on PostgreSQL's row locking.
 * This hammers it harder than the contract suite: hundreds of commits of a few keys at once,
 * with delete-alls landing in between, on PGlite and on PostgreSQL through two separate pools
 * (two services). Whatever the interleaving, every object committed must come back exactly once:
 * as the object a later commit replaced, as one a delete-all removed, or as a key's final
 * object; and a replaced object is always an older version of the same key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createMetadataStore,
  type ImageRecord,
  type MetadataStore,
} from '../../src/storage/metadata-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { createPgliteDriver } from '../../src/storage/pglite-driver.ts';
import { databaseUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';
import { upload } from './metadata-store.contract.ts';

const KEYS = ['a', 'b', 'c', 'd'];
const COMMITS = 240;
const DELETE_ALLS = 4;

/** Runs the storm over `stores` (commits alternate between them) and checks the accounting. */
async function storm(stores: MetadataStore[], run: number): Promise<void> {
  const keys = KEYS.map((key) => `${key}${run}`);
  const uploads = Array.from({ length: COMMITS }, (_, i) =>
    upload(keys[i % keys.length] as string, `image ${i}`),
  );
  const keyOf = new Map(uploads.map((up) => [up.object, up.key]));
  const commits = uploads.map((up, i) => (stores[i % stores.length] as MetadataStore).commit(up));
  // Delete-alls spread through the storm, each started after a slice of the commits. One at a
  // time: two at once can deadlock each other (each locks every row), which is not commit's
  // concern here.
  const deleted: string[] = [];
  const deletes = (async () => {
    for (let d = 0; d < DELETE_ALLS; d++) {
      await Promise.allSettled(commits.slice(0, ((d + 1) * COMMITS) / (DELETE_ALLS + 1)));
      deleted.push(...(await (stores[d % stores.length] as MetadataStore).deleteAll()).objects);
    }
  })();
  const results = await Promise.all(commits);
  await deletes;
  const finals = (await Promise.all(keys.map((key) => stores[0]?.get(key)))).flatMap((row) =>
    row ? [row.object] : [],
  );

  const versionOf = new Map(results.map((r) => [r.record.object, r.record.version]));
  assert.equal(new Set(versionOf.values()).size, COMMITS, 'every commit has its own version');
  const replaced: string[] = [];
  for (const { record, previousObject } of results) {
    assertMatches(record, uploads);
    if (previousObject === undefined) continue;
    replaced.push(previousObject);
    assert.equal(keyOf.get(previousObject), record.key, 'a commit replaced another key');
    assert.ok(
      (versionOf.get(previousObject) as number) < record.version,
      'a commit replaced a newer version',
    );
  }
  assert.deepEqual(
    [...replaced, ...deleted, ...finals].toSorted(),
    uploads.map((up) => up.object).toSorted(),
    'every object is replaced, deleted or current: exactly once',
  );
}

function assertMatches(record: ImageRecord, uploads: ReturnType<typeof upload>[]): void {
  const up = uploads.find((u) => u.object === record.object);
  assert.ok(up, `a record for an object nobody committed: ${record.object}`);
  assert.deepEqual(
    { key: record.key, contentType: record.contentType, size: record.size, sha: record.sha256 },
    { key: up.key, contentType: up.contentType, size: up.size, sha: up.sha256 },
  );
}

it('PGlite: racing commits and delete-alls account for every object exactly once', async () => {
  const store = await createMetadataStore(createPgliteDriver());
  try {
    await storm([store], 0);
  } finally {
    await store.close();
  }
});

describe('PostgreSQL', () => {
  const schemas: string[] = [];
  before(() => requirePostgres());
  after(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  it('racing commits and delete-alls from two pools account for every object exactly once', async () => {
    // Three storms, each on a fresh schema (a delete-all empties the whole table).
    for (let run = 0; run < 3; run++) {
      const schema = randomSchema();
      schemas.push(schema);
      const open = () =>
        createMetadataStore(createPgDriver({ connectionString: databaseUrl(), schema }));
      const first = await open(); // applies the migrations before the second starts
      const second = await open();
      try {
        await storm([first, second], run);
      } finally {
        await first.close();
        await second.close();
      }
    }
  });
});
