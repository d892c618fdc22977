import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createPoolMap,
  MAX_NODES,
  minimumRegionMoves,
  type NodeId,
  type PoolMap,
  parsePoolMap,
  planMoves,
  type RegionMove,
  resizePoolMap,
} from './pool-map.ts';
import { regionOf } from './regions.ts';
import { createSeededRandom } from './seeded-random.ts';

// The seed logs: the nine distinct "Balance Result" logs in the original frontend's README, lines
// copied verbatim (it logs [A, B, C, D] -> [A, B] twice, identically).
const seedTables = [
  {
    change: '[A, B, C, D] -> [A, B, C]',
    old: "{0: 'A', 1: 'B', 2: 'C', 3: 'D', 4: 'A', 5: 'B', 6: 'C', 7: 'D', 8: 'A', 9: 'B', 10: 'C', 11: 'D', 12: 'A', 13: 'B', 14: 'C', 15: 'D'}",
    new: "{0: 'A', 1: 'B', 2: 'C', 3: 'A', 4: 'B', 5: 'C', 6: 'A', 7: 'B', 8: 'C', 9: 'A', 10: 'B', 11: 'C', 12: 'A', 13: 'B', 14: 'C', 15: 'A'}",
    oldNew:
      "{'D': [(3, 'A'), (7, 'B'), (11, 'C'), (15, 'A')], 'A': [(4, 'B'), (8, 'C')], 'B': [(5, 'C'), (9, 'A')], 'C': [(6, 'A'), (10, 'B')]}",
    result:
      "[{'send_to': 'D', 'payload': {'port': 5004, 'dest': {'C': ['k1']}}}, {'send_to': 'C', 'payload': {'port': -1, 'dest': {'A': ['k2']}}}]",
  },
  {
    change: '[A, B, C] -> [A, B, C, D]',
    old: "{0: 'A', 1: 'B', 2: 'C', 3: 'A', 4: 'B', 5: 'C', 6: 'A', 7: 'B', 8: 'C', 9: 'A', 10: 'B', 11: 'C', 12: 'A', 13: 'B', 14: 'C', 15: 'A'}",
    new: "{0: 'A', 1: 'B', 2: 'C', 3: 'D', 4: 'A', 5: 'B', 6: 'C', 7: 'D', 8: 'A', 9: 'B', 10: 'C', 11: 'D', 12: 'A', 13: 'B', 14: 'C', 15: 'D'}",
    oldNew:
      "{'A': [(3, 'D'), (6, 'C'), (9, 'B'), (15, 'D')], 'B': [(4, 'A'), (7, 'D'), (10, 'C')], 'C': [(5, 'B'), (8, 'A'), (11, 'D')]}",
    result:
      "[{'send_to': 'A', 'payload': {'port': -1, 'dest': {'C': ['k2']}}}, {'send_to': 'C', 'payload': {'port': -1, 'dest': {'D': ['k1']}}}]",
  },
  {
    change: '[A, B, C, D] -> [A, B]',
    old: "{0: 'A', 1: 'B', 2: 'C', 3: 'D', 4: 'A', 5: 'B', 6: 'C', 7: 'D', 8: 'A', 9: 'B', 10: 'C', 11: 'D', 12: 'A', 13: 'B', 14: 'C', 15: 'D'}",
    new: "{0: 'A', 1: 'B', 2: 'A', 3: 'B', 4: 'A', 5: 'B', 6: 'A', 7: 'B', 8: 'A', 9: 'B', 10: 'A', 11: 'B', 12: 'A', 13: 'B', 14: 'A', 15: 'B'}",
    oldNew:
      "{'C': [(2, 'A'), (6, 'A'), (10, 'A'), (14, 'A')], 'D': [(3, 'B'), (7, 'B'), (11, 'B'), (15, 'B')]}",
    result:
      "[{'send_to': 'C', 'payload': {'port': 5004, 'dest': {'A': ['k2']}}}, {'send_to': 'D', 'payload': {'port': 5004, 'dest': {'B': ['k1']}}}]",
  },
  {
    change: '[A, B] -> [A, B, D]',
    old: "{0: 'A', 1: 'B', 2: 'A', 3: 'B', 4: 'A', 5: 'B', 6: 'A', 7: 'B', 8: 'A', 9: 'B', 10: 'A', 11: 'B', 12: 'A', 13: 'B', 14: 'A', 15: 'B'}",
    new: "{0: 'A', 1: 'B', 2: 'D', 3: 'A', 4: 'B', 5: 'D', 6: 'A', 7: 'B', 8: 'D', 9: 'A', 10: 'B', 11: 'D', 12: 'A', 13: 'B', 14: 'D', 15: 'A'}",
    oldNew:
      "{'A': [(2, 'D'), (4, 'B'), (8, 'D'), (10, 'B'), (14, 'D')], 'B': [(3, 'A'), (5, 'D'), (9, 'A'), (11, 'D'), (15, 'A')]}",
    result: "[{'send_to': 'B', 'payload': {'port': -1, 'dest': {'D': ['k1']}}}]",
  },
  {
    change: '[A, B] -> [A, B, C, D]',
    old: "{0: 'A', 1: 'B', 2: 'A', 3: 'B', 4: 'A', 5: 'B', 6: 'A', 7: 'B', 8: 'A', 9: 'B', 10: 'A', 11: 'B', 12: 'A', 13: 'B', 14: 'A', 15: 'B'}",
    new: "{0: 'A', 1: 'B', 2: 'C', 3: 'D', 4: 'A', 5: 'B', 6: 'C', 7: 'D', 8: 'A', 9: 'B', 10: 'C', 11: 'D', 12: 'A', 13: 'B', 14: 'C', 15: 'D'}",
    oldNew:
      "{'A': [(2, 'C'), (6, 'C'), (10, 'C'), (14, 'C')], 'B': [(3, 'D'), (7, 'D'), (11, 'D'), (15, 'D')]}",
    result:
      "[{'send_to': 'A', 'payload': {'port': -1, 'dest': {'C': ['k2']}}}, {'send_to': 'B', 'payload': {'port': -1, 'dest': {'D': ['k1']}}}]",
  },
  {
    change: '[A, B, C, D] -> [C, D]',
    old: "{0: 'A', 1: 'B', 2: 'C', 3: 'D', 4: 'A', 5: 'B', 6: 'C', 7: 'D', 8: 'A', 9: 'B', 10: 'C', 11: 'D', 12: 'A', 13: 'B', 14: 'C', 15: 'D'}",
    new: "{0: 'C', 1: 'D', 2: 'C', 3: 'D', 4: 'C', 5: 'D', 6: 'C', 7: 'D', 8: 'C', 9: 'D', 10: 'C', 11: 'D', 12: 'C', 13: 'D', 14: 'C', 15: 'D'}",
    oldNew:
      "{'A': [(0, 'C'), (4, 'C'), (8, 'C'), (12, 'C')], 'B': [(1, 'D'), (5, 'D'), (9, 'D'), (13, 'D')]}",
    result:
      "[{'send_to': 'A', 'payload': {'port': 5004, 'dest': {'C': ['test', 'test123', 'testabc']}}}, {'send_to': 'B', 'payload': {'port': 5004, 'dest': {}}}]",
  },
  {
    change: '[C, D] -> [A, B, C, D]',
    old: "{0: 'C', 1: 'D', 2: 'C', 3: 'D', 4: 'C', 5: 'D', 6: 'C', 7: 'D', 8: 'C', 9: 'D', 10: 'C', 11: 'D', 12: 'C', 13: 'D', 14: 'C', 15: 'D'}",
    new: "{0: 'C', 1: 'D', 2: 'A', 3: 'B', 4: 'C', 5: 'D', 6: 'A', 7: 'B', 8: 'C', 9: 'D', 10: 'A', 11: 'B', 12: 'C', 13: 'D', 14: 'A', 15: 'B'}",
    oldNew:
      "{'C': [(2, 'A'), (6, 'A'), (10, 'A'), (14, 'A')], 'D': [(3, 'B'), (7, 'B'), (11, 'B'), (15, 'B')]}",
    result:
      "[{'send_to': 'C', 'payload': {'port': -1, 'dest': {'A': ['k2']}}}, {'send_to': 'D', 'payload': {'port': -1, 'dest': {'B': ['k1']}}}]",
  },
  {
    change: '[A, B, C, D] -> [B, C, D]',
    old: "{0: 'A', 1: 'B', 2: 'C', 3: 'D', 4: 'A', 5: 'B', 6: 'C', 7: 'D', 8: 'A', 9: 'B', 10: 'C', 11: 'D', 12: 'A', 13: 'B', 14: 'C', 15: 'D'}",
    new: "{0: 'B', 1: 'C', 2: 'D', 3: 'B', 4: 'C', 5: 'D', 6: 'B', 7: 'C', 8: 'D', 9: 'B', 10: 'C', 11: 'D', 12: 'B', 13: 'C', 14: 'D', 15: 'B'}",
    oldNew:
      "{'A': [(0, 'B'), (4, 'C'), (8, 'D'), (12, 'B')], 'B': [(1, 'C'), (5, 'D'), (13, 'C')], 'C': [(2, 'D'), (6, 'B'), (14, 'D')], 'D': [(3, 'B'), (7, 'C'), (15, 'B')]}",
    result:
      "[{'send_to': 'A', 'payload': {'port': 5004, 'dest': {'B': ['test', 'test123', 'testabc']}}}, {'send_to': 'C', 'payload': {'port': -1, 'dest': {'B': ['k2']}}}]",
  },
  {
    change: '[B, C, D] -> [A, B, C, D]',
    old: "{0: 'B', 1: 'C', 2: 'D', 3: 'B', 4: 'C', 5: 'D', 6: 'B', 7: 'C', 8: 'D', 9: 'B', 10: 'C', 11: 'D', 12: 'B', 13: 'C', 14: 'D', 15: 'B'}",
    new: "{0: 'B', 1: 'C', 2: 'D', 3: 'A', 4: 'B', 5: 'C', 6: 'D', 7: 'A', 8: 'B', 9: 'C', 10: 'D', 11: 'A', 12: 'B', 13: 'C', 14: 'D', 15: 'A'}",
    oldNew:
      "{'B': [(3, 'A'), (6, 'D'), (9, 'C'), (15, 'A')], 'C': [(4, 'B'), (7, 'A'), (10, 'D')], 'D': [(5, 'C'), (8, 'B'), (11, 'A')]}",
    result:
      "[{'send_to': 'B', 'payload': {'port': -1, 'dest': {'D': ['k2']}}}, {'send_to': 'D', 'payload': {'port': -1, 'dest': {'A': ['k1']}}}]",
  },
];

