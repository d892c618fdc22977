/**
 * A killed cache node whose replacement is slow to start (as an EC2 instance or a pod takes
 * minutes): the manager says in its views that the node is down as soon as its process is gone,
 * so uploads to the node's regions are acknowledged meanwhile (nothing it cached can be read)
 * and reads of them come from storage with the right bytes. Before, every such upload was refused
 * (503) until the replacement listened. Real node processes (local provider), a real frontend;
 * the provider's replace() waits on a gate the test opens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { regionOf } from '../../src/core/regions.ts';
import { freePort } from '../../src/http/listen.ts';
import { createLocalProvider } from '../../src/manager/providers/local.ts';
import type { NodeProvider } from '../../src/manager/providers/provider.ts';
import { startFrontend, type TestFrontend } from '../helpers/frontend.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import { SECRET } from '../helpers/nodes.ts';
import { imageFor, pidOf, sha256, uploadImage, waitFor } from '../helpers/processes.ts';

describe('a killed node whose replacement is slow to start', { timeout: 60_000 }, () => {
  let manager: TestManager;
  let frontend: TestFrontend;
  let openGate: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    openGate = resolve;
  });

  before(async () => {
    const port = await freePort('127.0.0.1');
    const local = createLocalProvider({
      secret: SECRET,
      managerUrl: `http://127.0.0.1:${port}`,
      args: ['--capacity', '32'],
    });
    const provider: NodeProvider = {
      ...local,
      replace: async (id) => {
        await gate;
        return (local.replace as NonNullable<NodeProvider['replace']>)(id);
      },
    };
    manager = await startManager({ provider, port });
    const grown = await managerCall(manager.url, 'POST', '/api/manager/poolsize/manual', {
      change: 'increase',
      wait: true,
    });
    assert.equal(grown.status, 200, JSON.stringify(grown.body));
    frontend = await startFrontend({
      managerUrl: manager.url,
      metadata: manager.metadata,
      objects: manager.objects,
      nearCacheMb: 0,
    });
  });

  after(async () => {
    openGate();
    await frontend?.close();
    await manager?.close();
  });

  it('uploads to its regions are acknowledged and read back from storage until it is back', async () => {
    const { map, addresses } = manager.pool.view();
    const victim = map.nodes[1] as string;
    const ownedBy = (id: string) =>
      Array.from({ length: 200 }, (_, i) => `slow-${i}`).filter(
        (key) => map.owner[regionOf(key)] === id,
      );
    const [mine, theirs] = [ownedBy(victim)[0], ownedBy(map.nodes[0] as string)[0]];
    assert.ok(mine && theirs, 'keys on both nodes');
    for (const [i, key] of [mine, theirs].entries()) {
      assert.equal((await uploadImage(frontend.url, key, imageFor(i))).status, 200);
      // The first read fills the node after answering: read until it answers from the node.
      await waitFor(`${key} cached`, async () => {
        const read = await fetch(`${frontend.url}/images/${key}`);
        await read.arrayBuffer();
        return read.headers.get('x-pixpool-source') === 'cache' ? true : undefined;
      });
    }

    process.kill(await pidOf(addresses[victim] as string), 'SIGKILL');
    await waitFor('the frontend to hear the node is down', () =>
      frontend.routing.view.down?.includes(victim) ? true : undefined,
    );

    const newer = imageFor(7);
    const uploaded = await uploadImage(frontend.url, mine, newer);
    assert.equal(uploaded.status, 200, JSON.stringify(uploaded.body));
    const read = await fetch(`${frontend.url}/images/${mine}`);
    assert.equal(read.headers.get('x-pixpool-source'), 'storage');
    assert.equal(sha256(Buffer.from(await read.arrayBuffer())), sha256(newer));
    // The other node serves on from its cache.
    const other = await fetch(`${frontend.url}/images/${theirs}`);
    assert.equal(other.headers.get('x-pixpool-source'), 'cache');
    assert.equal(sha256(Buffer.from(await other.arrayBuffer())), sha256(imageFor(1)));

    openGate();
    await waitFor('the replacement in the frontend view', () => {
      const view = frontend.routing.view;
      return view.down === undefined && view.addresses[victim] !== addresses[victim]
        ? true
        : undefined;
    });
    for (let i = 0; i < 2; i++) {
      const again = await fetch(`${frontend.url}/images/${mine}`);
      assert.equal(sha256(Buffer.from(await again.arrayBuffer())), sha256(newer));
    }
    const { body } = await managerCall(manager.url, 'GET', '/api/manager/events?limit=20');
    const restarts = (body.content as { message: string }[]).filter((e) =>
      e.message.startsWith(`Node ${victim} died and was restarted`),
    );
    assert.equal(restarts.length, 1, 'the restart is taken once');
  });
});
