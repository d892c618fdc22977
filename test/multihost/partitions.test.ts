/**
 * Tested on real hosts (issue 17): every service in its own network namespace on one bridge
 * (test/helpers/netns.ts): the manager, two frontends and five cache nodes (the static provider
 * activates them; the pool never holds more than four, so one is always spare), with PostgreSQL
 * and the object store (s3rver) reached at the bridge's address, and no loopback anywhere between
 * services. Under continuous uploads and reads through the frontends (test/helpers/history.ts),
 * links are cut with blackhole routes, healed, and every answer is checked against the last
 * acknowledged upload, scenario by scenario:
 *
 * 1. the pool resized 1 → 4 → 2 across hosts;
 * 2. a cache node cut off from the manager between resizes (the manager replaces it);
 * 3. a cache node cut off from the manager during a resize (a grow 2 → 3);
 * 4. a frontend cut off from the manager while the pool shrinks 3 → 2;
 * 5. a cache node and a frontend cut off from the manager together, still reaching each other,
 *    while the manager replaces the node and uploads go through the other frontend;
 *
 * each ending with its cuts healed and the pool converged (the manager not resizing, every node of
 * the map and both frontends at the manager's map version, every node healthy), then a little more
 * load. A scenario must end with 0 stale and 0 failed operations; a 503 with the error envelope is
 * a refusal by design, counted apart. The counts are printed per scenario, cut and healed.
 *
 * Needs root (namespaces) and PostgreSQL on 127.0.0.1:5432 (DATABASE_URL), like the storage tests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMultihostPool, type MultihostPool, NODE_PORT } from '../helpers/multihost-pool.ts';
import { sleep, waitFor } from '../helpers/processes.ts';

const NODE_HOSTS = 5;

describe('pixpool on real hosts: resizes and partitions under load', { timeout: 240_000 }, () => {
  let pool: MultihostPool;

  before(async () => {
    pool = await createMultihostPool({ nodeHosts: NODE_HOSTS });
    const { nodeHosts, managerHost } = pool;
    await Promise.all(
      nodeHosts.map((host) => pool.start(host, pool.cacheNodeArgs('--node-id', host.name))),
    );
    await pool.start(
      managerHost,
      pool.managerArgs(
        '--provider',
        'static',
        '--node-urls',
        nodeHosts.map((h) => h.url(NODE_PORT)).join(','),
      ),
    );
    await pool.startFrontends();
    await pool.seed();
  });

  after(() => pool?.close());

  it('resizes the pool 1 → 4 → 2 across hosts', async () => {
    await pool.scenario('resize 1 → 4 → 2', pool.growAndShrink);
  });

  it('a node cut off from the manager between resizes', async () => {
    await pool.scenario('node ↮ manager, between resizes', async (note) => {
      const view = await pool.poolView();
      const id = view.map.nodes[0] as string;
      const oldUrl = view.addresses[id] as string;
      const victim = pool.hostOf(oldUrl);
      const t = performance.now();
      await pool.lab.cut(victim, pool.managerHost);
      note(`cut ${victim.name} (${id}) from the manager`);
      const now = await pool.replaced(id, oldUrl);
      note(
        `${id} (${victim.name}) replaced by ${pool.hostOf(now).name} after ${Math.round(performance.now() - t)} ms`,
      );
      await sleep(2000);
    });
  });

  it('a node cut off from the manager during a resize', async () => {
    await pool.scenario('node ↮ manager, during a grow 2 → 3', async (note) => {
      const view = await pool.poolView();
      const id = view.map.nodes[0] as string;
      const oldUrl = view.addresses[id] as string;
      const victim = pool.hostOf(oldUrl);
      const t = performance.now();
      const growing = pool.adminCall('POST', '/api/manager/poolsize/manual', {
        change: 'increase',
        wait: true,
      });
      await waitFor(
        'the grow to start',
        async () =>
          (await pool.adminCall('GET', '/api/manager/dashboard')).body.content.pool.resizing,
        { timeoutMs: 5000, everyMs: 5 },
      );
      await pool.lab.cut(victim, pool.managerHost);
      note(`cut ${victim.name} (${id}) ${Math.round(performance.now() - t)} ms into the grow`);
      const grown = await growing;
      note(`grow answered ${grown.status} after ${Math.round(performance.now() - t)} ms`);
      const now = await pool.replaced(id, oldUrl);
      note(
        `${id} replaced by ${pool.hostOf(now).name} after ${Math.round(performance.now() - t)} ms`,
      );
      await sleep(1500);
      assert.equal(grown.status, 200, `the grow: ${JSON.stringify(grown.body)}`);
    });
  });

  it('a frontend cut off from the manager while the pool shrinks', async () => {
    await pool.scenario('frontend ↮ manager, during a shrink 3 → 2', async (note) => {
      assert.equal((await pool.poolView()).map.nodes.length, 3);
      await pool.lab.cut(pool.fe1.host, pool.managerHost);
      note('cut fe1 from the manager');
      await sleep(1000);
      const t = performance.now();
      await pool.resize('decrease');
      note(`shrank in ${Math.round(performance.now() - t)} ms with fe1 cut off`);
      await sleep(3000);
    });
  });

  it('a node and a frontend cut off from the manager together, the node replaced', async () => {
    await pool.scenario(
      'node + frontend ↮ manager, node replaced',
      async (note) => {
        const view = await pool.poolView();
        const id = view.map.nodes[0] as string;
        const oldUrl = view.addresses[id] as string;
        const victim = pool.hostOf(oldUrl);
        const t = performance.now();
        // Both lose the manager; they still reach each other (and everything else).
        await Promise.all([
          pool.lab.cut(victim, pool.managerHost),
          pool.lab.cut(pool.fe1.host, pool.managerHost),
        ]);
        note(`cut ${victim.name} (${id}) and fe1 from the manager`);
        const now = await pool.replaced(id, oldUrl);
        note(
          `${id} (${victim.name}) replaced by ${pool.hostOf(now).name} after ${Math.round(performance.now() - t)} ms`,
        );
        await sleep(3000);
      },
      { uploadVia: [pool.fe2] },
    );
  });
});
