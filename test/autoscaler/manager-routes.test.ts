/**
 * The manager's autoscaler endpoints against a real manager (embedded storage, a real node
 * process): what the loop reads, how a decision is checked, recorded and applied, and what bad
 * input gets. Statistics are written straight into the store, so the window's numbers are known.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';

const TOKEN = 'admin-token-for-tests';
const admin = { authorization: `Bearer ${TOKEN}` };

describe('manager autoscaler endpoints', () => {
  let m: TestManager;
  const call = (method: string, path: string, body?: unknown) =>
    managerCall(m.url, method, path, body, admin);
  const state = async (windowS = 5) => {
    const r = await call('GET', `/api/manager/autoscaler/state?window_s=${windowS}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.content;
  };
  /** One sample of `gets` with `misses`, `agoMs` before now, from a node id no process uses. */
  const sample = (gets: number, misses: number, agoMs = 1000, node = 'test-publisher') =>
    m.store.addSample(node, {
      at: Date.now() - agoMs,
      intervalMs: 1000,
      gets,
      hits: gets - misses,
      misses,
      puts: 0,
      evictions: 0,
      imports: 0,
      items: 0,
      bytes: 0,
    });
  const decide = (s: unknown, outcome: string, target: number) =>
    call('POST', '/api/manager/autoscaler/decisions', { state: s, outcome, target_size: target });

  before(async () => {
    m = await startManager({ adminToken: TOKEN });
  });
  after(async () => {
    await m.close();
  });

  it('needs the admin token', async () => {
    const r = await managerCall(m.url, 'GET', '/api/manager/autoscaler/state');
    assert.equal(r.status, 401);
    assert.equal(r.body.success, 'false');
    const p = await managerCall(m.url, 'POST', '/api/manager/autoscaler/decisions', {});
    assert.equal(p.status, 401);
  });

  it('reports mode, parameters, pool and the window’s sums over [now − window, now) only', async () => {
    await sample(100, 80, 1000);
    await sample(50, 10, 2000, 'other-publisher');
    await sample(1000, 1000, 30_000); // outside a 5-s window
    const s = await state(5);
    assert.equal(s.mode, 'manual');
    assert.deepEqual(s.parameters, {
      max_miss_rate_threshold: 0.6,
      min_miss_rate_threshold: 0.4,
      expand_ratio: 1.5,
      shrink_ratio: 0.5,
    });
    assert.deepEqual(s.pool, {
      size: 1,
      min_size: 1,
      max_size: 8,
      resizing: false,
      queued: 0,
      last_resize_at_ms: 0,
    });
    assert.deepEqual(
      [s.window.seconds, s.window.gets, s.window.hits, s.window.misses],
      [5, 150, 60, 90],
    );
    assert.equal(s.window.to_ms - s.window.from_ms, 5000);
    assert.ok(Math.abs(s.now_ms - Date.now()) < 2000);
    const wide = await state(60);
    assert.equal(wide.window.gets, 1150, 'a longer window takes the older sample in');
  });

  it('refuses a bad window with a clear 400', async () => {
    for (const bad of ['0', '-5', 'abc', '99999']) {
      const r = await call('GET', `/api/manager/autoscaler/state?window_s=${bad}`);
      assert.equal(r.status, 400, bad);
      assert.match(r.body.error.message, /window_s must be a number of seconds/);
    }
  });

  it('refuses malformed decisions with a 400 that says what is wrong', async () => {
    const good = await state(5);
    const cases: [unknown, RegExp][] = [
      [[1, 2], /Send a JSON object/],
      [{ outcome: 'grow', target_size: 2 }, /state must be an object/],
      [{ state: good, outcome: 'explode', target_size: 2 }, /outcome must be one of grow, shrink/],
      [
        { state: { ...good, mode: 'sideways' }, outcome: 'manual', target_size: 1 },
        /state.mode must be manual or automatic/,
      ],
      [
        {
          state: { ...good, window: { ...good.window, misses: -1 } },
          outcome: 'manual',
          target_size: 1,
        },
        /state.window.misses must be a whole number ≥ 0/,
      ],
      [
        {
          state: { ...good, window: { ...good.window, misses: good.window.gets + 1 } },
          outcome: 'manual',
          target_size: 1,
        },
        /cannot exceed gets/,
      ],
      [
        { state: { ...good, pool: { ...good.pool, size: 9 } }, outcome: 'manual', target_size: 9 },
        /size 9 must lie within/,
      ],
      // The state is manual: the only decision that follows from it is `manual`.
      [
        { state: good, outcome: 'grow', target_size: 2 },
        /does not follow from its state: that state gives manual to 1/,
      ],
      [{ state: good, outcome: 'manual', target_size: 3 }, /does not follow/],
    ];
    for (const [body, message] of cases) {
      const r = await call('POST', '/api/manager/autoscaler/decisions', body);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(r.body.success, 'false');
      assert.match(r.body.error.message, message);
    }
    const text = await fetch(`${m.url}/api/manager/autoscaler/decisions`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(text.status, 400);
  });

  it('a grow that follows from its state is recorded with every input, then queued step by step', async () => {
    const set = await call('POST', '/api/manager/poolsize/automatic', {
      max_miss_rate_threshold: 0.5,
      min_miss_rate_threshold: 0.1,
      expand_ratio: 3,
      shrink_ratio: 0.5,
    });
    assert.equal(set.status, 200);
    const manual = await call('POST', '/api/manager/poolsize/manual', { change: 'increase' });
    assert.equal(manual.status, 409, 'manual resizes are refused in automatic mode');
    assert.match(manual.body.error.message, /automatic mode/);

    const s = await state(5); // 150 gets, 90 misses: 60 % > 50 %
    assert.equal(s.mode, 'automatic');
    assert.equal(s.parameters.expand_ratio, 3, 'parameters come from the database');
    const r = await decide(s, 'grow', 3);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(
      { ...r.body.content, reason: undefined },
      {
        outcome: 'grow',
        current_size: 1,
        target_size: 3,
        miss_rate: 0.6,
        reason: undefined,
        recorded: true,
        queued_steps: 2,
      },
    );
    assert.match(
      r.body.content.reason,
      /Miss rate 60 % over the last 5 s \(150 gets\) is above 50 %: grow 1 → 3/,
    );
    const during = await state(5);
    assert.ok(during.pool.resizing || during.pool.queued > 0, 'the resizes are under way');

    const again = await decide(s, 'grow', 3);
    assert.equal(again.status, 409, 'the same reading cannot queue twice');
    assert.match(again.body.error.message, /pool changed since the autoscaler read it/);

    await m.pool.idle();
    assert.equal(m.pool.size, 3);
    const after = await state(5);
    assert.ok(after.pool.last_resize_at_ms > s.now_ms, 'the cooldown clock started');

    const list = await call('GET', '/api/manager/autoscaler/decisions?limit=5');
    const [decision] = list.body.content;
    assert.equal(decision.outcome, 'grow');
    assert.match(decision.message, /^Autoscaler: Miss rate 60 %/);
    for (const [field, value] of Object.entries({
      window_s: 5,
      gets: 150,
      misses: 90,
      miss_rate: 0.6,
      max_miss_rate_threshold: 0.5,
      min_miss_rate_threshold: 0.1,
      expand_ratio: 3,
      shrink_ratio: 0.5,
      current_size: 1,
      target_size: 3,
    })) {
      assert.equal(decision[field], value, field);
    }
    assert.equal(decision.at, new Date(s.now_ms).toISOString());

    // The dashboard's log shows it, ahead of the resizes it caused (newest first).
    const dash = await call('GET', '/api/manager/dashboard');
    const kinds: string[] = dash.body.content.log.map((e: { kind: string }) => e.kind);
    const at = kinds.indexOf('decision');
    assert.ok(at > 0 && kinds.slice(0, at).every((k) => k === 'resize'), kinds.join(','));
  });

  it('records a no-action decision once, not on every tick, and never resizes for it', async () => {
    const s = await state(5); // right after the grow: cooldown
    const first = await decide(s, 'cooldown', 3);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.content.recorded, true);
    const second = await decide(await state(5), 'cooldown', 3);
    assert.equal(second.body.content.recorded, false);
    assert.equal(second.body.content.queued_steps, 0);
    const list = await call('GET', '/api/manager/autoscaler/decisions?limit=10');
    assert.deepEqual(
      list.body.content.slice(0, 2).map((d: { outcome: string }) => d.outcome),
      ['cooldown', 'grow'],
    );
    assert.equal(m.pool.size, 3);
  });

  it('refuses a grow or shrink decided in automatic mode once the pool is back in manual', async () => {
    // A state a loop could have read one window after the last resize, in automatic mode.
    const s = await state(5);
    const ready = {
      ...s,
      now_ms: s.pool.last_resize_at_ms + 5000,
      window: { ...s.window, gets: 100, hits: 0, misses: 100 },
    };
    assert.equal((await call('POST', '/api/manager/mode', { mode: 'manual' })).status, 200);
    const r = await decide(ready, 'grow', 8);
    assert.equal(r.status, 409);
    assert.match(r.body.error.message, /manual mode now/);
    assert.equal(m.pool.size, 3);
  });

  it('refuses a bad decision list limit', async () => {
    const r = await call('GET', '/api/manager/autoscaler/decisions?limit=0');
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /limit must be a whole number/);
  });
});
