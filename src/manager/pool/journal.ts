/**
 * What the pool tells people: events for the pool log (the database, which the dashboard shows),
 * and failures, each logged with its cause and counted in Prometheus by operation. A failure the
 * pool can live with (a node that missed a view push, a frontend that missed a notify) is
 * reported here and the work goes on; every other failure is thrown to whoever asked.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { PoolStore } from '../../storage/pool-store.ts';

/** Everything the pool does that can fail without stopping it. */
export type Operation =
  | 'record-event'
  | 'push-view'
  | 'publish-view'
  | 'configure-node'
  | 'clear-node'
  | 'measure-hand-over'
  | 'hand-over'
  | 'stop-node'
  | 'resume-node'
  | 'replace-node'
  | 'save-node-state'
  | 'save-resize-end'
  | 'resize'
  | 'prune';

export interface Journal {
  /** Logs the event and adds it to the pool log; a failure to add it is reported, not thrown. */
  event(kind: string, message: string, details?: unknown): Promise<void>;
  /** Logs and counts a failure that the pool lives with. */
  failed(operation: Operation, error: unknown, context?: Record<string, unknown>): void;
}

export interface JournalDeps {
  store: Pick<PoolStore, 'addEvent'>;
  log: Pick<FastifyBaseLogger, 'info' | 'warn'>;
  /** Where the failure counter goes; none: counted nowhere (unit tests that do not look). */
  registry?: Registry | undefined;
}

export const FAILURES_METRIC = 'pixpool_manager_failures_total';

export function createJournal(deps: JournalDeps): Journal {
  const counter = deps.registry
    ? new Counter({
        name: FAILURES_METRIC,
        help: 'Failures the manager lived with, by operation (each is also logged)',
        labelNames: ['operation'] as const,
        registers: [deps.registry],
      })
    : undefined;

  const journal: Journal = {
    failed(operation, error, context = {}) {
      counter?.inc({ operation });
      deps.log.warn({ err: error, operation, ...context }, `${operation} failed`);
    },
    async event(kind, message, details) {
      deps.log.info({ kind, details }, message);
      try {
        await deps.store.addEvent({ kind, message, details });
      } catch (error) {
        journal.failed('record-event', error, { kind });
      }
    },
  };
  return journal;
}
