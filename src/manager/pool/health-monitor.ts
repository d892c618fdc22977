/**
 * Finds the nodes a provider cannot see die: a static node's host gone, a hung process, a node
 * adopted from a previous manager. Every `intervalMs` it asks each node its source lists for
 * /health; `failuresToDead` failures in a row make the node dead, and `onDead` is told once.
 *
 * The shape of the autoscaler's loop: source, probe, clock and logger injected; start()/stop();
 * a tick is skipped while the previous one still runs. A probe answers a boolean and never
 * throws; a node whose address changed while it was asked (it was replaced) is not judged on
 * that answer.
 */
import type { Clock } from '../../core/clock.ts';
import type { NodeId } from '../../core/pool-map.ts';

export interface MonitoredNode {
  id: NodeId;
  url: string;
}

export interface HealthMonitorOptions {
  /** The nodes to check now (the pool leaves out nodes it is already replacing). */
  nodes: () => MonitoredNode[];
  probe: (node: MonitoredNode) => Promise<boolean>;
  onDead: (node: MonitoredNode, reason: string) => void;
  /** Between ticks, ms. */
  intervalMs: number;
  /** Failed checks in a row that make a node dead. */
  failuresToDead: number;
  clock: Clock;
  logger?: { warn(message: string): void };
  metrics?: { tick(result: 'run' | 'skipped'): void; check(result: 'ok' | 'failed'): void };
}

export function createHealthMonitor(options: HealthMonitorOptions) {
  const { intervalMs, failuresToDead } = options;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new TypeError(`intervalMs must be above 0; got ${intervalMs}`);
  }
  if (!Number.isInteger(failuresToDead) || failuresToDead < 1) {
    throw new TypeError(`failuresToDead must be a whole number ≥ 1; got ${failuresToDead}`);
  }
  /** Failed checks in a row, by node id and the address they were made at. */
  const failures = new Map<string, number>();
  const keyOf = (node: MonitoredNode) => `${node.id} ${node.url}`;
  let inFlight: Promise<void> | undefined;
  let stopped = true;

  async function check(): Promise<void> {
    const asked = options.nodes();
    const answers = await Promise.all(asked.map((node) => options.probe(node).catch(() => false)));
    // Judge only nodes still listed at the same address: a replaced node starts afresh.
    const current = new Set(options.nodes().map(keyOf));
    for (const key of failures.keys()) if (!current.has(key)) failures.delete(key);
    asked.forEach((node, i) => {
      const key = keyOf(node);
      if (!current.has(key)) return;
      if (answers[i]) {
        options.metrics?.check('ok');
        failures.delete(key);
        return;
      }
      options.metrics?.check('failed');
      const count = (failures.get(key) ?? 0) + 1;
      failures.set(key, count);
      if (count < failuresToDead) return;
      failures.delete(key);
      options.logger?.warn(`node ${node.id} at ${node.url} failed ${count} health checks`);
      options.onDead(node, `failed ${count} health checks in a row`);
    });
  }

  /** One check of every node; returns at once (skipped) while the previous one still runs. */
  function tick(): Promise<void> {
    if (inFlight) {
      options.metrics?.tick('skipped');
      return Promise.resolve();
    }
    options.metrics?.tick('run');
    inFlight = check().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      await options.clock.sleep(intervalMs, { ref: false });
      if (!stopped) void tick();
    }
  }

  return {
    start(): void {
      if (!stopped) return;
      stopped = false;
      void loop();
    },
    /** Stops ticking and waits for a tick in progress. */
    async stop(): Promise<void> {
      stopped = true;
      await inFlight;
    },
    tick,
    /** Failed checks in a row of a node at its address (0 when its last check passed). */
    failuresOf: (node: MonitoredNode): number => failures.get(keyOf(node)) ?? 0,
  };
}

export type HealthMonitor = ReturnType<typeof createHealthMonitor>;
