/**
 * Addresses a service is told to call (issue 8): a node hands entries only to nodes of its pool
 * view, and every address that arrives in a request (move orders, pool views pushed to nodes and
 * frontends, frontend registrations the manager will push to) is a bare http(s) origin
 * (src/core/node-address.ts). Each refusal is checked against a real listener, the trap, that
 * records every request it gets: a refused address must cost it nothing at all.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { createNotifier } from '../../src/manager/notifier.ts';
import { call, png, startNode, type TestNode } from '../helpers/nodes.ts';
import { bearer, isEnvelope, SECRET, type System, send, startSystem } from './services.ts';

interface Trap {
  hostPort: string;
  url: string;
  requests: { method: string; url: string }[];
  close(): Promise<void>;
}

/** A throwaway HTTP server that answers 200 to anything and remembers what it was asked. */
async function startTrap(): Promise<Trap> {
  const requests: { method: string; url: string }[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '' });
    request.resume();
    response.setHeader('content-type', 'application/json');
    response.end('{"success":"true","accepted":0,"refused":0}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const hostPort = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    hostPort,
    url: `http://${hostPort}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Addresses that point at the trap in some disguise; every one must be refused by its syntax. */
function disguised(hostPort: string): unknown[] {
  return [
    `http://user:pw@${hostPort}`,
    `http://@${hostPort}`,
    `ftp://${hostPort}`,
    `file:///${hostPort}`,
    `gopher://${hostPort}`,
    `http://${hostPort}/v1/import`,
    `http://${hostPort}/../`,
    `http://${hostPort}/%2e%2e/`,
    `http://${hostPort}?x=1`,
    `http://${hostPort}#x`,
    `http:\\\\${hostPort}`,
    `http://${hostPort.replace('1', '%31')}`,
    `http://${hostPort}\n`,
    ` http://${hostPort}`,
    `http://${hostPort}\u0000`,
    `http://${hostPort}\t`,
    `//${hostPort}`,
    `${hostPort}/x`,
    `http://${'a'.repeat(300)}.example:1`,
    '',
    'http://',
    'http://:1',
    42,
    null,
    { url: `http://${hostPort}` },
    [`http://${hostPort}`],
  ];
}

const put = (node: TestNode, key: string, version: number) =>
  node.cache.put(key, { value: png(300, version), contentType: 'image/png', version }, true);

