/**
 * Live resizing under load (issue 5): several frontends, a pool of real node processes, uploads
 * of a shared key set and fetches that check every byte against the latest acknowledged upload,
 * while the pool goes 1 → 8 → 1 in random steps and one node is killed. Prints the counts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSeededRandom } from '../src/core/seeded-random.ts';
import { startFrontend, type TestFrontend, upload } from './helpers/frontend.ts';
import { imageBytes } from './helpers/images.ts';
import { managerCall, startManager, type TestManager } from './helpers/manager.ts';

const KEYS = Array.from({ length: 40 }, (_, i) => `live-${i}`);
const bytesOf = (key: number, version: number) =>
  imageBytes('png', 3000 + key, key * 1000 + version);

describe('live resizing with several frontends, uploads and a killed node', () => {
  let manager: TestManager;
  let frontends: TestFrontend[];
  before(async () => {
    manager = await startManager();
    frontends = await Promise.all(
      [0, 1, 2].map(() =>
        startFrontend({
          managerUrl: manager.url,
          metadata: manager.metadata,
          objects: manager.objects,
        }),
      ),
    );
  });
  after(async () => {
    await Promise.all(frontends.map((f) => f.close()));
    await manager.close();
  });

  it('no fetch fails or is stale while the pool goes 1 → 8 → 1 and a node dies', async () => {
    const random = createSeededRandom(20261121);
    const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)] as T;
    const acked = KEYS.map(() => -1);
    const started = KEYS.map(() => -1);
    const counts = {
      requests: 0,
      uploads: 0,
      stale: 0,
      errors: 0,
      misses: 0,
      missesDuringResize: 0,
    };
    /** What failed, with its answer, for the assertion's message. */
    const failures: Record<string, unknown>[] = [];
    let resizing = false;
    let killedAt = 0;
    let stop = false;

    for (const [k, key] of KEYS.entries()) {
      assert.equal((await upload(pick(frontends).url, key, bytesOf(k, 0))).status, 200);
      acked[k] = 0;
      started[k] = 0;
    }

    // Each writer owns half the keys: uploads of one key never overlap, so the order they start
    // in is the order they commit in, and "the last acknowledged upload" is well defined.
    const writer = async (w: number) => {
      while (!stop) {
        const k = 2 * Math.floor(random() * (KEYS.length / 2)) + w;
        const version = (started[k] as number) + 1;
        started[k] = version;
        const answer = await upload(pick(frontends).url, KEYS[k] as string, bytesOf(k, version));
        counts.uploads++;
        if (answer.status !== 200) {
          counts.errors++;
          failures.push({
            upload: KEYS[k],
            status: answer.status,
            body: answer.body,
            at: Date.now(),
          });
        } else acked[k] = Math.max(acked[k] as number, version);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const reader = async () => {
      while (!stop) {
        const k = Math.floor(random() ** 2 * KEYS.length); // skewed: low keys are hot
        const floor = acked[k] as number;
        const response = await fetch(`${pick(frontends).url}/images/${KEYS[k]}`).catch(
          (error: Error) => error,
        );
        counts.requests++;
        if (response instanceof Error || response.status !== 200) {
          counts.errors++;
          failures.push({
            fetch: KEYS[k],
            ...(response instanceof Error
              ? { error: `${response.message} (${(response.cause as Error)?.message})` }
              : { status: response.status, body: await response.text() }),
            at: Date.now(),
          });
          continue;
        }
        const body = Buffer.from(await response.arrayBuffer());
        if (response.headers.get('x-pixpool-source') === 'storage') {
          counts.misses++;
          if (resizing) counts.missesDuringResize++;
        }
        let version = -1;
        for (let v = started[k] as number; v >= 0; v--) {
          if (bytesOf(k, v).equals(body)) {
            version = v;
            break;
          }
        }
        if (version < floor) {
          counts.stale++;
          if (process.env.RESIZE_DEBUG && counts.stale <= 5) {
            console.log(
              'STALE',
              KEYS[k],
              JSON.stringify({
                version,
                floor,
                source: response.headers.get('x-pixpool-source'),
                resizing,
                size: manager.pool.size,
                mapVersion: manager.pool.view().map.version,
              }),
            );
          }
        }
      }
    };

    const resizes = async () => {
      // Up to 8 and back to 1 in random steps of 1–3 nodes; kill a node once on the way.
      const path: number[] = [];
      let size = 1;
      while (size < 8) {
        size = Math.min(8, size + 1 + Math.floor(random() * 3));
        path.push(size);
      }
      while (size > 1) {
        size = Math.max(1, size - 1 - Math.floor(random() * 3));
        path.push(size);
      }
      let killed = false;
      for (const target of path) {
        resizing = true;
        while (manager.pool.size !== target) {
          const change = manager.pool.size < target ? 'increase' : 'decrease';
          const answer = await managerCall(manager.url, 'POST', '/api/manager/poolsize/manual', {
            change,
            wait: true,
          });
          assert.equal(answer.status, 200, JSON.stringify(answer.body));
        }
        resizing = false;
        if (!killed && target >= 4) {
          killed = true;
          const { map, addresses } = manager.pool.view();
          const url = addresses[map.nodes[1] as string] as string;
          const health = (await (await fetch(`${url}/health`)).json()) as { pid: number };
          process.kill(health.pid, 'SIGKILL');
          killedAt = Date.now();
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      return path;
    };

    const workers = [writer(0), writer(1), reader(), reader(), reader(), reader()];
    const path = await resizes();
    stop = true;
    await Promise.all(workers);
    const resizeLog = await managerCall(manager.url, 'GET', '/api/manager/events?limit=200');
    const reports = resizeLog.body.content.filter((e: { message: string }) =>
      /^(Grew|Shrank) to/.test(e.message),
    );
    console.log(
      `resize path 1 → ${path.join(' → ')}: ${JSON.stringify(counts)}, ${reports.length} resizes reported`,
    );
    assert.equal(
      counts.errors,
      0,
      `no fetch or upload failed; node killed at ${killedAt}: ${JSON.stringify(failures.slice(0, 5))}`,
    );
    assert.equal(
      counts.stale,
      0,
      'no fetch returned an image older than the last acknowledged upload',
    );
    assert.ok(counts.requests > 200, `enough traffic (${counts.requests})`);
    assert.equal(manager.pool.size, 1);
    for (const report of reports) {
      const d = report.details;
      assert.equal(d.regions, d.minimumRegions, `only what must move moves: ${report.message}`);
    }
  });

  it('the hit rate of a steady skewed read workload stays within 2 points over a resize', async () => {
    const random = createSeededRandom(7);
    const hot = KEYS.slice(0, 10);
    const read = async (n: number) => {
      let hits = 0;
      for (let i = 0; i < n; i++) {
        const key = hot[Math.floor(random() ** 2 * hot.length)] as string;
        const response = await fetch(`${frontends[i % frontends.length]?.url}/images/${key}`);
        await response.arrayBuffer();
        if (response.headers.get('x-pixpool-source') === 'cache') hits++;
      }
      return hits / n;
    };
    await read(200); // warm every frontend and the pool
    const before = await read(300);
    const during = read(300);
    const grown = managerCall(manager.url, 'POST', '/api/manager/poolsize/manual', {
      change: 'increase',
      wait: true,
    });
    const [rate] = await Promise.all([during, grown]);
    console.log(
      `hit rate before ${(before * 100).toFixed(1)} %, during a grow ${(rate * 100).toFixed(1)} %`,
    );
    assert.ok(rate >= before - 0.02, `hit rate ${rate} fell more than 2 points below ${before}`);
  });
});
