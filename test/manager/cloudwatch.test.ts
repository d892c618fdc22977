/**
 * The manager's CloudWatch sink against a real manager on PostgreSQL: two cache nodes in its pool
 * (the static provider), their real counters sampled and posted to the samples route. CloudWatch
 * itself cannot be reached here, so the real AWS SDK client talks, through aws-sdk-client-mock,
 * to a small fake that keeps what PutMetricData sends (refusing what CloudWatch would: too many
 * points, too many bytes, bad units, old timestamps) and answers GetMetricData from it (MetricStat
 * with Period and Sum, Average, SampleCount, Minimum, Maximum).
 *
 * Shown: the series read back match the database's (the dashboard's 5-s and 1-minute series,
 * and every node's samples) within rounding; an outage (a call that hangs, calls that fail) does
 * not hold up the route, loses no database sample and leaves the autoscaler's window totals as
 * the nodes counted them, and what waited is published once CloudWatch is back; past its bound
 * the queue drops the oldest and counts them; an outage is logged once.
 *
 * The nodes' and the sink's clock is one the test moves, so the samples fall in known slots.
 * The fake CloudWatch is cloudwatch-fake.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { pino } from 'pino';
import { buildCacheNode } from '../../src/cachenode/app.ts';
import { createNodeCache } from '../../src/cachenode/node-cache.ts';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { type Clock, systemClock } from '../../src/core/clock.ts';
import { buildManager } from '../../src/manager/app.ts';
import {
  type CloudWatchSink,
  type CloudWatchSinkOptions,
  createCloudWatchSink,
} from '../../src/manager/cloudwatch.ts';
import { createStaticProvider } from '../../src/manager/providers/static.ts';
import { toSeries } from '../../src/manager/stats.ts';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { createPgDriver } from '../../src/storage/pg-driver.ts';
import { createPoolStore } from '../../src/storage/pool-store.ts';
import type { SqlDriver } from '../../src/storage/sql-driver.ts';
import { auth, SECRET } from '../helpers/nodes.ts';
import { waitFor } from '../helpers/processes.ts';
import { databaseUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';
import { createFakeCloudWatch, NAMESPACE, POOL, readSeries } from './cloudwatch-fake.ts';

const SLOT = 5000;

interface TestNode {
  id: string;
  cache: ReturnType<typeof createNodeCache>;
  keys: string[];
  /** When it samples in each slot, ms after the slot's start. */
  phase: number;
}

type Traffic = { puts: number; hits: number; misses: number };

