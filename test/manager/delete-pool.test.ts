/**
 * `pixpool delete-pool`: the command ends every node of an engine pool and nothing else. For
 * ec2 it runs in this process, through the command's own parsing and action (src/cli.ts), since
 * aws-sdk-client-mock answers only the SDK clients of this process; the fake EC2 holds the
 * pool's instances beside untagged ones and another pool's. For kubernetes, and for every bad
 * input (which must stop before any engine is asked anything), it runs as a real process.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { program } from '../../src/cli.ts';
import { NODE_TAG, POOL_TAG } from '../../src/manager/providers/ec2-options.ts';
import { createFakeEc2, type FakeEc2, type FakeInstance } from '../helpers/fake-ec2.ts';
import { startFakeKubeApi } from '../helpers/fake-kube-api.ts';
import { runPixpool } from '../helpers/processes.ts';

const POOL = 'doomed';
const GROUP = 'doomed-nodes';

let fake: FakeEc2 | undefined;
afterEach(() => {
  fake?.restore();
  fake = undefined;
  mock.restoreAll();
});

/** Runs `pixpool delete-pool <args>` in this process; resolves to what it printed. */
async function deletePoolHere(args: string[]): Promise<string[]> {
  const printed: string[] = [];
  mock.method(console, 'log', (line: string) => printed.push(line));
  await program.parseAsync(['delete-pool', ...args], { from: 'user' });
  mock.restoreAll();
  return printed;
}

/** Runs `pixpool delete-pool <args>` as a process with no terminal (stdin closed). */
async function deletePoolProcess(args: string[]) {
  const result = await runPixpool(['delete-pool', ...args]);
  return { code: result.code, stdout: result.stdout.trim(), stderr: result.stderr.trim() };
}

/** Instances that are not the pool's: none untagged, none of another pool may change. */
function bystanders(f: FakeEc2) {
  const list = [
    f.addInstance(),
    f.addInstance({ tags: { Name: 'web' } }),
    f.addInstance({ tags: { [POOL_TAG]: 'other-pool', [NODE_TAG]: 'node-a' } }),
  ];
  const snapshot = JSON.stringify(list);
  return { list, unchanged: () => JSON.stringify(list) === snapshot };
}

const terminatedIds = (f: FakeEc2) =>
  f.ec2.commandCalls(TerminateInstancesCommand).flatMap((c) => c.args[0].input.InstanceIds ?? []);

