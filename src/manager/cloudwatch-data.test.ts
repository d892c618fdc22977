import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MetricDatum } from '@aws-sdk/client-cloudwatch';
import { quietSample, type Sample } from '../core/stats.ts';
import {
  acceptedAt,
  datumBytes,
  fitInCall,
  nodeData,
  parseNamespace,
  parseRegion,
  poolDimensions,
  toData,
} from './cloudwatch-data.ts';

const T = 1_700_000_000_000; // a multiple of 5 s
const sample = (fields: Partial<Sample>): Sample => quietSample(T, fields);
const byName = (data: MetricDatum[]) => new Map(data.map((d) => [d.MetricName, d]));
/** CloudWatch's Average over data points: Σsum / Σcount, a plain value counting once. */
const average = (data: MetricDatum[]) => {
  let sum = 0;
  let count = 0;
  for (const d of data) {
    sum += d.StatisticValues?.Sum ?? d.Value ?? 0;
    count += d.StatisticValues?.SampleCount ?? 1;
  }
  return sum / count;
};

describe('CloudWatch data points', () => {
  it("a node's sample: rates as percent of its gets, gauges, requests, with its dimensions", () => {
    const data = nodeData(
      'p1',
      'node-a',
      sample({ gets: 4, hits: 3, misses: 1, puts: 2, items: 7, bytes: 2048 }),
    );
    const m = byName(data);
    assert.deepEqual([...m.keys()], ['HitRate', 'MissRate', 'Items', 'SizeBytes', 'Requests']);
    assert.equal(average([m.get('HitRate') as MetricDatum]), 75);
    assert.equal(average([m.get('MissRate') as MetricDatum]), 25);
    assert.deepEqual(m.get('HitRate')?.StatisticValues, {
      SampleCount: 4,
      Sum: 300,
      Minimum: 0,
      Maximum: 100,
    });
    assert.equal(m.get('Items')?.Value, 7);
    assert.equal(m.get('SizeBytes')?.Value, 2048);
    assert.equal(m.get('Requests')?.Value, 6);
    assert.deepEqual(
      data.map((d) => [d.Unit, d.StorageResolution, d.Timestamp?.getTime()]),
      [
        ['Percent', 1, T],
        ['Percent', 1, T],
        ['Count', 1, T],
        ['Bytes', 1, T],
        ['Count', 1, T],
      ],
    );
    for (const d of data) {
      assert.deepEqual(d.Dimensions, [
        { Name: 'Pool', Value: 'p1' },
        { Name: 'NodeId', Value: 'node-a' },
      ]);
    }
  });

  it('an interval without gets has no rate at all (a gap), but its gauges and requests', () => {
    const names = nodeData('p', 'n', sample({ puts: 3, items: 1 })).map((d) => d.MetricName);
    assert.deepEqual(names, ['Items', 'SizeBytes', 'Requests']);
  });

  it('all hits or all misses give the right minimum and maximum', () => {
    const m = byName(toData({ ...sample({}), gets: 2, hits: 2 }, poolDimensions('p'), T));
    assert.deepEqual(m.get('HitRate')?.StatisticValues, {
      SampleCount: 2,
      Sum: 200,
      Minimum: 100,
      Maximum: 100,
    });
    assert.deepEqual(m.get('MissRate')?.StatisticValues, {
      SampleCount: 2,
      Sum: 0,
      Minimum: 0,
      Maximum: 0,
    });
  });

  it("averaging two intervals' rate points gives the rate of the summed counts", () => {
    // 1 hit of 1 get, and 1 hit of 9: the pooled rate is 2/10, not the mean of 100 % and 11 %.
    const a = nodeData('p', 'n', sample({ gets: 1, hits: 1 }));
    const b = nodeData('p', 'n', sample({ gets: 9, hits: 1, misses: 8 }));
    const rates = [...a, ...b].filter((d) => d.MetricName === 'HitRate');
    assert.equal(average(rates), 20);
  });

  it('takes timestamps CloudWatch takes: not two weeks old, not two hours ahead', () => {
    const now = T;
    assert.ok(acceptedAt(now, now));
    assert.ok(acceptedAt(now - 13 * 24 * 3600_000, now));
    assert.ok(!acceptedAt(now - 14 * 24 * 3600_000, now));
    assert.ok(acceptedAt(now + 30 * 60_000, now));
    assert.ok(!acceptedAt(now + 2 * 3600_000, now));
  });
});

describe('PutMetricData batches', () => {
  const points = (n: number) =>
    Array.from({ length: n }, (_, i) => nodeData('p', `node-${i}`, sample({}))[0] as MetricDatum);

  it('hold at most 1000 points by default', () => {
    assert.equal(fitInCall(points(2500)), 1000);
    assert.equal(fitInCall(points(999)), 999);
    assert.equal(fitInCall([]), 0);
  });

  it('stay within the byte limit, the call’s own bytes included', () => {
    const queue = points(100);
    const one = datumBytes(queue[0] as MetricDatum);
    const n = fitInCall(queue, 1000, 2048 + 10 * one + one / 2);
    assert.equal(n, 10);
  });

  it('take one point even when it alone is over the limit, so the queue moves', () => {
    assert.equal(fitInCall(points(3), 1000, 100), 1);
  });
});

describe('names an operator gives', () => {
  it('accepts CloudWatch namespaces and refuses reserved or malformed ones', () => {
    for (const ok of ['pixpool', 'Pixpool/Prod', 'a.b-c_d#e:f g']) {
      assert.equal(parseNamespace(ok), ok);
    }
    for (const bad of ['', 'AWS/EC2', 'aws/x', ':x', 'é', 'x'.repeat(256), 'a;b']) {
      assert.throws(() => parseNamespace(bad), /Expected a CloudWatch namespace/);
    }
  });

  it('accepts AWS region names and refuses others', () => {
    for (const ok of ['us-east-1', 'eu-central-2', 'us-gov-west-1', 'cn-northwest-1']) {
      assert.equal(parseRegion(ok), ok);
    }
    for (const bad of ['', 'us-east', 'US-EAST-1', 'useast1', 'us-east-1a', 'https://x']) {
      assert.throws(() => parseRegion(bad), /Expected an AWS region/);
    }
  });
});
