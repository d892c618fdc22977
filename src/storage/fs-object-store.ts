/**
 * ObjectStore over a local folder: one file per object, `<dir>/<name>`.
 *
 * A put of a new name (every upload's object has one) creates the file in place, fsyncs it and
 * its folder; a put over an existing name writes a temp file under `<dir>/.tmp`, fsyncs it,
 * renames it into place and fsyncs the folder, so a reader of a replaced name sees the old file
 * or the new, never half of one. Either way an acknowledged put survives a crash. The temp folder
 * is inside `dir` so the rename stays on one file system. On the hot path a put makes no mkdir
 * (folders known to exist are remembered). Limits: a crash mid-put leaves a partial file behind,
 * under its own name (no row points at it: the garbage collector removes it after its grace
 * period) or in the temp folder (never listed; deleteLeftovers removes the old ones). Names are
 * restricted to `[A-Za-z0-9._-]` segments joined by `/`, none starting with a dot, so no name can
 * leave the folder or hide among the temp files. The content type is not stored (the metadata
 * row has it).
 */
import { randomUUID } from 'node:crypto';
import { close as closeFd, open as openFd, readv } from 'node:fs';
import { mkdir, open, opendir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { unavailable } from '../core/errors.ts';
import {
  type DeleteAllResult,
  forEachLimited,
  type ObjectInfo,
  type ObjectStore,
} from './object-store.ts';

export interface FsObjectStoreOptions {
  /** The folder holding the objects; created on the first put. */
  dir: string;
}

const TEMP_DIR = '.tmp';
const MAX_NAME_LENGTH = 1024;
const segment = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
// Errors that mean the folder cannot be used right now, as opposed to a bug in the caller, and
// what each means to a client (the folder and the code go to the log only). ENOTDIR: a file
// stands where the folder, or one of its fan-out folders, should be.
const outageReasons: Record<string, (writing: boolean) => string> = {
  ENOSPC: () => 'it is full',
  EDQUOT: () => 'it is full',
  EROFS: () => 'it is read-only',
  EACCES: (writing) => (writing ? 'it is not writable' : 'it is not readable'),
  EPERM: (writing) => (writing ? 'it is not writable' : 'it is not readable'),
  EIO: () => 'its disk failed',
  EMFILE: () => 'it is overloaded',
  ENOTDIR: () => 'it is not set up correctly',
};

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code;

export function createFsObjectStore(options: FsObjectStoreOptions): ObjectStore {
  if (typeof options.dir !== 'string' || options.dir === '') {
    throw new TypeError('createFsObjectStore needs a folder (dir)');
  }
  const root = resolve(options.dir);
  const tempDir = join(root, TEMP_DIR);

  function pathOf(name: string): string {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
      throw new TypeError(`invalid object name: ${JSON.stringify(name)}`);
    }
    const parts = name.split('/');
    if (!parts.every((part) => segment.test(part))) {
      throw new TypeError(`invalid object name: ${JSON.stringify(name)}`);
    }
    return join(root, ...parts);
  }

  /** `error` as a 503 when it means the folder cannot be used; `doing` as in "could not …". */
  function outage(error: unknown, doing: string, writing: boolean): unknown {
    const code = codeOf(error);
    const reason = code === undefined ? undefined : outageReasons[code];
    if (code === undefined || reason === undefined) return error;
    return unavailable(`Image storage could not ${doing}: ${reason(writing)}. Try again later.`, {
      detail: `The image folder ${root} cannot be used to ${doing} (${code}).`,
      cause: error,
    });
  }

  async function syncDir(path: string): Promise<void> {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  // Folders known to exist (the temp folder, the fan-out folders), each with the promise of its
  // making: a put skips the mkdir, yet still waits while a folder made by another put is not yet
  // durable (its parent not yet synced). A folder removed behind our back shows up as ENOENT: the
  // put forgets it and makes it again once.
  const dirsReady = new Map<string, Promise<void>>();

  function ensureDir(path: string): Promise<void> {
    let ready = dirsReady.get(path);
    if (ready === undefined) {
      ready = makeDir(path);
      dirsReady.set(path, ready);
      const made = ready;
      made.catch(() => {
        if (dirsReady.get(path) === made) dirsReady.delete(path);
      });
    }
    return ready;
  }

  async function makeDir(path: string): Promise<void> {
    const created = await mkdir(path, { recursive: true }).catch((error: unknown) => {
      if (codeOf(error) !== 'ENOENT') throw error;
      return makeDirStepwise(path);
    });
    if (created === undefined) return;
    // A directory made just now is only durable once its parent's entry is synced too.
    for (let dir = dirname(path); dir.startsWith(root); dir = dirname(dir)) {
      await syncDir(dir);
      if (dir === root) break;
    }
  }

  /**
   * Node's recursive mkdir reports ENOENT for other failures (a read-only file system among
   * them), which would read as a folder removed behind our back: one level at a time, from the
   * store's folder down, mkdir says what really failed. Returns the first folder it made.
   */
  async function makeDirStepwise(path: string): Promise<string | undefined> {
    const dirs: string[] = [];
    for (let dir = path; dir.startsWith(root); dir = dirname(dir)) {
      dirs.unshift(dir);
      if (dir === root) break;
    }
    let first: string | undefined;
    for (const dir of dirs) {
      try {
        await mkdir(dir);
        first ??= dir;
      } catch (error) {
        if (codeOf(error) !== 'EEXIST') throw error;
      }
    }
    return first;
  }

  async function write(target: string, bytes: Buffer): Promise<void> {
    const parent = dirname(target);
    try {
      await writeOnce(target, parent, bytes);
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') throw error;
      dirsReady.delete(tempDir);
      dirsReady.delete(parent);
      await writeOnce(target, parent, bytes);
    }
  }

  /**
   * A new name is written in place: create (failing if the name exists), write, fsync, close, fsync
   * of the folder. The file's data and its folder entry reach the disk in one journal commit, and
   * there is no rename, which costs less CPU per put than a temp file and a rename
   * (bench/RESULTS.md, "new objects written in place"). A reader asking for that name before the
   * put resolves could see part of it; pixpool never does (an object is read only through a row
   * committed after its put). A put that fails removes what it wrote.
   */
  async function writeOnce(target: string, parent: string, bytes: Buffer): Promise<void> {
    await ensureDir(parent);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(target, 'wx');
    } catch (error) {
      if (codeOf(error) === 'EEXIST') return replace(target, parent, bytes);
      throw error;
    }
    try {
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await syncDir(parent);
    } catch (error) {
      await rm(target, { force: true });
      throw error;
    }
  }

  /**
   * An existing name is replaced through a temp file (write, fsync, close) renamed over it, then
   * the folder fsynced: a reader sees the old bytes or the new, never half of either.
   */
  async function replace(target: string, parent: string, bytes: Buffer): Promise<void> {
    await ensureDir(tempDir);
    const temp = join(tempDir, randomUUID());
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
      await syncDir(parent);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  /**
   * The file's bytes if it holds exactly `size` of them, else undefined (the caller reads it
   * whole). One open and one read (the file's bytes and one past them, which must not be
   * there), where readFile also stats the file and waits for its close: on a miss, every step
   * is a trip to libuv's thread pool (bench/RESULTS.md, "the miss path").
   */
  function readSized(path: string, size: number): Promise<Buffer | undefined> {
    if (!Number.isSafeInteger(size) || size < 0) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      openFd(path, 'r', (error, fd) => {
        if (error) return reject(error);
        const bytes = Buffer.allocUnsafe(size);
        const past = Buffer.allocUnsafe(1);
        readv(fd, [bytes, past], 0, (readError, read) => {
          // The answer does not wait for the close (a close of a read-only fd cannot lose data).
          closeFd(fd, () => {});
          if (readError) return reject(readError);
          resolve(read === size ? bytes : undefined);
        });
      });
    });
  }

  async function* walk(dir: string, prefix: string): AsyncGenerator<string> {
    let handle: Awaited<ReturnType<typeof opendir>>;
    try {
      handle = await opendir(dir);
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return;
      throw outage(error, 'list images', false);
    }
    for await (const entry of handle) {
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) yield* walk(join(dir, entry.name), `${prefix}${entry.name}/`);
      else if (entry.isFile()) yield `${prefix}${entry.name}`;
    }
  }

  /** walk() with each file's mtime; a file deleted between the two steps is skipped. */
  async function* walkWithAge(): AsyncGenerator<ObjectInfo> {
    for await (const name of walk(root, '')) {
      try {
        const { mtime } = await stat(join(root, ...name.split('/')));
        yield { name, modifiedAt: mtime };
      } catch (error) {
        if (codeOf(error) === 'ENOENT') continue;
        throw outage(error, 'list images', false);
      }
    }
  }

  /** Deletes temp files of interrupted puts older than `olderThan` (a put in progress is younger). */
  async function deleteLeftovers(olderThan: Date): Promise<number> {
    let handle: Awaited<ReturnType<typeof opendir>>;
    try {
      handle = await opendir(tempDir);
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return 0;
      throw outage(error, 'list temp files', false);
    }
    let deleted = 0;
    for await (const entry of handle) {
      if (!entry.isFile()) continue;
      const path = join(tempDir, entry.name);
      try {
        if ((await stat(path)).mtime >= olderThan) continue;
        await unlink(path);
        deleted++;
      } catch (error) {
        if (codeOf(error) === 'ENOENT') continue; // its put finished or failed meanwhile
        throw outage(error, 'delete a temp file', true);
      }
    }
    return deleted;
  }

  async function remove(name: string): Promise<void> {
    try {
      await unlink(pathOf(name));
    } catch (error) {
      const code = codeOf(error);
      if (code === 'ENOENT' || code === 'EISDIR') return;
      throw outage(error, 'delete an image', true);
    }
  }

  return {
    async put(name, bytes) {
      const target = pathOf(name);
      try {
        await write(target, bytes);
      } catch (error) {
        throw outage(error, 'store the image', true);
      }
    },

    async get(name, size) {
      const path = pathOf(name);
      try {
        const sized = size === undefined ? undefined : await readSized(path, size);
        return sized ?? (await readFile(path));
      } catch (error) {
        const code = codeOf(error);
        if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return undefined;
        throw outage(error, 'read the image', false);
      }
    },

    delete: remove,

    list: () => walk(root, ''),

    listWithAge: walkWithAge,

    deleteLeftovers,

    async deleteAll(): Promise<DeleteAllResult> {
      const result: DeleteAllResult = { deleted: 0, failed: [] };
      let batch: string[] = [];
      const flush = async () => {
        await forEachLimited(batch, 16, async (name) => {
          try {
            await remove(name);
            result.deleted++;
          } catch {
            result.failed.push(name);
          }
        });
        batch = [];
      };
      // Deleting entries the directory iterator has already returned does not disturb it.
      for await (const name of walk(root, '')) {
        batch.push(name);
        if (batch.length >= 1000) await flush();
      }
      await flush();
      return result;
    },

    async close() {},
  };
}
