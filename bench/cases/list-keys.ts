/**
 * Bench case `list-keys-1m` (issue 7): POST /api/list_keys over 1,000,000 keys.
 *
 * The rows are written straight into the database `pixpool up` then opens (INSERT … SELECT
 * over a series of numbers, after the store's own migrations): a listing reads rows only, and a million
 * uploads would take hours. Then, with the frontend up (pinned to the server CPU):
 * - first page: POST /api/list_keys?limit=1000 from the start and at random cursors, timed from
 *   this runner (request to last byte), p50/p99 — target ≤ 50 ms;
 * - the full listing (no limit, the originals' `{success, keys: [all]}`), streamed: time to the
 *   first byte and to the end, the answer parsed and its keys counted, and the resident memory of
 *   the frontend's process sampled every 20 ms during it — peak minus just before. A listing that
 *   collects all keys first grows by hundreds of MB; a stream stays flat (target ≤ 50 MB).
 * On the embedded SQLite database, then on PostgreSQL (DATABASE_URL, a fresh schema) when one
 * answers.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import type { SqlDriver } from '../../src/storage/sql-driver.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import type { BenchCase, BenchContext, CaseResult, Check } from '../lib/case.ts';
import { fmt, median } from '../lib/compare.ts';
import { startPixpoolUp } from '../lib/pixpool.ts';
import { treeMemory } from '../lib/processes.ts';
import { preparePostgres } from '../lib/uploads.ts';

const KEYS = 1_000_000;
const FIRST_PAGE_CALLS = 50;
/** Full listings per side; the first, in a fresh process, is reported apart (see the notes). */
const FULL_LISTINGS = 4;
const FIRST_PAGE_TARGET_MS = 50;
const RSS_GROWTH_TARGET_MIB = 50;
const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** Key i: 90 % ASCII, 10 % Cyrillic (multi-byte UTF-8), zero-padded so order = number order. */
const KEY_SQL = `CASE WHEN i % 10 = 0 THEN 'фото-' ELSE 'photo-' END || lpad(i::text, 7, '0')`;
const SQLITE_KEY_SQL = `CASE WHEN i % 10 = 0 THEN 'фото-' ELSE 'photo-' END || printf('%07d', i)`;
/** Rows from..to in one statement: the store's schema, each dialect's series and sequence. */
const FILL_SQL = {
  postgres: `INSERT INTO images (key, object, content_type, size, sha256, version)
         SELECT ${KEY_SQL}, 'bench-object-' || i, 'image/jpeg', 102400, repeat('0', 64),
           nextval('image_versions')
         FROM generate_series($1::int, $2::int) AS i`,
  sqlite: `WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
         INSERT INTO images (key, object, content_type, size, sha256, version)
         SELECT ${SQLITE_KEY_SQL}, 'bench-object-' || i, 'image/jpeg', 102400,
           substr(hex(zeroblob(32)), 1, 64), i
         FROM n`,
};
const keyOf = (i: number) => `${i % 10 === 0 ? 'фото-' : 'photo-'}${String(i).padStart(7, '0')}`;

async function fill(driver: SqlDriver): Promise<number> {
  const started = performance.now();
  const store = await createMetadataStore(driver); // applies the migrations `up` expects
  try {
    for (let from = 1; from <= KEYS; from += 100_000) {
      await driver.query(FILL_SQL[driver.kind], [from, Math.min(KEYS, from + 99_999)]);
    }
    if (driver.kind === 'sqlite') {
      await driver.query('UPDATE image_versions SET value = (SELECT max(version) FROM images)');
    }
    await driver.query('ANALYZE images');
  } finally {
    await store.close();
  }
  return performance.now() - started;
}

interface FullListing {
  ttfbMs: number;
  totalMs: number;
  bytes: number;
  keys: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  growthMiB: number;
}

interface SideResult {
  label: string;
  fillMs: number;
  firstPageMs: number[];
  firstPageP50: number;
  firstPageP99: number;
  listings: FullListing[];
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};

const rssMiB = (pid: number) => treeMemory(pid).find((m) => m.pid === pid)?.rssMiB ?? Number.NaN;

async function timedPost(url: string): Promise<{ ms: number; text: string; status: number }> {
  const started = performance.now();
  const response = await fetch(url, { method: 'POST' });
  const text = await response.text();
  return { ms: performance.now() - started, text, status: response.status };
}

