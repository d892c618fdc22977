/**
 * The loop's source in production: the manager's HTTP API (src/manager/autoscaler-routes.ts),
 * with the admin token when one is set. Reads `GET /api/manager/autoscaler/state` and posts
 * decisions to `POST /api/manager/autoscaler/decisions`.
 *
 * Every failure (unreachable, timeout, a non-2xx answer, a malformed state) becomes an Error whose
 * message says which, for the loop to log once per outage; a 409 on a decision is the manager
 * saying the pool changed since the read, returned as `refused`, not thrown.
 */
import type { Decision } from '../core/autoscale-policy.ts';
import { type AutoscaleState, parseAutoscaleState } from '../core/autoscale-state.ts';
import type { ApplyResult, AutoscalerSource } from './loop.ts';

export interface ManagerSourceOptions {
  managerUrl: string;
  adminToken?: string | undefined;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

interface Envelope {
  success?: string;
  content?: unknown;
  error?: { message?: string };
}

export function createManagerSource(options: ManagerSourceOptions): AutoscalerSource {
  const base = options.managerUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 5000;
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = options.adminToken
    ? { authorization: `Bearer ${options.adminToken}` }
    : {};

  async function call(method: string, path: string, body?: unknown) {
    let response: Response;
    try {
      response = await doFetch(base + path, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new Error(`cannot reach the manager at ${base} (${why})`);
    }
    let parsed: Envelope;
    try {
      parsed = (await response.json()) as Envelope;
    } catch {
      throw new Error(`the manager answered ${method} ${path} with ${response.status} and no JSON`);
    }
    return { status: response.status, body: parsed };
  }

  const failed = (what: string, status: number, body: Envelope) =>
    new Error(`${what}: the manager answered ${status}: ${body.error?.message ?? 'no message'}`);

  return {
    async read(windowS: number): Promise<AutoscaleState> {
      const { status, body } = await call(
        'GET',
        `/api/manager/autoscaler/state?window_s=${encodeURIComponent(windowS)}`,
      );
      if (status !== 200) throw failed('reading the pool', status, body);
      try {
        return parseAutoscaleState(body.content);
      } catch (error) {
        throw new Error(`the manager's pool state is malformed: ${(error as Error).message}`);
      }
    },

    async apply(state: AutoscaleState, decision: Decision): Promise<ApplyResult> {
      const { status, body } = await call('POST', '/api/manager/autoscaler/decisions', {
        state,
        outcome: decision.outcome,
        target_size: decision.target,
      });
      if (status === 409) return { refused: body.error?.message ?? 'the pool changed' };
      if (status !== 200) throw failed('applying a decision', status, body);
      const content = body.content as { recorded?: unknown; queued_steps?: unknown } | undefined;
      return {
        recorded: content?.recorded === true,
        queuedSteps: typeof content?.queued_steps === 'number' ? content.queued_steps : 0,
      };
    },
  };
}
