/**
 * A frontend process SIGKILLed during concurrent uploads (issue 8): a real child
 * (`pixpool frontend`, PostgreSQL in a throw-away schema, objects in its data folder) in front of
 * a real cache node. After a restart on the same storage every acknowledged upload reads back
 * byte-exact; then `pixpool gc --grace-s 0` (frontend stopped) deletes exactly the objects no
 * row points to, and the temp files of interrupted writes, and nothing a row points to.
 *
 * An orphan and a temp file are planted before the kill, so the sweep has something to find even
 * if the kill happens to land between uploads: the test can fail both ways.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ChildService, startChildService } from '../../src/process/child-service.ts';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import type { GcReport } from '../../src/storage/gc.ts';
import { createMetadataStore, type MetadataStore } from '../../src/storage/metadata-store.ts';
import { newObjectName } from '../../src/storage/object-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import { SECRET, startNode, type TestNode } from '../helpers/nodes.ts';
import { cliEnv } from '../helpers/processes.ts';
import {
  databaseUrl,
  dropSchema,
  randomSchema,
  requirePostgres,
  tempDir,
} from '../helpers/storage.ts';

const bin = fileURLToPath(new URL('../../bin/pixpool.js', import.meta.url));
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bytesFor = (key: string, n: number) =>
  Buffer.concat([imageBytes('png', 20_000 + (n % 5000), n), Buffer.from(key)]);

let data: Awaited<ReturnType<typeof tempDir>>;
let node: TestNode;
let metadata: MetadataStore;
const schema = randomSchema();
let env: Record<string, string>;

before(async () => {
  await requirePostgres();
  data = await tempDir('crash');
  node = await startNode({ capacityMb: 64 });
  // The CLI takes the schema through the URL (a startup option), and this driver creates it.
  metadata = await createMetadataStore(createPgDriver({ connectionString: databaseUrl(), schema }));
  const url = new URL(databaseUrl());
  url.searchParams.set('options', `-c search_path=${schema}`);
  env = { DATABASE_URL: url.toString(), PIXPOOL_SECRET: SECRET, PIXPOOL_DATA_DIR: data.dir };
});
after(async () => {
  await metadata?.close();
  await node?.close();
  await dropSchema(schema);
  await data?.remove();
});

function startFrontendProcess(extra: string[] = []): Promise<ChildService> {
  return startChildService({
    args: ['frontend', '--port', '0', '--nodes', node.url, '--log-level', 'info', ...extra],
    env,
    label: 'frontend',
    quiet: true,
  });
}

/** `pixpool gc …` as a process; resolves with its JSON report. */
async function runGc(args: string[]): Promise<GcReport> {
  const child = spawn(process.execPath, [bin, 'gc', '--json', ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk) => {
    err += chunk;
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, `pixpool gc failed: ${err}${out}`);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, out);
  return JSON.parse(line) as GcReport;
}

