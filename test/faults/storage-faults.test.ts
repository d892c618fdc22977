/**
 * Storage faults under load (issue 8), with real processes and real sockets: a frontend on real
 * cache nodes, a steady stream of uploads (fresh keys) and fetches of already-cached keys, while
 *
 * - PostgreSQL becomes unreachable: a TCP proxy between the frontend and the shared server is
 *   cut (connections reset, new ones refused), or black-holed (connections hang);
 * - the S3 server (s3rver, a child process) is SIGKILLed, then restarted on the same port and
 *   folder.
 *
 * What must hold: uploads answer 503 with the failure envelope (never success "true" and never
 * a 500) in bounded time, naming neither the database's nor the S3 server's address, nor the
 * schema or the bucket; cached fetches keep answering 200 with the right bytes; everything
 * recovers without restarting anything. Afterwards, every acknowledged upload reads back
 * byte-exact; an upload that got 503 is either absent (404) or, if its commit went through
 * before the link broke (the answer was lost, not the write), byte-exact too: never a row
 * without its bytes, never other bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { createS3ObjectStore } from '../../src/storage/s3-object-store.ts';
import { type ApiBody, startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import {
  databaseUrl,
  dropSchema,
  randomSchema,
  requirePostgres,
  S3_CREDENTIALS,
  spawnS3rver,
  tempDir,
} from '../helpers/storage.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Distinct bytes per key: a PNG signature, filler, and the key itself. */
const bytesFor = (key: string, n: number) =>
  Buffer.concat([imageBytes('png', 800 + (n % 700), n), Buffer.from(key)]);

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface UploadResult {
  key: string;
  bytes: Buffer;
  status: number;
  body: ApiBody | undefined;
  ms: number;
  phase: string;
}

/**
 * Uploads of fresh keys and fetches of `hot` (cached) keys, two loops each, until stop().
 * Every answer is recorded with the phase it started in.
 */
