/**
 * Issue 8, the manager stops: a manager process (local provider, two cache node processes) and a
 * frontend process share a real PostgreSQL (a throw-away schema) and an objects folder.
 *
 * SIGKILL: the design is that nodes are the data plane and outlive the manager (see
 * providers/local.ts): the frontend keeps serving from them with the last map while their view
 * leases run (then from storage), uploads still invalidate them directly, and a manager
 * restarted on the same database and port adopts them, same ids, addresses, pids and map
 * version, with no second process per node, and renews their leases.
 * SIGTERM: the manager stops its nodes on the way out; the frontend serves from storage in the
 * meantime and refuses uploads (503: their nodes cannot be told), and the restarted manager
 * starts the nodes again under the same ids (new addresses, a newer map version), which the
 * frontend adopts.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/http/listen.ts';
import { type ChildService, startChildService } from '../../src/process/child-service.ts';
import { SECRET } from '../helpers/nodes.ts';
import {
  cliEnv,
  fetchLoad,
  imageFor,
  pidOf,
  pidsWithArgs,
  processAlive,
  sha256,
  sleep,
  uploadImage,
  waitFor,
} from '../helpers/processes.ts';
import { createSchemaUrl, dropSchema, randomSchema, requirePostgres } from '../helpers/storage.ts';

const KEYS = 30;

interface View {
  map: { version: number; nodes: string[] };
  addresses: Record<string, string>;
}

describe('the manager stopped while frontends serve', { timeout: 120_000 }, () => {
  const schema = randomSchema();
  let dir: string;
  let url: string;
  let managerPort: number;
  let manager: ChildService | undefined;
  let frontend: ChildService;
  const expected = new Map<string, string>();
  const pending = new Map<string, string>();
  const env = cliEnv({ PIXPOOL_SECRET: SECRET });

  const startManager = () =>
    startChildService({
      args: [
        'manager',
        '--port',
        String(managerPort),
        '--database-url',
        url,
        '--data-dir',
        dir,
        '--log-level',
        'warn',
      ],
      env,
      label: 'manager',
      quiet: true,
    });

  async function grow(): Promise<void> {
    const grown = await fetch(`${manager?.url}/api/manager/poolsize/manual`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
      body: JSON.stringify({ change: 'increase', wait: true }),
    });
    assert.equal(grown.status, 200, await grown.text());
  }

  async function view(): Promise<View> {
    const response = await fetch(`${manager?.url}/api/manager/pool_view`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    return (await response.json()) as View;
  }

  /** The map version the frontend routes with (it answers a push of an older view with it). */
  async function frontendVersion(old: View): Promise<number> {
    const response = await fetch(`${frontend.url}/api/notify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ map: { ...old.map, version: 1 }, addresses: old.addresses }),
    });
    return ((await response.json()) as { version: number }).version;
  }

  async function uploadMore(from: number, count: number): Promise<void> {
    for (let i = from; i < from + count; i++) {
      const key = `key-${i % KEYS}`;
      const bytes = imageFor(i + 1000);
      pending.set(key, sha256(bytes));
      const uploaded = await uploadImage(frontend.url, key, bytes);
      assert.equal(uploaded.status, 200, JSON.stringify(uploaded.body));
      expected.set(key, sha256(bytes));
      pending.delete(key);
    }
  }

  /** Uploads that may outlast the nodes' leases: each answers 200, or 503 and is stored all the same. */
  async function uploadRacingTheLease(from: number, count: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = from; i < from + count; i++) {
      const key = `key-${i % KEYS}`;
      const bytes = imageFor(i + 1000);
      pending.set(key, sha256(bytes));
      const uploaded = await uploadImage(frontend.url, key, bytes);
      assert.ok([200, 503].includes(uploaded.status), JSON.stringify(uploaded.body));
      statuses.push(uploaded.status);
      expected.set(key, sha256(bytes));
      pending.delete(key);
    }
    return statuses;
  }

  before(async () => {
    await requirePostgres();
    url = await createSchemaUrl(schema);
    dir = await mkdtemp(join(tmpdir(), 'pixpool-manager-stop-'));
    managerPort = await freePort('127.0.0.1');
    manager = await startManager();
    await grow();
    frontend = await startChildService({
      args: [
        'frontend',
        '--port',
        '0',
        '--manager-url',
        manager.url,
        '--database-url',
        url,
        '--data-dir',
        dir,
        '--near-cache-mb',
        '0',
        '--log-level',
        'warn',
      ],
      env,
      label: 'frontend',
      quiet: true,
    });
    for (let i = 0; i < KEYS; i++) {
      const bytes = imageFor(i);
      const uploaded = await uploadImage(frontend.url, `key-${i}`, bytes);
      assert.equal(uploaded.status, 200, JSON.stringify(uploaded.body));
      expected.set(`key-${i}`, sha256(bytes));
    }
  });

  after(async () => {
    await frontend?.stop();
    await manager?.stop(15_000);
    // Whatever happened, no node process of this test may outlive it.
    for (const id of nodeIds)
      for (const pid of pidsWithArgs('--node-id', id)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    await dropSchema(schema);
  });

  const nodeIds = new Set<string>();

  it('SIGKILL: the frontend serves from the nodes with the last map; the restarted manager adopts them', async () => {
    const before = await view();
    for (const id of before.map.nodes) nodeIds.add(id);
    assert.equal(before.map.nodes.length, 2);
    const pids = await Promise.all(
      before.map.nodes.map((id) => pidOf(before.addresses[id] as string)),
    );

    const load = fetchLoad(frontend.url, expected, 4, pending);
    try {
      await waitFor('the load to run', () => load.ok > 20);
      const killed = once((manager as ChildService).child, 'exit');
      (manager as ChildService).child.kill('SIGKILL');
      await killed;
      manager = undefined;
      // Uploads still work while the nodes' view leases run (they invalidate the nodes
      // directly), and so do fetches; after that, fetches come from storage and uploads are
      // refused, since no node can vouch for its keys. How many fit in the lease's last
      // seconds depends on the machine's load, so each is acknowledged or refused, and at least
      // the first, sent at once, is acknowledged.
      const answers = await uploadRacingTheLease(0, 5);
      assert.equal(answers[0], 200, `answers after the kill: ${answers}`);
      const okBefore = load.ok;
      await waitFor('fetches while the manager is away', () => load.ok > okBefore + 100);
      await sleep(3500); // one view lease (the manager's default)
      const bytes = imageFor(5000);
      pending.set('key-0', sha256(bytes));
      const refused = await uploadImage(frontend.url, 'key-0', bytes);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      expected.set('key-0', sha256(bytes)); // stored all the same
      pending.delete('key-0');
      const okLater = load.ok;
      await waitFor('fetches from storage', () => load.ok > okLater + 100);
      assert.deepEqual(pids.map(processAlive), [true, true], 'the nodes outlive the manager');
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], 'every fetch answered with the right bytes');

    manager = await startManager();
    const resumed = await view();
    assert.deepEqual(resumed.map.nodes, before.map.nodes, 'the same pool');
    assert.deepEqual(resumed.addresses, before.addresses, 'at the same addresses');
    assert.equal(resumed.map.version, before.map.version, 'so no new map version is needed');
    for (const [i, id] of before.map.nodes.entries()) {
      assert.deepEqual(pidsWithArgs('--node-id', id), [pids[i]], `one process for ${id}: adopted`);
    }
    // The frontend registers again and follows the manager's next change.
    await grow();
    const next = await view();
    for (const id of next.map.nodes) nodeIds.add(id);
    await waitFor('the frontend to follow the new map', async () =>
      (await frontendVersion(before)) === next.map.version ? true : undefined,
    );
    await uploadMore(10, 10);
    for (const [key, hash] of expected) {
      const response = await fetch(`${frontend.url}/images/${key}`);
      assert.equal(sha256(Buffer.from(await response.arrayBuffer())), hash, key);
    }
  });

  it('SIGTERM: the manager stops its nodes; the frontend serves from storage; the restart brings the same ids back', async () => {
    const before = await view();
    const pids = await Promise.all(
      before.map.nodes.map((id) => pidOf(before.addresses[id] as string)),
    );
    const stopped = once((manager as ChildService).child, 'exit');
    (manager as ChildService).child.kill('SIGTERM');
    const [code] = await stopped;
    manager = undefined;
    assert.equal(code, 0);
    await waitFor('its nodes to stop', () => pids.every((pid) => !processAlive(pid)));

    const load = fetchLoad(frontend.url, expected, 4, pending);
    try {
      await waitFor('fetches from storage', () => load.ok > 50);
      // The frontend cannot tell its key's node (stopped) and cannot know that node is not just
      // cut off and serving others: the upload is stored but not acknowledged.
      for (let i = 20; i < 23; i++) {
        const key = `key-${i % KEYS}`;
        const bytes = imageFor(i + 1000);
        pending.set(key, sha256(bytes));
        const refused = await uploadImage(frontend.url, key, bytes);
        assert.equal(refused.status, 503, JSON.stringify(refused.body));
        assert.match(JSON.stringify(refused.body), /not acknowledged/);
        expected.set(key, sha256(bytes)); // committed all the same: storage answers it
        pending.delete(key);
      }
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], 'every fetch answered with the right bytes');

    manager = await startManager();
    const resumed = await view();
    assert.deepEqual(resumed.map.nodes, before.map.nodes, 'the same ids');
    assert.ok(resumed.map.version > before.map.version, 'new addresses, newer map version');
    for (const id of before.map.nodes) {
      assert.equal(pidsWithArgs('--node-id', id).length, 1, `one process for ${id}`);
      assert.notEqual(resumed.addresses[id], before.addresses[id]);
    }
    await waitFor('the frontend to follow the restarted pool', async () =>
      (await frontendVersion(before)) === resumed.map.version ? true : undefined,
    );
    await sleep(100);
    for (const [key, hash] of expected) {
      const response = await fetch(`${frontend.url}/images/${key}`);
      assert.equal(sha256(Buffer.from(await response.arrayBuffer())), hash, key);
    }
  });
});