describe('addresses a service is told to call', { timeout: 120_000 }, () => {
  let trap: Trap;
  let a: TestNode;
  let b: TestNode;
  let system: System;
  const keys = Array.from({ length: 40 }, (_, i) => `addr-${i}`);

  before(async () => {
    [trap, a, b, system] = await Promise.all([
      startTrap(),
      startNode(),
      startNode(),
      startSystem(),
    ]);
    // A pool of a and b (ids are their URLs); its view is pushed to both, as the manager does.
    const view = {
      map: createPoolMap([a.url, b.url], 'balanced'),
      addresses: { [a.url]: a.url, [b.url]: b.url },
    };
    for (const node of [a, b]) {
      const answer = await call(node.url, 'POST', '/v1/pool-view', { ...view, self: node.url });
      assert.equal(answer.status, 200);
    }
    keys.forEach((key, i) => {
      put(a, key, i + 1);
    });
  });
  after(async () => {
    await Promise.all([trap?.close(), a?.close(), b?.close(), system?.close()]);
  });

  const allRegions = Array.from({ length: 16 }, (_, r) => r);
  const aIntact = () => keys.every((k, i) => a.cache.peek(k)?.version === i + 1);

  it('a node hands entries to no address outside its pool view: 409, nothing sent', async () => {
    const orders = [
      { to: trap.url, regions: allRegions },
      { moves: [{ to: trap.url, keys }] },
      // One member and one outsider: refused whole, so not even the member gets anything.
      {
        moves: [
          { to: b.url, regions: allRegions },
          { to: trap.url, regions: [0] },
        ],
      },
      // The seed payload: {dest: {address: [keys]}}, by host:port.
      { dest: { [trap.hostPort]: keys } },
      // The trap under another name of the same host is still not a member.
      { to: trap.url.replace('127.0.0.1', 'localhost'), regions: allRegions },
    ];
    for (const order of orders) {
      const answer = await call(a.url, 'POST', '/api/cache/move_keys', order);
      assert.equal(answer.status, 409, JSON.stringify(order));
      assert.ok(isEnvelope(answer), JSON.stringify(answer.body));
      assert.match(answer.body.error.message, /not a node of this node's pool view/);
    }
    assert.deepEqual(trap.requests, []);
    assert.equal(b.cache.items, 0, 'a refused order sends nothing, to members either');
    assert.ok(aIntact());
  });

  it('a node hands entries to a member of its view (the check lets the pool work)', async () => {
    const answer = await call(a.url, 'POST', '/api/cache/move_keys', {
      to: b.url,
      regions: allRegions,
      keep: true,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(b.cache.items, keys.length);
    b.cache.clear();
    assert.ok(aIntact());
  });

  it('move orders with a disguised address get a 400 envelope and send nothing', async () => {
    for (const to of disguised(trap.hostPort)) {
      for (const order of [{ to, regions: [0] }, { dest: { [String(to)]: keys } }]) {
        const answer = await call(a.url, 'POST', '/api/cache/move_keys', order);
        assert.ok(
          answer.status === 400 || answer.status === 409,
          `${JSON.stringify(order)}: ${answer.status}`,
        );
        assert.ok(isEnvelope(answer));
      }
    }
    assert.deepEqual(trap.requests, []);
    assert.ok(aIntact());
  });

  it('a pool view pushed to a node with a disguised address is refused and changes nothing', async () => {
    for (const address of disguised(trap.hostPort)) {
      const answer = await call(a.url, 'POST', '/v1/pool-view', {
        map: createPoolMap([a.url, 'evil'], 'balanced', 5),
        addresses: { [a.url]: a.url, evil: address },
        self: a.url,
      });
      assert.equal(
        answer.status,
        400,
        `${JSON.stringify(address)}: ${JSON.stringify(answer.body)}`,
      );
      assert.ok(isEnvelope(answer));
    }
    // Still the first view: the trap is no member, and all of a's entries are still there.
    const order = await call(a.url, 'POST', '/api/cache/move_keys', { to: trap.url, regions: [0] });
    assert.equal(order.status, 409);
    assert.ok(aIntact());
    assert.deepEqual(trap.requests, []);
  });

  it('a pool view pushed to a frontend with a disguised address is refused; routing stays', async () => {
    const { url } = system.services.frontend;
    const before_ = JSON.stringify(system.nodeF.cache.config);
    for (const address of disguised(trap.hostPort)) {
      const answer = await send(url, 'POST', '/api/notify', {
        headers: { ...bearer(SECRET), 'content-type': 'application/json' },
        body: JSON.stringify({
          map: createPoolMap(['evil'], 'balanced', 99),
          addresses: { evil: address },
        }),
      });
      assert.equal(answer.status, 400, `${JSON.stringify(address)}: ${answer.text}`);
      assert.ok(isEnvelope(answer));
    }
    // Fetching still goes to node F, never to the trap.
    const [key] = system.seeded.images;
    const image = await send(url, 'GET', `/images/${key}`);
    assert.equal(image.status, 200);
    assert.equal(JSON.stringify(system.nodeF.cache.config), before_);
    assert.deepEqual(trap.requests, []);
  });

  it('the manager registers only bare http(s) origins as frontends', async () => {
    const { url } = system.services.manager;
    const before_ = (await system.store.listFrontends()).map((f) => f.url);
    for (const address of disguised(trap.hostPort)) {
      const answer = await send(url, 'POST', '/api/manager/frontends', {
        headers: { ...bearer(SECRET), 'content-type': 'application/json' },
        body: JSON.stringify({ url: address }),
      });
      assert.equal(answer.status, 400, `${JSON.stringify(address)}: ${answer.text}`);
      assert.ok(isEnvelope(answer));
    }
    assert.deepEqual(
      (await system.store.listFrontends()).map((f) => f.url),
      before_,
    );
  });

  it('the manager pushes views only to bare origins, even when a bad row is in the database', async () => {
    // Rows the database takes (it checks only the scheme) but the manager must not push to.
    const bad = [
      `http://${trap.hostPort}/x`,
      `http://u:p@${trap.hostPort}`,
      `http://${trap.hostPort}?q`,
    ];
    for (const url of bad) await system.store.registerFrontend(url);
    await system.store.registerFrontend(trap.url);
    const notify = createNotifier({
      store: system.store,
      secret: SECRET,
      journal: { failed: () => {} },
    });
    await notify(system.pool.view());
    assert.deepEqual(trap.requests, [{ method: 'POST', url: '/api/notify' }]);
  });
});
