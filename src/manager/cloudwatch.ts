/**
 * An optional sink that publishes the pool's statistics to CloudWatch, as the originals kept
 * them there: each node sample the manager has stored, per node and summed per 5-s slot for the
 * pool (cloudwatch-slots.ts), as the data points of cloudwatch-data.ts, with PutMetricData.
 *
 * The database stays the source of truth, and CloudWatch can neither stop, delay nor lose what
 * the dashboard and the autoscaler read: the samples route hands a sample over only once it is
 * stored, and `add` returns at once, never throws and never waits on CloudWatch. Data points wait
 * in a bounded queue (`maxQueued`; past it the oldest are dropped and counted) and go out in
 * batches within PutMetricData's limits, one call at a time, each with a timeout. A failed call
 * puts its batch back at the head and retries after a backoff (doubling up to `retryMaxMs`); an
 * outage is logged once when it starts and once when it ends, with what it cost. A batch
 * CloudWatch refuses as invalid is dropped and counted, since sending it again cannot help.
 *
 * Delivery is at least once: a call that timed out may have been stored, and is sent again.
 * A node's sample re-sent after a lost answer (the store ignores it) is recognised by its time
 * and published once. `stop()` closes the open slots and sends what is queued within `stopMs`.
 */
import {
  type CloudWatchClient,
  type MetricDatum,
  PutMetricDataCommand,
} from '@aws-sdk/client-cloudwatch';
import { Counter, Gauge, type Registry } from 'prom-client';
import { type Clock, systemClock } from '../core/clock.ts';
import type { Sample } from '../core/stats.ts';
import {
  acceptedAt,
  DEFAULT_NAMESPACE,
  DEFAULT_POOL,
  fitInCall,
  MAX_CALL_BYTES,
  MAX_DATA_PER_CALL,
  nodeData,
  poolDimensions,
  toData,
} from './cloudwatch-data.ts';
import { type ClosedSlot, createSlots } from './cloudwatch-slots.ts';

/** Where the manager hands every stored sample (app.ts takes a factory of one). */
export interface SampleSink {
  /** A sample the database has stored; `members`: the pool map's node ids. Returns at once. */
  add(nodeId: string, sample: Sample, members: readonly string[]): void;
  /** Publishes what it still holds, within its bound. */
  stop(): Promise<void>;
}

export interface SinkLog {
  warn(message: string): void;
  info(message: string): void;
}

export interface CloudWatchSinkOptions {
  client: Pick<CloudWatchClient, 'send'>;
  namespace?: string;
  /** The Pool dimension's value. */
  pool?: string;
  /** The pool's slot, ms: the nodes' sampling interval (5 s). */
  slotMs?: number;
  /** How long a slot waits for its last nodes after its first sample arrived, ms. */
  graceMs?: number;
  /** Data points held at most while CloudWatch does not take them (50,000: 1.5 h of 8 nodes and the pool, 45 points a slot). */
  maxQueued?: number;
  maxDataPerCall?: number;
  maxCallBytes?: number;
  requestTimeoutMs?: number;
  retryFirstMs?: number;
  retryMaxMs?: number;
  /** How long stop() may send what is left, ms. */
  stopMs?: number;
  /** How often due slots are closed and retries are made, ms. */
  tickMs?: number;
  clock?: Clock;
  /** The manager's registry, for the sink's counters. */
  registry?: Registry;
  log?: SinkLog;
}

// Errors that say the data itself is wrong: sending it again cannot succeed.
const INVALID = new Set([
  'InvalidParameterValueException',
  'InvalidParameterValue',
  'InvalidParameterCombinationException',
  'InvalidParameterCombination',
  'MissingRequiredParameterException',
  'MissingParameter',
  'ValidationError',
  'ValidationException',
]);

const quiet: SinkLog = { warn() {}, info() {} };

function createSinkMetrics(registry: Registry | undefined, queued: () => number) {
  const registers = registry ? [registry] : [];
  new Gauge({
    name: 'pixpool_manager_cloudwatch_queued',
    help: 'Data points waiting to be sent to CloudWatch',
    registers,
    collect() {
      this.set(queued());
    },
  });
  return {
    sent: new Counter({
      name: 'pixpool_manager_cloudwatch_sent_total',
      help: 'Data points CloudWatch took',
      registers,
    }),
    dropped: new Counter({
      name: 'pixpool_manager_cloudwatch_dropped_total',
      help: 'Data points never sent, by reason: queue_full (the oldest, past the bound), invalid (refused by CloudWatch), out_of_range (a time CloudWatch does not take), stopped (left at stop)',
      labelNames: ['reason'] as const,
      registers,
    }),
    failures: new Counter({
      name: 'pixpool_manager_cloudwatch_failed_calls_total',
      help: 'PutMetricData calls that failed or timed out (their data is retried)',
      registers,
    }),
    late: new Counter({
      name: 'pixpool_manager_cloudwatch_late_samples_total',
      help: 'Samples that arrived after their pool slot was published: sent per node only',
      registers,
    }),
  };
}

