/**
 * A crash of the whole machine's pixpool — every process of `pixpool up` SIGKILLed at once, as an
 * OOM kill or a crash of the service manager does — in the middle of uploads loses no upload that
 * was acknowledged, and the embedded store opens again on the same data folder. Three rounds on
 * one folder, each killed at a random moment (the seed is printed, to replay a failure).
 *
 * A process kill leaves the kernel's page cache, so this proves the ordering (object durable
 * before its row, row committed before the answer) and that a killed writer leaves a database
 * that opens, not the fsyncs: test/storage/sqlite-*.test.ts checks that commits are synced.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createSeededRandom } from '../../src/core/seeded-random.ts';
import {
  imageFor,
  processAlive,
  sha256,
  sleep,
  uploadImage,
  waitFor,
} from '../helpers/processes.ts';
import { startUp } from '../helpers/up.ts';

const WRITERS = 8;

/** `pid` and every living descendant (the cache nodes run in process groups of their own). */
function tree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  return [...parent.keys()].filter((candidate) => {
    for (let p: number | undefined = candidate; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === pid) return true;
    }
    return false;
  });
}

/** What a key may hold after the crash: the last acknowledged bytes, or a later unacknowledged. */
interface Expected {
  acked: string;
  inFlight: string | undefined;
}

it('SIGKILL of the whole up tree during uploads loses no acknowledged upload', async (t) => {
  const seed = Number(process.env.PIXPOOL_TEST_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (PIXPOOL_TEST_SEED replays it)`);
  const random = createSeededRandom(seed);
  const dataDir = await mkdtemp(join(tmpdir(), 'pixpool-crash-'));
  const expected = new Map<string, Expected>();
  /** New keys whose upload the kill cut: each may or may not have been stored. */
  const cut = new Set<string>();
  let serial = 0;
  try {
    for (let round = 1; round <= 3; round++) {
      const up = await startUp(dataDir, { detached: true });
      const { url } = up;
      let stop = false;
      let acked = 0;
      // Each writer uploads new keys and overwrites its own hot key: both the insert and the
      // replace path are cut by the kill.
      const writers = Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const key = i % 3 === 0 ? `hot-${w}` : `r${round}-w${w}-${i}`;
          const bytes = imageFor(++serial, 3000 + (serial % 11) * 700);
          const entry = expected.get(key);
          const sum = sha256(bytes);
          if (entry) entry.inFlight = sum;
          let status: number;
          try {
            status = (await uploadImage(url, key, bytes)).status;
          } catch {
            cut.add(key); // the kill cut this one: not acknowledged
            return;
          }
          if (status === 200) {
            expected.set(key, { acked: sum, inFlight: undefined });
            acked++;
          } else if (entry) {
            entry.inFlight = undefined;
          }
        }
      });
      await sleep(300 + Math.floor(random() * 1200));
      for (const pid of [up.child.pid as number, ...tree(up.child.pid as number)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      stop = true;
      await Promise.all(writers);
      const pids = tree(up.child.pid as number);
      await waitFor('every process of the tree to die', () => pids.every((p) => !processAlive(p)));
      t.diagnostic(`round ${round}: ${acked} uploads acknowledged before the kill`);
      assert.ok(acked > 0, `round ${round}: no upload was acknowledged before the kill`);
    }

    // The folder opens again, and holds every acknowledged upload.
    const up = await startUp(dataDir, { detached: true });
    const { url } = up;
    try {
      for (const [key, { acked, inFlight }] of expected) {
        const response = await fetch(`${url}/images/${encodeURIComponent(key)}`);
        assert.equal(response.status, 200, `${key} was acknowledged and is gone`);
        const got = sha256(Buffer.from(await response.arrayBuffer()));
        assert.ok(
          got === acked || got === inFlight,
          `${key} holds bytes that were never uploaded last`,
        );
      }
      const listed = (await (await fetch(`${url}/api/list_keys`, { method: 'POST' })).json()) as {
        keys: string[];
      };
      for (const key of expected.keys()) assert.ok(listed.keys.includes(key), `${key} not listed`);
      for (const key of listed.keys) {
        assert.ok(expected.has(key) || cut.has(key), `${key} is listed but was never uploaded`);
      }
    } finally {
      process.kill(-(up.child.pid as number), 'SIGTERM');
      await waitFor('up to stop', () => up.child.exitCode !== null || up.child.signalCode);
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