// The seed logs are Python literals; these only use quotes, tuples and int dict keys.
const fromPython = (s: string): unknown =>
  JSON.parse(
    s
      .replaceAll("'", '"')
      .replaceAll('(', '[')
      .replaceAll(')', ']')
      .replace(/(\d+):/g, '"$1":'),
  );

const ownerFromLog = (s: string) => {
  const byRegion = fromPython(s) as Record<string, NodeId>;
  return Array.from({ length: 16 }, (_, r) => byRegion[r]);
};

const parseChange = (change: string) =>
  change.split(' -> ').map((side) => side.slice(1, -1).split(', ')) as [NodeId[], NodeId[]];

// What the seed's caller builds: survivors in their old order, then the new ids.
const poolOrder = (before: NodeId[], after: NodeId[]) => [
  ...before.filter((id) => after.includes(id)),
  ...after.filter((id) => !before.includes(id)),
];

const seedCached: Record<number, string[]> = {
  0: ['test'],
  12: ['test123', 'testabc'],
  11: ['k1'],
  6: ['k2'],
};

type Order = { send_to: NodeId; payload: { port: number; dest: Record<NodeId, string[]> } };

// The original frontend's balance(): an order per old owner with cached keys in a moved region, and
// always one per removed node (port 5004 = manual manager callback, so it can trigger its own
// removal).
function moveOrders(moves: RegionMove[], removed: NodeId[]): Order[] {
  const orders = new Map<NodeId, Order>();
  for (const id of removed) orders.set(id, { send_to: id, payload: { port: 5004, dest: {} } });
  for (const { region, from, to } of moves) {
    const keys = seedCached[region] ?? [];
    if (keys.length === 0) continue;
    const order = orders.get(from) ?? { send_to: from, payload: { port: -1, dest: {} } };
    orders.set(from, order);
    order.payload.dest[to] = [...(order.payload.dest[to] ?? []), ...keys];
  }
  return [...orders.values()];
}

