/**
 * Issue 8, SIGTERM on the manager and the autoscaler (real processes): a grow asked with
 * wait=true just before the signal completes and is answered 200, the manager then stops its
 * nodes (no cache-node process is left) and exits 0; the autoscaler exits 0 too.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auth } from '../helpers/nodes.ts';
import { refuses, waitFor } from '../helpers/processes.ts';
import { nodePids, serviceHarness, terminate } from './process-sigterm-helpers.ts';

describe('SIGTERM on the manager and the autoscaler', { timeout: 300_000 }, () => {
  const services = serviceHarness('sigterm-manager');
  before(() => services.setUp());
  after(() => services.tearDown());

  it('manager and autoscaler: a grow in flight completes, the nodes stop with the manager, both exit 0', async () => {
    const dataDir = join(services.dir, 'manager');
    const manager = await services.start(
      ['manager', '--port', '0', '--data-dir', dataDir],
      'manager',
    );
    let output = '';
    manager.child.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    manager.child.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    const autoscaler = await services.start(
      ['autoscaler', '--port', '0', '--manager-url', manager.url],
      'autoscaler',
    );
    const grow = fetch(`${manager.url}/api/manager/poolsize/manual`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ change: 'increase', wait: true }),
    });
    // SIGTERM once the new node's process exists: the grow is under way. (Cache nodes only:
    // the autoscaler has `--manager-url` too, and counting it sent the SIGTERM before the grow
    // request had even arrived, which the closing manager then rightly refused.)
    await waitFor('the grow to start a node', () =>
      nodePids(manager.url).length === 2 ? true : undefined,
    );
    const exit = terminate(manager);
    const answer = await grow.catch((error) => {
      throw new Error(`the grow was cut (${error.cause?.message ?? error.message}): ${output}`);
    });
    assert.equal(answer.status, 200, await answer.text());
    assert.equal((await exit).code, 0, output);
    assert.deepEqual(nodePids(manager.url), [], 'its nodes stopped with it');

    assert.equal((await fetch(`${autoscaler.url}/status`)).status, 200);
    const stopped = await terminate(autoscaler);
    assert.equal(stopped.code, 0);
    assert.equal(await refuses(autoscaler.url), true);
  });
});
