import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resizePoolMap } from '../../core/pool-map.ts';
import { createParts, settle } from './testing.ts';

const instance = (url: string) => `${url}#1`; // what the fake nodes answer a push with

test('renewals go only to the process that took the last push, for the view it took', async () => {
  const { leases, views } = await createParts(2);
  const version = views.map.version;
  assert.deepEqual(leases.renew('n1', instance('http://n1.1'), version), {
    leaseMs: 3000,
    renewMs: 1000,
  });
  const refused = (answer: ReturnType<typeof leases.renew>) =>
    'refused' in answer ? answer.refused : '';
  assert.match(refused(leases.renew('n1', 'another process', version)), /has not given node n1/);
  assert.match(refused(leases.renew('n1', instance('http://n1.1'), version - 1)), /holds map/);
  assert.equal(leases.left('http://n1.1'), 3000);
});

test('a node that cannot be told of a new view is waited out before the view is in force', async () => {
  const { leases, views, fakes, clock } = await createParts(3);
  leases.renew('n2', instance('http://n2.1'), views.map.version);
  await clock.advance(1000);
  const n2 = fakes.get('http://n2.1');
  assert.ok(n2);
  n2.unreachable = true;
  const adopted = views.adopt(resizePoolMap(views.map, ['n0', 'n1']));
  await clock.advance(1900);
  assert.equal(views.map.version, 1, 'not while n2 may still serve under its lease');
  assert.match(
    JSON.stringify(leases.renew('n2', instance('http://n2.1'), 1)),
    /missed a pool view/,
    'and n2 gets no renewal meanwhile',
  );
  await clock.advance(200);
  await adopted;
  assert.equal(views.map.version, 2);
  assert.ok(fakes.calls.includes('view null v2'), 'n2 was told it left, in vain');
});

test('a node that left hears so and gets no more renewals; one pushed at once costs no wait', async () => {
  const { leases, views, fakes, clock } = await createParts(2);
  leases.renew('n1', instance('http://n1.1'), 1);
  const adopted = views.adopt(resizePoolMap(views.map, ['n0']));
  await settle();
  await adopted;
  assert.equal(clock.sleepers(), 0);
  assert.ok(fakes.calls.includes('view null v2'));
  assert.match(JSON.stringify(leases.renew('n1', instance('http://n1.1'), 2)), /no longer in/);
});

test('a node that missed a view is brought up to date once it answers again', async () => {
  const { leases, views, fakes, clock } = await createParts(2);
  const n1 = fakes.get('http://n1.1');
  assert.ok(n1);
  n1.unreachable = true;
  await views.adopt(resizePoolMap(views.map, views.map.nodes)); // no lease ran: no wait
  assert.equal(views.map.version, 2);
  assert.match(JSON.stringify(leases.renew('n1', instance('http://n1.1'), 1)), /missed/);
  n1.unreachable = false;
  await views.sync('n1');
  assert.deepEqual(leases.renew('n1', instance('http://n1.1'), 2), {
    leaseMs: 3000,
    renewMs: 1000,
  });
  assert.equal(clock.sleepers(), 0);
});
