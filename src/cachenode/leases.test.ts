import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPoolMap, resizePoolMap } from '../core/pool-map.ts';
import { regionOf } from '../core/regions.ts';
import { createLeases, parseLeaseMs } from './leases.ts';
import { createNodeCache } from './node-cache.ts';
import { createNodeView } from './view.ts';

/** Leases on a clock the test moves by hand. */
function clocked(leaseMs: number) {
  let t = 1_000;
  const leases = createLeases({ leaseMs, now: () => t });
  return { leases, advance: (ms: number) => (t += ms) };
}
const keyIn = (region: number, n = 0) => {
  let found = -1;
  for (let i = 0; ; i++) {
    if (regionOf(`k${i}`) === region && ++found === n) return `k${i}`;
  }
};

it('an invalidation waits for the lease granted on its key, and only on its key', () => {
  const { leases, advance } = clocked(100);
  advance(100); // past the start fence
  const [a, b] = [keyIn(3), keyIn(3, 1)];
  assert.equal(leases.remaining(a), 0);
  assert.equal(leases.grant(a), 100);
  advance(30);
  assert.equal(leases.remaining(a), 70);
  assert.equal(leases.remaining(b), 0, 'another key of the region is not held');
  assert.equal(leases.remainingAll(), 70);
  advance(20);
  assert.equal(leases.grant(a), 100, 'a later read renews the lease');
  assert.equal(leases.remaining(a), 100);
  advance(100);
  assert.equal(leases.remaining(a), 0);
  assert.equal(leases.remainingAll(), 0, 'nothing to wait for');
});

it('a node that starts fences every region for one lease: its predecessor may have granted some', () => {
  const { leases, advance } = clocked(200);
  assert.equal(leases.remaining(keyIn(0)), 200);
  assert.equal(leases.remaining(keyIn(15)), 200);
  advance(150);
  assert.equal(leases.remaining(keyIn(7)), 50);
  advance(50);
  assert.equal(leases.remainingAll(), 0);
});

it('with leases off nothing is granted and nothing waits', () => {
  const { leases } = clocked(0);
  assert.equal(leases.grant(keyIn(1)), 0);
  assert.equal(leases.remaining(keyIn(1)), 0);
  assert.equal(leases.remainingAll(), 0);
});

it('the pool view decides what is leased: no lease during a hand-over, and a fence when it ends', () => {
  let t = 0;
  const leases = createLeases({ leaseMs: 100, now: () => t });
  const cache = createNodeCache({ policy: 'LRU', capacityMb: 1, maxCapacityMb: 10 });
  const view = createNodeView('a', cache, leases);
  const one = createPoolMap(['a'], 'balanced');
  const addresses = { a: 'http://a:1', b: 'http://b:1' };
  t = 500;
  view.adopt({ map: one, addresses: { a: addresses.a } }, 'a');
  assert.equal(leases.remainingAll(), 0, 'a sole owner from the start: nothing new to fence');
  const two = resizePoolMap(one, ['a', 'b']);
  const kept = two.owner.indexOf('a');
  const moved = two.owner.indexOf('b');
  const movedKey = keyIn(moved);
  assert.equal(leases.grant(movedKey), 100, 'a owns every region before the grow');
  // Transitional view: b owns the moved regions, a still serves them; neither leases them.
  t = 520;
  view.adopt({ map: two, addresses, previous: one.owner });
  assert.equal(leases.grant(movedKey), 0, 'a no longer owns it');
  assert.equal(leases.grant(keyIn(kept)), 100, 'a region a keeps is still leased');
  assert.equal(leases.remaining(movedKey), 80, 'the lease granted before still holds here');

  // b's side of the same grow: nothing leased while it hands over, fenced once it ends.
  const leasesB = createLeases({ leaseMs: 100, now: () => t });
  const viewB = createNodeView('b', cache, leasesB);
  t = 1_000;
  viewB.adopt({ map: two, addresses, previous: one.owner }, 'b');
  assert.equal(leasesB.grant(movedKey), 0, 'no lease while a still serves the region');
  t = 1_300;
  assert.equal(leasesB.remaining(movedKey), 0);
  viewB.adopt({ map: resizePoolMap(two, ['a', 'b']), addresses });
  assert.equal(
    leasesB.remaining(movedKey),
    100,
    'an invalidation on the new owner waits out any lease the old owner granted',
  );
  assert.equal(leasesB.remaining(keyIn(kept)), 0, 'a region b does not own is not fenced');
  assert.equal(leasesB.grant(movedKey), 100, 'b leases the region now');
});

it('lease lengths outside 0..500 ms are refused with a message', () => {
  assert.equal(parseLeaseMs('250'), 250);
  assert.equal(parseLeaseMs(0), 0);
  for (const bad of ['', '-1', '1.5', 'soon', '501']) {
    assert.throws(
      () => parseLeaseMs(bad),
      /whole number of milliseconds from 0 \(no leases\) to 500/,
    );
  }
});

it('expired lease records are swept as the map grows', () => {
  const { leases, advance } = clocked(100);
  for (let i = 0; i < 1_000; i++) leases.grant(`old${i}`);
  advance(200);
  for (let i = 0; i < 100; i++) leases.grant(`new${i}`);
  assert.ok(leases.size <= 100, `${leases.size} records kept`);
});

it('a lease on a variant of a key holds invalidations of the key', () => {
  const { leases, advance } = clocked(100);
  advance(100); // past the start fence
  const key = keyIn(5);
  assert.equal(regionOf(`${key}/w64h.inside.webp.q`), 5, 'a variant is in its key’s region');
  assert.equal(leases.grant(`${key}/w64h.inside.webp.q`), 100);
  advance(40);
  assert.equal(leases.remaining(key), 60);
  assert.equal(leases.remaining(keyIn(5, 1)), 0);
});

it('an invalidation with a version waits for the leases granted before it, not for later ones', {
  timeout: 5000,
}, async () => {
  const { leases, advance } = clocked(40);
  advance(40); // past the start fence
  const key = keyIn(5);
  leases.grant(key);
  let settled = false;
  const settling = leases.settle(key, true).then(() => {
    settled = true;
  });
  // Readers keep the key leased after the invalidation (on the version that replaced it).
  advance(20);
  leases.grant(key);
  advance(20);
  leases.grant(key);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.ok(settled, 'settled once the leases granted before it ran out');
  await settling;
  // Without a version, every lease on the key is waited for, later ones too.
  let all = false;
  void leases.settle(key).then(() => {
    all = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(all, false);
  advance(40);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(all);
});
