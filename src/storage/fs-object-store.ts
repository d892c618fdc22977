/**
 * ObjectStore over a local folder: one file per object, `<dir>/<name>`.
 *
 * A put writes a temp file under `<dir>/.tmp`, fsyncs it, renames it into place and fsyncs the
 * directory, so an acknowledged put survives a crash and a reader sees the old file, the new file
 * or nothing, never half of one. The temp folder is inside `dir` so the rename stays on one file
 * system. Limits: a crash mid-put leaves a temp file behind (never listed); names are restricted
 * to `[A-Za-z0-9._-]` segments joined by `/`, none starting with a dot, so no name can leave the
 * folder or hide among the temp files. The content type is not stored (the metadata row has it).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, opendir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { unavailable } from '../core/errors.ts';
import { type DeleteAllResult, forEachLimited, type ObjectStore } from './object-store.ts';

export interface FsObjectStoreOptions {
  /** The folder holding the objects; created on the first put. */
  dir: string;
}

const TEMP_DIR = '.tmp';
const MAX_NAME_LENGTH = 1024;
const segment = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
// Errors that mean the folder cannot be used right now, as opposed to a bug in the caller.
const outageCodes = new Set(['EIO', 'ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EMFILE']);

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

  function outage(error: unknown, doing: string): unknown {
    const code = codeOf(error);
    if (code === undefined || !outageCodes.has(code)) return error;
    const failure = unavailable(`The image folder ${root} cannot be used to ${doing} (${code}).`);
    failure.cause = error;
    return failure;
  }

  async function syncDir(path: string): Promise<void> {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async function write(target: string, bytes: Buffer): Promise<void> {
    await mkdir(tempDir, { recursive: true });
    const temp = join(tempDir, randomUUID());
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const parent = dirname(target);
      const created = await mkdir(parent, { recursive: true });
      await rename(temp, target);
      await syncDir(parent);
      // A directory made just now is only durable once its own parent's entry is synced too.
      if (created !== undefined) {
        for (let dir = dirname(parent); dir.startsWith(root); dir = dirname(dir)) {
          await syncDir(dir);
          if (dir === root) break;
        }
      }
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async function* walk(dir: string, prefix: string): AsyncGenerator<string> {
    let handle: Awaited<ReturnType<typeof opendir>>;
    try {
      handle = await opendir(dir);
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return;
      throw outage(error, 'list images');
    }
    for await (const entry of handle) {
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) yield* walk(join(dir, entry.name), `${prefix}${entry.name}/`);
      else if (entry.isFile()) yield `${prefix}${entry.name}`;
    }
  }

  async function remove(name: string): Promise<void> {
    try {
      await unlink(pathOf(name));
    } catch (error) {
      const code = codeOf(error);
      if (code === 'ENOENT' || code === 'EISDIR') return;
      throw outage(error, 'delete an image');
    }
  }

  return {
    async put(name, bytes) {
      const target = pathOf(name);
      try {
        await write(target, bytes);
      } catch (error) {
        throw outage(error, 'store an image');
      }
    },

    async get(name) {
      const path = pathOf(name);
      try {
        return await readFile(path);
      } catch (error) {
        const code = codeOf(error);
        if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return undefined;
        throw outage(error, 'read an image');
      }
    },

    delete: remove,

    list: () => walk(root, ''),

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