export function createCloudWatchSink(options: CloudWatchSinkOptions) {
  const {
    client,
    namespace = DEFAULT_NAMESPACE,
    pool = DEFAULT_POOL,
    slotMs = 5000,
    graceMs = 10_000,
    maxQueued = 50_000,
    maxDataPerCall = MAX_DATA_PER_CALL,
    maxCallBytes = MAX_CALL_BYTES,
    requestTimeoutMs = 10_000,
    retryFirstMs = 1000,
    retryMaxMs = 60_000,
    stopMs = 3000,
    tickMs = 1000,
    clock = systemClock,
    log = quiet,
  } = options;
  const queue: MetricDatum[] = [];
  const slots = createSlots({ slotMs, graceMs });
  const metrics = createSinkMetrics(options.registry, () => queue.length);
  /** Per node, the time of the last sample taken, to publish a re-sent sample once. */
  const lastAt = new Map<string, number>();
  let pumping: Promise<void> | undefined;
  let retryAt = 0;
  let delay = 0;
  let outage: { since: number; failed: number; dropped: number } | undefined;
  let stopped = false;
  let halted = false;

  function enqueue(data: MetricDatum[]): void {
    const now = clock.now();
    for (const datum of data) {
      if (acceptedAt(datum.Timestamp?.getTime() ?? now, now)) queue.push(datum);
      else metrics.dropped.inc({ reason: 'out_of_range' });
    }
    trim();
  }

  function trim(): void {
    const over = queue.length - maxQueued;
    if (over <= 0) return;
    queue.splice(0, over);
    metrics.dropped.inc({ reason: 'queue_full' }, over);
    if (outage) outage.dropped += over;
  }

  const enqueueSlots = (closed: ClosedSlot[]) => {
    for (const slot of closed) enqueue(toData(slot, poolDimensions(pool), slot.start));
  };

  async function put(batch: MetricDatum[]): Promise<void> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), requestTimeoutMs);
    const timedOut = new Promise<never>((_, reject) => {
      abort.signal.addEventListener('abort', () =>
        reject(new Error(`no answer within ${requestTimeoutMs} ms`)),
      );
    });
    try {
      const call = client.send(
        new PutMetricDataCommand({ Namespace: namespace, MetricData: batch }),
        {
          abortSignal: abort.signal,
        },
      );
      await Promise.race([call, timedOut]);
    } finally {
      clearTimeout(timer);
      abort.abort(); // settles the race's loser, so nothing waits on it
    }
  }

  /** Sends batches until the queue is empty, a call fails, or the sink halts. */
  async function send(): Promise<void> {
    while (queue.length > 0 && !halted) {
      const batch = queue.splice(0, fitInCall(queue, maxDataPerCall, maxCallBytes));
      try {
        await put(batch);
      } catch (error) {
        if (halted) {
          metrics.dropped.inc({ reason: 'stopped' }, batch.length);
          return;
        }
        if (INVALID.has((error as Error).name)) {
          metrics.dropped.inc({ reason: 'invalid' }, batch.length);
          log.warn(`CloudWatch refused ${batch.length} data points as invalid: ${error}`);
          continue;
        }
        queue.unshift(...batch);
        trim();
        metrics.failures.inc();
        delay = Math.min(retryMaxMs, delay === 0 ? retryFirstMs : delay * 2);
        retryAt = clock.now() + delay;
        if (!outage) {
          outage = { since: clock.now(), failed: 0, dropped: 0 };
          log.warn(
            `cannot publish statistics to CloudWatch (${error}); retrying with backoff, holding up to ${maxQueued} data points`,
          );
        }
        outage.failed++;
        return;
      }
      metrics.sent.inc(batch.length);
      delay = 0;
      if (outage) {
        log.info(
          `CloudWatch takes statistics again after ${Math.round((clock.now() - outage.since) / 1000)} s: ${outage.failed} failed calls, ${outage.dropped} data points dropped`,
        );
        outage = undefined;
      }
    }
  }

  /** One sender at a time; a caller while it runs gets the run in progress. */
  function pump(): Promise<void> {
    if (!pumping) {
      pumping = send().finally(() => {
        pumping = undefined;
      });
    }
    return pumping;
  }

  /** Closes the slots whose grace ran out and sends, unless a retry is not due yet. */
  function tick(): Promise<void> {
    enqueueSlots(slots.due(clock.now()));
    if (stopped || queue.length === 0 || clock.now() < retryAt) return pumping ?? Promise.resolve();
    return pump();
  }

  const timer = setInterval(() => void tick(), tickMs);
  timer.unref();

  return {
    add(nodeId: string, sample: Sample, members: readonly string[]): void {
      if (stopped) return;
      try {
        const last = lastAt.get(nodeId);
        if (last !== undefined && sample.at <= last) return;
        lastAt.delete(nodeId); // re-inserted last: the map's order is oldest-reporting first
        lastAt.set(nodeId, sample.at);
        if (lastAt.size > 10_000) lastAt.delete(lastAt.keys().next().value as string);
        enqueue(nodeData(pool, nodeId, sample));
        const { late, closed } = slots.add(nodeId, sample, members, clock.now());
        if (late) metrics.late.inc();
        enqueueSlots(closed);
        // A closed slot is the pool's 5-s batch: send it now, unless a retry is not due yet.
        if (closed.length > 0 && clock.now() >= retryAt) void pump();
      } catch (error) {
        log.warn(`CloudWatch sink: sample of ${nodeId} not published: ${error}`);
      }
    },

    tick,

    get queued(): number {
      return queue.length;
    },

    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      enqueueSlots(slots.closeAll());
      let bound: NodeJS.Timeout | undefined;
      const timeUp = new Promise<void>((resolve) => {
        bound = setTimeout(resolve, stopMs);
      });
      // One more try at once, backoff or not: after stop there is no later.
      const flush = (async () => {
        await pumping;
        if (queue.length > 0) await pump();
      })();
      await Promise.race([flush, timeUp]);
      clearTimeout(bound);
      halted = true;
      if (queue.length > 0) {
        metrics.dropped.inc({ reason: 'stopped' }, queue.length);
        log.warn(`stopping with ${queue.length} data points not sent to CloudWatch`);
        queue.length = 0;
      }
    },
  };
}

export type CloudWatchSink = ReturnType<typeof createCloudWatchSink>;
