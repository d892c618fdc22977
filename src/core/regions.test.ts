import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { REGION_COUNT, regionOf } from './regions.ts';

const vectors: [key: string, region: number][] = [
  ['test', 0],
  ['test123', 12],
  ['testabc', 12],
  ['k1', 11],
  ['k2', 6],
  ['123', 2],
  ['cat', 13],
  ['', 13],
];

test('there are 16 regions', () => {
  assert.equal(REGION_COUNT, 16);
});

for (const [key, region] of vectors) {
  test(`key ${JSON.stringify(key)} falls in region ${region} (a known MD5 vector)`, () => {
    assert.equal(regionOf(key), region);
  });
}

test('a non-ASCII key is hashed as UTF-8 and takes the first hex digit of the digest', () => {
  for (const key of ['café-é.png', '猫の写真', '😀 emoji', 'Ωmega']) {
    const bytes = new TextEncoder().encode(key);
    const hex = createHash('md5').update(bytes).digest('hex');
    assert.equal(regionOf(key), Number.parseInt(hex.charAt(0), 16), key);
  }
});

test('every region is reachable and each lies in 0..15', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const r = regionOf(`key-${i}`);
    assert.ok(Number.isInteger(r) && r >= 0 && r < REGION_COUNT);
    seen.add(r);
  }
  assert.equal(seen.size, REGION_COUNT);
});

test('an image variant’s entry key (key/variant) is in its key’s region', () => {
  for (const key of ['café-é.png', 'cat', 'Ωmega']) {
    assert.equal(regionOf(`${key}/w256h.inside.webp.q`), regionOf(key), key);
  }
});
