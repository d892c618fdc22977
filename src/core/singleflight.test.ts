import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createSingleFlight } from './singleflight.ts';

it('concurrent calls for one key share one execution; a later call runs again', async () => {
  const flight = createSingleFlight<number>();
  let calls = 0;
  let release: (value: number) => void = () => {};
  const slow = () => {
    calls++;
    return new Promise<number>((resolve) => {
      release = resolve;
    });
  };
  const all = Promise.all([flight.run('a', slow), flight.run('a', slow), flight.run('a', slow)]);
  assert.equal(calls, 1);
  assert.equal(flight.size, 1);
  release(7);
  assert.deepEqual(await all, [7, 7, 7]);
  assert.equal(flight.size, 0);
  await flight.run('a', async () => ++calls);
  assert.equal(calls, 2);
});

it('different keys run independently, and a failure is shared then forgotten', async () => {
  const flight = createSingleFlight<string>();
  const boom = flight.run('x', async () => {
    throw new Error('boom');
  });
  const same = flight.run('x', async () => 'never');
  const other = flight.run('y', async () => 'y');
  await assert.rejects(boom, /boom/);
  await assert.rejects(same, /boom/);
  assert.equal(await other, 'y');
  assert.equal(await flight.run('x', async () => 'ok'), 'ok');
});
