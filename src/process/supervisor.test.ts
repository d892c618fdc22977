import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import type { ChildService } from './child-service.ts';
import { DEFAULT_BACKOFF, nextDelay, superviseChild } from './supervisor.ts';

describe('nextDelay', () => {
  const table: [previousMs: number, ranMs: number, expected: number][] = [
    [0, 0, 500], // the first restart
    [500, 100, 1000], // died again at once: doubled
    [8000, 100, 10_000], // capped
    [10_000, 29_999, 10_000],
    [10_000, 30_000, 500], // ran long enough: from the start again
  ];
  for (const [previousMs, ranMs, expected] of table) {
    it(`after ${previousMs} ms and a run of ${ranMs} ms waits ${expected} ms`, () => {
      assert.equal(nextDelay(DEFAULT_BACKOFF, previousMs, ranMs), expected);
    });
  }
});

/** A child that lives `ms` (forever when undefined), as a started service. */
function fakeService(onSpawn: (child: ChildProcess) => void, ms?: number): ChildService {
  const script = ms === undefined ? 'setInterval(() => {}, 1000)' : `setTimeout(() => {}, ${ms})`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  onSpawn(child);
  return { url: 'http://127.0.0.1:1', child, stop: async () => {} };
}

describe('superviseChild', () => {
  const backoff = { initialMs: 20, maxMs: 80, resetAfterMs: 10_000 };

  it('starts a child that exits again, with a growing wait, and stops for good on stop()', async () => {
    const log: string[] = [];
    let starts = 0;
    const supervised = superviseChild({
      label: 'worker',
      backoff,
      log: (message) => log.push(message),
      start: async (onSpawn) => {
        starts++;
        // The first three die at once; the fourth lives.
        return fakeService(onSpawn, starts <= 3 ? 10 : undefined);
      },
    });
    await supervised.start();
    while (starts < 4 || supervised.pid === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const pid = supervised.pid;
    assert.deepEqual(
      log.filter((m) => m.includes('exited')).map((m) => /again in ([\d.]+) s/.exec(m)?.[1]),
      ['0.02', '0.04', '0.08'],
    );
    assert.match(log.at(-1) ?? '', /^worker started again \(pid \d+\)$/);
    await supervised.stop(1000);
    assert.equal(supervised.pid, undefined);
    assert.throws(() => process.kill(pid, 0), 'the child is gone');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(starts, 4, 'no start after stop()');
  });

  it('retries a restart that fails to start, and cancels a pending restart on stop()', async () => {
    const log: string[] = [];
    let starts = 0;
    const supervised = superviseChild({
      label: 'worker',
      backoff,
      log: (message) => log.push(message),
      start: async (onSpawn) => {
        starts++;
        if (starts === 2) throw new Error('port taken');
        return fakeService(onSpawn, starts === 1 ? 10 : 60_000);
      },
    });
    const first = await supervised.start();
    await once(first.child, 'exit');
    while (starts < 3 || supervised.pid === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(log.some((m) => /did not start again \(port taken\); next try in 0.04 s/.test(m)));
    // Killed from outside: a restart is pending when stop() comes.
    const third = supervised.pid;
    process.kill(third, 'SIGKILL');
    while (supervised.pid !== undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    await supervised.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(starts, 3, 'the pending restart was cancelled');
  });
});
