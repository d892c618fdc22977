/**
 * Issue 8, SIGTERM on a frontend with an upload that cannot finish (real processes): the wait is
 * bounded. A client that stalls mid-upload cannot keep the frontend alive: it exits 1 after 10 s,
 * saying so, and what it cut leaves no half object under a final name. (The manager's bound, a
 * resize that cannot finish, is process-sigterm-resize.test.ts.)
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { slowUpload, uploadImage } from '../helpers/processes.ts';
import { bigImage, output, serviceHarness, terminate } from './process-sigterm-helpers.ts';

/** Files under `dir` outside the temp folder (the fs object store's final names). */
async function finalObjects(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && !join(e.parentPath, e.name).includes(`${dir}/.tmp`))
    .map((e) => join(e.parentPath, e.name));
}

describe('SIGTERM on a frontend with a stalled upload', { timeout: 300_000 }, () => {
  const services = serviceHarness('sigterm-stall');
  before(() => services.setUp());
  after(() => services.tearDown());

  it('frontend: a client that stalls mid-upload cannot keep it alive: exit 1 after the 10 s bound, no half object', async () => {
    const node = await services.start(['cache-node', '--port', '0'], 'node');
    const args = ['frontend', '--port', '0', '--nodes', node.url, '--data-dir', services.dir];
    const frontend = await services.start(args, 'frontend');
    const printed = output(frontend);
    const kept = bigImage(1);
    assert.equal((await uploadImage(frontend.url, 'kept', kept)).status, 200);
    const objects = join(services.dir, 'objects');
    const before = await finalObjects(objects);
    const upload = slowUpload(frontend.url, 'stalled', bigImage(4));
    await upload.sendPart(0.3);
    await upload.received(); // in flight: the frontend has read what was sent, then nothing more
    const { code, ms } = await terminate(frontend);
    upload.destroy();
    assert.equal(code, 1);
    assert.match(printed(), /requests still open after 10 s; exiting without them/);
    assert.ok(ms >= 9000 && ms < 30_000, `exited after ${ms} ms`);
    assert.deepEqual(await finalObjects(objects), before, 'nothing new under a final name');

    const again = await services.start(args, 'frontend again');
    assert.equal((await fetch(`${again.url}/images/stalled`)).status, 404, 'never acknowledged');
    assert.equal((await fetch(`${again.url}/images/kept`)).status, 200);
    await terminate(again);
  });
});
