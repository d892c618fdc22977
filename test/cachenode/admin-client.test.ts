import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createNodeAdmin } from '../../src/clients/node-admin.ts';
import { createNodeClient } from '../../src/clients/node-client.ts';
import { NodeRequestError } from '../../src/clients/node-transport.ts';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { regionOf } from '../../src/core/regions.ts';
import { SECRET, startNode, type TestNode } from '../helpers/nodes.ts';
import { type Renewer, startRenewer } from '../helpers/renewer.ts';

const failsWith = (kind: string, status?: number) => (error: unknown) => {
  assert.ok(error instanceof NodeRequestError, String(error));
  assert.equal(error.kind, kind);
  assert.equal(error.status, status);
  return true;
};

describe('the manager’s typed client for a node’s control endpoints', () => {
  let a: TestNode;
  let b: TestNode;
  const admin = createNodeAdmin({ secret: SECRET, timeoutMs: 2000 });
  const entries = createNodeClient({ secret: SECRET });
  let renewer: Renewer;
  before(async () => {
    renewer = await startRenewer();
    const managerUrl = renewer.url;
    [a, b] = await Promise.all([startNode({ managerUrl }), startNode({ managerUrl })]);
  });
  after(async () => {
    await Promise.all([admin.close(), entries.close(), a.close(), b.close()]);
    await renewer.close();
  });

  it('answers every endpoint with its parsed shape', async () => {
    assert.equal(await admin.healthy(a.url), true);
    const view = {
      map: createPoolMap(['a', 'b'], 'balanced', 3),
      addresses: { a: a.url, b: b.url },
    };
    const pushed = await admin.pushView(a.url, view, 'a');
    assert.equal(pushed.adopted, true);
    assert.equal(pushed.version, 3);
    assert.match(pushed.instance, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      await admin.pushView(a.url, view, 'a'),
      { ...pushed, adopted: false },
      'the same version again, from the same process',
    );
    await admin.pushView(b.url, view, 'b');
    // A pushed view is served once its lease is renewed (src/cachenode/view.ts).
    await Promise.all([renewer.renewed('a', 3), renewer.renewed('b', 3)]);

    const config = await admin.configure(a.url, { capacity: 8, replacement_policy: 'SIEVE' });
    assert.deepEqual(config, {
      capacity: 8,
      replacement_policy: 'SIEVE',
      capacity_bytes: 8 * 1024 * 1024,
      evicted: 0,
    });

    // Keys a owns, cached there.
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`).filter(
      (k) => view.map.owner[regionOf(k)] === 'a',
    );
    for (const key of keys) {
      await entries.put(a.url, key, {
        value: Buffer.alloc(100),
        contentType: 'image/png',
        version: 1,
      });
    }
    await entries.get(a.url, keys[0] as string);
    const stats = await admin.statistics(a.url);
    assert.equal(stats.items, keys.length);
    assert.equal(stats.bytes, keys.length * 100);
    assert.equal(stats.gets, 1);
    assert.equal(stats.hit_rate, 1);
    const regions = await admin.regions(a.url);
    assert.equal(regions.length, 16);
    assert.equal(
      regions.reduce((n, r) => n + r.items, 0),
      keys.length,
    );

    // a hands one region of its own to b (b is in a's view).
    const region = regionOf(keys[0] as string);
    const [answer] = await admin.handOver(a.url, [{ to: b.url, regions: [region] }], {
      keep: false,
      timeout: 5000,
    });
    const inRegion = keys.filter((k) => regionOf(k) === region).length;
    assert.deepEqual(answer, { to: b.url, entries: inRegion, bytes: inRegion * 100 });
    assert.equal((await admin.statistics(b.url)).items, inRegion);

    await admin.clear(a.url);
    assert.equal((await admin.statistics(a.url)).items, 0);
  });

  it('a hand-over the receiver refuses resolves with the error per order, the entries kept', async () => {
    const dead = 'http://127.0.0.1:1';
    const view = {
      map: createPoolMap(['a', 'x'], 'balanced', 10),
      addresses: { a: a.url, x: dead },
    };
    await admin.pushView(a.url, view, 'a');
    await renewer.renewed('a', 10);
    await entries.put(a.url, 'kept', {
      value: Buffer.alloc(10),
      contentType: 'image/png',
      version: 1,
    });
    const answers = await admin.handOver(a.url, [{ to: dead, regions: [regionOf('kept')] }], {
      keep: false,
      timeout: 5000,
    });
    assert.equal(answers.length, 1);
    assert.equal(answers[0]?.to, dead);
    assert.ok(answers[0]?.error, 'the failure is in the answer');
    assert.ok(await entries.get(a.url, 'kept'), 'the entry stayed');
  });

  it('types its failures: no answer, a refusal, an answer of the wrong shape', async () => {
    assert.equal(await admin.healthy('http://127.0.0.1:1'), false);
    await assert.rejects(admin.statistics('http://127.0.0.1:1'), failsWith('unreachable'));
    const stranger = createNodeAdmin({ secret: 'wrong', timeoutMs: 2000 });
    await assert.rejects(stranger.statistics(a.url), failsWith('status', 401));
    await stranger.close();
    await assert.rejects(
      admin.configure(a.url, { capacity: -1, replacement_policy: 'LRU' }),
      failsWith('status', 400),
    );

    // A server that answers 200 with something else than a node would.
    const liar = createServer((request, response) => {
      response.setHeader('content-type', 'application/json');
      const bodies: Record<string, unknown> = {
        '/api/cache/statistics': { success: 'true', content: { items: 'many' } },
        '/api/cache/regions': { success: 'true', content: [{ region: 99, items: 1, bytes: 1 }] },
        '/v1/pool-view': { success: 'true' },
      };
      response.end(
        request.url === '/api/cache/config' ? '{' : JSON.stringify(bodies[request.url ?? '']),
      );
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
    try {
      await assert.rejects(admin.statistics(url), failsWith('answer', 200));
      await assert.rejects(admin.regions(url), failsWith('answer', 200));
      await assert.rejects(
        admin.configure(url, { capacity: 1, replacement_policy: 'LRU' }),
        failsWith('answer', 200),
      );
      await assert.rejects(
        admin.pushView(url, { map: createPoolMap(['a'], 'balanced'), addresses: { a: url } }, 'a'),
        failsWith('answer', 200),
      );
    } finally {
      await admin.close(); // its connections to the liar, so the server can close
      liar.close();
    }
  });
});