it('a SIGKILLed frontend loses no acknowledged upload, and gc sweeps exactly the orphans', {
  timeout: 120_000,
}, async () => {
  const objects = createFsObjectStore({ dir: join(data.dir, 'objects') });
  // A sweep now (grace 1 h) must touch nothing: all objects are young.
  let frontend = await startFrontendProcess(['--gc-interval-s', '1']);
  let gcLog = '';
  frontend.child.stdout?.on('data', (chunk: Buffer) => {
    gcLog += chunk.toString();
  });
  // A sweep that saw objects (uploads' and the planted one, all young) and deleted none.
  const sparingSweep = () =>
    /"msg":"garbage collection: [1-9]\d* object\(s\) listed, [^"]*deleted 0 orphan/.test(gcLog);

  // Planted: an object no row will ever point to, and a temp file of an "interrupted" put.
  const planted = newObjectName('planted');
  await objects.put(planted, imageBytes('png', 100, 3), 'image/png');
  await mkdir(join(data.dir, 'objects', '.tmp'), { recursive: true });
  await writeFile(join(data.dir, 'objects', '.tmp', 'interrupted'), 'half an image');

  type Result = { key: string; bytes: Buffer; outcome: 'acked' | 'refused' | 'cut' };
  const results: Result[] = [];
  let n = 0;
  let stop = false;
  const uploader = async () => {
    while (!stop) {
      const key = `crash-${n++}`;
      const bytes = bytesFor(key, n);
      try {
        const { status, body } = await upload(frontend.url, key, bytes);
        results.push({
          key,
          bytes,
          outcome: status === 200 && body.success === 'true' ? 'acked' : 'refused',
        });
      } catch {
        results.push({ key, bytes, outcome: 'cut' }); // the process died under it
      }
    }
  };
  const loops = Array.from({ length: 4 }, uploader);
  for (let i = 0; i < 600 && results.filter((r) => r.outcome === 'acked').length < 30; i++) {
    await sleep(50);
  }
  for (let i = 0; i < 200 && !sparingSweep(); i++) await sleep(50);
  const exited = once(frontend.child, 'exit');
  frontend.child.kill('SIGKILL');
  await exited;
  stop = true;
  await Promise.all(loops);
  assert.ok(sparingSweep(), 'the periodic sweep (grace 1 h) ran and spared the young orphans');
  const acked = results.filter((r) => r.outcome === 'acked');
  assert.ok(acked.length >= 30, `only ${acked.length} acknowledged uploads`);

  // Restarted on the same storage: every acknowledged upload is there, byte for byte.
  frontend = await startFrontendProcess(['--gc-interval-s', '0']);
  try {
    for (const r of results) {
      const response = await fetch(`${frontend.url}/images/${r.key}`);
      const served = Buffer.from(await response.arrayBuffer());
      const row = await metadata.get(r.key);
      if (r.outcome === 'acked') {
        assert.equal(response.status, 200, `acknowledged ${r.key} is gone`);
        assert.equal(sha(served), sha(r.bytes), `acknowledged ${r.key} changed`);
        assert.equal(row?.sha256, sha(r.bytes));
      } else if (row) {
        // Committed just before the kill, answer lost: then it must be whole.
        assert.equal(response.status, 200);
        assert.equal(sha(served), sha(r.bytes), `unacknowledged ${r.key} is half there`);
      } else {
        assert.equal(response.status, 404);
      }
    }
  } finally {
    await frontend.stop();
  }

  // What the crash (and the planting) left: objects no row points to.
  const referenced = new Set<string>();
  for await (const name of metadata.referencedObjects()) referenced.add(name);
  const listed: string[] = [];
  for await (const name of objects.list()) listed.push(name);
  const orphans = listed.filter((name) => !referenced.has(name));
  assert.ok(orphans.includes(planted));
  const temps = await readdir(join(data.dir, 'objects', '.tmp'));
  assert.ok(temps.includes('interrupted'));

  const dry = await runGc(['--grace-s', '0', '--dry-run']);
  assert.equal(dry.orphans, orphans.length);
  assert.equal((await readdir(join(data.dir, 'objects', '.tmp'))).length, temps.length);

  const report = await runGc(['--grace-s', '0']);
  assert.deepEqual(
    [report.listed, report.referenced, report.deleted, report.failed, report.leftovers],
    [listed.length, listed.length - orphans.length, orphans.length, 0, temps.length],
  );
  const remaining: string[] = [];
  for await (const name of objects.list()) remaining.push(name);
  assert.deepEqual(remaining.toSorted(), [...referenced].toSorted(), 'left: exactly the rows');
  assert.deepEqual(await readdir(join(data.dir, 'objects', '.tmp')), []);
  for (const r of acked) {
    const row = await metadata.get(r.key);
    const stored = row && (await objects.get(row.object));
    assert.ok(stored && sha(stored) === sha(r.bytes), `${r.key} after the sweep`);
  }
  console.log(
    `frontend SIGKILL: ${results.length} uploads (${acked.length} acknowledged, all intact; ` +
      `${results.filter((r) => r.outcome === 'cut').length} cut by the kill), ` +
      `gc deleted ${report.deleted} orphan(s) (1 planted) and ${report.leftovers} temp file(s) ` +
      `(1 planted), kept ${report.referenced} referenced`,
  );
});