function startLoad(url: string, hot: Map<string, Buffer>, prefix: string) {
  const state = { phase: 'before', stopped: false };
  const uploads: UploadResult[] = [];
  const fetches: { key: string; status: number; exact: boolean; phase: string }[] = [];
  let n = 0;
  const uploader = async () => {
    while (!state.stopped) {
      const key = `${prefix}-${n++}`;
      const bytes = bytesFor(key, n);
      const phase = state.phase;
      const started = Date.now();
      let status = 0;
      let body: ApiBody | undefined;
      try {
        ({ status, body } = await upload(url, key, bytes));
      } catch {
        status = -1; // the connection itself failed: must never happen
      }
      uploads.push({ key, bytes, status, body, ms: Date.now() - started, phase });
      await sleep(10);
    }
  };
  const keys = [...hot.keys()];
  const fetcher = async (offset: number) => {
    for (let i = offset; !state.stopped; i++) {
      const key = keys[i % keys.length] as string;
      const phase = state.phase;
      const response = await fetch(`${url}/images/${key}`).catch(() => undefined);
      const bytes = response ? Buffer.from(await response.arrayBuffer()) : Buffer.alloc(0);
      fetches.push({
        key,
        status: response?.status ?? -1,
        exact: bytes.equals(hot.get(key) as Buffer),
        phase,
      });
      await sleep(5);
    }
  };
  const loops = [uploader(), uploader(), fetcher(0), fetcher(3)];
  return {
    state,
    uploads,
    fetches,
    async stop() {
      state.stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Uploads `count` keys and fetches each until a cache node serves it. */
async function seedHotKeys(url: string, prefix: string, count: number) {
  const hot = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    const key = `${prefix}-hot-${i}`;
    const bytes = bytesFor(key, 10_000 + i);
    assert.equal((await upload(url, key, bytes)).status, 200);
    hot.set(key, bytes);
    await until(`${key} to be cached`, async () => {
      const response = await fetch(`${url}/images/${key}`);
      await response.arrayBuffer();
      return response.headers.get('x-pixpool-source') === 'cache';
    });
  }
  return hot;
}

/** The failure envelope with status 503 and code 503, its message free of every `hidden` text. */
function assertUnavailable(result: UploadResult, hidden: string[]) {
  assert.equal(result.status, 503, `${result.key}: ${JSON.stringify(result.body)}`);
  assert.equal(result.body?.success, 'false');
  assert.equal(result.body?.error.code, 503);
  assert.match(result.body?.error.message ?? '', /unavailable/i);
  assertHides(JSON.stringify(result.body), hidden);
}

/** Server details (addresses, schema, bucket) are for the log, never in an answer. */
function assertHides(answer: string, hidden: string[]) {
  for (const text of hidden) assert.ok(!answer.includes(text), `${text} in the answer ${answer}`);
}

/**
 * Restores the backend, waits for an upload to succeed after it and stops the load; then checks
 * the outage's answers: every refused upload a proper 503 within 20 s, every cached fetch 200
 * with the right bytes. Returns the refusals, the slowest of them and the recovery time.
 */
async function restoreAndCheck(
  load: ReturnType<typeof startLoad>,
  restore: () => Promise<unknown>,
  what: string,
  hidden: string[],
) {
  load.state.phase = 'restored';
  await restore();
  const restoredAt = Date.now();
  await until(
    `an upload to succeed after ${what}`,
    () => load.uploads.some((u) => u.phase === 'restored' && u.status === 200),
    30_000,
  );
  const recoveryMs = Date.now() - restoredAt;
  await load.stop();

  // Uploads: acknowledged or a proper 503, nothing else, each in bounded time.
  const refused = load.uploads.filter((u) => u.status !== 200);
  for (const u of refused) assertUnavailable(u, hidden);
  const slowest = Math.max(...refused.map((u) => u.ms));
  assert.ok(slowest < 20_000, `a refused upload took ${slowest} ms`);
  // Cached fetches: always 200 with the right bytes, outage or not.
  const bad = load.fetches.filter((f) => f.status !== 200 || !f.exact);
  assert.deepEqual(bad, [], 'a cached fetch failed or returned other bytes');
  return { refused, slowest, recoveryMs };
}

/**
 * The after-the-fact rule: acknowledged → byte-exact through the API and in storage; refused →
 * absent, or (its commit got through before the break) byte-exact. Returns how many refused
 * uploads turned out committed.
 */
async function checkOutcomes(
  fe: TestFrontend,
  metadata: MetadataStore,
  objects: ObjectStore,
  uploads: UploadResult[],
): Promise<number> {
  let committedAnyway = 0;
  for (const u of uploads) {
    const row = await metadata.get(u.key);
    const response = await fetch(`${fe.url}/images/${u.key}`);
    const served = Buffer.from(await response.arrayBuffer());
    if (u.status === 200) {
      assert.equal(u.body?.success, 'true');
      assert.equal(response.status, 200, `acknowledged ${u.key} is gone`);
      assert.ok(served.equals(u.bytes), `acknowledged ${u.key} came back changed`);
      assert.equal(row?.sha256, sha(u.bytes));
    } else if (row) {
      committedAnyway++;
      assert.equal(row.sha256, sha(u.bytes), `${u.key}: a row with other bytes`);
      const stored = await objects.get(row.object);
      assert.ok(stored?.equals(u.bytes), `${u.key}: a row whose object is missing or changed`);
      assert.ok(served.equals(u.bytes));
    } else {
      assert.equal(response.status, 404, `refused ${u.key} is half-visible`);
    }
  }
  return committedAnyway;
}

describe('PostgreSQL unreachable under load', { timeout: 120_000 }, () => {
  let proxy: TcpProxy;
  let fe: TestFrontend;
  let metadata: MetadataStore;
  let objectsDir: Awaited<ReturnType<typeof tempDir>>;
  const schema = randomSchema();
  const idleErrors: Error[] = [];
  let proxiedUrl = '';

  before(async () => {
    await requirePostgres();
    const target = new URL(databaseUrl());
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(databaseUrl());
    viaProxy.host = proxy.address;
    proxiedUrl = viaProxy.toString();
    metadata = await createMetadataStore(
      createPgDriver({
        connectionString: proxiedUrl,
        schema,
        connectTimeoutMs: 1000,
        queryTimeoutMs: 2000,
        onIdleError: (error) => idleErrors.push(error),
      }),
    );
    objectsDir = await tempDir('pg-faults');
    fe = await startFrontend({ metadata, objects: createFsObjectStore({ dir: objectsDir.dir }) });
  });
  after(async () => {
    await fe?.close();
    await metadata?.close();
    await proxy?.close();
    await objectsDir?.remove();
    await dropSchema(schema);
  });

  for (const fault of ['cut', 'black hole'] as const) {
    it(`${fault}: uploads 503, cached fetches 200, recovery without a restart`, async () => {
      const prefix = fault === 'cut' ? 'pgcut' : 'pghole';
      const hot = await seedHotKeys(fe.url, prefix, 6);
      const cold = `${prefix}-cold`;
      assert.equal((await upload(fe.url, cold, bytesFor(cold, 1))).status, 200);
      const load = startLoad(fe.url, hot, prefix);
      try {
        await until('acknowledged uploads before the fault', () =>
          load.uploads.some((u) => u.status === 200),
        );
        load.state.phase = 'down';
        if (fault === 'cut') await proxy.cut();
        else proxy.blackHole();
        const downAt = load.uploads.length;
        await until(
          'three refused uploads',
          () => load.uploads.slice(downAt).filter((u) => u.status !== 200).length >= 3,
        );
        const fetchesDown = load.fetches.filter((f) => f.phase === 'down').length;
        await until(
          'cached fetches during the outage',
          () => load.fetches.filter((f) => f.phase === 'down').length >= fetchesDown + 20,
        );
        // A key that is in no cache needs the database: 503 too, not a 404 or a 500.
        const hidden = [proxy.address, new URL(databaseUrl()).host, schema];
        const coldAnswer = await fetch(`${fe.url}/images/${cold}`);
        const coldText = await coldAnswer.text();
        assert.equal(coldAnswer.status, 503, coldText);
        assertHides(coldText, hidden);

        const { refused, slowest, recoveryMs } = await restoreAndCheck(
          load,
          () => proxy.restore(),
          'the restore',
          hidden,
        );
        const committedAnyway = await checkOutcomes(fe, metadata, fe.objects, load.uploads);
        console.log(
          `PostgreSQL ${fault}: ${load.uploads.length} uploads (${refused.length} refused with 503, ` +
            `${committedAnyway} of those committed anyway, slowest refusal ${slowest} ms), ` +
            `${load.fetches.length} cached fetches all 200, recovered ${recoveryMs} ms after the restore`,
        );
      } finally {
        load.state.stopped = true;
        await proxy.restore();
      }
    });
  }
  it('a connection lost in the middle of a transaction fails that transaction, not the process', async () => {
    const driver = createPgDriver({
      connectionString: proxiedUrl,
      schema,
      connectTimeoutMs: 1000,
    });
    try {
      const failed = driver.transaction(async (tx) => {
        await tx.query('SELECT 1');
        // The connection is checked out and between statements when the link breaks: pg emits
        // 'error' on the client, which must have a listener or the process dies.
        await proxy.cut();
        await sleep(300);
        await tx.query('SELECT 2');
      });
      await assert.rejects(failed, (error: Error & { status?: number }) => {
        assert.equal(error.status, 503, String(error));
        return true;
      });
      await proxy.restore();
      await until('the driver to work again', () =>
        driver.query('SELECT 1').then(
          () => true,
          () => false,
        ),
      );
    } finally {
      await proxy.restore();
      await driver.close();
    }
  });
});

describe('the S3 server killed under load', { timeout: 120_000 }, () => {
  let s3dir: Awaited<ReturnType<typeof tempDir>>;
  let s3: Awaited<ReturnType<typeof spawnS3rver>>;
  let fe: TestFrontend;
  let metadata: MetadataStore;
  let objects: ObjectStore;
  const schema = randomSchema();
  const bucket = 'pixpool-faults';

  before(async () => {
    await requirePostgres();
    s3dir = await tempDir('s3-faults');
    s3 = await spawnS3rver(s3dir.dir);
    const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
    const admin = new S3Client({
      endpoint: `http://127.0.0.1:${s3.port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3_CREDENTIALS,
    });
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    admin.destroy();
    objects = createS3ObjectStore({
      bucket,
      endpoint: `http://127.0.0.1:${s3.port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3_CREDENTIALS,
      connectTimeoutMs: 1000,
      idleTimeoutMs: 3000,
    });
    metadata = await createMetadataStore(
      createPgDriver({ connectionString: databaseUrl(), schema }),
    );
    fe = await startFrontend({ metadata, objects });
  });
  after(async () => {
    await fe?.close();
    await metadata?.close();
    await objects?.close();
    await s3?.stop();
    await s3dir?.remove();
    await dropSchema(schema);
  });

  it('SIGKILL: uploads 503, cached fetches 200, uncached 503; restart on the same port recovers', async () => {
    const hot = await seedHotKeys(fe.url, 's3', 6);
    const cold = Array.from({ length: 3 }, (_, i) => `s3-cold-${i}`);
    for (const [i, key] of cold.entries()) {
      assert.equal((await upload(fe.url, key, bytesFor(key, i))).status, 200);
    }
    const load = startLoad(fe.url, hot, 's3');
    try {
      await until('acknowledged uploads before the kill', () =>
        load.uploads.some((u) => u.status === 200),
      );
      load.state.phase = 'down';
      await s3.kill();
      const downAt = load.uploads.length;
      await until(
        'three refused uploads',
        () => load.uploads.slice(downAt).filter((u) => u.status !== 200).length >= 3,
      );
      const fetchesDown = load.fetches.filter((f) => f.phase === 'down').length;
      await until(
        'cached fetches during the outage',
        () => load.fetches.filter((f) => f.phase === 'down').length >= fetchesDown + 20,
      );
      const hidden = [`127.0.0.1:${s3.port}`, bucket];
      for (const key of cold) {
        const answer = await fetch(`${fe.url}/images/${key}`);
        const body = (await answer.json()) as ApiBody;
        assert.equal(answer.status, 503, JSON.stringify(body));
        assert.deepEqual([body.success, body.error.code], ['false', 503]);
        assertHides(JSON.stringify(body), hidden);
      }

      const { refused, slowest, recoveryMs } = await restoreAndCheck(
        load,
        async () => {
          s3 = await spawnS3rver(s3dir.dir, s3.port);
        },
        'the restart',
        hidden,
      );
      for (const [i, key] of cold.entries()) {
        const answer = await fetch(`${fe.url}/images/${key}`);
        assert.equal(answer.status, 200);
        assert.ok(Buffer.from(await answer.arrayBuffer()).equals(bytesFor(key, i)));
      }
      const committedAnyway = await checkOutcomes(fe, metadata, objects, load.uploads);
      assert.equal(committedAnyway, 0, 'an upload whose object could not be stored was committed');
      console.log(
        `S3 killed: ${load.uploads.length} uploads (${refused.length} refused with 503, slowest ` +
          `refusal ${slowest} ms), ${load.fetches.length} cached fetches all 200, recovered ` +
          `${recoveryMs} ms after the restart`,
      );
    } finally {
      load.state.stopped = true;
    }
  });
});
