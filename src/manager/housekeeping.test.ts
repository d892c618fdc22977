import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHousekeeping, DAY_MS } from './housekeeping.ts';
import { createManualClock, createRecordingJournal } from './pool/testing.ts';

function fakeStore() {
  const cuts: string[] = [];
  let failing = false;
  return {
    cuts,
    fail: (on: boolean) => {
      failing = on;
    },
    async pruneSamples(olderThan: Date) {
      if (failing) throw new Error('the database is down');
      cuts.push(`samples < ${olderThan.toISOString()}`);
      return 3;
    },
    async pruneHistory(olderThan: Date) {
      cuts.push(`history < ${olderThan.toISOString()}`);
      return { events: 2, maps: 1, frontends: 0 };
    },
  };
}

const T = Date.UTC(2026, 11, 6, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

test('each round cuts samples and history at their retention before the clock’s now', async () => {
  const store = fakeStore();
  const clock = createManualClock(T);
  const keeping = createHousekeeping({
    store,
    clock,
    journal: createRecordingJournal(),
    retention: { samplesMs: 25 * 3_600_000, historyMs: 7 * DAY_MS },
  });
  assert.deepEqual(await keeping.run(), { samples: 3, events: 2, maps: 1, frontends: 0 });
  assert.deepEqual(store.cuts, [
    `samples < ${iso(T - 25 * 3_600_000)}`,
    `history < ${iso(T - 7 * DAY_MS)}`,
  ]);
});

test('runs at start and then every interval on the injected clock; stops when told', async () => {
  const store = fakeStore();
  const clock = createManualClock(T);
  const keeping = createHousekeeping({
    store,
    clock,
    journal: createRecordingJournal(),
    retention: { samplesMs: 1000, historyMs: 2000 },
    intervalMs: 3_600_000,
  });
  keeping.start();
  await clock.advance(0);
  assert.equal(store.cuts.length, 2, 'one round at once');
  await clock.advance(3_600_000 - 1);
  assert.equal(store.cuts.length, 2);
  await clock.advance(1);
  assert.equal(store.cuts.length, 4);
  assert.equal(store.cuts[2], `samples < ${iso(T + 3_600_000 - 1000)}`);
  await keeping.stop();
  await clock.advance(10 * 3_600_000);
  assert.equal(store.cuts.length, 4, 'no round after stop');
});

test('a round that fails is reported, and the next one runs all the same', async () => {
  const store = fakeStore();
  const clock = createManualClock(T);
  const journal = createRecordingJournal();
  const keeping = createHousekeeping({
    store,
    clock,
    journal,
    retention: { samplesMs: 1000, historyMs: 2000 },
    intervalMs: 60_000,
  });
  store.fail(true);
  keeping.start();
  await clock.advance(0);
  assert.deepEqual(
    journal.failures.map((f) => [f.operation, (f.error as Error).message]),
    [['prune', 'the database is down']],
  );
  store.fail(false);
  await clock.advance(60_000);
  assert.equal(store.cuts.length, 2);
  await keeping.stop();
});
