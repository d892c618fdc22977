/**
 * Publishes the node's statistics to the manager: one sample (interval deltas plus gauges) every
 * 5 s, keyed by the node's stable id, never by list position (positions shift when a node leaves,
 * and the originals' series of different nodes ran together).
 *
 * A sample the manager did not take is kept and sent with the next round, so a manager restart
 * loses no counts (up to an hour's worth is kept). A failing manager is logged once per outage,
 * never fatal; the timer is unref'd so it never keeps the process alive.
 */
import type { Sample } from '../core/stats.ts';

export interface PublisherOptions {
  nodeId: string;
  managerUrl: string;
  secret: string | undefined;
  sample: () => Sample;
  intervalMs?: number;
  log: { warn(message: string): void; info(message: string): void };
  /** The process's fetch (http/tls.ts: it verifies an https manager); Node's by default. */
  fetch?: typeof fetch;
}

const MAX_PENDING = 720;

export function createPublisher(options: PublisherOptions) {
  const { nodeId, managerUrl, secret, log, intervalMs = 5000, fetch = globalThis.fetch } = options;
  const pending: Sample[] = [];
  let failing = false;
  let running = false;

  async function tick(): Promise<void> {
    if (running) return;
    running = true;
    pending.push(options.sample());
    if (pending.length > MAX_PENDING) pending.splice(0, pending.length - MAX_PENDING);
    try {
      const response = await fetch(`${managerUrl}/api/manager/samples`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(secret && { authorization: `Bearer ${secret}` }),
        },
        body: JSON.stringify({ node_id: nodeId, samples: pending }),
        signal: AbortSignal.timeout(3000),
      });
      if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
      pending.length = 0;
      if (failing) log.info('the manager takes statistics again');
      failing = false;
    } catch (error) {
      if (!failing)
        log.warn(`cannot publish statistics to ${managerUrl}: ${(error as Error).message}`);
      failing = true;
    } finally {
      running = false;
    }
  }

  let timer: NodeJS.Timeout | undefined;
  return {
    start() {
      timer = setInterval(() => void tick(), intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
    tick,
  };
}
