/**
 * The autoscaler end to end, with real processes: a manager (embedded storage) whose cache nodes
 * are `pixpool cache-node` children sampling every second, and `pixpool autoscaler` as a child
 * ticking every second over a 3-s window. Traffic goes straight to the owning nodes'
 * GET /v1/entries/:key, where hits and misses are counted.
 *
 * In automatic mode: many distinct keys (all misses) grow the pool; no traffic leaves it alone,
 * even with a min threshold an idle pool's "0 %" would be under; a few hot keys (hits) shrink it.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createNodeClient } from '../../src/clients/node-client.ts';
import { regionOf } from '../../src/core/regions.ts';
import { type ChildService, startChildService } from '../../src/process/child-service.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import { png, SECRET } from '../helpers/nodes.ts';
import { cliEnv } from '../helpers/processes.ts';

const TOKEN = 'autoscaler-e2e-token';
const admin = { authorization: `Bearer ${TOKEN}` };
const WINDOW_S = 3;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let m: TestManager;
let autoscaler: ChildService;
const nodes = createNodeClient({ secret: SECRET, timeoutMs: 2000 });
let phase: 'idle' | 'miss' | 'hot' | 'done' = 'idle';
let traffic: Promise<void> = Promise.resolve();

// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
async function status(): Promise<any> {
  return (await fetch(`${autoscaler.url}/status`)).json();
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting until ${what}; pool ${m.pool.size}; autoscaler ${JSON.stringify(await status())}`,
      );
    }
    await sleep(100);
  }
}

/** The URL of the node owning `key` in the manager's current map. */
function owner(key: string): string | undefined {
  const { map, addresses } = m.pool.view();
  const id = map.owner[regionOf(key)];
  return id === undefined ? undefined : addresses[id];
}

const hot = { value: png(200), contentType: 'image/png', version: 1 };

/** Sends requests while the phase asks for them: distinct keys (misses) or 4 hot keys (hits). */
async function drive(): Promise<void> {
  let n = 0;
  while (phase !== 'done') {
    if (phase === 'idle') {
      await sleep(50);
      continue;
    }
    const current = phase;
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const key = current === 'miss' ? `miss-${n++}` : `hot-${i % 4}`;
        const url = owner(key);
        if (!url) return;
        // Nodes come and go with the resizes: a refused or failed request is just traffic.
        const found = await nodes.get(url, key).catch(() => null);
        if (current === 'hot' && found === undefined)
          await nodes.put(url, key, hot).catch(() => {});
      }),
    );
    await sleep(10);
  }
}

before(async () => {
  m = await startManager({ adminToken: TOKEN, nodeArgs: ['--stats-interval-s', '1'] });
  const set = await managerCall(
    m.url,
    'POST',
    '/api/manager/poolsize/automatic',
    {
      max_miss_rate_threshold: 0.5,
      min_miss_rate_threshold: 0.2,
      expand_ratio: 2,
      shrink_ratio: 0.5,
    },
    admin,
  );
  assert.equal(set.status, 200, JSON.stringify(set.body));
  autoscaler = await startChildService({
    args: [
      'autoscaler',
      '--port',
      '0',
      '--manager-url',
      m.url,
      '--interval-s',
      '1',
      '--window-s',
      String(WINDOW_S),
      '--log-level',
      'warn',
    ],
    env: cliEnv({ PIXPOOL_ADMIN_TOKEN: TOKEN }),
    label: 'autoscaler',
  });
  traffic = drive();
});

after(async () => {
  phase = 'done';
  await traffic;
  await autoscaler?.stop();
  await m?.close();
  await nodes.close();
});

