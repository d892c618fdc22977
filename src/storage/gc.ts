/**
 * The orphan-object garbage collector: deletes objects no metadata row points to, once they are
 * older than a grace period, and the folder store's temp files of interrupted puts.
 *
 * Where orphans come from: an upload writes its object BEFORE it commits the row (so a row never
 * points to missing bytes), so an upload that fails, is refused or dies with its process between
 * the two steps leaves an object nobody references (in the folder store possibly a partial one,
 * as a new object is written in place). So does a replaced object whose delete failed, and an
 * upload whose COMMIT was cut off (it may or may not have committed: images.ts leaves its object
 * here rather than risk deleting bytes a row points to).
 *
 * Why the order is safe (list, THEN read the rows, delete only old AND unreferenced):
 * 1. The sweep starts at time T and lists every object with its last-modified time. Objects
 *    modified after T − grace are young and never deleted: they may belong to an upload in flight.
 * 2. Only then it reads every row's object (`referencedObjects()`). A row committed before this
 *    read is seen, so its object is kept.
 * 3. A row committed after that read (and so possibly missed) belongs to an upload that was
 *    still in flight at step 2, after T. Its object was written during that upload, and an upload
 *    lasts far less than the grace (request and body timeouts, pg connect/statement timeouts of
 *    seconds, S3 timeouts of seconds: minutes at the very worst, the default grace is an hour),
 *    so the object was written after T − grace: it is young and step 1 already spared it.
 * The argument needs the grace to exceed the longest upload plus the clock skew between this
 * process and the object store (S3's LastModified is the server's clock). A grace of 0 is only
 * safe with no upload in flight (e.g. the CLI on a stopped system); the CLI warns about it.
 * A re-upload never reuses an object name (newObjectName is random), so an old orphan can never
 * become referenced again.
 *
 * Memory: the old objects' names are held in one Set while the rows are streamed past it
 * (`referencedObjects()` pages by key), so memory grows with the number of objects older than the
 * grace. Each name is flattened before it is kept: unflattened, the names the listings build hold
 * on to their parts, which costs far more per name. That is fine up to a few million objects per
 * store, which is the scale pixpool targets. Beyond that, sweep per fan-out prefix (names are
 * `<2 hex>/<uuid>`): list one prefix, read the rows whose object has that prefix (needs an index
 * on images.object), which bounds memory to 1/256 of it. Not done here: it costs 256 queries per
 * sweep and an index.
 *
 * Sweeps are idempotent and may run in several processes at once (every frontend runs one):
 * deleting an absent object is not an error, and a sweep deletes only what it has proven orphan.
 */
import type { MetadataStore } from './metadata-store.ts';
import { forEachLimited, type ObjectStore } from './object-store.ts';

export const DEFAULT_GRACE_MS = 60 * 60 * 1000;
export const DEFAULT_INTERVAL_MS = 10 * 60 * 1000;

export interface GcOptions {
  objects: ObjectStore;
  metadata: Pick<MetadataStore, 'referencedObjects'>;
  /** Objects modified less than this long ago are never deleted (default 1 h). */
  graceMs?: number | undefined;
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean | undefined;
  /** Stops the sweep early (the process is closing); nothing is deleted after it fires. */
  signal?: AbortSignal | undefined;
  /** Deletes in flight at once (default 8). */
  concurrency?: number | undefined;
  now?: (() => number) | undefined;
}

export interface GcReport {
  /** Objects listed. */
  listed: number;
  /** Of those, modified within the grace period: kept unread. */
  young: number;
  /** Old objects a row points to: kept. */
  referenced: number;
  /** Old objects no row points to. */
  orphans: number;
  /** Orphans deleted (0 on a dry run). */
  deleted: number;
  /** Orphans whose delete failed (retried by the next sweep). */
  failed: number;
  /** Temp files of interrupted puts deleted; undefined on a dry run (not looked at). */
  leftovers: number | undefined;
  dryRun: boolean;
  graceMs: number;
  durationMs: number;
  /** The first few orphans' names, for a log line or the CLI. */
  sample: string[];
}

/** A copy of `name` in one flat allocation, not a view into the listing's larger strings. */
const flat = (name: string) => Buffer.from(name, 'utf8').toString('utf8');

function checkAborted(signal: AbortSignal | undefined) {
  if (signal?.aborted)
    throw new Error('the garbage collection was stopped', { cause: signal.reason });
}