const normalizeOrders = (orders: Order[]) =>
  orders
    .map((o) => ({
      ...o,
      payload: {
        port: o.payload.port,
        dest: Object.fromEntries(Object.entries(o.payload.dest).map(([k, v]) => [k, v.toSorted()])),
      },
    }))
    .toSorted((a, b) => a.send_to.localeCompare(b.send_to));

const movesByOldOwner = (moves: RegionMove[]) => {
  const out: Record<NodeId, [number, NodeId][]> = {};
  for (const { region, from, to } of moves) out[from] = [...(out[from] ?? []), [region, to]];
  return out;
};

test('the seed cached keys sit in the regions the seed logs', () => {
  for (const [region, keys] of Object.entries(seedCached)) {
    for (const key of keys) assert.equal(regionOf(key), Number(region), key);
  }
});

for (const t of seedTables) {
  test(`modulo reproduces the originals’ rebalancing log ${t.change}: mappings, moved regions and move orders`, () => {
    const [before, after] = parseChange(t.change);
    const prev = createPoolMap(before, 'modulo');
    assert.deepEqual(prev.owner, ownerFromLog(t.old));
    const next = resizePoolMap(prev, poolOrder(before, after));
    assert.deepEqual(next.owner, ownerFromLog(t.new));
    assert.equal(next.version, prev.version + 1);
    const moves = planMoves(prev, next);
    assert.deepEqual(movesByOldOwner(moves), fromPython(t.oldNew));
    const removed = before.filter((id) => !after.includes(id));
    assert.deepEqual(
      normalizeOrders(moveOrders(moves, removed)),
      normalizeOrders(fromPython(t.result) as Order[]),
    );
  });
}