async function startPool(sinkOptions: Partial<CloudWatchSinkOptions> = {}) {
  let now = 0;
  const clock: Clock = { now: () => now, sleep: systemClock.sleep };
  // Whole minutes, a few minutes back: CloudWatch takes it, and minute buckets line up.
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 4 * 60_000;
  const schema = randomSchema();
  const driver: SqlDriver = createPgDriver({ connectionString: databaseUrl(), schema });
  const store = await createPoolStore(driver, { ownsDriver: false });
  const metadata = await createMetadataStore(driver, { ownsDriver: false });
  const dir = await mkdtemp(join(tmpdir(), 'pixpool-cw-'));
  const objects = createFsObjectStore({ dir: join(dir, 'objects') });

  // Each node is made one interval before its first sample, so every sample covers 5 s.
  const nodes: {
    app: Awaited<ReturnType<typeof buildCacheNode>>;
    cache: ReturnType<typeof createNodeCache>;
    phase: number;
    url: string;
  }[] = [];
  for (const phase of [1000, 3500]) {
    now = base - SLOT + phase;
    const cache = createNodeCache({ policy: 'LRU', capacityMb: 64, maxCapacityMb: 4096, clock });
    const app = await buildCacheNode({
      nodeId: 'unused',
      cache,
      secret: SECRET,
      socketLanes: false,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    nodes.push({
      app,
      cache,
      phase,
      url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
    });
  }
  const admin = createNodeAdmin({ secret: SECRET, timeoutMs: 5000 });
  const provider = createStaticProvider({ urls: nodes.map((n) => n.url), admin });
  const client = new CloudWatchClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const fake = createFakeCloudWatch(client);
  const logs = { warn: [] as string[], info: [] as string[] };
  let sink: CloudWatchSink | undefined;
  const manager = buildManager({
    store,
    metadata,
    objects,
    provider,
    admin,
    assignment: 'balanced',
    secret: SECRET,
    maxCapacityMb: 4096,
    logger: pino({ level: 'silent' }),
    createSampleSink: ({ registry }) => {
      sink = createCloudWatchSink({
        client,
        clock,
        registry,
        namespace: NAMESPACE,
        pool: POOL,
        log: { warn: (m) => logs.warn.push(m), info: (m) => logs.info.push(m) },
        // The test ticks the sink itself, so retries happen exactly when it says.
        tickMs: 3_600_000,
        ...sinkOptions,
      });
      return sink;
    },
  });
  await manager.start();
  await manager.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(manager.app.server.address() as { port: number }).port}`;
  await (await manager.pool.resize(1)).done;
  const { map, addresses } = manager.pool.view();
  const members: TestNode[] = nodes.map((n) => ({
    id: map.nodes.find((id) => addresses[id] === n.url) as string,
    cache: n.cache,
    keys: [],
    phase: n.phase,
  }));
  assert.equal(new Set(members.map((m) => m.id)).size, 2, 'both nodes are in the pool');

  const lastSent = new Map<string, unknown>();
  let serial = 0;
  /** Reads and writes on a node's cache, as its routes would. */
  function traffic(node: TestNode, t: Traffic): void {
    for (let i = 0; i < t.puts; i++) {
      const key = `k${serial++}`;
      const value = Buffer.alloc(100_000 + 7_777 * (serial % 13));
      node.cache.put(key, { value, contentType: 'image/png', version: 1 }, false);
      node.keys.push(key);
    }
    for (let i = 0; i < t.hits; i++) node.cache.get(node.keys[i % node.keys.length] as string);
    for (let i = 0; i < t.misses; i++) node.cache.get(`missing-${serial++}`);
  }
  /** The node samples its counters at its phase of slot `slot` and posts that, as it would. */
  async function publish(node: TestNode, slot: number, body?: unknown) {
    now = base + slot * SLOT + node.phase;
    const sent = body ?? { node_id: node.id, samples: [node.cache.stats.sample()] };
    lastSent.set(node.id, sent);
    const response = await fetch(`${url}/api/manager/samples`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(sent),
      // A bound, not a measurement: a route that waited on the hung CloudWatch fails here.
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, answer: (await response.json()) as unknown, sent };
  }
  let stopped = false;
  const metrics = async () => (await fetch(`${url}/metrics`)).text();

  return {
    base,
    client,
    fake,
    logs,
    store,
    driver,
    members,
    lastSent,
    traffic,
    publish,
    metrics,
    sink: () => sink as CloudWatchSink,
    advance(ms: number) {
      now += ms;
    },
    /** Stops the manager (the sink flushes), keeping the database and the fake for reading. */
    async stopManager() {
      if (!stopped) await manager.app.close();
      stopped = true;
    },
    async close() {
      await this.stopManager();
      await Promise.all(nodes.map((n) => n.app.close()));
      await store.close();
      await metadata.close();
      await driver.close();
      await dropSchema(schema);
      await objects.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

type TestPool = Awaited<ReturnType<typeof startPool>>;

/** Runs `slots` slots: each node gets its traffic, then samples and posts at its phase. */
async function runSlots(
  p: TestPool,
  from: number,
  slots: number,
  plan: (slot: number, node: number) => Traffic,
) {
  const totals = { gets: 0, hits: 0, misses: 0 };
  for (let slot = from; slot < from + slots; slot++) {
    for (const [i, node] of p.members.entries()) {
      const t = plan(slot, i);
      p.traffic(node, t);
      totals.gets += t.hits + t.misses;
      totals.hits += t.hits;
      totals.misses += t.misses;
      const posted = await p.publish(node, slot);
      assert.equal(posted.status, 200, JSON.stringify(posted.answer));
      assert.deepEqual(posted.answer, { success: 'true', stored: 1 });
    }
  }
  return totals;
}

const close2 = (actual: number | undefined, expected: number | null, what: string) => {
  if (expected === null) {
    assert.equal(actual, undefined, `${what}: no data point where the dashboard has a gap`);
  } else {
    assert.ok(actual !== undefined, `${what}: a data point where the dashboard has ${expected}`);
    assert.ok(Math.abs(actual - expected) <= 0.005, `${what}: ${actual} vs ${expected}`);
  }
};

/** CloudWatch's series, per pool slot, per minute and per node, against the database's. */
async function assertMatchesDatabase(p: TestPool, slots: number) {
  const from = p.base;
  const to = p.base + slots * SLOT;
  const read = (metric: string, node: string | undefined, period: number, stat: string, end = to) =>
    readSeries(p.client, metric, node, period, stat, from, end);

  // The dashboard's series in 5-s buckets: each a pool slot.
  const dash = toSeries(
    await p.store.aggregate({ from: new Date(from), to: new Date(to), bucketMs: SLOT }),
  );
  const [hit, miss, items, size, requests] = await Promise.all([
    read('HitRate', undefined, 5, 'Average'),
    read('MissRate', undefined, 5, 'Average'),
    read('Items', undefined, 5, 'Average'),
    read('SizeBytes', undefined, 5, 'Average'),
    read('Requests', undefined, 5, 'Sum'),
  ]);
  dash.minutes.forEach((iso, i) => {
    const t = Date.parse(iso);
    close2(hit.get(t), dash.hit_rate[i] as number | null, `pool hit rate at ${iso}`);
    close2(miss.get(t), dash.miss_rate[i] as number | null, `pool miss rate at ${iso}`);
    assert.equal(items.get(t), dash.number_of_items_in_cache[i], `pool items at ${iso}`);
    const mb = Math.round(((size.get(t) ?? 0) / 1048576) * 100) / 100;
    assert.equal(mb, dash.total_size_of_items_in_cache[i], `pool MB at ${iso}`);
    assert.equal(
      requests.get(t),
      dash.number_of_requests_served_per_minute[i],
      `requests at ${iso}`,
    );
  });

  // The dashboard's own minutes: requests summed, and rates of summed counts, not averaged.
  const minutesTo = p.base + Math.ceil((slots * SLOT) / 60_000) * 60_000;
  const perMinute = toSeries(
    await p.store.aggregate({ from: new Date(from), to: new Date(minutesTo), bucketMs: 60_000 }),
  );
  const [minuteHit, minuteRequests] = await Promise.all([
    read('HitRate', undefined, 60, 'Average', minutesTo),
    read('Requests', undefined, 60, 'Sum', minutesTo),
  ]);
  perMinute.minutes.forEach((iso, i) => {
    const t = Date.parse(iso);
    close2(minuteHit.get(t), perMinute.hit_rate[i] as number | null, `minute hit rate at ${iso}`);
    assert.equal(minuteRequests.get(t), perMinute.number_of_requests_served_per_minute[i]);
  });

  // Every node's samples as the database holds them.
  const { rows } = await p.driver.query<Record<string, string | number>>(
    `SELECT node_id, floor(extract(epoch FROM at) * 1000) AS at, gets, hits, misses, puts, items, bytes
     FROM pool_samples ORDER BY at`,
  );
  assert.equal(rows.length, slots * 2, 'every sample is in the database');
  for (const node of p.members) {
    const [nHit, nMiss, nItems, nSize, nRequests, nCount] = await Promise.all([
      read('HitRate', node.id, 5, 'Average'),
      read('MissRate', node.id, 5, 'Average'),
      read('Items', node.id, 5, 'Average'),
      read('SizeBytes', node.id, 5, 'Average'),
      read('Requests', node.id, 5, 'Sum'),
      read('Requests', node.id, 5, 'SampleCount'),
    ]);
    const mine = rows.filter((r) => r.node_id === node.id);
    assert.equal(mine.length, slots);
    assert.equal(nCount.size, slots, `${node.id}: one Requests point per sample`);
    for (const r of mine) {
      const at = Number(r.at);
      const t = Math.floor(at / SLOT) * SLOT;
      const [gets, hits, misses] = [Number(r.gets), Number(r.hits), Number(r.misses)];
      const what = `${node.id} at ${new Date(at).toISOString()}`;
      close2(nHit.get(t), gets > 0 ? (100 * hits) / gets : null, `${what} hit rate`);
      close2(nMiss.get(t), gets > 0 ? (100 * misses) / gets : null, `${what} miss rate`);
      assert.equal(nItems.get(t), Number(r.items), `${what} items`);
      assert.equal(nSize.get(t), Number(r.bytes), `${what} bytes`);
      assert.equal(nRequests.get(t), gets + Number(r.puts), `${what} requests`);
      assert.equal(nCount.get(t), 1, `${what}: published once`);
    }
  }
}

/** A metric's value in Prometheus text (the line with `label`, if given), 0 when absent. */
const counter = (text: string, name: string, label = '') => {
  const line = text
    .split('\n')
    .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(label));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

// A plan with variety: slot 3 has no gets on node 1 (its rate is a gap), slot 5 none anywhere.
const PLAN = (slot: number, node: number): Traffic =>
  slot === 5 || (slot === 3 && node === 1)
    ? { puts: slot % 2, hits: 0, misses: 0 }
    : {
        puts: 1 + ((slot + node) % 3),
        hits: (slot * 7 + node) % 5,
        misses: 1 + ((slot + 2 * node) % 4),
      };

describe('CloudWatch sink on a real manager', () => {
  before(() => requirePostgres());

  it('publishes series that match the database per pool slot, per minute and per node', async () => {
    const p = await startPool();
    try {
      const slots = 14; // a whole minute and two slots of the next
      await runSlots(p, 0, 2, PLAN);
      // A node that did not hear the answer sends its last sample again: stored once, sent once.
      const node = p.members[0] as TestNode;
      const resent = await p.publish(node, 1, p.lastSent.get(node.id));
      assert.equal(resent.status, 200);
      await runSlots(p, 2, slots - 2, PLAN);
      await p.stopManager(); // the sink flushes on stop
      assert.equal(p.fake.mode, 'ok');
      assert.ok(p.fake.calls >= slots, 'one call per closed slot, about');
      await assertMatchesDatabase(p, slots);
      assert.deepEqual(p.logs.warn, []);
    } finally {
      await p.close();
    }
  });

  it('while CloudWatch hangs and fails the route answers, the database loses nothing, and all is sent later', async () => {
    const p = await startPool();
    try {
      p.fake.mode = 'hang';
      const first = await runSlots(p, 0, 1, PLAN);
      await waitFor('the first slot’s call to CloudWatch', () => p.fake.pending === 1);
      // The samples of three more slots are stored and answered while that call hangs.
      const rest = await runSlots(p, 1, 3, PLAN);
      assert.equal(p.fake.pending, 1, 'the call to CloudWatch still hangs');
      assert.equal(p.fake.points.length, 0);
      const window = await p.store.windowTotals({
        from: new Date(p.base),
        to: new Date(p.base + 4 * SLOT),
      });
      assert.deepEqual(
        {
          gets: window.gets,
          hits: window.hits,
          misses: window.misses,
          samples: window.samples,
          nodes: window.nodes,
        },
        {
          gets: first.gets + rest.gets,
          hits: first.hits + rest.hits,
          misses: first.misses + rest.misses,
          samples: 8,
          nodes: 2,
        },
        'the autoscaler reads every count the nodes made',
      );

      // The hung call fails, and so do the retries for a while.
      p.fake.mode = 'fail';
      p.fake.release(new Error('socket hang up'));
      await p.sink().tick(); // lets the failed call end; its retry is not due yet
      for (let i = 0; i < 3; i++) {
        p.advance(60_000);
        await p.sink().tick();
      }
      assert.equal(p.fake.points.length, 0);
      const during = await p.metrics();
      assert.equal(counter(during, 'pixpool_manager_cloudwatch_failed_calls_total'), 4);
      assert.ok(counter(during, 'pixpool_manager_cloudwatch_queued') > 0);

      // Back: everything that waited goes out at the next retry.
      p.fake.mode = 'ok';
      p.advance(60_000);
      await p.sink().tick();
      assert.equal(p.sink().queued, 0);
      assert.equal(p.logs.warn.length, 1, `one warning for the outage: ${p.logs.warn}`);
      assert.match(p.logs.warn[0] as string, /cannot publish statistics to CloudWatch/);
      assert.equal(p.logs.info.length, 1);
      assert.match(
        p.logs.info[0] as string,
        /takes statistics again.*4 failed calls, 0 data points dropped/,
      );
      await p.stopManager();
      await assertMatchesDatabase(p, 4);
    } finally {
      await p.close();
    }
  });

  it('past its bound drops the oldest data points and counts them', async () => {
    const p = await startPool({ maxQueued: 12 });
    try {
      p.fake.mode = 'fail';
      const every = () => ({ puts: 1, hits: 1, misses: 1 });
      // 3 slots × (2 nodes + the pool) × 5 metrics = 45 points; 12 may wait.
      await runSlots(p, 0, 3, every);
      p.advance(60_000);
      await p.sink().tick();
      p.fake.mode = 'ok';
      p.advance(60_000);
      await p.sink().tick();
      const last = Math.floor((p.base + 2 * SLOT) / 1000);
      assert.equal(p.fake.points.length, 12);
      assert.ok(
        p.fake.points.every((pt) => pt.second >= last),
        'only the newest slot’s points are left',
      );
      const [a, b] = p.members as [TestNode, TestNode];
      const sent = (dims: string) =>
        p.fake.points.filter((pt) => pt.dims === dims).map((pt) => pt.name);
      assert.deepEqual(sent(`NodeId=${a.id},Pool=${POOL}`), ['SizeBytes', 'Requests']);
      assert.equal(sent(`NodeId=${b.id},Pool=${POOL}`).length, 5);
      assert.equal(sent(`Pool=${POOL}`).length, 5);
      const text = await p.metrics();
      assert.equal(
        counter(text, 'pixpool_manager_cloudwatch_dropped_total', 'reason="queue_full"'),
        33,
      );
      assert.equal(counter(text, 'pixpool_manager_cloudwatch_sent_total'), 12);
      assert.equal(p.logs.warn.length, 1);
      assert.match(p.logs.info[0] as string, /\d+ data points dropped/);
      const rows = await p.driver.query('SELECT 1 FROM pool_samples');
      assert.equal(rows.rows.length, 6, 'the database keeps every sample');
    } finally {
      await p.close();
    }
  });
});
