import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { createNodeClient } from '../../src/clients/node-client.ts';
import { regionOf } from '../../src/core/regions.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { startFrontend } from '../helpers/frontend.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import { SECRET } from '../helpers/nodes.ts';

const nodes = createNodeClient({ secret: SECRET });
const admin = createNodeAdmin({ secret: SECRET });
const auth = { authorization: `Bearer ${SECRET}` };
const entry = (version: number) => ({
  value: Buffer.alloc(1000, version),
  contentType: 'image/png',
  version,
});

/** A node's cache config as it reports it. */
async function configOf(url: string): Promise<{ capacity: number; replacement_policy: string }> {
  const response = await fetch(`${url}/api/cache/config`, { headers: auth });
  return ((await response.json()) as { content: { capacity: number; replacement_policy: string } })
    .content;
}

async function liveNodes(m: TestManager) {
  const { map, addresses } = m.pool.view();
  const health = await Promise.all(map.nodes.map((id) => admin.healthy(addresses[id] as string)));
  return health.filter(Boolean).length;
}

describe('manager with real node processes', () => {
  let m: TestManager;
  before(async () => {
    m = await startManager();
  });
  after(async () => {
    await m.close();
    await nodes.close();
    await admin.close();
  });

  it('starts the pool with one configured node and answers the originals’ shapes', async () => {
    const list = await managerCall(m.url, 'GET', '/api/manager/pool_node_list');
    assert.equal(list.body.success, 'true');
    assert.equal(list.body.content.node_id_list.length, 1);
    assert.match(list.body.content.node_ip_list[0], /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual((await managerCall(m.url, 'GET', '/api/manager/poolsize')).body, {
      success: 'true',
      content: { size: 1 },
    });
    assert.deepEqual((await managerCall(m.url, 'GET', '/api/manager/poolsize/config')).body, {
      success: 'true',
      content: { resize_pool_option: 'manual', resize_pool_parameters: {} },
    });
    assert.deepEqual((await managerCall(m.url, 'POST', '/api/getNumNodes')).body, {
      success: 'true',
      numNodes: 1,
    });
  });

  it('grows: the new node gets the pool config, the map, and the cached entries of its regions', async () => {
    await managerCall(m.url, 'POST', '/api/manager/config', {
      capacity: 16,
      replacement_policy: 'RR',
    });
    const [first] = m.pool.view().map.nodes;
    const firstUrl = m.pool.view().addresses[first as string] as string;
    const keys = Array.from({ length: 64 }, (_, i) => `moved-${i}`);
    // Each with an image variant (key/variant), which goes where its key goes.
    const variant = (key: string) => `${key}/w64h.inside.webp.q`;
    for (const key of keys) {
      await nodes.put(firstUrl, key, entry(1));
      await nodes.put(firstUrl, variant(key), entry(1));
    }
    const grown = await managerCall(m.url, 'POST', '/api/manager/poolsize/manual', {
      change: 'increase',
      wait: true,
    });
    assert.deepEqual(grown.body.content.target_size, 2);
    const { map, addresses } = m.pool.view();
    assert.equal(map.nodes.length, 2);
    const second = addresses[map.nodes[1] as string] as string;
    const config = await configOf(second);
    assert.deepEqual([config.capacity, config.replacement_policy], [16, 'RR']);
    for (const key of keys) {
      const owner = addresses[map.owner[regionOf(key)] as string] as string;
      assert.ok(await nodes.get(owner, key), `${key} is on its new owner`);
      assert.ok(await nodes.get(owner, variant(key)), `${key}'s variant is on its new owner`);
    }
    const log = await managerCall(m.url, 'GET', '/api/manager/events?limit=5');
    assert.match(log.body.content[0].message, /Grew to 2 nodes/);
    assert.ok(log.body.content[0].details.entries > 0);
  });

  it('20 concurrent resize requests end at the size their accepted order implies, with no node leaked', async () => {
    const changes = Array.from({ length: 20 }, (_, i) => (i % 3 === 2 ? 'decrease' : 'increase'));
    const before = m.pool.size;
    const answers = await Promise.all(
      changes.map((change) =>
        managerCall(m.url, 'POST', '/api/manager/poolsize/manual', { change }),
      ),
    );
    let expected = before;
    for (const [i, a] of answers.entries()) {
      if (a.status === 200) expected += changes[i] === 'increase' ? 1 : -1;
      else assert.equal(a.status, 409, JSON.stringify(a.body));
    }
    assert.ok(
      answers.some((a) => a.status === 409),
      'the bounds refused some',
    );
    await m.pool.idle();
    assert.equal(m.pool.size, expected);
    assert.ok(expected >= 1 && expected <= 8);
    assert.equal(await liveNodes(m), expected);
    const active = await m.store.listNodes({ states: ['active'] });
    assert.equal(active.length, expected, 'the registry agrees');
    while (m.pool.size > 2) await (await m.pool.resize(-1)).done;
  });

  it('refuses resizes beyond the bounds and manual resizes in automatic mode', async () => {
    while (m.pool.size > 1) await (await m.pool.resize(-1)).done;
    const refused = await managerCall(m.url, 'POST', '/api/manager/poolsize/manual', {
      change: 'decrease',
    });
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, /between 1 and 8/);
    const bad = await managerCall(m.url, 'POST', '/api/manager/poolsize/manual', {
      change: 'double',
    });
    assert.equal(bad.status, 400);
    const auto = await managerCall(m.url, 'POST', '/api/manager/poolsize/automatic', {
      max_miss_rate_threshold: 0.7,
      min_miss_rate_threshold: 0.2,
      expand_ratio: 2,
      shrink_ratio: 0.5,
    });
    assert.equal(auto.status, 200);
    const manual = await managerCall(m.url, 'POST', '/api/manager/poolsize/manual', {
      change: 'increase',
    });
    assert.equal(manual.status, 409);
    assert.match(manual.body.error.message, /automatic mode/);
    const cfg = await managerCall(m.url, 'GET', '/api/manager/poolsize/config');
    assert.equal(cfg.body.content.resize_pool_option, 'automatic');
    assert.equal(cfg.body.content.resize_pool_parameters.max_miss_rate_threshold, 0.7);
    for (const params of [
      { max_miss_rate_threshold: 0.2, min_miss_rate_threshold: 0.5 },
      { expand_ratio: 1 },
      { shrink_ratio: 1.5 },
      { max_miss_rate_threshold: 'lots' },
    ]) {
      const answer = await managerCall(m.url, 'POST', '/api/manager/poolsize/automatic', params);
      assert.equal(answer.status, 400, JSON.stringify(params));
    }
    await managerCall(m.url, 'POST', '/api/manager/mode', { mode: 'manual' });
    assert.equal(
      (await managerCall(m.url, 'POST', '/api/manager/mode', { mode: 'sometimes' })).status,
      400,
    );
  });

  it('config is validated whole, stored, and pushed; clear empties every node', async () => {
    for (const bad of [{ capacity: 0 }, { capacity: 'x' }, { replacement_policy: 'FIFO' }]) {
      assert.equal((await managerCall(m.url, 'POST', '/api/manager/config', bad)).status, 400);
    }
    assert.deepEqual((await managerCall(m.url, 'GET', '/api/manager/cache/config')).body.content, {
      capacity: 16,
      replacement_policy: 'RR',
    });
    const { map, addresses } = m.pool.view();
    const url = addresses[map.nodes[0] as string] as string;
    // A change to SIEVE and back reaches every node; cached entries survive it.
    await nodes.put(url, 'kept', entry(1));
    for (const policy of ['sieve', 'RR']) {
      const set = await managerCall(m.url, 'POST', '/api/manager/config', {
        replacement_policy: policy,
      });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      for (const id of map.nodes) {
        const config = await configOf(addresses[id] as string);
        assert.equal(config.replacement_policy, policy.toUpperCase());
      }
      assert.ok(await nodes.get(url, 'kept'), `the entry survives the change to ${policy}`);
    }
    await nodes.put(url, 'to-clear', entry(1));
    const cleared = await managerCall(m.url, 'DELETE', '/api/manager/cache/clear');
    assert.equal(cleared.body.content.nodes[0].ok, true);
    assert.equal(await nodes.get(url, 'to-clear'), undefined);
  });

  it('takes statistics samples with the shared secret and charts six pool-wide series', async () => {
    const sample = {
      gets: 10,
      hits: 7,
      misses: 3,
      puts: 2,
      evictions: 0,
      imports: 0,
      items: 5,
      bytes: 5000,
      at: Date.now(),
      intervalMs: 5000,
    };
    assert.equal(
      (
        await managerCall(m.url, 'POST', '/api/manager/samples', {
          node_id: 'x',
          samples: [sample],
        })
      ).status,
      401,
    );
    const bad = await managerCall(
      m.url,
      'POST',
      '/api/manager/samples',
      { node_id: 'x', samples: [{ ...sample, gets: -1 }] },
      auth,
    );
    assert.equal(bad.status, 400);
    const stored = await managerCall(
      m.url,
      'POST',
      '/api/manager/samples',
      { node_id: 'test-node', samples: [sample] },
      auth,
    );
    assert.equal(stored.status, 200);
    const series = (await managerCall(m.url, 'GET', '/api/manager/aggregate_stats')).body.content;
    assert.equal(series.minutes.length, 30);
    for (const name of [
      'number_of_nodes',
      'miss_rate',
      'hit_rate',
      'number_of_items_in_cache',
      'total_size_of_items_in_cache',
      'number_of_requests_served_per_minute',
    ]) {
      assert.equal(series[name].length, 30, name);
    }
    const last = series.miss_rate.length - 1;
    assert.ok(series.number_of_requests_served_per_minute[last] >= 12);
    assert.ok(series.miss_rate[last] !== null);
    assert.equal(series.miss_rate[0], null, 'a minute without gets has no rate');
    const rate = await managerCall(m.url, 'POST', '/api/getRate?rate=miss');
    assert.equal(rate.body.rate, 'miss');
    assert.equal(typeof rate.body.value, 'number');
  });

  it('pushes each new pool view to a registered frontend', async () => {
    const fe = await startFrontend();
    try {
      const registered = await managerCall(
        m.url,
        'POST',
        '/api/manager/frontends',
        { url: fe.url },
        auth,
      );
      assert.equal(registered.body.map.version, m.pool.view().map.version);
      assert.equal(
        (await managerCall(m.url, 'POST', '/api/manager/frontends', { url: 'nope' }, auth)).status,
        400,
      );
      await (await m.pool.resize(1)).done;
      assert.equal(
        fe.routing.view.map.version,
        m.pool.view().map.version,
        'pushed before the resize finished',
      );
      assert.deepEqual(fe.routing.view.map.nodes, m.pool.view().map.nodes);
    } finally {
      await fe.close();
    }
  });

  it('delete all removes every row, object and cached entry', async () => {
    await m.metadata.commit({
      key: 'gone',
      object: 'aa/obj',
      contentType: 'image/png',
      size: 1,
      sha256: 'x',
    });
    await m.objects.put('aa/obj', Buffer.from('x'), 'image/png');
    const answer = await managerCall(m.url, 'DELETE', '/api/manager/data/clear');
    assert.deepEqual(answer.body.content, { rows: 1, objects: 1, failed: [] });
    assert.equal(await m.metadata.get('gone'), undefined);
    assert.deepEqual((await managerCall(m.url, 'POST', '/api/delete_all')).body, {
      success: 'true',
    });
  });
});

