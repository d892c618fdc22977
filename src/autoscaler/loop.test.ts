import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { Decision } from '../core/autoscale-policy.ts';
import type { AutoscaleState } from '../core/autoscale-state.ts';
import { type ApplyResult, type AutoscalerSource, createAutoscalerLoop } from './loop.ts';

const NOW = 1_700_000_000_000;

/** The pool as a manager would report it: automatic, 2 nodes, 50 % misses over 60 s. */
function state(
  over: {
    mode?: 'manual' | 'automatic';
    size?: number;
    gets?: number;
    misses?: number;
    max?: number;
  } = {},
): AutoscaleState {
  const gets = over.gets ?? 100;
  const misses = over.misses ?? 50;
  return {
    now_ms: NOW,
    mode: over.mode ?? 'automatic',
    parameters: {
      max_miss_rate_threshold: over.max ?? 0.6,
      min_miss_rate_threshold: 0.2,
      expand_ratio: 2,
      shrink_ratio: 0.5,
    },
    pool: {
      size: over.size ?? 2,
      min_size: 1,
      max_size: 8,
      resizing: false,
      queued: 0,
      last_resize_at_ms: 0,
    },
    window: {
      seconds: 60,
      from_ms: NOW - 60_000,
      to_ms: NOW,
      gets,
      hits: gets - misses,
      misses,
      samples: 12,
      nodes: 2,
    },
  };
}

/** A hand-driven source: `next` is what the next read returns (a state, or an error to throw). */
function fakeSource(first: AutoscaleState | Error = state()) {
  const reads: number[] = [];
  const applied: { state: AutoscaleState; decision: Decision }[] = [];
  const control = {
    next: first as AutoscaleState | Error,
    applyResult: { recorded: true, queuedSteps: 0 } as ApplyResult | Error,
    /** When set, reads wait for it (a slow manager). */
    gate: undefined as Promise<void> | undefined,
  };
  const source: AutoscalerSource = {
    async read(windowS) {
      reads.push(windowS);
      if (control.gate) await control.gate;
      if (control.next instanceof Error) throw control.next;
      return control.next;
    },
    async apply(s, decision) {
      applied.push({ state: s, decision });
      if (control.applyResult instanceof Error) throw control.applyResult;
      return control.applyResult;
    },
  };
  return { source, reads, applied, control };
}

