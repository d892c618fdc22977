import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHealthMonitor, type MonitoredNode } from './health-monitor.ts';
import { createManualClock, settle } from './testing.ts';

function setup(failuresToDead = 2) {
  const clock = createManualClock();
  const nodes: MonitoredNode[] = [
    { id: 'a', url: 'http://a' },
    { id: 'b', url: 'http://b' },
  ];
  const up = new Set(['http://a', 'http://b']);
  const dead: string[] = [];
  const counted = { run: 0, skipped: 0, ok: 0, failed: 0 };
  let probe = async (url: string) => up.has(url);
  const monitor = createHealthMonitor({
    nodes: () => nodes.map((n) => ({ ...n })),
    probe: (node) => probe(node.url),
    onDead: (node, reason) => dead.push(`${node.id} ${reason}`),
    intervalMs: 1000,
    failuresToDead,
    clock,
    metrics: { tick: (r) => counted[r]++, check: (r) => counted[r]++ },
  });
  return {
    clock,
    nodes,
    up,
    dead,
    counted,
    monitor,
    setProbe: (p: typeof probe) => {
      probe = p;
    },
  };
}

test('a node is dead after failing the set number of checks in a row; onDead is told once', async () => {
  const { up, dead, monitor } = setup(3);
  up.delete('http://b');
  await monitor.tick();
  await monitor.tick();
  assert.deepEqual(dead, []);
  assert.equal(monitor.failuresOf({ id: 'b', url: 'http://b' }), 2);
  await monitor.tick();
  assert.deepEqual(dead, ['b failed 3 health checks in a row']);
  assert.equal(monitor.failuresOf({ id: 'b', url: 'http://b' }), 0, 'counting starts afresh');
});

test('one good answer in between resets the count', async () => {
  const { up, dead, monitor } = setup(2);
  up.delete('http://a');
  await monitor.tick();
  up.add('http://a');
  await monitor.tick();
  up.delete('http://a');
  await monitor.tick();
  assert.deepEqual(dead, []);
  await monitor.tick();
  assert.deepEqual(dead, ['a failed 2 health checks in a row']);
});

test('a node replaced while it was asked is not judged on that answer', async () => {
  const { nodes, dead, monitor, setProbe } = setup(1);
  setProbe(async (url) => {
    if (url === 'http://b') {
      // The pool puts a fresh node in b's place while b's old address fails to answer.
      nodes[1] = { id: 'b', url: 'http://b2' };
      return false;
    }
    return true;
  });
  await monitor.tick();
  assert.deepEqual(dead, []);
});

test('a probe that throws counts as a failed check', async () => {
  const { dead, monitor, setProbe } = setup(1);
  setProbe(async (url) => {
    if (url === 'http://a') throw new Error('socket hang up');
    return true;
  });
  await monitor.tick();
  assert.deepEqual(dead, ['a failed 1 health checks in a row']);
});

test('ticks every interval on the injected clock, and skips a tick while the last one runs', async () => {
  const { clock, counted, monitor, setProbe } = setup();
  const hanging: (() => void)[] = [];
  setProbe(() => new Promise<boolean>((resolve) => hanging.push(() => resolve(true))));
  monitor.start();
  await clock.advance(999);
  assert.equal(counted.run, 0, 'the first tick comes one interval after start');
  await clock.advance(1);
  assert.equal(counted.run, 1);
  await clock.advance(1000);
  assert.equal(counted.skipped, 1, 'the probe still hangs: the second tick is skipped');
  for (const answer of hanging) answer();
  setProbe(async () => true);
  await settle();
  await clock.advance(1000);
  assert.equal(counted.run, 2);
  const stopped = monitor.stop();
  await stopped;
  await clock.advance(5000);
  assert.equal(counted.run + counted.skipped, 3, 'no tick after stop');
});