async function fullListing(baseUrl: string, pid: number): Promise<FullListing> {
  const rssBeforeMiB = rssMiB(pid);
  let rssPeakMiB = rssBeforeMiB;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      rssPeakMiB = Math.max(rssPeakMiB, rssMiB(pid));
      await sleep(20);
    }
  })();
  const started = performance.now();
  const response = await fetch(`${baseUrl}/api/list_keys`, { method: 'POST' });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let ttfbMs = Number.NaN;
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (Number.isNaN(ttfbMs)) ttfbMs = performance.now() - started;
    bytes += value.length;
    chunks.push(value);
  }
  const totalMs = performance.now() - started;
  sampling = false;
  await sampler;
  rssPeakMiB = Math.max(rssPeakMiB, rssMiB(pid));
  const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    success: string;
    keys: string[];
  };
  if (response.status !== 200 || answer.success !== 'true' || answer.keys.length !== KEYS) {
    throw new Error(
      `the full listing answered ${response.status} with ${answer.keys?.length} keys, not ${KEYS}`,
    );
  }
  return {
    ttfbMs,
    totalMs,
    bytes,
    keys: answer.keys.length,
    rssBeforeMiB,
    rssPeakMiB,
    growthMiB: rssPeakMiB - rssBeforeMiB,
  };
}

async function measureSide(
  ctx: BenchContext,
  label: string,
  prepare: () => Promise<{
    driver: SqlDriver;
    storageArgs: string[];
    cleanup?: () => Promise<void>;
  }>,
  dataDir: string,
): Promise<SideResult> {
  const { driver, storageArgs, cleanup } = await prepare();
  try {
    ctx.log(`list-keys-1m: ${label}: writing ${KEYS.toLocaleString('en-US')} rows`);
    const fillMs = await fill(driver);
    ctx.log(
      `list-keys-1m: ${label}: filled in ${(fillMs / 1000).toFixed(1)} s; starting pixpool up`,
    );
    const up = await startPixpoolUp(ctx.procs, {
      root: ctx.root,
      dataDir,
      secret: randomBytes(24).toString('base64url'),
      storageArgs,
      cpus: ctx.cpus.server,
      logFile: join(ctx.tmp, `list-keys-${label.replace(/\W+/g, '-')}-up.log`),
      name: `pixpool up (${label})`,
    });
    try {
      const firstPageMs: number[] = [];
      // Warm-up: the first query of a fresh process plans and reads the index.
      await timedPost(`${up.baseUrl}/api/list_keys?limit=1000`);
      for (let i = 0; i < FIRST_PAGE_CALLS; i++) {
        const cursor =
          i === 0
            ? ''
            : `&cursor=${encodeURIComponent(keyOf(1 + Math.floor(Math.random() * KEYS)))}`;
        const r = await timedPost(`${up.baseUrl}/api/list_keys?limit=1000${cursor}`);
        const keys = (JSON.parse(r.text) as { keys?: string[] }).keys?.length ?? 0;
        if (r.status !== 200 || (keys !== 1000 && cursor === '')) {
          throw new Error(
            `first page answered ${r.status} with ${keys} keys: ${r.text.slice(0, 200)}`,
          );
        }
        firstPageMs.push(r.ms);
      }
      const listings: FullListing[] = [];
      for (let i = 0; i < FULL_LISTINGS; i++) {
        await sleep(500);
        const listing = await fullListing(up.baseUrl, up.child.pid);
        ctx.log(
          `list-keys-1m: ${label}: full listing ${i + 1}: first byte ${fmt.ms(listing.ttfbMs)}, all ${(listing.totalMs / 1000).toFixed(2)} s, ${fmt.mib(listing.bytes)} MiB, RSS ${listing.rssBeforeMiB.toFixed(0)} → peak ${listing.rssPeakMiB.toFixed(0)} MiB`,
        );
        listings.push(listing);
      }
      return {
        label,
        fillMs,
        firstPageMs,
        firstPageP50: percentile(firstPageMs, 50),
        firstPageP99: percentile(firstPageMs, 99),
        listings,
      };
    } finally {
      await up.stop();
    }
  } finally {
    await cleanup?.();
  }
}

export const listKeys: BenchCase = {
  id: 'list-keys-1m',
  title: 'POST /api/list_keys over 1,000,000 keys: first page, and the full listing streamed',
  run: (ctx) => runListKeys(ctx),
};

