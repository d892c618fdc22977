/**
 * The garbage collector against real stores: a folder store with an embedded PostgreSQL
 * (SQLite), then an s3rver bucket with the real PostgreSQL. Ages are real (files' mtimes set
 * back with utimes, S3's own LastModified seen through a clock moved forward).
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { collectGarbage, describeGcReport, startGarbageCollector } from '../../src/storage/gc.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import { newObjectName, type ObjectStore } from '../../src/storage/object-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { createS3ObjectStore } from '../../src/storage/s3-object-store.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import {
  databaseUrl,
  dropSchema,
  randomSchema,
  requirePostgres,
  startS3Server,
  type TestS3,
  tempDir,
} from '../helpers/storage.ts';

const HOUR = 3600_000;

async function names(store: ObjectStore): Promise<string[]> {
  const all: string[] = [];
  for await (const name of store.list()) all.push(name);
  return all.toSorted();
}

/** Stores an object and, when `key` is given, commits a row pointing to it (an upload). */
async function put(objects: ObjectStore, metadata: MetadataStore, key: string, commit: boolean) {
  const object = newObjectName(key);
  await objects.put(object, Buffer.from(key), 'image/png');
  if (commit) {
    await metadata.commit({
      key,
      object,
      contentType: 'image/png',
      size: 1,
      sha256: 'x'.repeat(64),
    });
  }
  return object;
}

describe('garbage collection over a folder and SQLite', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let objects: ObjectStore;
  let metadata: MetadataStore;
  before(async () => {
    dir = await tempDir('gc');
    objects = createFsObjectStore({ dir: dir.dir });
    metadata = await createMetadataStore(createSqliteDriver());
  });
  after(async () => {
    await metadata.close();
    await dir.remove();
  });

  const age = async (name: string, ms: number) => {
    const t = new Date(Date.now() - ms);
    await utimes(join(dir.dir, ...name.split('/')), t, t);
  };

  it('deletes only old unreferenced objects and old temp files; dry runs and reruns delete nothing more', async () => {
    const oldReferenced = await put(objects, metadata, 'kept', true);
    const oldOrphan = await put(objects, metadata, 'orphan', false);
    const youngOrphan = await put(objects, metadata, 'in-flight', false);
    const youngReferenced = await put(objects, metadata, 'fresh', true);
    // A replaced object whose delete failed: the row now points elsewhere.
    const replaced = await put(objects, metadata, 'replaced', true);
    const replacement = await put(objects, metadata, 'replaced', true);
    for (const name of [oldReferenced, oldOrphan, replaced, replacement]) await age(name, 2 * HOUR);
    await mkdir(join(dir.dir, '.tmp'), { recursive: true });
    await writeFile(join(dir.dir, '.tmp', 'interrupted-old'), 'half');
    await writeFile(join(dir.dir, '.tmp', 'interrupted-young'), 'half');
    const past = new Date(Date.now() - 2 * HOUR);
    await utimes(join(dir.dir, '.tmp', 'interrupted-old'), past, past);

    const dry = await collectGarbage({ objects, metadata, graceMs: HOUR, dryRun: true });
    assert.deepEqual(
      [dry.listed, dry.young, dry.referenced, dry.orphans, dry.deleted, dry.leftovers],
      [6, 2, 2, 2, 0, undefined],
    );
    assert.deepEqual(dry.sample.toSorted(), [oldOrphan, replaced].toSorted());
    assert.equal((await names(objects)).length, 6, 'a dry run deleted something');

    const report = await collectGarbage({ objects, metadata, graceMs: HOUR });
    assert.deepEqual(
      [report.orphans, report.deleted, report.failed, report.leftovers],
      [2, 2, 0, 1],
      describeGcReport(report),
    );
    assert.match(describeGcReport(report), /deleted 2 orphan\(s\), 1 leftover temp file/);
    assert.deepEqual(
      await names(objects),
      [oldReferenced, youngOrphan, youngReferenced, replacement].toSorted(),
    );
    assert.deepEqual(await readdir(join(dir.dir, '.tmp')), ['interrupted-young']);
    assert.deepEqual(await objects.get(oldReferenced), Buffer.from('kept'));

    const again = await collectGarbage({ objects, metadata, graceMs: HOUR });
    assert.deepEqual([again.orphans, again.deleted, again.leftovers], [0, 0, 0]);

    // A grace of 0 takes the young orphan too, never a referenced object.
    const all = await collectGarbage({ objects, metadata, graceMs: 0 });
    assert.equal(all.deleted, 1);
    assert.deepEqual(
      await names(objects),
      [oldReferenced, youngReferenced, replacement].toSorted(),
    );
  });

  it('spares an upload in flight: object written before the sweep, row committed after it read the rows', async () => {
    // The upload's object exists (young) when the sweep lists, and its row is committed only
    // once the sweep has read every row: the sweep cannot know it is referenced, only the grace
    // saves it. An implementation ignoring ages would delete it and lose an acknowledged image.
    const object = newObjectName('in-flight-upload');
    await objects.put(object, Buffer.from('in flight'), 'image/png');
    const racing: Pick<MetadataStore, 'referencedObjects'> = {
      async *referencedObjects() {
        yield* metadata.referencedObjects();
        await metadata.commit({
          key: 'in-flight-upload',
          object,
          contentType: 'image/png',
          size: 9,
          sha256: 'x'.repeat(64),
        });
      },
    };
    const report = await collectGarbage({ objects, metadata: racing, graceMs: HOUR });
    assert.equal(report.deleted, 0);
    assert.equal((await metadata.get('in-flight-upload'))?.object, object);
    assert.deepEqual(await objects.get(object), Buffer.from('in flight'));
  });

  it('refuses a negative grace, and a stopped sweep deletes nothing', async () => {
    await assert.rejects(collectGarbage({ objects, metadata, graceMs: -1 }), RangeError);
    const orphan = await put(objects, metadata, 'stopped', false);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      collectGarbage({ objects, metadata, graceMs: 0, signal: controller.signal }),
    );
    assert.ok((await names(objects)).includes(orphan));
  });

  it('sweeps on a timer until stopped', async () => {
    const orphan = await put(objects, metadata, 'timer', false);
    const reports: number[] = [];
    const gc = startGarbageCollector({
      objects,
      metadata,
      graceMs: 0,
      intervalMs: 50,
      firstDelayMs: 0,
      onReport: (r) => reports.push(r.deleted),
      onError: (e) => assert.fail(String(e)),
    });
    for (let i = 0; i < 200 && reports.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    await gc.stop();
    const count = reports.length;
    assert.ok(count >= 2, `only ${count} sweeps`);
    assert.ok(reports.reduce((a, b) => a + b, 0) >= 1);
    assert.ok(!(await names(objects)).includes(orphan));
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(reports.length, count, 'a sweep ran after stop()');
  });
});

