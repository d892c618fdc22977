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
import { type ChildService, startChildService } from '../../src/process/child-service.ts';
import { SECRET } from '../helpers/nodes.ts';
import { sleep, slowUpload, uploadImage } from '../helpers/processes.ts';
import { tempDir } from '../helpers/storage.ts';
import { bigImage, terminate } from './process-sigterm-helpers.ts';

const env = { PIXPOOL_SECRET: SECRET };
// A generous start limit: a manager opening embedded PostgreSQL on a loaded 2-core machine
// has taken more than the default 30 s.
const start = (args: string[], label: string) =>
  startChildService({
    args: [...args, '--log-level', 'warn'],
    env,
    label,
    quiet: true,
    timeoutMs: 90_000,
  });

/** Files under `dir` outside the temp folder (the fs object store's final names). */
async function finalObjects(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && !join(e.parentPath, e.name).includes(`${dir}/.tmp`))
    .map((e) => join(e.parentPath, e.name));
}

/** Everything the process prints from now on. */
function output(service: ChildService): () => string {
  let text = '';
  service.child.stdout?.on('data', (chunk) => {
    text += chunk;
  });
  service.child.stderr?.on('data', (chunk) => {
    text += chunk;
  });
  return () => text;
}

describe('SIGTERM on a frontend with a stalled upload', { timeout: 300_000 }, () => {
  let folder: Awaited<ReturnType<typeof tempDir>>;
  const started: ChildService[] = [];
  const track = async (service: Promise<ChildService>) => {
    const s = await service;
    started.push(s);
    return s;
  };

  before(async () => {
    folder = await tempDir('sigterm-stall');
  });
  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
    await folder.remove();
  });

  it('frontend: a client that stalls mid-upload cannot keep it alive: exit 1 after the 10 s bound, no half object', async () => {
    const node = await track(start(['cache-node', '--port', '0'], 'node'));
    const args = ['frontend', '--port', '0', '--nodes', node.url, '--data-dir', folder.dir];
    const frontend = await track(start(args, 'frontend'));
    const printed = output(frontend);
    const kept = bigImage(1);
    assert.equal((await uploadImage(frontend.url, 'kept', kept)).status, 200);
    const objects = join(folder.dir, 'objects');
    const before = await finalObjects(objects);
    const upload = slowUpload(frontend.url, 'stalled', bigImage(4));
    await upload.sendPart(0.3);
    await sleep(200);
    const { code, ms } = await terminate(frontend);
    upload.destroy();
    assert.equal(code, 1);
    assert.match(printed(), /requests still open after 10 s; exiting without them/);
    assert.ok(ms >= 9000 && ms < 30_000, `exited after ${ms} ms`);
    assert.deepEqual(await finalObjects(objects), before, 'nothing new under a final name');

    const again = await track(start(args, 'frontend again'));
    assert.equal((await fetch(`${again.url}/images/stalled`)).status, 404, 'never acknowledged');
    assert.equal((await fetch(`${again.url}/images/kept`)).status, 200);
    await terminate(again);
  });
});
