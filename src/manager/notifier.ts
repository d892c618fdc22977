/**
 * Pushes each new pool view to every frontend that registered recently (POST /api/notify with
 * the shared secret). A push that fails is reported (logged and counted) and the others go on:
 * frontends also poll the manager, so a missed push heals itself within one poll interval. Only
 * to bare http(s) origins (node-address.ts), and with TLS configured only to https ones off this
 * host (http/tls.ts guard).
 */
import { serviceOrigin } from '../core/node-address.ts';
import type { PoolView } from '../core/pool-view.ts';
import type { Tls } from '../http/tls.ts';
import type { PoolStore } from '../storage/pool-store.ts';
import type { Journal } from './pool/journal.ts';

/** Frontends that have not registered or polled for this long are not pushed to. */
const FORGET_AFTER_MS = 10 * 60_000;

export function createNotifier(deps: {
  store: PoolStore;
  secret: string | undefined;
  journal: Pick<Journal, 'failed'>;
  /** The process's TLS: its fetch verifies https frontends, its guard refuses plain http. */
  tls?: Pick<Tls, 'fetch' | 'guard'> | undefined;
}) {
  const fetch = deps.tls?.fetch ?? globalThis.fetch;
  return async (view: PoolView): Promise<void> => {
    const frontends = await deps.store.listFrontends({
      seenSince: new Date(Date.now() - FORGET_AFTER_MS),
    });
    await Promise.all(
      frontends.map(async ({ url: registered }) => {
        try {
          // Checked again on the way out: a row written before the check existed (or by hand)
          // must not make the manager post the pool view, with the secret, anywhere else.
          const url = serviceOrigin(registered, 'frontend URL');
          deps.tls?.guard(url, 'the shared secret');
          const response = await fetch(`${url}/api/notify`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(deps.secret && { authorization: `Bearer ${deps.secret}` }),
            },
            body: JSON.stringify(view),
            signal: AbortSignal.timeout(2000),
          });
          await response.arrayBuffer();
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
        } catch (error) {
          deps.journal.failed('publish-view', error, { frontend: registered });
        }
      }),
    );
  };
}