/** One sweep; see the file comment for why the order of its steps matters. */
export async function collectGarbage(options: GcOptions): Promise<GcReport> {
  const { objects, metadata, signal } = options;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0) {
    throw new RangeError(`graceMs must be a number of milliseconds ≥ 0, not ${graceMs}`);
  }
  const dryRun = options.dryRun ?? false;
  const now = options.now ?? Date.now;
  const started = now();
  const cutoff = started - graceMs;
  const report: GcReport = {
    listed: 0,
    young: 0,
    referenced: 0,
    orphans: 0,
    deleted: 0,
    failed: 0,
    leftovers: undefined,
    dryRun,
    graceMs,
    durationMs: 0,
    sample: [],
  };

  // 1. List first: every object with its age. Only the old ones are candidates.
  const candidates = new Set<string>();
  for await (const { name, modifiedAt } of objects.listWithAge()) {
    report.listed++;
    if (modifiedAt.getTime() >= cutoff) report.young++;
    else candidates.add(flat(name));
    if (report.listed % 1000 === 0) checkAborted(signal);
  }
  checkAborted(signal);

  // 2. Then the rows: a candidate a row points to is not garbage.
  if (candidates.size > 0) {
    let rows = 0;
    for await (const name of metadata.referencedObjects()) {
      if (candidates.delete(name)) report.referenced++;
      if (++rows % 1000 === 0) checkAborted(signal);
    }
  }
  checkAborted(signal);

  // 3. Old and unreferenced: delete (or count).
  const orphans = [...candidates];
  candidates.clear();
  report.orphans = orphans.length;
  report.sample = orphans.slice(0, 10);
  if (!dryRun) {
    await forEachLimited(orphans, options.concurrency ?? 8, async (name) => {
      if (signal?.aborted) return;
      try {
        await objects.delete(name);
        report.deleted++;
      } catch {
        report.failed++;
      }
    });
    report.leftovers = await objects.deleteLeftovers(new Date(cutoff));
  }
  report.durationMs = now() - started;
  return report;
}

/** One line for logs and the CLI. */
export function describeGcReport(r: GcReport): string {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const count = r.dryRun ? r.orphans : r.deleted;
  const failed = r.failed > 0 ? `, ${r.failed} failed (retried next sweep)` : '';
  const temp = r.leftovers === undefined ? '' : `, ${r.leftovers} leftover temp file(s) deleted`;
  return (
    `garbage collection: ${r.listed} object(s) listed, ${r.young} younger than the grace of ` +
    `${r.graceMs / 1000} s, ${r.referenced} referenced; ${verb} ${count} orphan(s)${failed}${temp} ` +
    `in ${r.durationMs} ms`
  );
}

export interface GcTimerOptions extends Omit<GcOptions, 'signal' | 'dryRun' | 'metadata'> {
  metadata: Pick<MetadataStore, 'referencedObjects' | 'maintain'>;
  /** Time between the end of one sweep and the start of the next (default 10 min), ±25 % jitter. */
  intervalMs?: number | undefined;
  /** Delay of the first sweep (default: a random time in the first minute, at most intervalMs). */
  firstDelayMs?: number | undefined;
  onReport?: ((report: GcReport) => void) | undefined;
  onError?: ((error: unknown) => void) | undefined;
  random?: (() => number) | undefined;
}

/**
 * Sweeps periodically in this process until stop(). Timers are unref'd (a sweep never keeps a
 * process alive) and jittered, so frontends started together do not sweep in lockstep. A sweep
 * that fails (storage down) is reported and the timer goes on; sweeps never overlap.
 */
export function startGarbageCollector(options: GcTimerOptions): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const random = options.random ?? Math.random;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const schedule = (delayMs: number) => {
    if (controller.signal.aborted) return;
    timer = setTimeout(() => {
      running = sweep();
    }, delayMs);
    timer.unref();
  };
  const sweep = async () => {
    try {
      const report = await collectGarbage({ ...options, signal: controller.signal });
      options.onReport?.(report);
      // The embedded database's housekeeping rides along (a no-op on PostgreSQL).
      if (!controller.signal.aborted) await options.metadata.maintain();
    } catch (error) {
      if (!controller.signal.aborted) options.onError?.(error);
    }
    schedule(intervalMs * (0.75 + random() / 2));
  };
  schedule(options.firstDelayMs ?? Math.min(intervalMs, 60_000) * random());

  return {
    async stop() {
      controller.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
