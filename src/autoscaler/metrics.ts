/**
 * The autoscaler's Prometheus metrics (besides the process defaults every service has): ticks by
 * result, decisions by outcome, failures, and how long the current outage has lasted in ticks.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LoopMetrics, LoopStatus } from './loop.ts';

export function createAutoscalerMetrics(registry: Registry, status: () => LoopStatus): LoopMetrics {
  const registers = [registry];
  const ticks = new Counter({
    name: 'pixpool_autoscaler_ticks_total',
    help: 'Loop ticks by result (ok, failed, skipped: the previous tick still ran)',
    labelNames: ['result'] as const,
    registers,
  });
  const decisions = new Counter({
    name: 'pixpool_autoscaler_decisions_total',
    help: 'Policy decisions by outcome (grow, shrink, hold, at-max, at-min, no-gets, cooldown, resizing, manual)',
    labelNames: ['outcome'] as const,
    registers,
  });
  const failures = new Counter({
    name: 'pixpool_autoscaler_failures_total',
    help: 'Ticks that could not read the pool or apply a decision',
    registers,
  });
  new Gauge({
    name: 'pixpool_autoscaler_consecutive_failures',
    help: 'Failed ticks since the last good one (0 when healthy)',
    registers,
    collect() {
      this.set(status().consecutive_failures);
    },
  });
  new Gauge({
    name: 'pixpool_autoscaler_last_success_timestamp_seconds',
    help: 'When a tick last read the pool and handled its decision (0: never)',
    registers,
    collect() {
      const at = status().last_success_at;
      this.set(at ? Date.parse(at) / 1000 : 0);
    },
  });
  return {
    tick(result) {
      ticks.inc({ result });
      if (result === 'failed') failures.inc();
    },
    decision(outcome) {
      decisions.inc({ outcome });
    },
  };
}
