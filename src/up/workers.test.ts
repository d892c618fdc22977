import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { MAX_WORKERS, workerCount } from './workers.ts';

test('one frontend per core by default where ports can be shared, at most MAX_WORKERS', () => {
  const cores = Math.min(availableParallelism(), MAX_WORKERS);
  assert.equal(workerCount({}, 'linux'), cores);
  assert.equal(workerCount({}, 'freebsd'), cores);
  assert.equal(workerCount({ workers: 3 }, 'linux'), 3);
});

test('where ports cannot be shared, one frontend by default and a clear refusal of more', () => {
  assert.equal(workerCount({}, 'darwin'), 1);
  assert.equal(workerCount({ workers: 1 }, 'win32'), 1);
  assert.throws(
    () => workerCount({ workers: 2 }, 'darwin'),
    /share a port only on linux and freebsd.*this is darwin/,
  );
});
