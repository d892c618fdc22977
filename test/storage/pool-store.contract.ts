/**
 * The behaviour every PoolStore must have, run on SQLite and on a real PostgreSQL, each test on a
 * fresh, empty database (or schema). The statistics cases check what the originals got wrong:
 * counts summed per window (not averaged ratios), gauges from each node's last sample, nodes
 * keyed by a stable id, and every bucket of a chart present even when nothing reported.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PixpoolError } from '../../src/core/errors.ts';
import { createPoolMap, resizePoolMap } from '../../src/core/pool-map.ts';
import { quietSample, type Sample } from '../../src/core/stats.ts';
import type { PoolStore, StatBucket } from '../../src/storage/pool-store.ts';

export type PoolStoreFactory = () => Promise<PoolStore>;

async function withStore(open: PoolStoreFactory, fn: (store: PoolStore) => Promise<void>) {
  const store = await open();
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

const isStatus = (status: number) => (error: unknown) => {
  assert.ok(error instanceof PixpoolError, String(error));
  assert.equal(error.status, status);
  return true;
};

const MINUTE = 60_000;
// A whole minute, so bucket starts read as clock minutes in failure messages.
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

const sample = quietSample;

interface Sent {
  node: string;
  sample: Sample;
}

/**
 * Three nodes at 5-s intervals, each with its own phase: `a` exactly on 5-s marks (so some of
 * its samples sit on minute boundaries) in minutes 0–9, `b` 1.234 s later in minutes 5–19,
 * `c` 4.999 s later in minutes 25–26. Minutes 20–24 and 27–29 stay empty.
 */
function trace(): Sent[] {
  const plan = [
    { node: 'node-a', offset: 0, minutes: [0, 10], base: 1 },
    { node: 'node-b', offset: 1234, minutes: [5, 20], base: 2 },
    { node: 'node-c', offset: 4999, minutes: [25, 27], base: 3 },
  ] as const;
  const sent: Sent[] = [];
  for (const { node, offset, minutes, base } of plan) {
    for (let k = minutes[0] * 12; k < minutes[1] * 12; k++) {
      const misses = k % 3;
      const gets = 10 + (k % 7) + base;
      sent.push({
        node,
        sample: sample(T0 + k * 5000 + offset, {
          gets,
          hits: gets - misses,
          misses,
          puts: misses,
          evictions: k % 5 === 0 ? base : 0,
          imports: base,
          items: 1000 * base + k,
          // Past 2^32, so a 32-bit column or a float round trip would show.
          bytes: 5_000_000_000 * base + k,
        }),
      });
    }
  }
  return sent;
}

/** What aggregate must answer, computed the slow, obvious way. */
function expectedBuckets(sent: Sent[], from: number, count: number, bucketMs: number) {
  return Array.from({ length: count }, (_, i): StatBucket => {
    const start = from + i * bucketMs;
    const inside = sent.filter(({ sample: s }) => s.at >= start && s.at < start + bucketMs);
    const last = new Map<string, Sample>();
    for (const { node, sample: s } of inside) {
      const seen = last.get(node);
      if (!seen || s.at > seen.at) last.set(node, s);
    }
    const sum = (list: Sample[], field: keyof Sample) => list.reduce((n, s) => n + s[field], 0);
    const samples = inside.map((x) => x.sample);
    return {
      start: new Date(start),
      nodes: last.size,
      poolSize: 0,
      gets: sum(samples, 'gets'),
      hits: sum(samples, 'hits'),
      misses: sum(samples, 'misses'),
      puts: sum(samples, 'puts'),
      evictions: sum(samples, 'evictions'),
      items: sum([...last.values()], 'items'),
      bytes: sum([...last.values()], 'bytes'),
    };
  });
}

async function send(store: PoolStore, sent: Sent[]) {
  for (const { node, sample: s } of sent) await store.addSample(node, s);
}

