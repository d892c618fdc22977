import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPoolMap, resizePoolMap } from '../core/pool-map.ts';
import { regionOf } from '../core/regions.ts';
import { createNodeCache } from './node-cache.ts';
import { createNodeView } from './view.ts';

const entry = { value: Buffer.from('x'), contentType: 'image/png', version: 1 };
const keysIn = (regions: number[]) => {
  const keys: string[] = [];
  for (let i = 0; keys.length < regions.length * 3; i++) {
    if (regions.includes(regionOf(`k${i}`))) keys.push(`k${i}`);
  }
  return keys;
};

it('a node fences requests routed with an older map and drops what it no longer serves', () => {
  const cache = createNodeCache({ policy: 'LRU', capacityMb: 1, maxCapacityMb: 10 });
  const view = createNodeView('own-name', cache);
  assert.equal(view.admits(undefined), true);
  assert.equal(view.admits(0), true);
  const one = createPoolMap(['a'], 'balanced');
  assert.equal(view.adopt({ map: one, addresses: { a: 'http://a:1' } }, 'a'), 0);
  for (const key of keysIn([0, 1, 15])) cache.put(key, entry, true);
  const two = resizePoolMap(one, ['a', 'b']);
  const moved = two.owner.flatMap((o, r) => (o === 'b' ? [r] : []));
  const addresses = { a: 'http://a:1', b: 'http://b:1' };
  // Transitional: a still serves the regions it hands over.
  assert.equal(view.adopt({ map: two, addresses, previous: one.owner }), 0);
  assert.equal(view.admits(one.version), false, 'routed with the old map: turned away');
  assert.equal(view.admits(two.version), true);
  const final = resizePoolMap(two, ['a', 'b']);
  const held = cache.keys().length;
  const dropped = view.adopt({ map: final, addresses });
  assert.equal(dropped, cache.keys().length === held ? 0 : held - cache.keys().length);
  for (const key of cache.keys()) assert.ok(!moved.includes(regionOf(key)), `${key} stayed`);
  assert.equal(view.adopt({ map: two, addresses }), undefined, 'an older view is ignored');
});

it('a region that comes back to a node starts empty: its old entries may be stale', () => {
  const cache = createNodeCache({ policy: 'LRU', capacityMb: 1, maxCapacityMb: 10 });
  const view = createNodeView('b', cache);
  const one = createPoolMap(['a', 'b'], 'balanced');
  const addresses = { a: 'http://a:1', b: 'http://b:1', c: 'http://c:1' };
  view.adopt({ map: one, addresses });
  const bRegions = one.owner.flatMap((o, r) => (o === 'b' ? [r] : []));
  for (const key of keysIn(bRegions)) cache.put(key, entry, true);
  // b's regions go to c and b keeps serving them as previous owner; then they come back.
  const away = {
    ...one,
    version: 2,
    owner: one.owner.map((o) => (o === 'b' ? 'c' : o)),
    nodes: ['a', 'b', 'c'],
  };
  view.adopt({ map: away, addresses, previous: one.owner });
  assert.ok(cache.items > 0, 'still served during the transition');
  view.adopt({ map: { ...away, version: 3 }, addresses });
  assert.equal(cache.items, 0, 'handed over: dropped');
  for (const key of keysIn(bRegions)) cache.put(key, entry, true);
  const back = { ...one, version: 4, nodes: ['a', 'b', 'c'] };
  view.adopt({ map: back, addresses, previous: away.owner });
  assert.equal(cache.items, 0, 'leftovers of a returning region are not trusted');
});
