/**
 * Keeps this node's view lease (view.ts) running: while the node is in a pool it asks the manager
 * to renew the lease every `renew_ms` the manager names, and at once when it takes a new view (a
 * node that just joined serves nothing until its first renewal). Each lease is counted from when
 * the request was sent, so a late answer only grants what is left of it.
 *
 * The manager renews only the view it last gave this very process (the `instance` the node
 * answered its push with), so a node the manager replaced, or gave a view it missed, stays
 * without a lease until the manager has brought it up to date. A manager that cannot be reached
 * is logged once per outage; reads stop when the lease runs out, and start again with the next
 * renewal.
 */
import type { NodeView } from './view.ts';

export interface ViewRenewalOptions {
  managerUrl: string;
  secret: string | undefined;
  view: NodeView;
  /** This process's id, as its pool-view answers give it. */
  instance: string;
  log: { warn(message: string): void; info(message: string): void };
  now?: () => number;
  /** The process's fetch (http/tls.ts: it verifies an https manager); Node's by default. */
  fetch?: typeof fetch;
}

/** Between renewals until the manager names its own interval, ms. */
const FIRST_INTERVAL_MS = 1000;
/** A request that takes longer grants nothing worth having. */
const TIMEOUT_MS = 2000;
/**
 * After a new view, retries this soon: the first ask usually reaches the manager before the
 * manager has read the push's answer, which names this process. This manager waits for that
 * answer (manager/pool/views.ts); one that does not refuses the ask, and these retries follow.
 */
const AFTER_ADOPT_RETRIES_MS = [25, 50, 100, 200, 400];

export function createViewRenewal(options: ViewRenewalOptions) {
  const { managerUrl, secret, view, instance, log } = options;
  const now = options.now ?? (() => performance.now());
  const fetch = options.fetch ?? globalThis.fetch;
  let intervalMs = FIRST_INTERVAL_MS;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let again = false;
  let stopped = true;
  /** Why the last renewal failed, logged once until one succeeds. */
  let failing: string | undefined;

  /** Asks once; resolves with whether the lease was renewed. */
  async function renew(quiet: boolean): Promise<boolean> {
    if (!view.pooled) return true;
    const version = view.version;
    const sentAt = now();
    try {
      const response = await fetch(`${managerUrl}/api/manager/nodes/renew`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(secret && { authorization: `Bearer ${secret}` }),
        },
        body: JSON.stringify({ node_id: view.nodeId, instance, version }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      if (!response.ok) {
        const message = (body.error as { message?: string } | undefined)?.message;
        throw new Error(`${response.status} ${message ?? ''}`.trim());
      }
      const leaseMs = Number(body.lease_ms);
      const renewMs = Number(body.renew_ms);
      if (!(leaseMs > 0) || !(renewMs > 0)) throw new Error('the answer names no lease');
      intervalMs = renewMs;
      view.renewed(version, sentAt, leaseMs);
      if (failing) log.info('the manager renews this node’s pool view again');
      failing = undefined;
      return true;
    } catch (error) {
      const why = (error as Error).message;
      if (quiet) return false;
      if (failing === undefined) {
        log.warn(
          `the manager at ${managerUrl} did not renew this node's pool view (${why}); reads stop when the view's lease runs out`,
        );
      }
      failing = why;
      return false;
    }
  }

  /** Renews now; a request already running is followed by one more. */
  function renewNow(quiet = false): Promise<boolean> {
    if (running) {
      again = true;
      return running;
    }
    running = renew(quiet).finally(() => {
      running = undefined;
      if (again && !stopped) {
        again = false;
        void renewNow();
      }
    });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      void renewNow().finally(schedule);
    }, intervalMs);
    timer.unref();
  }

  view.onAdopt(() => {
    if (stopped) return;
    const version = view.version;
    void (async () => {
      if (await renewNow(true)) return;
      for (const [i, ms] of AFTER_ADOPT_RETRIES_MS.entries()) {
        await new Promise((resolve) => setTimeout(resolve, ms).unref());
        const last = i === AFTER_ADOPT_RETRIES_MS.length - 1;
        if (stopped || view.version !== version || (await renewNow(!last))) return;
      }
    })();
  });

  return {
    start(): void {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
    renewNow,
  };
}

export type ViewRenewal = ReturnType<typeof createViewRenewal>;
