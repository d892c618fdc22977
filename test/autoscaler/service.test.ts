/**
 * The autoscaler service around its loop: /status, /metrics and /health on an app driven by a
 * hand-made source, and the HTTP source against a real manager (with its admin token) and against
 * a manager that is not there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildAutoscaler } from '../../src/autoscaler/app.ts';
import { createManagerSource } from '../../src/autoscaler/manager-source.ts';
import type { AutoscaleState } from '../../src/core/autoscale-state.ts';
import { freePort } from '../../src/http/listen.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';

const NOW = 1_700_000_000_000;
const state: AutoscaleState = {
  now_ms: NOW,
  mode: 'automatic',
  parameters: {
    max_miss_rate_threshold: 0.6,
    min_miss_rate_threshold: 0.4,
    expand_ratio: 2,
    shrink_ratio: 0.5,
  },
  pool: { size: 3, min_size: 1, max_size: 8, resizing: false, queued: 0, last_resize_at_ms: 0 },
  window: {
    seconds: 60,
    from_ms: NOW - 60_000,
    to_ms: NOW,
    gets: 10,
    hits: 10,
    misses: 0,
    samples: 3,
    nodes: 3,
  },
};

describe('the autoscaler service', () => {
  it('reports the loop on /status and /metrics, and answers /health', async () => {
    let fail = false;
    const { app, loop } = buildAutoscaler({
      source: {
        read: async () => {
          if (fail) throw new Error('cannot reach the manager at http://x (ECONNREFUSED)');
          return state;
        },
        apply: async () => ({ recorded: true, queuedSteps: 1 }),
      },
      intervalS: 60,
      windowS: 60,
      clock: { now: () => NOW + 1000 },
    });
    await loop.tick();
    fail = true;
    await loop.tick();
    const status = (await app.inject({ url: '/status' })).json();
    assert.equal(status.success, 'true');
    assert.equal(status.running, false, 'not started: ticks were driven by hand');
    assert.equal(status.mode, 'automatic');
    assert.equal(status.ticks, 2);
    assert.equal(status.consecutive_failures, 1);
    assert.match(status.last_error, /ECONNREFUSED/);
    assert.equal(status.last_tick_at, new Date(NOW + 1000).toISOString());
    assert.equal(status.last_decision.outcome, 'shrink');
    assert.equal(status.last_decision.target_size, 1);
    assert.equal(status.last_decision.result, 'queued 1 resize step(s)');
    const metrics = (await app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /pixpool_autoscaler_ticks_total\{result="ok",service="autoscaler"\} 1/);
    assert.match(
      metrics,
      /pixpool_autoscaler_ticks_total\{result="failed",service="autoscaler"\} 1/,
    );
    assert.match(
      metrics,
      /pixpool_autoscaler_decisions_total\{outcome="shrink",service="autoscaler"\} 1/,
    );
    assert.match(metrics, /pixpool_autoscaler_failures_total\{service="autoscaler"\} 1/);
    assert.match(metrics, /pixpool_autoscaler_consecutive_failures\{service="autoscaler"\} 1/);
    const health = (await app.inject({ url: '/health' })).json();
    assert.equal(health.status, 'ok');
    await app.close();
  });

  it('the HTTP source says plainly when the manager is not there', async () => {
    const port = await freePort('127.0.0.1');
    const source = createManagerSource({ managerUrl: `http://127.0.0.1:${port}`, timeoutMs: 1000 });
    await assert.rejects(
      source.read(60),
      /cannot reach the manager at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
  });
});

describe('the HTTP source against a real manager', () => {
  const TOKEN = 'source-test-token';
  let m: TestManager;
  before(async () => {
    m = await startManager({ adminToken: TOKEN });
  });
  after(async () => {
    await m.close();
  });

  it('without the admin token, fails with the manager’s own words', async () => {
    const source = createManagerSource({ managerUrl: m.url });
    await assert.rejects(
      source.read(60),
      /reading the pool: the manager answered 401: .*PIXPOOL_ADMIN_TOKEN/,
    );
  });

  it('with it, reads the pool and applies a decision; a stale one comes back refused', async () => {
    await managerCall(
      m.url,
      'POST',
      '/api/manager/poolsize/automatic',
      { expand_ratio: 2 },
      { authorization: `Bearer ${TOKEN}` },
    );
    const source = createManagerSource({ managerUrl: `${m.url}/`, adminToken: TOKEN });
    const read = await source.read(2);
    assert.equal(read.mode, 'automatic');
    assert.equal(read.pool.size, 1);
    assert.equal(read.window.seconds, 2);
    // Forge a busy window onto the state read, as the nodes would have reported it.
    const busy = { ...read, window: { ...read.window, gets: 10, hits: 0, misses: 10 } };
    const decision = { outcome: 'grow', current: 1, target: 2, missRate: 1, reason: '' } as const;
    assert.deepEqual(await source.apply(busy, decision), { recorded: true, queuedSteps: 1 });
    const again = await source.apply(busy, decision);
    assert.ok('refused' in again && /pool changed/.test(again.refused), JSON.stringify(again));
    await m.pool.idle();
    assert.equal(m.pool.size, 2);
  });
});
