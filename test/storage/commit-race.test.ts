/**
 * On PostgreSQL the metadata store's commit is two single statements without a transaction
 * (insert, else a replace that locks the row), so its exactness under races rests on row locking;
 * on SQLite it is one transaction holding the write lock.
 * This hammers it harder than the contract suite: hundreds of commits of a few keys at once,
 * with delete-alls landing in between, on SQLite and on PostgreSQL through two separate pools
 * (two services). Whatever the interleaving, every object committed must come back exactly once:
 * as the object a later commit replaced, as one a delete-all removed, or as a key's final
 * object; and a replaced object is always an older version of the same key.
 *
 * Other storms run bursts of delete-alls at once, from several pools, while commits replace rows
 * under them; the same accounting must hold, with no error. Two bare `DELETE FROM images` whose
 * snapshots differ by a row a commit moved lock rows in different orders and can deadlock; the
 * storms meet that only by chance, so the last test builds that interleaving step by step.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  createMetadataStore,
  type ImageRecord,
  type MetadataStore,
} from '../../src/storage/metadata-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { databaseUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';
import { upload } from './metadata-store.contract.ts';

const COMMITS = 240;
const DELETE_ALLS = 4;

/**
 * Runs COMMITS commits of `keys` keys at once over `stores` (alternating), and after each of
 * DELETE_ALLS slices of them has settled, `deletesAtOnce` delete-alls at once (also spread over
 * the stores) while the rest are in flight; then checks the accounting.
 */
async function storm(
  stores: MetadataStore[],
  run: number,
  { keys: keyCount, deletesAtOnce }: { keys: number; deletesAtOnce: number },
): Promise<void> {
  const keys = Array.from({ length: keyCount }, (_, i) => `key-${run}-${i}`);
  const uploads = Array.from({ length: COMMITS }, (_, i) =>
    upload(keys[i % keys.length] as string, `image ${i}`),
  );
  const store = (i: number) => stores[i % stores.length] as MetadataStore;
  const commits = uploads.map((up, i) => store(i).commit(up));
  const deleted: string[] = [];
  const deletes = (async () => {
    for (let d = 0; d < DELETE_ALLS; d++) {
      await Promise.allSettled(commits.slice(0, ((d + 1) * COMMITS) / (DELETE_ALLS + 1)));
      const burst = Array.from({ length: deletesAtOnce }, (_, i) => store(d + i).deleteAll());
      for (const { objects } of await Promise.all(burst)) deleted.push(...objects);
    }
  })();
  const results = await Promise.all(commits);
  await deletes;
  await assertAccounted(store(0), uploads, results, deleted);
}

type Committed = Awaited<ReturnType<MetadataStore['commit']>>;

