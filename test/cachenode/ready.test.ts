/**
 * A cache node's GET /ready (src/cachenode/ready-route.ts) on a real socket: a node run with a
 * manager is ready only while it holds a leased view that names it and whose lease runs (here
 * test/helpers/renewer.ts plays the manager's renewal endpoint); a stand-alone node is ready once
 * it listens. /health answers 200 throughout: it is liveness only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPoolMap } from '../../src/core/pool-map.ts';
import { call, startNode, type TestNode } from '../helpers/nodes.ts';
import { waitFor } from '../helpers/processes.ts';
import { type Renewer, startRenewer } from '../helpers/renewer.ts';

/** GET without any secret: probes carry none. */
const probe = (url: string, path = '/ready') => call(url, 'GET', path, undefined, {});

const push = (node: TestNode, version: number, self: string | null) =>
  call(node.url, 'POST', '/v1/pool-view', {
    map: createPoolMap(['n'], 'balanced', version),
    addresses: { n: node.url },
    self,
    leased: true,
  });

/** Waits until /ready answers `status`, and returns that answer. */
const readyAs = (node: TestNode, status: number) =>
  waitFor(`/ready to answer ${status}`, async () => {
    const answer = await probe(node.url);
    return answer.status === status ? answer : undefined;
  });

const notReady = (answer: { status: number; body: { success: string; error: unknown } }) => {
  assert.equal(answer.status, 503);
  assert.equal(answer.body.success, 'false');
  return (answer.body.error as { code: number; message: string }).message;
};

describe('a node run with a manager is ready only under a leased view that names it', () => {
  let renewer: Renewer;
  let node: TestNode;
  before(async () => {
    renewer = await startRenewer(600);
    node = await startNode({ managerUrl: renewer.url });
  });
  after(async () => {
    await node.close();
    await renewer.close();
  });

  it('answers 503 before the manager gave it a view, while /health answers 200', async () => {
    const answer = await probe(node.url);
    assert.match(notReady(answer), /not ready: the manager has not given it a pool view yet/);
    assert.equal(answer.body.error.code, 503);
    assert.equal((await probe(node.url, '/health')).status, 200);
  });

  it('answers 503 with a view whose lease was never renewed, 200 once it is', async () => {
    renewer.granting = false;
    assert.equal((await push(node, 2, 'n')).status, 200);
    assert.match(notReady(await probe(node.url)), /lease ran out: the manager has not renewed/);
    renewer.granting = true;
    const ready = await readyAs(node, 200);
    assert.deepEqual(ready.body, {
      success: 'true',
      status: 'ready',
      node_id: 'n',
      view_version: 2,
    });
  });

  it('answers 503 again once the lease ran out unrenewed, and 200 after the next renewal', async () => {
    renewer.granting = false;
    const expired = await readyAs(node, 503);
    assert.match(notReady(expired), /lease ran out/);
    assert.equal((await probe(node.url, '/health')).status, 200, 'still alive');
    renewer.granting = true;
    await readyAs(node, 200);
  });

  it('answers 503 once a view leaves it out of the pool', async () => {
    assert.equal((await push(node, 3, null)).status, 200);
    assert.match(notReady(await probe(node.url)), /leaves it out of the pool/);
    assert.equal((await push(node, 4, 'n')).status, 200);
    await renewer.renewed('n', 4);
    await readyAs(node, 200);
  });

  it('refuses other methods with the 404 envelope (to a caller with the secret)', async () => {
    // Without the secret, a node answers any path but its public ones 401, this one included.
    assert.equal((await call(node.url, 'POST', '/ready', {}, {})).status, 401);
    const answer = await call(node.url, 'POST', '/ready', {});
    assert.equal(answer.status, 404);
    assert.equal(answer.body.success, 'false');
    assert.match(answer.body.error.message, /no endpoint POST \/ready/);
  });
});

describe('a stand-alone node (no --manager-url)', () => {
  it('is ready once it listens, and not once given a leased view it cannot renew', async () => {
    const node = await startNode();
    try {
      assert.equal((await probe(node.url)).status, 200);
      assert.equal((await push(node, 2, 'n')).status, 200);
      assert.match(notReady(await probe(node.url)), /no --manager-url to renew it from/);
    } finally {
      await node.close();
    }
  });
});
