/**
 * The pool's Prometheus metrics (failures are counted by the journal): resizes by direction and
 * result, health checks by result, and the pool's size and queue.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface PoolMetrics {
  resize(direction: 'grow' | 'shrink', result: 'done' | 'failed'): void;
  healthTick(result: 'run' | 'skipped'): void;
  healthCheck(result: 'ok' | 'failed'): void;
}

export function createPoolMetrics(
  registry: Registry | undefined,
  gauges: { size(): number; queued(): number },
): PoolMetrics {
  if (!registry) return { resize() {}, healthTick() {}, healthCheck() {} };
  const registers = [registry];
  const resizes = new Counter({
    name: 'pixpool_manager_resizes_total',
    help: 'Resizes by one node, by direction and result',
    labelNames: ['direction', 'result'] as const,
    registers,
  });
  const ticks = new Counter({
    name: 'pixpool_manager_health_ticks_total',
    help: 'Health monitor ticks (run, or skipped: the previous one still ran)',
    labelNames: ['result'] as const,
    registers,
  });
  const checks = new Counter({
    name: 'pixpool_manager_health_checks_total',
    help: 'Health checks of nodes by result',
    labelNames: ['result'] as const,
    registers,
  });
  new Gauge({
    name: 'pixpool_manager_pool_nodes',
    help: 'Nodes in the pool map in force',
    registers,
    collect() {
      this.set(gauges.size());
    },
  });
  new Gauge({
    name: 'pixpool_manager_queued_changes',
    help: 'Pool changes waiting behind the one running',
    registers,
    collect() {
      this.set(gauges.queued());
    },
  });
  return {
    resize: (direction, result) => resizes.inc({ direction, result }),
    healthTick: (result) => ticks.inc({ result }),
    healthCheck: (result) => checks.inc({ result }),
  };
}
