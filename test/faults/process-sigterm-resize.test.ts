/**
 * Issue 8, SIGTERM on the manager with a resize that cannot finish (real processes): its new node
 * is frozen with SIGSTOP, so the grow waits for it. The wait is bounded: the caller waiting on the
 * grow is answered a 503 envelope before the 10 s bound (a grow queued behind it at once), the
 * frozen node is stopped with the others, the manager exits 0, and a manager restarted on the
 * same data resumes the pool it had before the grow. (A grow that does finish across a SIGTERM
 * is in process-sigterm.test.ts.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auth } from '../helpers/nodes.ts';
import { waitFor } from '../helpers/processes.ts';
import { nodePids, output, serviceHarness, terminate } from './process-sigterm-helpers.ts';

const grow = (managerUrl: string) =>
  fetch(`${managerUrl}/api/manager/poolsize/manual`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ change: 'increase', wait: true }),
  });

describe('SIGTERM on the manager with a resize that cannot finish', { timeout: 300_000 }, () => {
  const frozen: number[] = [];

  const services = serviceHarness('sigterm-resize');
  before(() => services.setUp());
  after(async () => {
    // A failed test must not leave a frozen node behind.
    for (const pid of frozen) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await services.tearDown();
  });

  it('manager: a grow that cannot finish is answered 503 before the bound, a queued one at once; its nodes stop; exit 0', async () => {
    const args = ['manager', '--port', '0', '--data-dir', join(services.dir, 'manager')];
    const manager = await services.start(args, 'manager');
    const printed = output(manager);
    const [first] = nodePids(manager.url);
    assert.ok(first, 'the first node runs');

    const growing = grow(manager.url);
    // Freeze the new node the moment it exists: it never listens nor answers, so the grow waits.
    const newNode = await waitFor('the grow to start a node', () =>
      nodePids(manager.url).find((pid) => pid !== first),
    );
    process.kill(newNode, 'SIGSTOP');
    frozen.push(newNode);
    const queued = grow(manager.url);
    await waitFor('the second grow to be queued', async () => {
      const state = await fetch(`${manager.url}/api/manager/autoscaler/state`, { headers: auth });
      const body = (await state.json()) as { content: { pool: { queued: number } } };
      return body.content.pool.queued === 1;
    });

    const exit = terminate(manager);
    const refused = await queued;
    assert.equal(refused.status, 503);
    const refusal = (await refused.json()) as { success: string; error: { message: string } };
    assert.equal(refusal.success, 'false');
    assert.match(refusal.error.message, /shutting down/);

    const answer = await growing.catch((error) => {
      throw new Error(`the grow was cut (${error.cause?.message ?? error.message}): ${printed()}`);
    });
    assert.equal(answer.status, 503);
    assert.deepEqual(await answer.json(), {
      success: 'false',
      error: {
        code: 503,
        message:
          'The manager is shutting down and this resize did not finish in time; it resumes the pool from map version 1 when it starts again.',
      },
    });
    const { code } = await exit;
    assert.equal(code, 0, printed());
    assert.deepEqual(nodePids(manager.url), [], 'every node stopped, the frozen one too');

    // The same data: the pool is the one from before the grow, one node.
    const again = await services.start(args, 'manager again');
    const health = await fetch(`${again.url}/health`);
    assert.equal(((await health.json()) as { nodes: number }).nodes, 1);
    assert.equal((await terminate(again)).code, 0);
    assert.deepEqual(nodePids(again.url), []);
  });
});
