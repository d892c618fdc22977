import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PixpoolError } from '../../core/errors.ts';
import { createResizeQueue } from './resize-queue.ts';
import { createManualClock, settle } from './testing.ts';

/** A job that runs until the test lets it end. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    open,
    job: (log: string[], name: string) => async () => {
      log.push(`${name} starts`);
      await opened;
      log.push(`${name} ends`);
      return name;
    },
  };
}

const is503 = (error: unknown) => error instanceof PixpoolError && error.status === 503;

test('runs one job at a time, in the order they were queued, and counts those waiting', async () => {
  const queue = createResizeQueue({ clock: createManualClock() });
  const log: string[] = [];
  const [a, b, c] = [gate(), gate(), gate()];
  const results = [
    queue.run(a.job(log, 'a')),
    queue.run(b.job(log, 'b')),
    queue.run(c.job(log, 'c')),
  ];
  await settle();
  assert.deepEqual(log, ['a starts']);
  assert.equal(queue.running, true);
  assert.equal(queue.waiting, 2);
  c.open();
  b.open();
  await settle();
  assert.deepEqual(log, ['a starts'], 'b and c wait for a, however early they could end');
  a.open();
  assert.deepEqual(await Promise.all(results), ['a', 'b', 'c']);
  assert.deepEqual(log, ['a starts', 'a ends', 'b starts', 'b ends', 'c starts', 'c ends']);
  assert.equal(queue.running, false);
  assert.equal(queue.waiting, 0);
});

test('a failing job fails its caller only; the next job runs', async () => {
  const queue = createResizeQueue({ clock: createManualClock() });
  const failed = queue.run(async () => {
    throw new Error('node would not start');
  });
  const next = queue.run(async () => 'next');
  await assert.rejects(failed, /would not start/);
  assert.equal(await next, 'next');
  await queue.idle();
});

test('drain refuses queued and new jobs with a 503 at once, and gives the running one its budget', async () => {
  const clock = createManualClock();
  let gaveUpWhileRunning = false;
  const queue = createResizeQueue({ clock, onGiveUp: () => (gaveUpWhileRunning = true) });
  const log: string[] = [];
  const running = gate();
  const first = queue.run(running.job(log, 'running'));
  const queued = queue.run(async () => log.push('queued ran'));
  await settle();
  queue.drain(8000);
  await assert.rejects(queued, is503);
  await assert.rejects(
    queue.run(async () => 'new'),
    is503,
  );
  assert.equal(queue.draining, true);

  let gaveUp = false;
  void queue.gaveUp.then(() => (gaveUp = true));
  const closed = queue.close();
  await clock.advance(7999);
  assert.equal(gaveUp, false, 'the budget is not spent yet');
  await clock.advance(1);
  assert.equal(gaveUp, true);
  assert.equal(gaveUpWhileRunning, true, 'told that a job was still running');
  await closed; // close() waits no longer than the budget
  running.open();
  assert.equal(await first, 'running', 'the running job was not cut: it may still finish');
  assert.ok(!log.includes('queued ran'));
});

test('close waits for the running job when there is no drain', async () => {
  const queue = createResizeQueue({ clock: createManualClock() });
  const log: string[] = [];
  const g = gate();
  void queue.run(g.job(log, 'job'));
  let closed = false;
  const closing = queue.close().then(() => (closed = true));
  await settle();
  assert.equal(closed, false);
  g.open();
  await closing;
  assert.deepEqual(log, ['job starts', 'job ends']);
});
