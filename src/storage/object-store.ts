/**
 * ObjectStore: where image bytes live (a local folder or an S3 bucket), one name → one blob.
 *
 * Objects are write-once in practice: every upload gets a fresh name (newObjectName), the
 * metadata store maps the key to it, and the replaced object is deleted afterwards. So a reader
 * that found a name never races an overwrite of that name, and a half-finished upload leaves an
 * orphan (collectable later), never a broken image. Names are opaque to the stores.
 */
import { createHash, randomUUID } from 'node:crypto';

export interface ObjectStore {
  /** Stores the bytes under `name`; durable once the promise resolves. */
  put(name: string, bytes: Buffer, contentType: string): Promise<void>;
  /**
   * The bytes under `name`, or undefined when there is no such object. `size`, when the caller
   * knows it (the metadata row's), lets a store read them in fewer steps; a store that finds
   * another size returns what it holds all the same.
   */
  get(name: string, size?: number): Promise<Buffer | undefined>;
  /** Removes `name`; removing an absent object is not an error. */
  delete(name: string): Promise<void>;
  /** Every object name, across all pages of the backend's listing, in no promised order. */
  list(): AsyncIterable<string>;
  /**
   * Every object with its last-modified time (folder: the file's mtime; S3: LastModified, the
   * server's clock), like list(). The garbage collector uses the age to spare uploads in flight.
   */
  listWithAge(): AsyncIterable<ObjectInfo>;
  /**
   * Removes what interrupted puts left behind, last modified before `olderThan` (the folder's
   * temp files); returns how many. Backends whose puts are all-or-nothing have none: 0.
   */
  deleteLeftovers(olderThan: Date): Promise<number>;
  /** Deletes every object (all pages); names that could not be deleted are reported, not thrown. */
  deleteAll(): Promise<DeleteAllResult>;
  close(): Promise<void>;
}

export interface ObjectInfo {
  name: string;
  modifiedAt: Date;
}

export interface DeleteAllResult {
  deleted: number;
  failed: string[];
}

/**
 * A fresh object name for an upload of `key`: a two-hex-digit fan-out prefix from SHA-256(key),
 * so a folder store spreads files over 256 directories, then a random UUID. The key itself never
 * appears in the name: keys are user input and may hold characters no file system or bucket
 * policy should have to think about.
 */
export function newObjectName(key: string): string {
  const fanOut = createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 2);
  return `${fanOut}/${randomUUID()}`;
}

/** Calls `fn` on every item with at most `limit` calls in flight; resolves when all settled. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
