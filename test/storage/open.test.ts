import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { newObjectName } from '../../src/storage/object-store.ts';
import { openStorage } from '../../src/storage/open.ts';
import { deadPort, tempDir } from '../helpers/storage.ts';
import { upload } from './metadata-store.contract.ts';

it('embedded storage keeps rows and objects under the data folder across a reopen', async () => {
  const folder = await tempDir('open');
  try {
    const dataDir = join(folder.dir, 'nested', 'data');
    const first = await openStorage({ dataDir });
    assert.equal(
      first.description,
      `embedded SQLite in ${join(dataDir, 'pixpool.db')}, objects in ${join(dataDir, 'objects')}`,
    );
    const object = newObjectName('k');
    await first.objects.put(object, Buffer.from('png'), 'image/png');
    await first.metadata.commit({ ...upload('k'), object });
    await first.close();
    // Closed cleanly: the WAL was checkpointed into the database file and removed.
    assert.deepEqual((await readdir(dataDir)).toSorted(), ['objects', 'pixpool.db']);

    const second = await openStorage({ dataDir });
    try {
      const row = await second.metadata.get('k');
      assert.equal(row?.object, object);
      assert.deepEqual(await second.objects.get(object), Buffer.from('png'));
    } finally {
      await second.close();
    }
  } finally {
    await folder.remove();
  }
});

it('a database that cannot be reached at start fails with a message naming it, for the operator', async () => {
  const folder = await tempDir('open');
  try {
    const port = await deadPort();
    await assert.rejects(
      openStorage({
        dataDir: folder.dir,
        databaseUrl: `postgres://pixpool:s3cret@127.0.0.1:${port}/nowhere`,
      }),
      (error: Error) => {
        // Nothing listens yet, so nothing is answered to a client: the CLI prints this message.
        assert.match(error.message, new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port}/nowhere`));
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      },
    );
  } finally {
    await folder.remove();
  }
});