async function runListKeys(ctx: BenchContext): Promise<CaseResult> {
  const sides: SideResult[] = [];
  const notes: string[] = [];
  const embeddedDir = join(ctx.tmp, 'list-keys-embedded');
  sides.push(
    await measureSide(
      ctx,
      'embedded SQLite',
      async () => ({
        // Closed by fill() (the store owns it) before `up` opens the same folder.
        driver: createSqliteDriver({ path: join(embeddedDir, 'pixpool.db') }),
        storageArgs: [],
      }),
      embeddedDir,
    ),
  );
  try {
    const postgres = await preparePostgres(DATABASE_URL, ctx.log);
    sides.push(
      await measureSide(
        ctx,
        postgres.version,
        async () => ({
          driver: createPgDriver({ connectionString: postgres.url }),
          storageArgs: ['--database-url', postgres.url],
          cleanup: () => postgres.dropSchema(),
        }),
        join(ctx.tmp, 'list-keys-pg'),
      ),
    );
  } catch (error) {
    notes.push(`No PostgreSQL side: ${(error as Error).message}`);
  }

  const checks: Check[] = sides.flatMap((s) => {
    const steady = Math.max(...s.listings.slice(1).map((l) => l.growthMiB));
    return [
      {
        name: `${s.label}: first page (limit=1000), p50 over ${FIRST_PAGE_CALLS} calls, ms`,
        value: s.firstPageP50,
        target: `≤ ${FIRST_PAGE_TARGET_MS}`,
        met: s.firstPageP50 <= FIRST_PAGE_TARGET_MS,
      },
      {
        name: `${s.label}: first page (limit=1000), p99 over ${FIRST_PAGE_CALLS} calls, ms`,
        value: s.firstPageP99,
        target: `≤ ${FIRST_PAGE_TARGET_MS}`,
        met: s.firstPageP99 <= FIRST_PAGE_TARGET_MS,
        advisory: true,
      },
      {
        name: `${s.label}: frontend RSS growth during a full listing (worst of listings 2–${FULL_LISTINGS}), MiB`,
        value: steady,
        target: `≤ ${RSS_GROWTH_TARGET_MIB}`,
        met: steady <= RSS_GROWTH_TARGET_MIB,
      },
    ];
  });
  const med = (s: SideResult, f: (l: FullListing) => number) => median(s.listings.map(f));
  notes.push(
    'First page: request to last byte as this runner (undici fetch, kept-alive) sees it: one call from the start, the rest at random cursors, after one warm-up call.',
    'RSS: resident memory of the `pixpool up` process (frontend + manager; not the cache node or autoscaler children), read from /proc every 20 ms during the listing; growth = peak − just before. The runner reads the stream as fast as it comes, then parses it and checks there are 1,000,000 keys.',
    `RSS growth is reported for every listing (by listing, in order). The first in a fresh process also measures V8 sizing its heap for the allocation rate (garbage between major collections; heapUsed after a listing is back where it was) and, embedded, SQLite reading the index into its page cache; the check takes listings 2–${FULL_LISTINGS}. A listing that kept the keys would grow by the same hundreds of MB every time.`,
    'p99 of the first page is advisory: on a shared 2-core machine it is mostly scheduling delay; p50 is the check.',
    'The 10 % of keys that start with "фото-" are multi-byte UTF-8; all keys sort by code point (COLLATE "C").',
  );
  return {
    id: 'list-keys-1m',
    title: listKeys.title,
    fairness: [
      `${KEYS.toLocaleString('en-US')} rows written with INSERT … SELECT generate_series into the database \`pixpool up\` then opens; ANALYZE afterwards. pixpool up pinned to the server CPU; the runner (client) is not pinned.`,
      ctx.cpus.description,
    ],
    table: {
      head: [
        'storage',
        'fill',
        'first page p50',
        'first page p99',
        'full: first byte',
        'full: all',
        'full: MiB',
        'RSS before → peak (listing 2)',
        'RSS growth by listing, MiB',
      ],
      rows: sides.map((s) => [
        s.label,
        `${(s.fillMs / 1000).toFixed(1)} s`,
        fmt.ms(s.firstPageP50),
        fmt.ms(s.firstPageP99),
        fmt.ms(med(s, (l) => l.ttfbMs)),
        `${(med(s, (l) => l.totalMs) / 1000).toFixed(2)} s`,
        fmt.mib(med(s, (l) => l.bytes)),
        `${s.listings[1]?.rssBeforeMiB.toFixed(0)} → ${s.listings[1]?.rssPeakMiB.toFixed(0)} MiB`,
        s.listings.map((l) => `${l.growthMiB.toFixed(1)}`).join(' / '),
      ]),
    },
    checks,
    notes,
    figures: { keys: KEYS, sides },
  };
}