/** Every upload is replaced, deleted or current, exactly once; replacements go forward. */
async function assertAccounted(
  store: MetadataStore,
  uploads: ReturnType<typeof upload>[],
  results: Committed[],
  deleted: string[],
): Promise<void> {
  const keyOf = new Map(uploads.map((up) => [up.object, up.key]));
  const keys = [...new Set(keyOf.values())];
  const finals = (await Promise.all(keys.map((key) => store.get(key)))).flatMap((row) =>
    row ? [row.object] : [],
  );

  const versionOf = new Map(results.map((r) => [r.record.object, r.record.version]));
  assert.equal(
    new Set(versionOf.values()).size,
    uploads.length,
    'every commit has its own version',
  );
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

it('SQLite: racing commits and delete-alls account for every object exactly once', async () => {
  const store = await createMetadataStore(createSqliteDriver());
  try {
    await storm([store], 0, { keys: 4, deletesAtOnce: 1 });
  } finally {
    await store.close();
  }
});

it('SQLite: delete-alls at once, among racing commits, account for every object exactly once', async () => {
  const store = await createMetadataStore(createSqliteDriver());
  try {
    await storm([store], 0, { keys: 24, deletesAtOnce: 8 });
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
        await storm([first, second], run, { keys: 4, deletesAtOnce: 1 });
      } finally {
        await first.close();
        await second.close();
      }
    }
  });

  it('delete-alls at once from three pools, among racing commits, neither fail nor lose an object', async () => {
    for (let run = 0; run < 3; run++) {
      const schema = randomSchema();
      schemas.push(schema);
      const open = () =>
        createMetadataStore(createPgDriver({ connectionString: databaseUrl(), schema }));
      const stores = [await open(), await open(), await open()];
      try {
        await storm(stores, run, { keys: 24, deletesAtOnce: 12 });
      } finally {
        for (const store of stores) await store.close();
      }
    }
  });

  it('two delete-alls whose snapshots differ by rows commits moved finish without a deadlock', async () => {
    // The interleaving that deadlocks two bare DELETEs, built step by step with real connections
    // (what the storms above only hit by chance). Rows U, V, X, Y lie in that order in the table.
    // Delete-all A waits behind a commit in flight on U; meanwhile V is replaced (moved to the
    // table's end) and a commit in flight holds the new V. Once U's commit ends, A deletes U's new
    // version (at the end) and waits on V's. Delete-all B, started now, sees U and V only at the
    // end: unserialized, it deletes X and Y, then waits on A at U, and A, released, waits on B at X.
    const schema = randomSchema();
    schemas.push(schema);
    const named = (name: string) => {
      const url = new URL(databaseUrl());
      url.searchParams.set('application_name', `${schema}_${name}`);
      return createMetadataStore(createPgDriver({ connectionString: url.toString(), schema }));
    };
    const writer = await named('writer');
    const [a, b] = [await named('a'), await named('b')];
    const sessions: pg.Client[] = [];
    const session = async () => {
      const client = new pg.Client({
        connectionString: databaseUrl(),
        options: `-c search_path=${schema}`,
      });
      sessions.push(client);
      await client.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      return { client, pid: rows[0]?.pid as number };
    };
    try {
      const [onU, onV, observer] = [await session(), await session(), await session()];
      /** Waits until the named store's connection waits for a lock `holder` holds; its pid. */
      const blockedBy = async (name: string, holder: number) => {
        for (const started = Date.now(); Date.now() - started < 10_000; await sleep(10)) {
          const { rows } = await observer.client.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity
              WHERE application_name = $1 AND $2 = ANY (pg_blocking_pids(pid))`,
            [`${schema}_${name}`, holder],
          );
          if (rows[0]) return rows[0].pid;
        }
        throw new Error(`delete-all ${name} never waited for backend ${holder}`);
      };

      const [u, v, x, y] = ['U', 'V', 'X', 'Y'].map((key) => upload(key));
      for (const up of [u, v, x, y]) await writer.commit(up as ReturnType<typeof upload>);
      // A commit replacing U, in flight: it has locked the row (and moved it) but not ended.
      const newU = upload('U', 'second U');
      await onU.client.query('BEGIN');
      await onU.client.query(
        `UPDATE images SET object = $2, version = nextval('image_versions') WHERE key = $1`,
        ['U', newU.object],
      );
      const first = a.deleteAll();
      await blockedBy('a', onU.pid);
      // V replaced (a whole commit), then a commit of V in flight locks its new version.
      const newV = upload('V', 'second V');
      assert.equal((await writer.commit(newV)).previousObject, v?.object);
      await onV.client.query('BEGIN');
      await onV.client.query(`SELECT 1 FROM images WHERE key = 'V' FOR UPDATE`);
      await onU.client.query('COMMIT');
      const aPid = await blockedBy('a', onV.pid);
      const second = b.deleteAll();
      await blockedBy('b', aPid);
      await onV.client.query('COMMIT');

      const results = await Promise.allSettled([first, second]);
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      assert.deepEqual(failures, [], 'neither delete-all failed');
      const deleted = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.objects : []));
      assert.deepEqual(
        deleted.toSorted(),
        [newU.object, newV.object, x?.object, y?.object].toSorted(),
        'every row deleted, by exactly one of the two',
      );
    } finally {
      for (const client of sessions) await client.end().catch(() => {});
      for (const store of [writer, a, b]) await store.close();
    }
  });
});
