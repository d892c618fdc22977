/**
 * A small fake CloudWatch for the sink's tests (cloudwatch.test.ts), since the real one cannot be
 * reached here: the real AWS SDK client, through aws-sdk-client-mock, keeps what PutMetricData
 * sends, refusing what CloudWatch would (over 1000 points or 1 MB a call, low resolution, bad
 * units or statistic sets, timestamps out of range), and answers GetMetricData's MetricStat
 * queries from it (Period; Sum, Average, SampleCount, Minimum, Maximum). It can hang or fail
 * PutMetricData, to play an outage.
 */
import {
  type CloudWatchClient,
  type Dimension,
  GetMetricDataCommand,
  type GetMetricDataInput,
  PutMetricDataCommand,
  type PutMetricDataInput,
} from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';

export const NAMESPACE = 'pixpool-test';
export const POOL = 'test-pool';
const UNITS = new Set(['Percent', 'Count', 'Bytes', 'Seconds', 'Milliseconds', 'None']);

interface Point {
  name: string;
  dims: string;
  /** Seconds: high-resolution data is kept to the second. */
  second: number;
  sum: number;
  count: number;
  min: number;
  max: number;
}

const dimsKey = (dims: Dimension[] = []) =>
  dims
    .map((d) => `${d.Name}=${d.Value}`)
    .sort()
    .join(',');

const invalid = (message: string) =>
  Object.assign(new Error(message), { name: 'InvalidParameterValueException', $fault: 'client' });

export function createFakeCloudWatch(client: CloudWatchClient) {
  const mock = mockClient(client);
  const points: Point[] = [];
  const hung: ((error: Error) => void)[] = [];
  const fake = {
    points,
    mode: 'ok' as 'ok' | 'hang' | 'fail',
    calls: 0,
    /** PutMetricData calls waiting for an answer. */
    get pending() {
      return hung.length;
    },
    /** Ends every hung call with `error`. */
    release(error: Error) {
      for (const reject of hung.splice(0)) reject(error);
    },
  };

  function check(input: PutMetricDataInput): void {
    const data = input.MetricData ?? [];
    if (input.Namespace !== NAMESPACE) throw invalid(`unexpected namespace ${input.Namespace}`);
    if (data.length === 0 || data.length > 1000) throw invalid('1 to 1000 metrics per call');
    if (Buffer.byteLength(JSON.stringify(input)) > 1_000_000) throw invalid('over 1 MB');
    for (const d of data) {
      const t = d.Timestamp?.getTime() ?? Number.NaN;
      if (!(Math.abs(t - Date.now()) < 14 * 24 * 3600_000)) throw invalid('timestamp out of range');
      if (d.StorageResolution !== 1) throw invalid('expected high resolution');
      if (!d.Unit || !UNITS.has(d.Unit)) throw invalid(`unit ${d.Unit}`);
      if ((d.Value === undefined) === (d.StatisticValues === undefined)) {
        throw invalid('exactly one of Value and StatisticValues');
      }
      const s = d.StatisticValues;
      if (s) {
        const [count, sum, min, max] = [s.SampleCount, s.Sum, s.Minimum, s.Maximum].map(Number);
        const mean = (sum as number) / (count as number);
        if (!((count as number) > 0 && (min as number) <= mean && mean <= (max as number))) {
          throw invalid(
            'a statistic set needs SampleCount > 0 and Minimum ≤ Sum/SampleCount ≤ Maximum',
          );
        }
      }
      if ((d.Dimensions ?? []).some((dim) => !dim.Value)) throw invalid('empty dimension');
    }
  }

  mock.on(PutMetricDataCommand).callsFake(async (input: PutMetricDataInput) => {
    fake.calls++;
    if (fake.mode === 'fail') {
      throw Object.assign(new Error('Service Unavailable'), {
        name: 'ServiceUnavailable',
        $fault: 'server',
      });
    }
    if (fake.mode === 'hang') {
      await new Promise<never>((_, reject) => hung.push(reject));
    }
    check(input);
    for (const d of input.MetricData ?? []) {
      const s = d.StatisticValues;
      const v = d.Value ?? 0;
      points.push({
        name: d.MetricName as string,
        dims: dimsKey(d.Dimensions),
        second: Math.floor((d.Timestamp as Date).getTime() / 1000),
        sum: s ? (s.Sum as number) : v,
        count: s ? (s.SampleCount as number) : 1,
        min: s ? (s.Minimum as number) : v,
        max: s ? (s.Maximum as number) : v,
      });
    }
    return {};
  });

  mock.on(GetMetricDataCommand).callsFake(async (input: GetMetricDataInput) => {
    const from = (input.StartTime as Date).getTime() / 1000;
    const to = (input.EndTime as Date).getTime() / 1000;
    return {
      MetricDataResults: (input.MetricDataQueries ?? []).map((q) => {
        const stat = q.MetricStat;
        const period = stat?.Period ?? 0;
        if (!stat || !([1, 5, 10, 30].includes(period) || period % 60 === 0)) {
          throw invalid('a MetricStat with a high-resolution period');
        }
        const buckets = new Map<number, Point[]>();
        for (const p of points) {
          if (p.name !== stat.Metric?.MetricName || p.dims !== dimsKey(stat.Metric?.Dimensions)) {
            continue;
          }
          if (p.second < from || p.second >= to) continue;
          const start = Math.floor(p.second / period) * period;
          buckets.set(start, [...(buckets.get(start) ?? []), p]);
        }
        const sum = (ps: Point[], f: (p: Point) => number) => ps.reduce((a, p) => a + f(p), 0);
        const value = (ps: Point[]) => {
          switch (stat.Stat) {
            case 'Sum':
              return sum(ps, (p) => p.sum);
            case 'SampleCount':
              return sum(ps, (p) => p.count);
            case 'Average':
              return sum(ps, (p) => p.sum) / sum(ps, (p) => p.count);
            case 'Minimum':
              return Math.min(...ps.map((p) => p.min));
            case 'Maximum':
              return Math.max(...ps.map((p) => p.max));
            default:
              throw invalid(`statistic ${stat.Stat}`);
          }
        };
        const starts = [...buckets.keys()].sort((a, b) =>
          input.ScanBy === 'TimestampAscending' ? a - b : b - a,
        );
        return {
          Id: q.Id,
          Label: stat.Metric?.MetricName,
          StatusCode: 'Complete' as const,
          Timestamps: starts.map((s) => new Date(s * 1000)),
          Values: starts.map((s) => value(buckets.get(s) as Point[])),
        };
      }),
    };
  });
  return fake;
}

/** One metric's series read back with GetMetricData: slot start (ms) → value. */
export async function readSeries(
  client: CloudWatchClient,
  metric: string,
  nodeId: string | undefined,
  period: number,
  stat: string,
  from: number,
  to: number,
): Promise<Map<number, number>> {
  const Dimensions = [
    { Name: 'Pool', Value: POOL },
    ...(nodeId ? [{ Name: 'NodeId', Value: nodeId }] : []),
  ];
  const answer = await client.send(
    new GetMetricDataCommand({
      StartTime: new Date(from),
      EndTime: new Date(to),
      MetricDataQueries: [
        {
          Id: 'q',
          MetricStat: {
            Metric: { Namespace: NAMESPACE, MetricName: metric, Dimensions },
            Period: period,
            Stat: stat,
          },
        },
      ],
    }),
  );
  const result = answer.MetricDataResults?.[0];
  const times = result?.Timestamps ?? [];
  return new Map(times.map((t, i) => [t.getTime(), result?.Values?.[i] as number]));
}