describe('pixpool delete-pool', () => {
  it('ec2 launch: terminates every instance tagged with the pool, and only those', async () => {
    fake = createFakeEc2();
    const others = bystanders(fake);
    const pool: FakeInstance[] = [
      fake.addInstance({ tags: { [POOL_TAG]: POOL, [NODE_TAG]: 'node-1' } }),
      fake.addInstance({ tags: { [POOL_TAG]: POOL, [NODE_TAG]: 'node-2' } }),
      fake.addInstance({ tags: { [POOL_TAG]: POOL }, state: 'stopped' }),
    ];
    const printed = await deletePoolHere([
      '--provider',
      'ec2',
      '--pool-name',
      POOL,
      '--ec2-launch-template',
      'pixpool-node',
      '--yes',
    ]);
    for (const i of pool) assert.equal(i.state, 'terminated', i.id);
    assert.ok(others.unchanged(), 'no other instance changed');
    assert.deepEqual(terminatedIds(fake).sort(), pool.map((i) => i.id).sort());
    assert.match(printed[0] ?? '', /^deleted pool "doomed" \(instances tagged pixpool:pool=doomed/);
    assert.deepEqual(printed.slice(1), [
      `  instance ${pool[0]?.id} (node node-1): terminated`,
      `  instance ${pool[1]?.id} (node node-2): terminated`,
      `  instance ${pool[2]?.id}: terminated`,
    ]);
  });

  it('ec2 asg: ends the pool’s instances in the group, none other, with nothing relaunched', async () => {
    fake = createFakeEc2();
    const others = bystanders(fake);
    fake.addGroup({ name: GROUP, min: 2, max: 4, desired: 2, tags: { [POOL_TAG]: POOL } });
    await fake.settled();
    const members = fake.running(POOL);
    assert.equal(members.length, 2);
    for (const i of members) i.protectedFromScaleIn = true;
    // Attached to the group by hand, without the pool's tag: never touched.
    const stranger = fake.addInstance({ group: GROUP, tags: { Name: 'attached-by-hand' } });
    assert.equal(fake.group(GROUP)?.desired, 3);
    const printed = await deletePoolHere([
      '--provider',
      'ec2',
      '--pool-name',
      POOL,
      '--ec2-mode',
      'asg',
      '--ec2-asg',
      GROUP,
      '--yes',
    ]);
    await fake.settled();
    assert.equal(fake.group(GROUP)?.desired, 1, 'what is left: the instance attached by hand');
    assert.equal(fake.group(GROUP)?.min, 1, 'the minimum lowered only as far as needed');
    for (const i of members) assert.equal(i.state, 'terminated', i.id);
    assert.deepEqual(fake.running(POOL), [], 'and the group launched none in their place');
    assert.equal(stranger.state, 'running');
    assert.ok(others.unchanged(), 'no other instance changed');
    assert.deepEqual(terminatedIds(fake), [], 'the group ended its own instances');
    assert.equal(
      printed[1],
      `  Auto Scaling group ${GROUP}: desired capacity 3 → 1, minimum 2 → 1`,
    );
    assert.equal(printed.length, 4);
  });

  it('kubernetes: scales the StatefulSet to 0, leaving pods it does not own', async () => {
    const api = await startFakeKubeApi({ replicas: 2 });
    try {
      api.addPod({ name: 'bystander', labels: { app: 'web' } });
      const result = await deletePoolProcess([
        '--provider',
        'kubernetes',
        '--kube-api-url',
        api.url,
        '--kube-namespace',
        api.namespace,
        '--kube-statefulset',
        api.statefulSet,
        '--yes',
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /deleted pool "pixpool" \(StatefulSet /);
      assert.match(result.stdout, /scaled from 2 pod\(s\) to 0/);
      assert.equal(api.replicas(), 0);
      assert.deepEqual(
        api.pods().map((p) => p.metadata.name),
        ['bystander'],
      );
    } finally {
      await api.close();
    }
  });

  it('refuses with one line and exit 1: no engine provider, no --yes, bad flags', async () => {
    const ec2 = ['--provider', 'ec2'];
    const cases: [string[], RegExp][] = [
      [[], /^pixpool: delete-pool is for the engine providers .*the local provider's nodes/],
      [['--provider', 'static'], /^pixpool: delete-pool is for the engine providers .*static/],
      [
        [...ec2, '--ec2-launch-template', 'pixpool-node'],
        /^pixpool: refusing to delete pool "pixpool" .* without confirmation: pass --yes\.$/,
      ],
      [
        ['--provider', 'kubernetes'],
        /^pixpool: refusing to delete pool "pixpool" \(StatefulSet pixpool-node\).*pass --yes\.$/,
      ],
      [[...ec2, '--yes'], /^pixpool: --ec2-mode launch needs --ec2-launch-template/],
      [[...ec2, '--ec2-mode', 'fleet', '--yes'], /'--ec2-mode <mode>' argument 'fleet' is invalid/],
      [[...ec2, '--pool-name', 'a b', '--yes'], /--pool-name.*A pool name is 1 to 63/],
      [['--provider', 'nomad', '--yes'], /'--provider <name>' argument 'nomad' is invalid/],
    ];
    const results = await Promise.all(cases.map(([args]) => deletePoolProcess(args)));
    for (const [k, [args, expected]] of cases.entries()) {
      const result = results[k];
      assert.equal(result?.code, 1, `${args.join(' ')}: ${result?.stderr}`);
      assert.equal(result?.stderr.split('\n').length, 1, result?.stderr);
      assert.match(result?.stderr ?? '', expected);
      assert.equal(result?.stdout, '');
    }
  });
});
