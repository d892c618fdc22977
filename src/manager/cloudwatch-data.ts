/**
 * What the CloudWatch sink (cloudwatch.ts) publishes, as pure functions: a node's sample, or the
 * pool's sums over one slot, as PutMetricData data points; how many of a queue's head fit in one
 * call; and the checks of the names an operator gives it.
 *
 * Metrics, each at high resolution (StorageResolution 1), per node (dimensions Pool, NodeId) and
 * for the pool (Pool):
 * - HitRate, MissRate (Percent). Published as a statistic set of the interval's gets, each get an
 *   observation of 100 (a hit, for HitRate) or 0: SampleCount = gets, Sum = 100 × hits. So the
 *   Average CloudWatch computes over any period is Σhits / Σgets of that period, the rate from
 *   summed counts that the dashboard shows, never an average of ratios; and an interval without
 *   gets has no data point, a gap, as on the dashboard.
 * - Items (Count) and SizeBytes (Bytes): gauges, the node's at its sample; the pool's is the sum
 *   over nodes of each node's last sample in the slot, as PoolStore.aggregate sums them. Bytes
 *   rather than the dashboard's MB, which is SizeBytes / 1048576 (MiB): CloudWatch's Megabytes
 *   does not say which megabyte it means.
 * - Requests (Count): gets + puts of the interval; its Sum over a minute is the dashboard's
 *   requests per minute.
 *
 * Limits: nothing here knows about time beyond the timestamps it is given; whether a timestamp is
 * one CloudWatch still takes is `acceptedAt`'s question.
 */
import type { Dimension, MetricDatum } from '@aws-sdk/client-cloudwatch';
import type { Sample } from '../core/stats.ts';

export const DEFAULT_NAMESPACE = 'pixpool';
/** The Pool dimension's value when the manager is given none. */
export const DEFAULT_POOL = 'default';
/** PutMetricData takes at most 1000 metrics and 1 MB in one request. */
export const MAX_DATA_PER_CALL = 1000;
export const MAX_CALL_BYTES = 1_000_000;
/** Room left in a call for what is not a data point: the namespace, the envelope, headers. */
const CALL_OVERHEAD_BYTES = 2048;
/** CloudWatch takes timestamps from two weeks back to two hours ahead of its clock. */
const OLDEST_MS = 14 * 24 * 3600_000;
const NEWEST_MS = 2 * 3600_000;
/** A margin inside both ends, for the time a data point waits in the queue and clock skew. */
const MARGIN_MS = 3600_000;

/** One interval's counts and gauges: a node's sample, or the pool's sums over a slot. */
export interface Totals {
  gets: number;
  hits: number;
  misses: number;
  puts: number;
  items: number;
  bytes: number;
}

/** A percentage of the interval's gets as a statistic set of one observation per get. */
function rateDatum(name: string, part: number, gets: number): MetricDatum {
  return {
    MetricName: name,
    Unit: 'Percent',
    StatisticValues: {
      SampleCount: gets,
      Sum: 100 * part,
      Minimum: part < gets ? 0 : 100,
      Maximum: part > 0 ? 100 : 0,
    },
  };
}

/** The data points of one interval under `dimensions`, stamped `at` (ms since the epoch). */
export function toData(totals: Totals, dimensions: Dimension[], at: number): MetricDatum[] {
  const data: MetricDatum[] = [
    { MetricName: 'Items', Unit: 'Count', Value: totals.items },
    { MetricName: 'SizeBytes', Unit: 'Bytes', Value: totals.bytes },
    { MetricName: 'Requests', Unit: 'Count', Value: totals.gets + totals.puts },
  ];
  if (totals.gets > 0) {
    data.unshift(
      rateDatum('HitRate', totals.hits, totals.gets),
      rateDatum('MissRate', totals.misses, totals.gets),
    );
  }
  const Timestamp = new Date(at);
  return data.map((datum) => ({
    ...datum,
    Dimensions: dimensions,
    Timestamp,
    StorageResolution: 1,
  }));
}

export const poolDimensions = (pool: string): Dimension[] => [{ Name: 'Pool', Value: pool }];

export const nodeDimensions = (pool: string, nodeId: string): Dimension[] => [
  { Name: 'Pool', Value: pool },
  { Name: 'NodeId', Value: nodeId },
];

/** A node's sample, stamped with the sample's own time. */
export const nodeData = (pool: string, nodeId: string, sample: Sample): MetricDatum[] =>
  toData(sample, nodeDimensions(pool, nodeId), sample.at);

/** Whether CloudWatch, its clock near `now`, takes a data point stamped `at`. */
export const acceptedAt = (at: number, now: number): boolean =>
  at > now - OLDEST_MS + MARGIN_MS && at < now + NEWEST_MS - MARGIN_MS;

/** Bytes a data point adds to a request, over-counted: its JSON with an ISO timestamp. */
export const datumBytes = (datum: MetricDatum): number =>
  Buffer.byteLength(JSON.stringify(datum)) + 1;

/**
 * How many data points from the head of `queue` fit in one PutMetricData call: at most
 * `maxData`, and their bytes within `maxBytes` less the call's own. At least one when the queue
 * has any, so an oversized point (impossible with the names the checks below allow) is tried,
 * and refused by CloudWatch, rather than stuck at the head.
 */
export function fitInCall(
  queue: readonly MetricDatum[],
  maxData = MAX_DATA_PER_CALL,
  maxBytes = MAX_CALL_BYTES,
): number {
  const budget = maxBytes - CALL_OVERHEAD_BYTES;
  let bytes = 0;
  let count = 0;
  for (const datum of queue) {
    if (count === maxData) break;
    bytes += datumBytes(datum);
    if (bytes > budget && count > 0) break;
    count++;
  }
  return count;
}

// CloudWatch's own rules: a namespace of 1–255 of these characters, not starting with ':' and
// not "AWS/" (AWS's services' own); a dimension value of 1–1024 characters.
const NAMESPACE = /^[A-Za-z0-9 .\-_/#:]{1,255}$/;
// Partition, area and number: us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1.
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** A CloudWatch namespace, or a TypeError saying what one is. */
export function parseNamespace(value: string): string {
  if (!NAMESPACE.test(value) || value.startsWith(':') || /^aws\//i.test(value)) {
    throw new TypeError(
      'Expected a CloudWatch namespace: 1 to 255 letters, digits, spaces and . - _ / # :, not starting with ":" or "AWS/".',
    );
  }
  return value;
}

/** An AWS region name such as eu-west-1, or a TypeError saying what one is. */
export function parseRegion(value: string): string {
  if (!REGION.test(value)) {
    throw new TypeError('Expected an AWS region such as us-east-1 or eu-central-2.');
  }
  return value;
}

/** The Pool dimension's value, or a TypeError. */
export function parsePoolName(value: string): string {
  if (value.length < 1 || value.length > 1024) {
    throw new TypeError('Expected a pool name of 1 to 1024 characters.');
  }
  return value;
}
