/**
 * Storage failures over real HTTP, from a real frontend process (`pixpool frontend`, embedded
 * database and objects in its data folder): every error answer says what failed in a client's
 * terms and never where, so no answer body contains the data folder's path or the temp folder it
 * lives in, while the frontend's log names the folder and the system's error code.
 *
 * Faults on the data folder's objects/: replaced by a file (ENOTDIR); then unable to take an
 * upload. As root, permission bits stop nothing, so that is a tiny tmpfs mounted over objects/,
 * filled to the brim (ENOSPC), then remounted read-only (EROFS); otherwise objects/ is made
 * read-only (EACCES on writes) and then unreadable (EACCES on a read of a stored image).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { chmod, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { type ChildService, startChildService } from '../../src/process/child-service.ts';
import { imageBytes } from '../helpers/images.ts';
import { SECRET, startNode, type TestNode } from '../helpers/nodes.ts';
import { cliEnv, waitFor } from '../helpers/processes.ts';
import { tempDir } from '../helpers/storage.ts';

const root = process.getuid?.() === 0;

let data: Awaited<ReturnType<typeof tempDir>>;
let objectsDir: string;
let node: TestNode;
let frontend: ChildService;
let log = '';
/** Every error answer the frontend gave in this file, with what was asked. */
const errorAnswers: { asked: string; status: number; body: string }[] = [];
let mounted = false;

before(async () => {
  data = await tempDir('messages');
  objectsDir = join(data.dir, 'objects');
  node = await startNode({ capacityMb: 16 });
  frontend = await startChildService({
    args: ['frontend', '--port', '0', '--nodes', node.url, '--log-level', 'info'],
    // cliEnv: no DATABASE_URL from the test run, so the database is embedded in the data folder.
    env: cliEnv({ PIXPOOL_DATA_DIR: data.dir, PIXPOOL_SECRET: SECRET }),
    label: 'frontend',
    quiet: true,
  });
  frontend.child.stdout?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  frontend.child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
});

after(async () => {
  if (mounted) execFileSync('umount', ['-l', objectsDir]);
  await chmodTree(objectsDir, 0o755).catch(() => {});
  await frontend?.stop();
  await node?.close();
  await data?.remove();
});

/** A request to the frontend; an answer of 400 or more is recorded for the final scan. */
async function ask(method: string, path: string, body?: FormData) {
  const response = await fetch(`${frontend.url}${path}`, { method, ...(body && { body }) });
  const text = await response.text();
  if (response.status >= 400) {
    errorAnswers.push({ asked: `${method} ${path}`, status: response.status, body: text });
  }
  return { status: response.status, text };
}

let uploads = 0;
async function upload(key: string) {
  const form = new FormData();
  form.append('key', key);
  const bytes = imageBytes('png', 4096, ++uploads);
  form.append('file', new Blob([new Uint8Array(bytes)]), 'a.png');
  return ask('POST', '/api/upload', form);
}

/** The answer is the 503 envelope with `message`. */
function assertRefused(answer: { status: number; text: string }, message: string) {
  assert.equal(answer.status, 503, answer.text);
  assert.deepEqual(JSON.parse(answer.text), {
    success: 'false',
    error: { code: 503, message },
  });
}

/** Waits for the frontend's log to name the folder and the error code of a failed `doing`. */
async function assertLogged(doing: string, code: string) {
  const detail = `The image folder ${objectsDir} cannot be used to ${doing} (${code}).`;
  await waitFor(`the log line "${detail}"`, () => log.includes(detail), { timeoutMs: 5000 });
}

/** Sets `mode` on `dir` and the folders in it (before reading it when the mode lets us read). */
async function chmodTree(dir: string, mode: number): Promise<void> {
  const readable = (mode & 0o500) === 0o500;
  if (readable) await chmod(dir, mode);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await chmodTree(join(dir, entry.name), mode);
  }
  if (!readable) await chmod(dir, mode);
}

const mount = (...args: string[]) => {
  try {
    execFileSync('mount', args, { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `This test runs as root, where only a mount can make a folder unwritable, and mount ` +
        `failed (a container without CAP_SYS_ADMIN?): ${(error as Error).message}`,
    );
  }
};

it('an upload works before any fault', async () => {
  assert.equal((await upload('before')).status, 200);
});

it('objects/ replaced by a file: 503 in a client’s terms, the folder in the log', async () => {
  await rename(objectsDir, `${objectsDir}-aside`);
  await writeFile(objectsDir, 'not a folder');
  try {
    assertRefused(
      await upload('no-folder'),
      'Image storage could not store the image: it is not set up correctly. Try again later.',
    );
    await assertLogged('store the image', 'ENOTDIR');
  } finally {
    await rm(objectsDir);
    await rename(`${objectsDir}-aside`, objectsDir);
  }
  assert.equal((await upload('after-folder')).status, 200);
});

if (root) {
  it('objects/ on a full file system, then a read-only one (root: a tmpfs)', async () => {
    mount('-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', objectsDir);
    mounted = true;
    // Filled to the last byte: the write fails part-way, and what it wrote stays.
    await assert.rejects(writeFile(join(objectsDir, 'filler'), Buffer.alloc(1 << 20)), {
      code: 'ENOSPC',
    });
    assertRefused(
      await upload('disk-full'),
      'Image storage could not store the image: it is full. Try again later.',
    );
    await assertLogged('store the image', 'ENOSPC');

    mount('-o', 'remount,ro', objectsDir);
    assertRefused(
      await upload('read-only'),
      'Image storage could not store the image: it is read-only. Try again later.',
    );
    await assertLogged('store the image', 'EROFS');
    execFileSync('umount', [objectsDir]);
    mounted = false;
    assert.equal((await upload('after-mount')).status, 200);
  });
} else {
  it('objects/ read-only, then unreadable (chmod)', async () => {
    await chmodTree(objectsDir, 0o555);
    try {
      assertRefused(
        await upload('read-only'),
        'Image storage could not store the image: it is not writable. Try again later.',
      );
      await assertLogged('store the image', 'EACCES');
      // "before" was never fetched, so no cache holds it: it is read from the folder.
      await chmodTree(objectsDir, 0o000);
      assertRefused(
        await ask('GET', '/images/before'),
        'Image storage could not read the image: it is not readable. Try again later.',
      );
      await assertLogged('read the image', 'EACCES');
    } finally {
      await chmodTree(objectsDir, 0o755);
    }
    assert.equal((await upload('after-chmod')).status, 200);
  });
}

it('no error answer names the data folder or the temp folder it is in', () => {
  // Each fault above was answered at least once, so this scan has something to read.
  assert.ok(errorAnswers.length >= 2, JSON.stringify(errorAnswers));
  const secrets = [data.dir, realpathSync(data.dir), tmpdir(), realpathSync(tmpdir())];
  for (const answer of errorAnswers) {
    for (const secret of secrets) {
      assert.ok(!answer.body.includes(secret), `${answer.asked} answered ${answer.body}`);
    }
  }
});
