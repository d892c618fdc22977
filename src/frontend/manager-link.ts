/**
 * The frontend's link to the manager: the first pool view at start, then every few seconds a
 * registration (POST /api/manager/frontends) whose answer is the current view. The manager also
 * pushes each new view to /api/notify; the polling makes a missed push heal by itself, and lets a
 * frontend keep serving with its last view while the manager is away.
 *
 * A read or upload that a node turned away (our view is outdated) asks for the view at once
 * (`refresh`). While the manager does not answer, those asks fail at once instead of each waiting
 * for a timeout (reads go to storage; an upload whose node cannot be told is refused), and the
 * link polls every second, so a healed link is noticed quickly.
 */
import type { FastifyBaseLogger } from 'fastify';
import { type PoolView, parsePoolView, type Routing } from './routing.ts';

export interface ManagerLinkOptions {
  managerUrl: string;
  secret: string | undefined;
  log: Pick<FastifyBaseLogger, 'warn' | 'info'>;
  intervalMs?: number;
  /** The process's fetch (http/tls.ts: it verifies an https manager); Node's by default. */
  fetch?: typeof fetch;
}

export function createManagerLink(options: ManagerLinkOptions) {
  const { managerUrl, secret, log, intervalMs = 5000, fetch = globalThis.fetch } = options;
  const failingIntervalMs = Math.min(intervalMs, 1000);
  const headers = {
    'content-type': 'application/json',
    ...(secret && { authorization: `Bearer ${secret}` }),
  };
  let failing = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** The refresh in flight, shared by every request that asks meanwhile. */
  let refreshing: Promise<PoolView> | undefined;

  async function ask(method: 'GET' | 'POST', path: string, body?: unknown): Promise<PoolView> {
    const response = await fetch(`${managerUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(3000),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status} ${await response.text()}`);
    return parsePoolView(await response.json());
  }

  return {
    /** The current view, retried until the manager answers or `timeoutMs` passes. */
    async firstView(timeoutMs = 60_000): Promise<PoolView> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          return await ask('GET', '/api/manager/pool_view');
        } catch (error) {
          if (Date.now() > deadline) {
            throw new Error(
              `The manager at ${managerUrl} did not answer: ${(error as Error).message}`,
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    },

    /**
     * Asks for the current view now (a node said ours is outdated); adopts it if newer. Fails at
     * once while the manager does not answer (the polling finds out when it does again).
     */
    async refresh(routing: Routing): Promise<boolean> {
      if (failing) throw new Error(`the manager at ${managerUrl} does not answer`);
      refreshing ??= ask('GET', '/api/manager/pool_view').finally(() => {
        refreshing = undefined;
      });
      try {
        return routing.update(await refreshing);
      } catch (error) {
        failing = true;
        throw error;
      }
    },

    /** Registers `selfUrl` now and every interval, adopting each newer view it is given. */
    start(selfUrl: string, routing: Routing): void {
      const tick = async () => {
        try {
          const view = await ask('POST', '/api/manager/frontends', { url: selfUrl });
          if (routing.update(view))
            log.info(`pool view ${view.map.version} adopted from the manager`);
          if (failing) log.info('the manager answers again');
          failing = false;
        } catch (error) {
          if (!failing) {
            log.warn(
              `cannot reach the manager (${(error as Error).message}); keeping the last pool view`,
            );
          }
          failing = true;
        }
      };
      const loop = async () => {
        await tick();
        if (stopped) return;
        timer = setTimeout(loop, failing ? failingIntervalMs : intervalMs);
        timer.unref();
      };
      void loop();
    },

    stop(): void {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