function recordingLogger() {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => lines.push({ level, message });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

const clock = { now: () => NOW + 500 };

describe('the autoscaler loop', () => {
  afterEach(() => mock.timers.reset());

  it('in automatic mode, sends a grow with the state it was read from, over its window', async () => {
    const { source, reads, applied, control } = fakeSource(state({ misses: 90 }));
    control.applyResult = { recorded: true, queuedSteps: 2 };
    const loop = createAutoscalerLoop({ source, intervalS: 1, windowS: 60, clock });
    await loop.tick();
    assert.deepEqual(reads, [60]);
    assert.equal(applied.length, 1);
    assert.deepEqual([applied[0]?.decision.outcome, applied[0]?.decision.target], ['grow', 4]);
    assert.equal(applied[0]?.state.window.misses, 90);
    const status = loop.status();
    assert.equal(status.mode, 'automatic');
    assert.equal(status.ticks, 1);
    assert.equal(status.consecutive_failures, 0);
    assert.equal(status.last_tick_at, new Date(NOW + 500).toISOString());
    assert.deepEqual(
      { ...status.last_decision, reason: undefined },
      {
        at: new Date(NOW).toISOString(),
        outcome: 'grow',
        current_size: 2,
        target_size: 4,
        miss_rate: 0.9,
        gets: 100,
        window_s: 60,
        reason: undefined,
        result: 'queued 2 resize step(s)',
      },
    );
  });

  it('in manual mode, reads and reports the mode but never sends a decision', async () => {
    const { source, applied } = fakeSource(state({ mode: 'manual', misses: 100 }));
    const loop = createAutoscalerLoop({ source, intervalS: 1, windowS: 60 });
    await loop.tick();
    assert.equal(applied.length, 0);
    assert.equal(loop.status().mode, 'manual');
    assert.equal(loop.status().last_decision?.outcome, 'manual');
    assert.equal(loop.status().last_decision?.result, 'not sent: manual mode');
  });

  it('in a dry run, decides and reports but never sends', async () => {
    const { source, applied } = fakeSource(state({ misses: 100 }));
    const loop = createAutoscalerLoop({ source, intervalS: 1, windowS: 60, dryRun: true });
    await loop.tick();
    assert.equal(applied.length, 0);
    assert.equal(loop.status().last_decision?.outcome, 'grow');
    assert.equal(loop.status().last_decision?.result, 'not sent: dry run');
    assert.equal(loop.status().dry_run, true);
  });

  it('takes parameters from each read, so a change applies on the next tick', async () => {
    const { source, applied, control } = fakeSource(state({ misses: 50, max: 0.6 }));
    const loop = createAutoscalerLoop({ source, intervalS: 1, windowS: 60 });
    await loop.tick();
    assert.equal(applied[0]?.decision.outcome, 'hold');
    control.next = state({ misses: 50, max: 0.4 });
    await loop.tick();
    assert.equal(applied[1]?.decision.outcome, 'grow');
  });

  it('skips a tick while the previous one still runs, so slow reads never stack', async () => {
    const { source, reads, control } = fakeSource();
    let release = () => {};
    control.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const ticks: string[] = [];
    const loop = createAutoscalerLoop({
      source,
      intervalS: 1,
      windowS: 60,
      metrics: { tick: (r) => ticks.push(r), decision() {} },
    });
    const first = loop.tick();
    await loop.tick();
    await loop.tick();
    assert.equal(reads.length, 1, 'one read in flight');
    assert.equal(loop.status().skipped_ticks, 2);
    release();
    await first;
    assert.deepEqual(ticks, ['skipped', 'skipped', 'ok']);
    await loop.tick();
    assert.equal(reads.length, 2, 'the next tick reads again');
  });

  it('logs a failing source once per outage, keeps retrying, and says when it recovers', async () => {
    const { source, reads, applied, control } = fakeSource(
      new Error('cannot reach the manager (ECONNREFUSED)'),
    );
    const { lines, logger } = recordingLogger();
    let now = NOW;
    const loop = createAutoscalerLoop({
      source,
      intervalS: 1,
      windowS: 60,
      logger,
      clock: { now: () => now },
    });
    for (let i = 0; i < 3; i++) {
      await loop.tick();
      now += 1000;
    }
    assert.equal(reads.length, 3, 'every tick tried again');
    assert.equal(applied.length, 0, 'no decision without fresh numbers');
    assert.equal(lines.filter((l) => l.level === 'error').length, 1, 'logged once');
    assert.match(lines[0]?.message ?? '', /ECONNREFUSED/);
    let status = loop.status();
    assert.equal(status.consecutive_failures, 3);
    assert.equal(status.last_error, 'cannot reach the manager (ECONNREFUSED)');
    assert.equal(status.last_success_at, null);

    control.next = state();
    await loop.tick();
    status = loop.status();
    assert.equal(status.consecutive_failures, 0);
    assert.equal(status.last_error, null);
    assert.ok(status.last_success_at);
    assert.ok(
      lines.some(
        (l) => l.level === 'info' && /again after 3 failed tick\(s\) \(3 s\)/.test(l.message),
      ),
    );

    control.next = new Error('the manager answered 500');
    await loop.tick();
    assert.equal(
      lines.filter((l) => l.level === 'error').length,
      2,
      'a new outage is logged again',
    );
  });

  it('counts a failed apply as a failure, and a refused one (the pool changed) as not', async () => {
    const { source, control } = fakeSource(state({ misses: 100 }));
    const loop = createAutoscalerLoop({ source, intervalS: 1, windowS: 60 });
    control.applyResult = new Error('applying a decision: the manager answered 500');
    await loop.tick();
    assert.equal(loop.status().consecutive_failures, 1);
    assert.match(loop.status().last_decision?.result ?? '', /^failed: applying/);
    control.applyResult = { refused: 'the pool has 3 node(s) now' };
    await loop.tick();
    assert.equal(loop.status().consecutive_failures, 0);
    assert.equal(loop.status().last_decision?.result, 'refused: the pool has 3 node(s) now');
  });

  it('reports every decision outcome and tick result to its metrics', async () => {
    const { source, control } = fakeSource(state({ gets: 0, misses: 0 }));
    const seen: string[] = [];
    const loop = createAutoscalerLoop({
      source,
      intervalS: 1,
      windowS: 60,
      metrics: { tick: (r) => seen.push(`tick:${r}`), decision: (o) => seen.push(o) },
    });
    await loop.tick();
    control.next = new Error('down');
    await loop.tick();
    assert.deepEqual(seen, ['no-gets', 'tick:ok', 'tick:failed']);
  });

  it('start() ticks at once and then every interval; stop() ends the ticking', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const { source, reads } = fakeSource();
    const loop = createAutoscalerLoop({ source, intervalS: 2, windowS: 60 });
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    loop.start();
    await settle();
    assert.equal(reads.length, 1, 'the first tick runs at start');
    assert.equal(loop.status().running, true);
    mock.timers.tick(1999);
    await settle();
    assert.equal(reads.length, 1);
    mock.timers.tick(1);
    await settle();
    assert.equal(reads.length, 2);
    for (let i = 0; i < 2; i++) {
      mock.timers.tick(2000);
      await settle();
    }
    assert.equal(reads.length, 4);
    await loop.stop();
    assert.equal(loop.status().running, false);
    mock.timers.tick(10_000);
    await settle();
    assert.equal(reads.length, 4, 'no tick after stop');
  });

  it('refuses an interval or window that is not a positive number of seconds', () => {
    const { source } = fakeSource();
    assert.throws(() => createAutoscalerLoop({ source, intervalS: 0, windowS: 60 }), TypeError);
    assert.throws(
      () => createAutoscalerLoop({ source, intervalS: Number.NaN, windowS: 60 }),
      TypeError,
    );
    assert.throws(() => createAutoscalerLoop({ source, intervalS: 1, windowS: -1 }), TypeError);
    assert.throws(
      () => createAutoscalerLoop({ source, intervalS: 1, windowS: 7200 }),
      /at most 3600/,
    );
  });
});
