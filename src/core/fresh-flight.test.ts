import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createFreshFlight } from './fresh-flight.ts';

/** A call whose completion the test controls; records when each execution started. */
function controlled() {
  const started: number[] = [];
  const releases: ((v: number) => void)[] = [];
  let clock = 0;
  return {
    started,
    tick: () => ++clock,
    fn: () => {
      started.push(clock);
      return new Promise<number>((resolve) => releases.push(resolve));
    },
    release: (i: number, value: number) => releases[i]?.(value),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));
/** After the setImmediate callbacks queued so far (an execution's start among them). */
const nextTurn = () => new Promise((r) => setImmediate(r));

it('callers in one event-loop turn share one execution, started after all of them', async () => {
  const flight = createFreshFlight<number>();
  const c = controlled();
  const first = flight.run('k', c.fn);
  c.tick();
  const second = flight.run('k', c.fn);
  assert.equal(c.started.length, 0, 'it starts after the current turn');
  await nextTurn();
  assert.deepEqual(c.started, [1], 'one execution, started after the second caller asked');
  c.release(0, 10);
  assert.deepEqual(await Promise.all([first, second]), [10, 10]);
  await settle();
  assert.equal(flight.size, 0);
});

it('callers during a running check wait for the next one, which starts after they asked', async () => {
  const flight = createFreshFlight<number>();
  const c = controlled();
  const first = flight.run('k', c.fn);
  await nextTurn();
  c.tick();
  const second = flight.run('k', c.fn);
  const third = flight.run('k', c.fn);
  assert.equal(c.started.length, 1, 'only one runs at a time');
  c.release(0, 10);
  assert.equal(await first, 10);
  // The next execution is queued on setImmediate once the first has settled; a timer alone may
  // fire before that check phase comes round, so wait for the microtasks, then for one more turn.
  await settle();
  await nextTurn();
  assert.equal(c.started.length, 2);
  assert.ok((c.started[1] as number) >= 1, 'the second execution started after they asked');
  c.release(1, 20);
  assert.deepEqual(await Promise.all([second, third]), [20, 20]);
  await settle();
  assert.equal(flight.size, 0);
});

it('a failure goes to the callers of that execution only', async () => {
  const flight = createFreshFlight<number>();
  let n = 0;
  const failing = flight.run('k', async () => {
    n++;
    throw new Error('node down');
  });
  failing.catch(() => {});
  await nextTurn(); // the failing execution has started: `next` waits for another
  const next = flight.run('k', async () => ++n);
  await assert.rejects(failing, /node down/);
  assert.equal(await next, 2);
  assert.equal(flight.size, 0);
});

it('different keys do not wait for each other', async () => {
  const flight = createFreshFlight<string>();
  const c = controlled();
  void flight.run('a', c.fn as unknown as () => Promise<string>);
  assert.equal(await flight.run('b', async () => 'b'), 'b');
});

it('tells each execution how many calls share it', async () => {
  const flight = createFreshFlight<number>();
  const sharers: number[] = [];
  const releases: (() => void)[] = [];
  const fn = (n: number) => {
    sharers.push(n);
    return new Promise<number>((resolve) => releases.push(() => resolve(n)));
  };
  const firsts = [flight.run('k', fn), flight.run('k', fn), flight.run('k', fn)];
  await nextTurn();
  // Started: later calls share the next execution, which is told their number, not the first's.
  const queued = [flight.run('k', fn), flight.run('k', fn)];
  assert.deepEqual(sharers, [3]);
  releases[0]?.();
  assert.deepEqual(await Promise.all(firsts), [3, 3, 3]);
  // A call made after the first settled but before the queued one starts joins it too.
  const late = flight.run('k', fn);
  await settle();
  await nextTurn();
  assert.deepEqual(sharers, [3, 3]);
  releases[1]?.();
  assert.deepEqual(await Promise.all([...queued, late]), [3, 3, 3]);
});