it('grows on misses, leaves an idle pool alone, and shrinks on hits', {
  timeout: 60_000,
}, async () => {
  await until('the loop has read the pool', async () => (await status()).mode === 'automatic');
  assert.equal(m.pool.size, 1);

  // Many distinct keys: every get misses, so the pool grows 1 → 2, waits out the cooldown, and
  // grows 2 → 4 (two steps queued at once). The misses stop as soon as that second grow starts.
  phase = 'miss';
  await until('the first grow ended', () => m.pool.lastResizeAt > 0);
  assert.equal(m.pool.size, 2);
  await until('the second grow started', () => m.pool.resizing || m.pool.queued > 0);
  phase = 'idle';
  await until('the pool grew to 4', () => m.pool.size >= 4 && !m.pool.resizing);

  // No traffic: once the window is empty the loop says no-gets and nothing changes, although the
  // min threshold (20 %) is above the 0 % an idle pool's counters would give (the originals shrank).
  await until(
    'the window is empty',
    async () => (await status()).last_decision?.outcome === 'no-gets',
  );
  const idleSize = m.pool.size;
  const ticksBefore = (await status()).ticks;
  await sleep((WINDOW_S + 1) * 1000);
  const idle = await status();
  assert.ok(idle.ticks >= ticksBefore + WINDOW_S, 'the loop kept ticking');
  assert.equal(idle.last_decision.outcome, 'no-gets');
  assert.equal(m.pool.size, idleSize, 'an idle pool is left alone');
  assert.equal(m.pool.resizing || m.pool.queued > 0, false);

  // A few hot keys: nearly every get hits, so the pool shrinks, step by step, down to one node.
  // They are cached first: a window holding only the first gets (all misses) would ask to grow.
  for (let i = 0; i < 4; i++) await nodes.put(owner(`hot-${i}`) as string, `hot-${i}`, hot);
  phase = 'hot';
  await until('the pool shrank to 1', () => m.pool.size === 1 && !m.pool.resizing, 30_000);
  phase = 'idle';

  const decisions = await managerCall(
    m.url,
    'GET',
    '/api/manager/autoscaler/decisions?limit=100',
    undefined,
    admin,
  );
  const outcomes: string[] = decisions.body.content
    .map((d: { outcome: string }) => d.outcome)
    .reverse();
  const order = ['grow', 'cooldown', 'grow', 'no-gets', 'shrink', 'cooldown', 'shrink'];
  let at = -1;
  for (const outcome of order) {
    at = outcomes.indexOf(outcome, at + 1);
    assert.ok(at >= 0, `decisions in order ${order.join(', ')}: got ${outcomes.join(', ')}`);
  }
  for (const d of decisions.body.content) {
    if ((d.outcome === 'grow' || d.outcome === 'shrink') && d.last_resize_at) {
      const since = Date.parse(d.at) - Date.parse(d.last_resize_at);
      assert.ok(since >= WINDOW_S * 1000, `${d.message}: ${since} ms after the last resize`);
    }
  }
  const grow = decisions.body.content.find((d: { outcome: string }) => d.outcome === 'grow');
  assert.equal(grow.window_s, WINDOW_S);
  assert.ok(grow.miss_rate > 0.5 && grow.gets > 0);
  assert.equal(grow.max_miss_rate_threshold, 0.5);
  const shrink = decisions.body.content.find((d: { outcome: string }) => d.outcome === 'shrink');
  assert.ok(shrink.miss_rate < 0.2 && shrink.target_size < shrink.current_size);

  const final = await status();
  assert.equal(final.running, true);
  assert.equal(final.consecutive_failures, 0);
  const metrics = await (await fetch(`${autoscaler.url}/metrics`)).text();
  assert.match(
    metrics,
    /pixpool_autoscaler_decisions_total\{outcome="grow",service="autoscaler"\} [1-9]/,
  );
  assert.match(
    metrics,
    /pixpool_autoscaler_decisions_total\{outcome="shrink",service="autoscaler"\} [1-9]/,
  );
  assert.match(metrics, /pixpool_autoscaler_ticks_total\{result="ok",service="autoscaler"\} \d+/);
});
