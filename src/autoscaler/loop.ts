/**
 * The autoscaler's control loop: every `intervalS` it reads the pool from its source
 * (the manager), runs the core policy, and in automatic mode hands the decision back to be
 * recorded and applied. The shape is trigger.dev's BackpressureMonitor: an options object with
 * the source, clock and logger injected; start()/stop(); a tick skipped while the last one runs.
 *
 * Failure policy: a tick that cannot read or apply changes nothing (fail closed: no resize without
 * fresh numbers), counts a failure, and the next tick simply tries again. The error is logged once
 * per outage, and once more when it ends; the loop never dies of it (the originals' loops died on
 * their first exception). A decision the manager refuses because the pool changed since the read is
 * not a failure: the next tick decides from the new state.
 *
 * Ticks run on a fixed-rate schedule (setInterval), the first one at start(), so the period does
 * not drift by the time a tick takes. Limits: one loop per pool is assumed; a second one would be
 * kept from double-resizing by the manager's checks, not by this loop.
 */
import { type Decision, decide, type Outcome } from '../core/autoscale-policy.ts';
import { type AutoscaleState, MAX_WINDOW_S, toPolicyInput } from '../core/autoscale-state.ts';

export type ApplyResult =
  | { recorded: boolean; queuedSteps: number }
  /** The manager did not apply it: the pool changed since it was read (its words). */
  | { refused: string };

/** Where the loop reads the pool and sends its decisions (the manager's HTTP API in production). */
export interface AutoscalerSource {
  /** The pool as the manager sees it, with totals over the last `windowS` seconds. */
  read(windowS: number): Promise<AutoscaleState>;
  /** Records the decision and, for a grow or shrink, queues the resizes. */
  apply(state: AutoscaleState, decision: Decision): Promise<ApplyResult>;
}

export interface LoopLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface LoopMetrics {
  tick(result: 'ok' | 'failed' | 'skipped'): void;
  decision(outcome: Outcome): void;
}

export interface AutoscalerLoopOptions {
  source: AutoscalerSource;
  /** Seconds between ticks (AUTOSCALE_INTERVAL_S; 60 in production, 1 in tests). */
  intervalS: number;
  /** Seconds of statistics each decision looks at (and the cooldown after a resize). */
  windowS: number;
  /** Injectable clock for the times /status reports; defaults to Date. */
  clock?: { now(): number };
  logger?: LoopLogger;
  metrics?: LoopMetrics;
  /** Decide and report, but never send a decision to be applied. */
  dryRun?: boolean;
}

export interface LastDecision {
  at: string;
  outcome: Outcome;
  current_size: number;
  target_size: number;
  miss_rate: number | null;
  gets: number;
  window_s: number;
  reason: string;
  /** What became of it: queued, recorded, unchanged, refused, not sent, or failed. */
  result: string;
}

export interface LoopStatus {
  running: boolean;
  mode: 'manual' | 'automatic' | 'unknown';
  interval_s: number;
  window_s: number;
  dry_run: boolean;
  ticks: number;
  skipped_ticks: number;
  last_tick_at: string | null;
  last_success_at: string | null;
  consecutive_failures: number;
  last_error: string | null;
  last_decision: LastDecision | null;
}

const silent: LoopLogger = { info() {}, warn() {}, error() {} };
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function createAutoscalerLoop(options: AutoscalerLoopOptions) {
  const { source, intervalS, windowS, dryRun = false } = options;
  if (!Number.isFinite(intervalS) || intervalS <= 0) {
    throw new TypeError(`intervalS must be a number of seconds above 0; got ${intervalS}`);
  }
  if (!Number.isFinite(windowS) || windowS <= 0 || windowS > MAX_WINDOW_S) {
    throw new TypeError(`windowS must be above 0 and at most ${MAX_WINDOW_S}; got ${windowS}`);
  }
  const clock = options.clock ?? Date;
  const log = options.logger ?? silent;
  const iso = () => new Date(clock.now()).toISOString();

  let timer: ReturnType<typeof setInterval> | undefined;
  let inFlight: Promise<void> | undefined;
  let failingSince: number | undefined;
  let lastOutcome: Outcome | undefined;
  const status: LoopStatus = {
    running: false,
    mode: 'unknown',
    interval_s: intervalS,
    window_s: windowS,
    dry_run: dryRun,
    ticks: 0,
    skipped_ticks: 0,
    last_tick_at: null,
    last_success_at: null,
    consecutive_failures: 0,
    last_error: null,
    last_decision: null,
  };

  async function send(state: AutoscaleState, decision: Decision): Promise<string> {
    if (state.mode === 'manual') return 'not sent: manual mode';
    if (dryRun) return 'not sent: dry run';
    const result = await source.apply(state, decision);
    if ('refused' in result) {
      log.warn(`decision not applied: ${result.refused}`);
      return `refused: ${result.refused}`;
    }
    if (result.queuedSteps > 0) return `queued ${result.queuedSteps} resize step(s)`;
    return result.recorded ? 'recorded' : 'unchanged since the last recorded decision';
  }

  async function run(): Promise<void> {
    try {
      const state = await source.read(windowS);
      status.mode = state.mode;
      const decision = decide(toPolicyInput(state));
      options.metrics?.decision(decision.outcome);
      const last: LastDecision = {
        at: new Date(state.now_ms).toISOString(),
        outcome: decision.outcome,
        current_size: decision.current,
        target_size: decision.target,
        miss_rate: decision.missRate,
        gets: state.window.gets,
        window_s: state.window.seconds,
        reason: decision.reason,
        result: 'deciding',
      };
      status.last_decision = last;
      try {
        last.result = await send(state, decision);
      } catch (error) {
        last.result = `failed: ${message(error)}`;
        throw error;
      }
      // A grow or shrink is news; a no-action is worth a line only when the reason changes.
      if (decision.target !== decision.current || decision.outcome !== lastOutcome) {
        log.info(`${decision.reason} (${last.result})`);
      }
      lastOutcome = decision.outcome;
      if (failingSince !== undefined) {
        log.info(
          `the manager answers again after ${status.consecutive_failures} failed tick(s) (${Math.round((clock.now() - failingSince) / 1000)} s)`,
        );
      }
      failingSince = undefined;
      status.consecutive_failures = 0;
      status.last_error = null;
      status.last_success_at = iso();
      options.metrics?.tick('ok');
    } catch (error) {
      status.consecutive_failures++;
      status.last_error = message(error);
      // Log once per outage, not once per tick.
      if (failingSince === undefined) {
        failingSince = clock.now();
        log.error(
          `autoscaler tick failed: ${status.last_error}; no resize without fresh numbers, retrying every ${intervalS} s`,
        );
      }
      options.metrics?.tick('failed');
    } finally {
      status.ticks++;
      status.last_tick_at = iso();
    }
  }

  /** One tick; returns at once (skipped) while the previous one still runs. */
  function tick(): Promise<void> {
    if (inFlight) {
      status.skipped_ticks++;
      options.metrics?.tick('skipped');
      return Promise.resolve();
    }
    inFlight = run().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  return {
    start(): void {
      if (timer) return;
      status.running = true;
      timer = setInterval(() => void tick(), intervalS * 1000);
      timer.unref?.();
      void tick();
    },
    /** Stops ticking and waits for a tick in progress. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      status.running = false;
      await inFlight;
    },
    tick,
    status: (): LoopStatus => ({
      ...status,
      last_decision: status.last_decision && { ...status.last_decision },
    }),
  };
}

export type AutoscalerLoop = ReturnType<typeof createAutoscalerLoop>;
