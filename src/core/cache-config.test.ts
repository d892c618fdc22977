import assert from 'node:assert/strict';
import { it } from 'node:test';
import { capacityLimitMb, MB, parsePolicy } from './cache-config.ts';
import { PixpoolError } from './errors.ts';
import { POLICIES } from './stores/store.ts';

it('accepts every policy by name in any case, and "random" for RR', () => {
  for (const policy of POLICIES) {
    assert.equal(parsePolicy(policy), policy);
    assert.equal(parsePolicy(` ${policy.toLowerCase()} `), policy);
  }
  assert.equal(parsePolicy('Sieve'), 'SIEVE');
  assert.equal(parsePolicy('RANDOM'), 'RR');
});

it('refuses an unknown policy with a 400 that names the ones it knows', () => {
  for (const bad of ['', 'fifo', 'sieves', 'S3-FIFO', 3, null, undefined]) {
    assert.throws(
      () => parsePolicy(bad),
      (error: unknown) =>
        error instanceof PixpoolError &&
        error.status === 400 &&
        POLICIES.every((p) => error.message.includes(p)),
      String(bad),
    );
  }
});

it("caps capacity at 90% of the machine's memory, or of a container's smaller limit", () => {
  const GiB = 1024 * MB;
  assert.equal(capacityLimitMb(10 * GiB), 9216);
  assert.equal(capacityLimitMb(10 * GiB, 0), 9216, 'no limit');
  assert.equal(capacityLimitMb(10 * GiB, 2 ** 64), 9216, 'a limit of "max" (cgroup v2)');
  assert.equal(capacityLimitMb(10 * GiB, 512 * MB), 460, 'a 512 MiB container');
});
