import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { createStaticProvider } from '../../src/manager/providers/static.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import { SECRET, startNode, type TestNode } from '../helpers/nodes.ts';

describe('manager with the static provider (nodes started elsewhere)', () => {
  let listed: TestNode[];
  let m: TestManager;
  const client = createNodeAdmin({ secret: SECRET });
  before(async () => {
    listed = await Promise.all([startNode(), startNode()]);
    const dead = 'http://127.0.0.1:1';
    const provider = createStaticProvider({
      urls: [dead, ...listed.map((n) => n.url)],
      admin: client,
    });
    m = await startManager({ provider });
  });
  after(async () => {
    await m.close();
    await client.close();
    await Promise.all(listed.map((n) => n.close()));
  });

  it('activates listed nodes that answer, skips dead ones, and says when none is left', async () => {
    assert.deepEqual(Object.values(m.pool.view().addresses), [listed[0]?.url]);
    await (await m.pool.resize(1)).done;
    assert.deepEqual(
      Object.values(m.pool.view().addresses).sort(),
      listed.map((n) => n.url).sort(),
    );
    const third = await m.pool.resize(1);
    await assert.rejects(third.done, /No listed node is free and healthy/);
    assert.equal(m.pool.size, 2);
    const log = await managerCall(m.url, 'GET', '/api/manager/events?limit=1');
    assert.match(log.body.content[0].message, /Growing failed/);
  });

  it('shrinking deactivates a node: its entries move to the survivor and it is emptied', async () => {
    const [a, b] = listed as [TestNode, TestNode];
    const victim = m.pool.view().map.nodes[1] as string;
    const victimNode = m.pool.view().addresses[victim] === a.url ? a : b;
    victimNode.cache.put(
      'k1',
      { value: Buffer.from('x'), contentType: 'image/png', version: 1 },
      true,
    );
    await (await m.pool.resize(-1)).done;
    assert.equal(victimNode.cache.items, 0);
    const survivor = victimNode === a ? b : a;
    assert.ok(survivor.cache.peek('k1'), 'handed over before deactivation');
  });
});
