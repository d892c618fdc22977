/**
 * `pixpool up --workers 2` as a user runs it (real processes, real sockets): two frontend
 * processes share one port; an upload through it is read back through it; no read is older
 * than the last acknowledged upload while the pool grows and shrinks under load, whichever
 * worker each request lands on; a worker killed with SIGKILL is restarted while the other keeps
 * serving; SIGTERM stops everything, and no process is left.
 *
 * On the embedded defaults, as `./start.sh` runs it: every worker opens the one SQLite database.
 */
import assert from 'node:assert/strict';
import type { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { createSeededRandom } from '../src/core/seeded-random.ts';
import { nodePids } from './faults/process-sigterm-helpers.ts';
import { imageBytes } from './helpers/images.ts';
import { auth } from './helpers/nodes.ts';
import { pidsWithArgs, processAlive, refuses, uploadImage, waitFor } from './helpers/processes.ts';
import { tempDir } from './helpers/storage.ts';
import { startUp as startUpWith } from './helpers/up.ts';

/**
 * GET on a new connection (no keep-alive): the kernel picks a worker per connection, so each
 * request may land on either. A connection cut or refused (its worker just died) is retried,
 * as a client's retry would: twice, a moment apart. Linux resets the connections queued on a
 * SO_REUSEPORT listener whose process dies, and a retry sent while the process is still being
 * torn down can be queued there too.
 */
async function get(url: string, retries = 2): Promise<{ status: number; body: Buffer }> {
  try {
    return await new Promise((resolve, reject) => {
      const req = request(url, { agent: false, headers: auth }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (retries > 0 && (code === 'ECONNRESET' || code === 'ECONNREFUSED')) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return get(url, retries - 1);
    }
    throw error;
  }
}

const healthPid = async (url: string) =>
  (JSON.parse((await get(`${url}/health`)).body.toString()) as { pid: number }).pid;

/** The frontend worker processes (`pixpool frontend`) told the manager's URL. */
const workerPids = (managerUrl: string) =>
  pidsWithArgs('--manager-url', managerUrl).filter((pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('frontend'),
  );

/** A worker's own count of image fetches it answered, from /metrics on its own address. */
async function fetchesServed(ownUrl: string): Promise<number> {
  const text = await (await fetch(`${ownUrl}/metrics`)).text();
  let sum = 0;
  for (const match of text.matchAll(/^pixpool_frontend_fetch_seconds_count\{[^}]*\} (\d+)/gm)) {
    sum += Number(match[1]);
  }
  return sum;
}

/** `pixpool up --workers 2` on `dataDir`, once it printed its banner. */
const startUp = (dataDir: string) => startUpWith(dataDir, { args: ['--workers', '2'] });

describe('pixpool up --workers 2', { timeout: 180_000 }, () => {
  let folder: Awaited<ReturnType<typeof tempDir>>;
  let up: ReturnType<typeof spawn>;
  let output = () => '';
  let url = '';
  let managerUrl = '';
  /** Every process of the tree, once seen: none may outlive `up`. */
  const seen = new Set<number>();

  before(async () => {
    folder = await tempDir('up-workers');
    const started = await startUp(folder.dir);
    ({ child: up, url, managerUrl } = started);
    output = started.output;
    assert.match(output(), /2 frontend processes share this port/);
  });

  after(async () => {
    if (up?.exitCode === null) up.kill('SIGKILL');
    for (const pid of seen) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {} // gone, as it should be
    }
    await folder?.remove();
  });

  it('both workers answer on the one port, and an upload through it reads back through it', async () => {
    const pids = new Set<number>();
    for (let i = 0; i < 40 && pids.size < 2; i++) pids.add(await healthPid(url));
    assert.equal(pids.size, 2, `connections reached ${[...pids]}`);
    assert.ok(pids.has(up.pid as number), 'frontend #1 runs in the up process');
    for (const pid of workerPids(managerUrl)) seen.add(pid);
    for (const pid of nodePids(managerUrl)) seen.add(pid);
    assert.deepEqual(
      [...pids].filter((pid) => pid !== up.pid),
      workerPids(managerUrl),
      'the other is the worker process',
    );

    const bytes = imageBytes('png', 5000, 3);
    assert.equal((await uploadImage(url, 'shared', bytes)).status, 200);
    // Each worker reads it, on connections the kernel spreads over both.
    for (let i = 0; i < 10; i++) {
      const read = await get(`${url}/images/shared`);
      assert.equal(read.status, 200);
      assert.ok(read.body.equals(bytes), 'the uploaded bytes');
    }
  });

  it('each worker registered with the manager an address that it alone answers on', async () => {
    // Where the manager pushes pool views: a push to the shared port would reach one at random.
    const db = new DatabaseSync(join(folder.dir, 'pixpool.db'), { readOnly: true });
    const rows = db.prepare('SELECT url FROM pool_frontends').all() as { url: string }[];
    db.close();
    const answering = await Promise.all(
      rows.map(async ({ url: registered }) => {
        const pids = new Set<number>();
        for (let i = 0; i < 10; i++) pids.add(await healthPid(registered));
        return [...pids];
      }),
    );
    const workers = [up.pid as number, ...workerPids(managerUrl)];
    assert.deepEqual(
      answering.sort(([a = 0], [b = 0]) => a - b),
      workers.sort((a, b) => a - b).map((pid) => [pid]),
    );
  });

  it('no read is older than the last acknowledged upload while the pool grows and shrinks', async () => {
    // Each worker's own address (printed as it started): its own metrics, the manager's pushes.
    const owns = [
      ...output().matchAll(/frontend listening on \S+ \(.*own address (http:\/\/\S+)\)/g),
    ];
    const ownUrls = owns.map((match) => match[1] as string);
    assert.equal(ownUrls.length, 2, output());
    const servedBefore = await Promise.all(ownUrls.map(fetchesServed));

    const keys = Array.from({ length: 12 }, (_, i) => `w-${i}`);
    const bytesOf = (k: number, version: number) => imageBytes('png', 3000 + k, k * 1000 + version);
    const acked = keys.map(() => 0);
    const started = keys.map(() => 0);
    for (const [k, key] of keys.entries()) {
      assert.equal((await uploadImage(url, key, bytesOf(k, 0))).status, 200);
    }
    const random = createSeededRandom(19);
    const counts = { reads: 0, uploads: 0, stale: 0, errors: [] as string[] };
    let stop = false;
    // Each writer owns half the keys, one upload at a time: the order of its uploads of a key is
    // the order they commit in, so "the last acknowledged" is well defined.
    const writer = async (w: number) => {
      while (!stop) {
        const k = 2 * Math.floor(random() * (keys.length / 2)) + w;
        const version = (started[k] as number) + 1;
        started[k] = version;
        const answer = await uploadImage(url, keys[k] as string, bytesOf(k, version));
        counts.uploads++;
        if (answer.status === 200) acked[k] = version;
        else
          counts.errors.push(`upload ${keys[k]}: ${answer.status} ${JSON.stringify(answer.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const reader = async () => {
      while (!stop) {
        // Skewed: hot keys are near-cached and leased by both workers.
        const k = Math.floor(random() ** 2 * keys.length);
        const floor = acked[k] as number;
        const read = await get(`${url}/images/${keys[k]}`).catch((error: Error) => ({
          status: 0,
          body: Buffer.from(error.message),
        }));
        counts.reads++;
        if (read.status !== 200) {
          counts.errors.push(`read ${keys[k]}: ${read.status} ${read.body}`);
          continue;
        }
        let version = -1;
        for (let v = started[k] as number; v >= 0 && version < 0; v--) {
          if (bytesOf(k, v).equals(read.body)) version = v;
        }
        if (version < floor) counts.stale++;
      }
    };
    const resize = async (change: 'increase' | 'decrease') => {
      const answer = await fetch(`${managerUrl}/api/manager/poolsize/manual`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ change, wait: true }),
      });
      assert.equal(answer.status, 200, await answer.text());
    };
    const load = [writer(0), writer(1), reader(), reader(), reader(), reader()];
    try {
      for (const change of ['increase', 'increase', 'decrease', 'increase', 'decrease'] as const) {
        await resize(change);
        for (const pid of nodePids(managerUrl)) seen.add(pid);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }
    console.log(
      `resize under load, 2 workers: ${JSON.stringify({ ...counts, errors: counts.errors.length })}`,
    );
    assert.deepEqual(counts.errors.slice(0, 5), [], 'no read or upload failed');
    assert.equal(
      counts.stale,
      0,
      'no read returned an image older than the last acknowledged upload',
    );
    assert.ok(counts.reads > 200 && counts.uploads > 50, 'enough traffic');
    const servedAfter = await Promise.all(ownUrls.map(fetchesServed));
    for (const [i, served] of servedAfter.entries()) {
      assert.ok(
        served - (servedBefore[i] as number) > 50,
        `worker ${i + 1} served reads: ${served}`,
      );
    }
  });

  it('a worker killed with SIGKILL is started again, and requests keep succeeding meanwhile', async () => {
    const [worker] = workerPids(managerUrl);
    assert.ok(worker, 'a worker process');
    const key = 'shared';
    const bytes = imageBytes('png', 5000, 3);
    let stop = false;
    const failures: string[] = [];
    let ok = 0;
    const load = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const read = await get(`${url}/images/${key}`).catch((error: Error) => ({
          status: 0,
          body: Buffer.from(error.message),
        }));
        if (read.status === 200 && read.body.equals(bytes)) ok++;
        else failures.push(`${read.status} ${read.body.subarray(0, 200)}`);
      }
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      process.kill(worker, 'SIGKILL');
      const again = await waitFor(
        'the worker to be started again',
        () => workerPids(managerUrl).find((pid) => pid !== worker),
        { timeoutMs: 30_000 },
      );
      seen.add(again);
      assert.match(
        output(),
        new RegExp(`frontend worker 2 \\(pid ${worker}\\) exited \\(SIGKILL\\)`),
      );
      // It serves on the shared port again.
      await waitFor('the new worker to answer on the port', async () => {
        for (let i = 0; i < 10; i++) if ((await healthPid(url)) === again) return true;
        return false;
      });
    } finally {
      stop = true;
      await Promise.all(load);
    }
    assert.deepEqual(failures.slice(0, 5), [], 'no request failed');
    assert.ok(ok > 20, `requests served meanwhile: ${ok}`);
  });

  it('SIGTERM stops up, every worker and every node: exit 0, no process left', async () => {
    for (const pid of [...workerPids(managerUrl), ...nodePids(managerUrl)]) seen.add(pid);
    const exited = once(up, 'exit');
    up.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, output());
    for (const pid of seen) assert.equal(processAlive(pid), false, `process ${pid} still runs`);
    assert.deepEqual(pidsWithArgs('--manager-url', managerUrl), []);
    assert.ok(await refuses(url), 'nothing listens on the port');
  });

  it('a worker stops by itself when up is killed with SIGKILL: it would keep the port', async () => {
    // The same data: the cache node the manager restarts with is adopted, as after any crash.
    const again = await startUp(folder.dir);
    const workers = workerPids(again.managerUrl);
    assert.equal(workers.length, 1, again.output());
    for (const pid of [...workers, ...nodePids(again.managerUrl)]) seen.add(pid);
    again.child.kill('SIGKILL');
    await waitFor('the worker to stop', () => !processAlive(workers[0] as number), {
      timeoutMs: 15_000,
    });
    // Cache nodes outlive a killed manager on purpose (the next one adopts them): ended by after().
  });
});