export function poolStoreContract(name: string, open: PoolStoreFactory): void {
  describe(`${name} pool store contract`, () => {
    it('registers nodes, keeps their first addedAt, changes state, lists by addedAt then id', () =>
      withStore(open, async (store) => {
        assert.deepEqual(await store.listNodes(), []);
        // Inserted out of id order, a few ms apart (SQLite's clock has millisecond resolution).
        for (const id of ['node-b', 'node-c', 'node-a']) {
          await store.upsertNode({
            id,
            address: `http://${id}:5001`,
            state: 'starting',
            provider: 'local',
          });
          await sleep(5);
        }
        const first = await store.listNodes();
        assert.deepEqual(
          first.map((n) => n.id),
          ['node-b', 'node-c', 'node-a'],
        );
        const b = first[0];
        assert.ok(b);
        assert.deepEqual(
          { ...b, addedAt: 0, updatedAt: 0 },
          {
            id: 'node-b',
            address: 'http://node-b:5001',
            state: 'starting',
            provider: 'local',
            addedAt: 0,
            updatedAt: 0,
          },
        );
        assert.ok(b.addedAt instanceof Date && Math.abs(b.addedAt.getTime() - Date.now()) < 60_000);

        await store.upsertNode({
          id: 'node-b',
          address: 'http://10.0.0.2:5001',
          state: 'active',
          provider: 'static',
        });
        await store.setNodeState('node-a', 'draining');
        const second = await store.listNodes();
        assert.deepEqual(
          second.map((n) => [n.id, n.state, n.address, n.provider]),
          [
            ['node-b', 'active', 'http://10.0.0.2:5001', 'static'],
            ['node-c', 'starting', 'http://node-c:5001', 'local'],
            ['node-a', 'draining', 'http://node-a:5001', 'local'],
          ],
          'an update keeps the node in its place',
        );
        assert.deepEqual(second[0]?.addedAt, b.addedAt);
        assert.ok((second[0]?.updatedAt ?? 0) >= b.updatedAt);

        const ids = async (states: Parameters<PoolStore['listNodes']>[0]) =>
          (await store.listNodes(states)).map((n) => n.id);
        assert.deepEqual(await ids({ states: ['draining'] }), ['node-a']);
        assert.deepEqual(await ids({ states: ['active', 'draining'] }), ['node-b', 'node-a']);
        assert.deepEqual(await ids({ states: ['failed'] }), []);
        assert.deepEqual(await ids({ states: [] }), []);

        await assert.rejects(store.setNodeState('node-x', 'active'), isStatus(404));
        await assert.rejects(store.setNodeState('node-a', 'gone' as never), TypeError);
        await assert.rejects(
          store.upsertNode({ id: '', address: 'x', state: 'active', provider: 'local' }),
          TypeError,
        );
        await assert.rejects(store.listNodes({ states: ['nope' as never] }), TypeError);
        assert.equal((await store.listNodes()).length, 3, 'refused input changed nothing');
      }));

    it('saves pool maps once per version and answers the highest as current', () =>
      withStore(open, async (store) => {
        assert.equal(await store.currentMap(), undefined);
        const v1 = createPoolMap(['a', 'b', 'c', 'd'], 'balanced');
        const v2 = resizePoolMap(v1, ['a', 'b', 'c']);
        await store.saveMap(v1);
        assert.deepEqual(await store.currentMap(), v1);
        await store.saveMap(v2);
        assert.deepEqual(await store.currentMap(), v2);

        // The same version again, even with other content, is refused and changes nothing.
        const rival = { ...createPoolMap(['x'], 'modulo'), version: 2 };
        await assert.rejects(store.saveMap(rival), isStatus(409));
        await assert.rejects(store.saveMap(v1), isStatus(409));
        assert.deepEqual(await store.currentMap(), v2);

        // Current is the highest version, not the latest saved.
        const v5 = { ...resizePoolMap(v2, ['a', 'b']), version: 5 };
        const v4 = { ...createPoolMap(['q'], 'modulo'), version: 4 };
        await store.saveMap(v5);
        await store.saveMap(v4);
        assert.deepEqual(await store.currentMap(), v5);

        // Only valid maps are stored, and only their known fields.
        await assert.rejects(store.saveMap({ ...v5, version: 6, owner: ['a'] }), TypeError);
        await assert.rejects(store.saveMap({ ...v5, version: 0 }), TypeError);
        await store.saveMap({ ...v5, version: 7, extra: 'dropped' } as never);
        assert.deepEqual(await store.currentMap(), { ...v5, version: 7 });
      }));

    it('keeps settings as JSON: nested objects, overwrite, null, and refuses what JSON cannot hold', () =>
      withStore(open, async (store) => {
        assert.equal(await store.getSetting('cache'), undefined);
        const cache = {
          capacityMb: 64,
          policy: 'LRU',
          nested: { list: [1, 'two', { three: [3.5, null, true] }], empty: {} },
          unicode: '日本語 🐱 "quotes" \\ back',
        };
        await store.setSetting('cache', cache);
        assert.deepEqual(await store.getSetting('cache'), cache);
        await store.setSetting('cache', { capacityMb: 128, policy: 'RR' });
        assert.deepEqual(await store.getSetting('cache'), { capacityMb: 128, policy: 'RR' });

        for (const [key, value] of [
          ['mode', 'automatic'],
          ['ratio', 0.25],
          ['flag', false],
          ['list', [1, 2, 3]],
          ['nothing', null],
        ] as const) {
          await store.setSetting(key, value);
          assert.deepEqual(await store.getSetting(key), value, key);
        }
        assert.equal(await store.getSetting('other'), undefined);

        await assert.rejects(store.setSetting('bad', undefined), TypeError);
        await assert.rejects(
          store.setSetting('bad', () => 1),
          TypeError,
        );
        await assert.rejects(store.setSetting('bad', 10n), TypeError);
        await assert.rejects(store.setSetting('bad', { text: 'nul \0 inside' }), TypeError);
        await assert.rejects(store.setSetting('', 1), TypeError);
        assert.equal(await store.getSetting('bad'), undefined);
        // A backslash before "u0000" is not a NUL and must be kept.
        await store.setSetting('escaped', '\\u0000');
        assert.equal(await store.getSetting('escaped'), '\\u0000');
      }));

    it('logs events and lists them newest first, limited and filtered by kind', () =>
      withStore(open, async (store) => {
        assert.deepEqual(await store.listEvents({ limit: 10 }), []);
        const plain = await store.addEvent({ kind: 'resize', message: 'grew to 2 nodes' });
        assert.equal(plain.details, null);
        assert.equal(plain.kind, 'resize');
        assert.equal(plain.message, 'grew to 2 nodes');
        assert.ok(Number.isSafeInteger(plain.id));
        assert.ok(plain.at instanceof Date && Math.abs(plain.at.getTime() - Date.now()) < 60_000);

        const details = { missRate: 0.42, inputs: { gets: 100, misses: 42 }, target: [2, 3] };
        const decision = await store.addEvent({ kind: 'autoscale', message: 'grow', details });
        assert.deepEqual(decision.details, details);
        const added = [plain, decision];
        for (let i = 0; i < 5; i++) {
          const kind = i % 2 ? 'resize' : 'config';
          added.push(await store.addEvent({ kind, message: `event ${i}`, details: i }));
        }
        const newestFirst = added.toReversed();
        assert.deepEqual(await store.listEvents({ limit: 100 }), newestFirst);
        assert.deepEqual(await store.listEvents({ limit: 3 }), newestFirst.slice(0, 3));
        assert.deepEqual(
          (await store.listEvents({ limit: 100, kinds: ['resize'] })).map((e) => e.message),
          ['event 3', 'event 1', 'grew to 2 nodes'],
        );
        assert.deepEqual(
          (await store.listEvents({ limit: 2, kinds: ['autoscale', 'config'] })).map(
            (e) => e.message,
          ),
          ['event 4', 'event 2'],
        );
        assert.deepEqual(await store.listEvents({ limit: 10, kinds: ['none'] }), []);
        assert.deepEqual(await store.listEvents({ limit: 10, kinds: [] }), []);
        for (const limit of [0, -1, 1001, 1.5, Number.NaN]) {
          await assert.rejects(store.listEvents({ limit }), TypeError, String(limit));
        }
        await assert.rejects(store.addEvent({ kind: '', message: 'x' }), TypeError);
        await assert.rejects(store.addEvent({ kind: 'k', message: 'x', details: 1n }), TypeError);
      }));

    it('registers frontends once per URL and filters them by last seen', () =>
      withStore(open, async (store) => {
        assert.deepEqual(await store.listFrontends(), []);
        await store.registerFrontend('http://10.0.0.7:5000');
        await store.registerFrontend('http://10.0.0.5:5000');
        const before = await store.listFrontends();
        assert.deepEqual(
          before.map((f) => f.url),
          ['http://10.0.0.5:5000', 'http://10.0.0.7:5000'],
        );
        const seven = before[1];
        assert.ok(seven?.lastSeen instanceof Date);
        await sleep(10);
        await store.registerFrontend('http://10.0.0.7:5000');
        const after = await store.listFrontends();
        assert.equal(after.length, 2, 'registering again adds no row');
        assert.ok((after[1]?.lastSeen ?? 0) > seven.lastSeen, 'registering again refreshes it');
        // Cut just after the first round, measured on the database's own clock.
        const cut = new Date(Math.max(...before.map((f) => f.lastSeen.getTime())) + 1);
        assert.deepEqual(
          (await store.listFrontends({ seenSince: cut })).map((f) => f.url),
          ['http://10.0.0.7:5000'],
        );
        assert.deepEqual(
          (await store.listFrontends({ seenSince: new Date(Date.now() + 3_600_000) })).length,
          0,
        );
        for (const url of ['', 'not a url', 'ftp://x/', 'file:///etc/passwd']) {
          await assert.rejects(store.registerFrontend(url), TypeError, url);
        }
        await assert.rejects(store.listFrontends({ seenSince: new Date(Number.NaN) }), TypeError);
      }));

    it('each bucket knows the pool size of the map in force at its end', () =>
      withStore(open, async (store) => {
        const now = Date.now();
        const before = await store.aggregate({
          from: new Date(now - 2 * MINUTE),
          to: new Date(now + MINUTE),
          bucketMs: MINUTE,
        });
        assert.deepEqual(
          before.map((b) => b.poolSize),
          [0, 0, 0],
          'no map yet',
        );
        await store.saveMap({
          version: 1,
          assignment: 'balanced',
          nodes: ['a', 'b'],
          owner: Array.from({ length: 16 }, (_, r) => (r % 2 ? 'b' : 'a')),
        });
        const after = await store.aggregate({
          from: new Date(now - 2 * MINUTE),
          to: new Date(now + MINUTE),
          bucketMs: MINUTE,
        });
        assert.deepEqual(
          after.map((b) => b.poolSize),
          [0, 0, 2],
        );
      }));

    it('aggregates 30 one-minute buckets from 3 nodes: sums, distinct nodes, last gauges, empty buckets', () =>
      withStore(open, async (store) => {
        const sent = trace();
        // Outside [from, to): just before and exactly at the end.
        const outside = [
          { node: 'node-a', sample: sample(T0 - 1, { gets: 1000, items: 1 }) },
          { node: 'node-b', sample: sample(T0 + 30 * MINUTE, { gets: 1000, items: 1 }) },
        ];
        // One node right on both sides of the 12:01 boundary.
        const edge = [
          { node: 'node-edge', sample: sample(T0 + MINUTE - 1, { gets: 7, misses: 7, items: 70 }) },
          { node: 'node-edge', sample: sample(T0 + MINUTE, { gets: 9, hits: 9, items: 90 }) },
        ];
        await send(store, [...sent, ...outside, ...edge]);
        const all = [...sent, ...edge];

        const buckets = await store.aggregate({
          from: new Date(T0),
          to: new Date(T0 + 30 * MINUTE),
          bucketMs: MINUTE,
        });
        assert.equal(buckets.length, 30);
        assert.deepEqual(buckets, expectedBuckets(all, T0, 30, MINUTE));

        // Spot checks written out, independent of the model above.
        const [m0, m1] = buckets;
        assert.ok(m0 && m1);
        assert.equal(m0.nodes, 2, 'node-a and node-edge (its 12:00:59.999 sample)');
        assert.equal(m1.nodes, 2, 'node-a and node-edge (its 12:01:00.000 sample)');
        // node-a's minute 0: k = 0..11, gets 11 + k % 7; node-edge adds 7.
        assert.equal(m0.gets, 11 * 12 + (0 + 1 + 2 + 3 + 4 + 5 + 6 + 0 + 1 + 2 + 3 + 4) + 7);
        assert.equal(m0.misses, 4 * (0 + 1 + 2) + 7);
        assert.equal(m0.items, 1000 + 11 + 70, "node-a's last (k = 11) plus node-edge's");
        assert.equal(m1.items, 1000 + 23 + 90);
        assert.equal(m0.bytes, 5_000_000_000 + 11);
        assert.equal(buckets[5]?.nodes, 2);
        assert.equal(buckets[5]?.items, 1000 + 71 + 2000 + 71);
        assert.equal(buckets[12]?.nodes, 1);
        assert.equal(buckets[19]?.bytes, 10_000_000_000 + 239);
        assert.equal(buckets[25]?.nodes, 1);
        assert.equal(buckets[25]?.items, 3000 + 311);
        for (const i of [20, 21, 22, 23, 24, 27, 28, 29]) {
          assert.deepEqual(
            buckets[i],
            {
              start: new Date(T0 + i * MINUTE),
              nodes: 0,
              poolSize: 0,
              gets: 0,
              hits: 0,
              misses: 0,
              puts: 0,
              evictions: 0,
              items: 0,
              bytes: 0,
            },
            `minute ${i} is empty`,
          );
        }
        for (const b of buckets) assert.equal(b.hits + b.misses, b.gets);

        // A span that is not a whole number of buckets ends with a shorter one.
        const ragged = await store.aggregate({
          from: new Date(T0 + 30_000),
          to: new Date(T0 + 120_000),
          bucketMs: MINUTE,
        });
        assert.deepEqual(
          ragged,
          expectedBuckets(
            all.filter(({ sample: s }) => s.at < T0 + 120_000),
            T0 + 30_000,
            2,
            MINUTE,
          ),
        );
      }));

    it('refuses aggregate windows that are empty, reversed, too fine or not Dates', () =>
      withStore(open, async (store) => {
        const from = new Date(T0);
        const to = new Date(T0 + 30 * MINUTE);
        for (const bucketMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await assert.rejects(
            store.aggregate({ from, to, bucketMs }),
            TypeError,
            String(bucketMs),
          );
        }
        await assert.rejects(store.aggregate({ from: to, to: from, bucketMs: MINUTE }), TypeError);
        await assert.rejects(store.aggregate({ from, to: from, bucketMs: MINUTE }), TypeError);
        await assert.rejects(
          store.aggregate({ from, to: new Date(T0 + 10_001), bucketMs: 1 }),
          TypeError,
          'more than 10,000 buckets',
        );
        assert.equal(
          (await store.aggregate({ from, to: new Date(T0 + 10_000), bucketMs: 1 })).length,
          10_000,
        );
        await assert.rejects(
          store.aggregate({ from: new Date(Number.NaN), to, bucketMs: MINUTE }),
          TypeError,
        );
        await assert.rejects(
          store.aggregate({ from: T0 as never, to, bucketMs: MINUTE }),
          TypeError,
        );
        await assert.rejects(store.windowTotals({ from: to, to: from }), TypeError);
      }));

    it('sums a window for the autoscaler, and prunes old samples', () =>
      withStore(open, async (store) => {
        const sent = trace();
        await send(store, sent);
        const totals = async (fromMs: number, toMs: number) =>
          store.windowTotals({ from: new Date(fromMs), to: new Date(toMs) });
        const expect = (fromMs: number, toMs: number) => {
          const inside = sent.filter(({ sample: s }) => s.at >= fromMs && s.at < toMs);
          const sum = (field: 'gets' | 'hits' | 'misses') =>
            inside.reduce((n, x) => n + x.sample[field], 0);
          return {
            gets: sum('gets'),
            hits: sum('hits'),
            misses: sum('misses'),
            samples: inside.length,
            nodes: new Set(inside.map((x) => x.node)).size,
          };
        };
        const minute5 = await totals(T0 + 5 * MINUTE, T0 + 6 * MINUTE);
        assert.deepEqual(minute5, expect(T0 + 5 * MINUTE, T0 + 6 * MINUTE));
        assert.equal(minute5.samples, 24);
        assert.equal(minute5.nodes, 2);
        assert.deepEqual(await totals(T0, T0 + 30 * MINUTE), expect(T0, T0 + 30 * MINUTE));
        assert.equal((await totals(T0, T0 + 30 * MINUTE)).samples, sent.length);
        // An idle window is zero gets, which the autoscaler must read as "no data", not 0 %.
        assert.deepEqual(await totals(T0 + 21 * MINUTE, T0 + 22 * MINUTE), {
          gets: 0,
          hits: 0,
          misses: 0,
          samples: 0,
          nodes: 0,
        });

        // A re-sent sample (a publisher's retry) is not counted twice.
        const again = sent[0];
        assert.ok(again);
        await store.addSample(again.node, { ...again.sample, gets: 999 });
        assert.deepEqual(await totals(T0, T0 + 30 * MINUTE), expect(T0, T0 + 30 * MINUTE));

        const cut = T0 + 10 * MINUTE;
        const older = sent.filter(({ sample: s }) => s.at < cut).length;
        assert.equal(older, 120 + 60);
        assert.equal(await store.pruneSamples(new Date(cut)), older);
        assert.equal(await store.pruneSamples(new Date(cut)), 0);
        assert.deepEqual(await totals(T0, cut), expect(0, 0));
        assert.deepEqual(await totals(cut, T0 + 30 * MINUTE), expect(cut, T0 + 30 * MINUTE));
        const buckets = await store.aggregate({
          from: new Date(T0),
          to: new Date(T0 + 30 * MINUTE),
          bucketMs: MINUTE,
        });
        assert.deepEqual(
          buckets.map((b) => b.nodes),
          [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...Array(10).fill(1), 0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
        );
      }));

    it('prunes history older than a time: events, maps no longer in force, silent frontends', () =>
      withStore(open, async (store) => {
        const v1 = createPoolMap(['a', 'b'], 'balanced');
        const v2 = resizePoolMap(v1, ['a']);
        await store.saveMap(v1);
        await store.saveMap(v2);
        await store.registerFrontend('http://10.0.0.1:5000');
        const old = await store.addEvent({ kind: 'resize', message: 'old' });
        // The cut lies after every row so far and before every row to come (the database's
        // clock has microseconds, ours milliseconds: wait until ours has moved past the rows).
        while (Date.now() <= old.at.getTime() + 1) await sleep(1);
        const cut = new Date();
        while (Date.now() <= cut.getTime() + 1) await sleep(1);
        const v3 = resizePoolMap(v2, ['a', 'c']);
        await store.saveMap(v3);
        await store.registerFrontend('http://10.0.0.2:5000');
        const recent = await store.addEvent({ kind: 'decision', message: 'recent' });
        assert.ok(recent.at.getTime() > cut.getTime(), 'the clocks agree closely enough');

        assert.deepEqual(await store.pruneHistory(new Date(cut.getTime() - 3_600_000)), {
          events: 0,
          maps: 0,
          frontends: 0,
        });
        // v1 is gone; v2 was in force at the cut, so the charts of that time still find it.
        assert.deepEqual(await store.pruneHistory(cut), { events: 1, maps: 1, frontends: 1 });
        assert.deepEqual(
          (await store.listEvents({ limit: 10 })).map((e) => e.message),
          ['recent'],
        );
        assert.deepEqual(
          (await store.listFrontends()).map((f) => f.url),
          ['http://10.0.0.2:5000'],
        );
        assert.deepEqual(await store.currentMap(), v3);

        // However far the cut, the map in force stays.
        const far = new Date(Date.now() + 86_400_000);
        assert.deepEqual(await store.pruneHistory(far), { events: 1, maps: 1, frontends: 1 });
        assert.deepEqual(await store.currentMap(), v3);
        await assert.rejects(store.pruneHistory(new Date(Number.NaN)), TypeError);
      }));

    it('refuses samples that are not whole, non-negative counts at a valid time', () =>
      withStore(open, async (store) => {
        const good = sample(T0, { gets: 1, hits: 1 });
        await assert.rejects(store.addSample('', good), TypeError);
        await assert.rejects(store.addSample('n', { ...good, gets: -1 }), TypeError);
        await assert.rejects(store.addSample('n', { ...good, bytes: 1.5 }), TypeError);
        await assert.rejects(store.addSample('n', { ...good, at: Number.NaN }), TypeError);
        await assert.rejects(store.addSample('n', { ...good, items: '3' as never }), TypeError);
        await assert.rejects(store.pruneSamples(new Date(Number.NaN)), TypeError);
        await store.addSample('n', good);
        assert.equal(
          (await store.windowTotals({ from: new Date(T0), to: new Date(T0 + 1) })).gets,
          1,
        );
      }));
  });
}