// ---- balanced ----

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

function countsOf(owner: readonly NodeId[]): Map<NodeId, number> {
  const counts = new Map<NodeId, number>();
  for (const id of owner) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

function* combinations(n: number, k: number, from = 0): Generator<number[]> {
  if (k === 0) yield [];
  else
    for (let i = from; i <= n - k; i++)
      for (const rest of combinations(n, k - 1, i + 1)) yield [i, ...rest];
}

// Independent of the implementation: try every choice of which nodes get the ceil target.
function bruteMinMoves(prevOwner: readonly NodeId[], nodes: readonly NodeId[]): number {
  const held = countsOf(prevOwner);
  const base = Math.floor(16 / nodes.length);
  let bestKept = 0;
  for (const ceil of combinations(nodes.length, 16 % nodes.length)) {
    let kept = 0;
    nodes.forEach((id, i) => {
      kept += Math.min(held.get(id) ?? 0, ceil.includes(i) ? base + 1 : base);
    });
    bestKept = Math.max(bestKept, kept);
  }
  return 16 - bestKept;
}

function assertBalancedStep(prev: PoolMap, next: PoolMap, label: string): RegionMove[] {
  const m = next.nodes.length;
  const before = countsOf(prev.owner);
  const after = countsOf(next.owner);
  assert.equal(next.owner.length, 16, label);
  for (const id of next.owner) assert.ok(next.nodes.includes(id), `${label}: ${id} not in nodes`);
  for (const id of next.nodes) {
    const c = after.get(id) ?? 0;
    assert.ok(c === Math.floor(16 / m) || c === Math.ceil(16 / m), `${label}: ${id} has ${c}`);
  }
  const moves = planMoves(prev, next);
  assert.equal(moves.length, bruteMinMoves(prev.owner, next.nodes), `${label}: moved count`);
  for (const { region, from, to } of moves) {
    const what = `${label}: region ${region} ${from}→${to}`;
    const fromShrank = (after.get(from) ?? 0) < (before.get(from) ?? 0);
    assert.ok(!next.nodes.includes(from) || fromShrank, `${what} leaves a node not above target`);
    assert.ok(
      (after.get(to) ?? 0) > (before.get(to) ?? 0),
      `${what} feeds a node not under target`,
    );
  }
  return moves;
}

function growBalanced(n: number): PoolMap {
  let map = createPoolMap(['N0'], 'balanced');
  for (let i = 1; i < n; i++) map = resizePoolMap(map, [...map.nodes, `N${i}`]);
  return map;
}

const starts: Record<string, (n: number) => PoolMap> = {
  'grown 1→n': growBalanced,
  modulo: (n) => ({ ...createPoolMap(ids('N', n), 'modulo'), assignment: 'balanced' }),
  // Unbalanced: the last node holds everything the others do not (one region each).
  skewed: (n) => {
    const map = createPoolMap(ids('N', n), 'balanced');
    return { ...map, owner: map.owner.map((_, r) => map.nodes[Math.min(r, n - 1)] ?? 'N0') };
  },
};

const survivorChoices: Record<string, (nodes: NodeId[], s: number) => NodeId[]> = {
  end: (nodes, s) => nodes.slice(0, s),
  front: (nodes, s) => nodes.slice(nodes.length - s),
  middle: (nodes, s) => [
    ...nodes.slice(0, Math.ceil(s / 2)),
    ...nodes.slice(nodes.length - Math.floor(s / 2)),
  ],
  'front, replacing one more': (nodes, s) => nodes.slice(nodes.length - s + 1),
};

for (const [startName, start] of Object.entries(starts)) {
  for (const [choice, survivors] of Object.entries(survivorChoices)) {
    test(`balanced from a ${startName} map: every n→m (1..8) removing from the ${choice} moves the fewest regions, only from removed or over-target nodes`, () => {
      for (let n = 1; n <= 8; n++) {
        for (let m = 1; m <= 8; m++) {
          const prev = start(n);
          const kept = survivors(prev.nodes, Math.min(n, m));
          const added = ids('X', m - kept.length);
          const next = resizePoolMap(prev, [...kept, ...added]);
          const moves = assertBalancedStep(prev, next, `${n}→${m}`);
          if (kept.length === n && startName !== 'skewed') {
            for (const { to } of moves) assert.ok(added.includes(to), `${n}→${m}: only added`);
          }
        }
      }
    });
  }
}

test('balanced: removing D from [A, B, C, D] moves only its 4 regions, 2 to A and 1 each to B, C', () => {
  const prev = createPoolMap(['A', 'B', 'C', 'D'], 'balanced');
  const moves = planMoves(prev, resizePoolMap(prev, ['A', 'B', 'C']));
  assert.deepEqual(moves, [
    { region: 3, from: 'D', to: 'A' },
    { region: 7, from: 'D', to: 'A' },
    { region: 11, from: 'D', to: 'B' },
    { region: 15, from: 'D', to: 'C' },
  ]);
});

test('balanced: four new nodes each take regions from two of the four old ones', () => {
  const prev = createPoolMap(['A', 'B', 'C', 'D'], 'balanced');
  const next = resizePoolMap(prev, ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H']);
  const donors = (to: NodeId) =>
    new Set(
      planMoves(prev, next)
        .filter((mv) => mv.to === to)
        .map((mv) => mv.from),
    );
  for (const id of ['E', 'F', 'G', 'H']) assert.equal(donors(id).size, 2, id);
});

test('balanced: the same inputs give the same map, and an unchanged node list moves nothing', () => {
  const prev = growBalanced(5);
  assert.deepEqual(resizePoolMap(prev, ['N1', 'N3', 'X']), resizePoolMap(prev, ['N1', 'N3', 'X']));
  assert.deepEqual(planMoves(prev, resizePoolMap(prev, prev.nodes)), []);
});

for (const assignment of ['balanced', 'modulo'] as const) {
  test(`a 400-step random walk of ${assignment} resizes (1..8 nodes) keeps every invariant`, () => {
    const rand = createSeededRandom(assignment === 'balanced' ? 1 : 2);
    const randInt = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    let map = createPoolMap(['W0', 'W1', 'W2'], assignment);
    let fresh = 3;
    for (let step = 0; step < 400; step++) {
      const m = randInt(1, MAX_NODES);
      const keep = randInt(0, Math.min(map.nodes.length, m));
      const kept = map.nodes.filter(() => rand() < 0.5).slice(0, keep);
      while (kept.length < m) kept.push(`W${fresh++}`);
      const next = resizePoolMap(map, kept);
      const label = `step ${step}: ${map.nodes.join(',')} → ${kept.join(',')}`;
      assert.equal(next.version, map.version + 1, label);
      assert.equal(next.assignment, assignment, label);
      const roundRobin = Array.from({ length: 16 }, (_, r) => kept[r % m]);
      if (assignment === 'balanced') assertBalancedStep(map, next, label);
      else assert.deepEqual(next.owner, roundRobin, label);
      assert.deepEqual(parsePoolMap(JSON.parse(JSON.stringify(next))), next, label);
      map = next;
    }
  });
}

// ---- validation ----

test('createPoolMap rejects an empty, oversized, duplicated or blank node list', () => {
  const bad: [NodeId[], RegExp][] = [
    [[], /nodes must list 1 to 8 node ids \(got 0 ids\)/],
    [ids('N', 9), /nodes must list 1 to 8 node ids \(got 9 ids\)/],
    [['A', 'B', 'A'], /nodes lists node 'A' more than once/],
    [['A', ''], /nodes\[1\] must be a non-empty string/],
  ];
  for (const [nodes, message] of bad) {
    assert.throws(() => createPoolMap(nodes, 'balanced'), { name: 'PoolMapError', message });
    assert.throws(() => createPoolMap(nodes, 'balanced'), TypeError);
  }
  assert.throws(() => createPoolMap(['A'], 'balanced', 0), /version must be a positive/);
});

test('resizePoolMap rejects node lists that reorder survivors or put new nodes before them', () => {
  const prev = createPoolMap(['A', 'B', 'C'], 'modulo');
  for (const nodes of [['B', 'A'], ['X', 'A', 'B'], ['A', 'X', 'C'], []]) {
    assert.throws(() => resizePoolMap(prev, nodes), TypeError, nodes.join(','));
  }
  assert.throws(() => resizePoolMap(prev, ['C', 'A']), /previous order \(A, C\)/);
});

const good = {
  version: 3,
  assignment: 'balanced',
  nodes: ['a', 'b'],
  owner: ids('', 16).map((_, r) => (r % 2 === 0 ? 'a' : 'b')),
};
const owner15 = good.owner.slice(1);
const ownerX = good.owner.map((id, r) => (r === 3 ? 'x' : id));
const owner5 = good.owner.map((id, r) => (r === 2 ? 5 : id));

const malformed: [string, unknown, RegExp][] = [
  ['null', null, /pool map must be an object \(got null\)/],
  ['an array', [good], /pool map must be an object \(got an array\)/],
  ['a string', 'map', /pool map must be an object \(got 'map'\)/],
  ['no version', { ...good, version: undefined }, /version must be a positive safe integer/],
  ['version 0', { ...good, version: 0 }, /version must be a positive safe integer \(got 0\)/],
  ['version 1.5', { ...good, version: 1.5 }, /version must be a positive safe integer/],
  ['version as a string', { ...good, version: '3' }, /version .* \(got '3'\)/],
  ['version past 2^53', { ...good, version: 2 ** 53 }, /version must be a positive safe integer/],
  ["assignment 'ring'", { ...good, assignment: 'ring' }, /'modulo' or 'balanced' \(got 'ring'\)/],
  ['no nodes', { ...good, nodes: undefined }, /nodes must list 1 to 8 node ids/],
  ['empty nodes', { ...good, nodes: [] }, /nodes must list 1 to 8 node ids \(got 0 ids\)/],
  ['9 nodes', { ...good, nodes: ids('n', 9) }, /nodes must list 1 to 8 node ids \(got 9 ids\)/],
  ['a number as node', { ...good, nodes: [1, 'b'] }, /nodes\[0\] must be a non-empty .*got 1/],
  ['a blank node', { ...good, nodes: ['a', ''] }, /nodes\[1\] must be a non-empty string/],
  ['a repeated node', { ...good, nodes: ['a', 'b', 'a'] }, /nodes lists node 'a' more than once/],
  ['no owner', { ...good, owner: undefined }, /owner must list 16 node ids \(got undefined\)/],
  ['15 owners', { ...good, owner: owner15 }, /owner must list 16 node ids \(got 15 entries\)/],
  ['a stranger owner', { ...good, owner: ownerX }, /owner\[3\] names node 'x' that is not in/],
  ['a number as owner', { ...good, owner: owner5 }, /owner\[2\] must be a node id .*got 5/],
];

for (const [what, input, message] of malformed) {
  test(`parsePoolMap rejects a map with ${what}`, () => {
    assert.throws(() => parsePoolMap(input), { name: 'PoolMapError', message });
  });
}

test('parsePoolMap accepts a good map and returns a copy without unknown fields', () => {
  const input = { ...good, extra: 'ignored' };
  const map = parsePoolMap(input);
  assert.deepEqual(map, good);
  assert.notEqual(map.owner, input.owner);
  assert.notEqual(map.nodes, input.nodes);
});

test('minimumRegionMoves equals what balanced moves, and is below what modulo moves, on every resize 1..8 → 1..8', () => {
  const ids = Array.from({ length: 8 }, (_, i) => `n${i}`);
  for (let from = 1; from <= 8; from++) {
    for (let to = 1; to <= 8; to++) {
      const nodes = ids.slice(0, to);
      const balancedPrev = createPoolMap(ids.slice(0, from), 'balanced');
      const balanced = resizePoolMap(balancedPrev, nodes);
      const minimum = minimumRegionMoves(balancedPrev.owner, nodes);
      assert.equal(planMoves(balancedPrev, balanced).length, minimum, `${from} → ${to}`);
      const moduloPrev = createPoolMap(ids.slice(0, from), 'modulo');
      const modulo = resizePoolMap(moduloPrev, nodes);
      assert.ok(planMoves(moduloPrev, modulo).length >= minimum, `${from} → ${to} modulo`);
    }
  }
  // The seed's 4 → 3 with modulo moves 10; the least possible is 4.
  const four = createPoolMap(['A', 'B', 'C', 'D'], 'modulo');
  assert.equal(minimumRegionMoves(four.owner, ['A', 'B', 'C']), 4);
});
