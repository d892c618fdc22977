import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { it } from 'node:test';
import { forEachLimited, newObjectName } from '../../src/storage/object-store.ts';

it('object names are fresh per upload, fanned out by key hash, and never contain the key', () => {
  const key = '../../etc/passwd?%_ünïcødé';
  const names = new Set(Array.from({ length: 1000 }, () => newObjectName(key)));
  assert.equal(names.size, 1000);
  const prefix = createHash('sha256').update(key).digest('hex').slice(0, 2);
  for (const name of names) {
    assert.match(name, /^[0-9a-f]{2}\/[0-9a-f-]{36}$/);
    assert.ok(name.startsWith(`${prefix}/`));
  }
});

it('forEachLimited visits every item once with at most the limit in flight', async () => {
  let inFlight = 0;
  let peak = 0;
  const seen: number[] = [];
  await forEachLimited([...Array(50).keys()], 4, async (i) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 1));
    seen.push(i);
    inFlight--;
  });
  assert.equal(peak, 4);
  assert.deepEqual(
    seen.toSorted((a, b) => a - b),
    [...Array(50).keys()],
  );
  await forEachLimited([], 4, async () => assert.fail('called on an empty list'));
});
