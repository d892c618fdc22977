import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPoolMap, resizePoolMap } from '../../src/core/pool-map.ts';
import type { PoolView } from '../../src/core/pool-view.ts';
import { regionOf } from '../../src/core/regions.ts';
import { startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import { call, startNode, type TestNode } from '../helpers/nodes.ts';

const read = async (fe: TestFrontend, key: string) => {
  const response = await fetch(`${fe.url}/images/${key}`);
  return {
    source: response.headers.get('x-pixpool-source'),
    bytes: Buffer.from(await response.arrayBuffer()),
  };
};

/** The frontend's near-cache admissions with `outcome` (admitted, rejected), from /metrics. */
async function admissions(fe: TestFrontend, outcome: string): Promise<number> {
  const text = await (await fetch(`${fe.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`pixpool_frontend_near_cache_admissions_total{outcome="${outcome}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('two frontends sharing storage and a cache node', () => {
  let a: TestFrontend;
  let b: TestFrontend;
  before(async () => {
    a = await startFrontend();
    b = await startFrontend({ nodes: a.nodes, metadata: a.metadata, objects: a.objects });
  });
  after(async () => {
    await b.close();
    await a.close();
  });

  it('a frontend whose near cache is full keeps its frequent images from a one-off read', async () => {
    // Room for two of the three 40 KB images; a's stores (a fresh PGlite costs seconds).
    const fe = await startFrontend({
      nodes: a.nodes,
      metadata: a.metadata,
      objects: a.objects,
      nearCacheMb: 0.09,
    });
    const node = a.nodes[0] as TestNode;
    try {
      for (const [i, key] of ['frequent-1', 'frequent-2', 'once'].entries()) {
        await upload(fe.url, key, imageBytes('png', 40_000, 30 + i));
      }
      for (const key of ['frequent-1', 'frequent-2', 'once']) {
        // The first read fills the node from storage; the next one is the node's answer.
        while (!node.cache.peek(key)) {
          await read(fe, key);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        if (key !== 'once') for (let i = 0; i < 6; i++) await read(fe, key);
      }
      assert.equal(await admissions(fe, 'admitted'), 2);
      assert.equal((await read(fe, 'once')).source, 'cache');
      assert.equal(await admissions(fe, 'rejected'), 1, 'read less often than the other two');
      assert.equal(await admissions(fe, 'admitted'), 2);
    } finally {
      await fe.close();
    }
  });

  it('an upload through one frontend is seen by the next read through the other, hot copy or not', async () => {
    const v1 = imageBytes('png', 50_000, 1);
    await upload(a.url, 'shared', v1);
    // Warm b: the first read fills the node, the next ones come from the node (and b's near cache).
    for (let i = 0; i < 3; i++) assert.ok((await read(b, 'shared')).bytes.equals(v1));
    const v2 = imageBytes('png', 50_000, 2);
    assert.equal((await upload(a.url, 'shared', v2)).status, 200);
    assert.ok((await read(b, 'shared')).bytes.equals(v2), 'b does not serve its hot copy of v1');
    for (let i = 0; i < 3; i++) assert.ok((await read(b, 'shared')).bytes.equals(v2));
  });

  it('many concurrent reads of a hot key through one frontend, while the other uploads, are never stale', async () => {
    const versions = Array.from({ length: 15 }, (_, i) => imageBytes('png', 30_000, 50 + i));
    await upload(a.url, 'busy', versions[0] as Buffer);
    let acknowledged = 0;
    let done = false;
    let stale = 0;
    let reads = 0;
    const writer = (async () => {
      for (let i = 1; i < versions.length; i++) {
        await upload(a.url, 'busy', versions[i] as Buffer);
        acknowledged = i;
        await new Promise((r) => setTimeout(r, 5));
      }
      done = true;
    })();
    const reader = async () => {
      while (!done) {
        const floor = acknowledged;
        const { bytes } = await read(b, 'busy');
        const index = versions.findIndex((v) => v.equals(bytes));
        assert.ok(index >= 0);
        reads++;
        if (index < floor) stale++;
      }
    };
    await Promise.all([writer, ...Array.from({ length: 16 }, reader)]);
    assert.equal(stale, 0, `stale reads out of ${reads}`);
    assert.ok(reads > 100, `only ${reads} reads`);
  });
});

describe('a frontend within a read lease', () => {
  const LEASE_MS = 400;
  let node: TestNode;
  let fe: TestFrontend;
  before(async () => {
    node = await startNode({ capacityMb: 16, leaseMs: LEASE_MS });
    fe = await startFrontend({ nodes: [node] });
  });
  after(async () => {
    await fe.close();
    await node.close();
  });

  it('serves its near copy without asking the node, at most one question per lease', async () => {
    const bytes = imageBytes('png', 40_000, 7);
    await upload(fe.url, 'hot', bytes);
    // The first read fills the node from storage; then one read from the node brings a lease.
    while (!node.cache.peek('hot')) {
      await read(fe, 'hot');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok((await read(fe, 'hot')).bytes.equals(bytes));
    const asked = node.cache.stats.totals.gets;
    const started = performance.now();
    const reads = 20;
    for (let i = 0; i < reads; i++) {
      const answer = await read(fe, 'hot');
      assert.ok(answer.bytes.equals(bytes));
      assert.equal(answer.source, 'cache');
    }
    const questions = node.cache.stats.totals.gets - asked;
    const leases = Math.floor((performance.now() - started) / LEASE_MS) + 1;
    assert.ok(
      questions <= leases,
      `${questions} node reads for ${reads} reads in ${leases} lease(s)`,
    );
  });
});

it('a node restarted at the same address holds invalidations until its predecessor’s leases have run out', async () => {
  const LEASE_MS = 500;
  let node = await startNode({ capacityMb: 16, leaseMs: LEASE_MS });
  const port = Number(new URL(node.url).port);
  const reader = await startFrontend({ nodes: [node] });
  const writer = await startFrontend({
    nodes: reader.nodes,
    metadata: reader.metadata,
    objects: reader.objects,
  });
  try {
    const v1 = imageBytes('png', 20_000, 21);
    await upload(writer.url, 'restarted', v1);
    while (!node.cache.peek('restarted')) {
      await read(reader, 'restarted');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // This read brings the reader a lease from the first node.
    assert.ok((await read(reader, 'restarted')).bytes.equals(v1));
    await node.close();
    node = await startNode({ capacityMb: 16, leaseMs: LEASE_MS, port });
    // The new node knows nothing of the lease: only its start fence keeps the upload from being
    // acknowledged while the reader may still serve v1 on the first node's word.
    const v2 = imageBytes('png', 20_000, 22);
    assert.equal((await upload(writer.url, 'restarted', v2)).status, 200);
    assert.ok((await read(reader, 'restarted')).bytes.equals(v2), 'the reader served v1 after v2');
  } finally {
    await writer.close();
    await reader.close();
    await node.close();
  }
});

it('a region taken over in a resize holds invalidations until its old owner’s leases have run out', async () => {
  const LEASE_MS = 500;
  const [a, b] = [await startNode({ leaseMs: LEASE_MS }), await startNode({ leaseMs: LEASE_MS })];
  const reader = await startFrontend({ nodes: [a, b] });
  const writer = await startFrontend({
    nodes: reader.nodes,
    metadata: reader.metadata,
    objects: reader.objects,
  });
  const addresses = { [a.url]: a.url, [b.url]: b.url };
  const push = async (view: PoolView) => {
    for (const [node, id] of [
      [a, a.url],
      [b, b.url],
    ] as const) {
      assert.equal(
        (await call(node.url, 'POST', '/v1/pool-view', { ...view, self: id })).status,
        200,
      );
    }
  };
  try {
    // Map 2: a owns every region; both frontends route with it.
    const one = createPoolMap([a.url], 'balanced', 2);
    await push({ map: one, addresses });
    for (const fe of [reader, writer]) fe.routing.update({ map: one, addresses });
    const grown = resizePoolMap(one, [a.url, b.url]);
    let key = '';
    for (let i = 0; !key; i++)
      if (grown.owner[regionOf(`moving-${i}`)] === b.url) key = `moving-${i}`;
    const v1 = imageBytes('png', 20_000, 31);
    await upload(writer.url, key, v1);
    while (!a.cache.peek(key)) {
      await read(reader, key);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // The reader now holds a lease on v1 from a.
    assert.ok((await read(reader, key)).bytes.equals(v1));
    // The pool grows: the transitional map, then the final one (nothing to hand over here), and
    // only the writer hears of it; the reader still routes with map 2.
    await push({ map: grown, addresses, previous: one.owner });
    const final = resizePoolMap(grown, [a.url, b.url]);
    await push({ map: final, addresses });
    writer.routing.update({ map: final, addresses });
    // The writer invalidates b only; b has never leased the key, so only its fence on the
    // region it took over keeps the upload from being acknowledged while a's lease may be used.
    const v2 = imageBytes('png', 20_000, 32);
    assert.equal((await upload(writer.url, key, v2)).status, 200);
    assert.ok((await read(reader, key)).bytes.equals(v2), 'the reader served v1 after v2');
  } finally {
    await writer.close();
    await reader.close();
    await a.close();
    await b.close();
  }
});