describe('manager restart and admin token', () => {
  it('a restarted manager resumes the same pool; no node process outlives it', async () => {
    const driver = createSqliteDriver();
    const first = await startManager({ driver });
    await (await first.pool.resize(1)).done;
    const ids = first.pool.view().map.nodes;
    const addresses = Object.values(first.pool.view().addresses);
    // The cooldown's start is saved just after the resize settles.
    const ended = first.pool.lastResizeAt;
    const saved = async () =>
      (await first.store.getSetting<number>('last_resize_end_ms')) === ended;
    for (let i = 0; i < 100 && !(await saved()); i++) await sleep(20);
    assert.ok(ended > 0 && (await saved()), 'when the resize ended is in the database');
    await first.close({ keepStorage: true });
    for (const url of addresses) assert.equal(await admin.healthy(url), false, `${url} stopped`);
    const second = await startManager({ driver });
    try {
      assert.deepEqual(second.pool.view().map.nodes, ids);
      assert.equal(await liveNodes(second), 2);
      const log = await managerCall(second.url, 'GET', '/api/manager/events?limit=1');
      assert.match(log.body.content[0].message, /Resumed the pool: 2 nodes/);
      // So the autoscaler's cooldown runs on from the resize, not from zero.
      const state = await managerCall(second.url, 'GET', '/api/manager/autoscaler/state');
      assert.equal(state.body.content.pool.last_resize_at_ms, ended);
    } finally {
      await second.close();
      await driver.close();
    }
  });

  it('with an admin token the API needs it; health and the dashboard page do not', async () => {
    const m = await startManager({ adminToken: 'op-token' });
    try {
      assert.equal((await managerCall(m.url, 'GET', '/api/manager/poolsize')).status, 401);
      const ok = await managerCall(m.url, 'GET', '/api/manager/poolsize', undefined, {
        authorization: 'Bearer op-token',
      });
      assert.equal(ok.status, 200);
      assert.equal((await fetch(`${m.url}/health`)).status, 200);
      assert.equal((await fetch(`${m.url}/`)).status, 200);
    } finally {
      await m.close();
    }
  });
});