describe('garbage collection over s3rver and PostgreSQL', () => {
  let s3: TestS3;
  let metadata: MetadataStore;
  const schema = randomSchema();
  before(async () => {
    await requirePostgres();
    s3 = await startS3Server();
    metadata = await createMetadataStore(
      createPgDriver({ connectionString: databaseUrl(), schema }),
    );
  });
  after(async () => {
    await metadata.close();
    await dropSchema(schema);
    await s3.close();
  });

  it('uses S3 LastModified: nothing is old now, everything unreferenced is two hours later', async () => {
    const objects = createS3ObjectStore(s3.storeOptions(await s3.createBucket()));
    try {
      const referenced = await put(objects, metadata, 's3-kept', true);
      const orphans = await Promise.all(
        ['a', 'b', 'c'].map((k) => put(objects, metadata, `s3-${k}`, false)),
      );
      const now = await collectGarbage({ objects, metadata, graceMs: HOUR });
      assert.deepEqual([now.listed, now.young, now.deleted], [4, 4, 0]);
      const later = await collectGarbage({
        objects,
        metadata,
        graceMs: HOUR,
        now: () => Date.now() + 2 * HOUR,
      });
      assert.deepEqual([later.referenced, later.deleted, later.leftovers], [1, 3, 0]);
      assert.deepEqual(await names(objects), [referenced]);
      for (const name of orphans) assert.equal(await objects.get(name), undefined);
    } finally {
      await objects.close();
    }
  });
});
