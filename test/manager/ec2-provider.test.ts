/**
 * The ec2 provider against a stateful fake of EC2 and Auto Scaling (test/helpers/fake-ec2.ts),
 * through the real AWS SDK v3 clients: AWS cannot be reached from here. Each instance that boots
 * announces its node the way an engine-started node does (register with its private address),
 * unless a test keeps it silent. The calls follow the manager's order: a grow starts a new id,
 * a shrink stops the last one started (pool/resize.ts).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  SetDesiredCapacityCommand,
  SetInstanceProtectionCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { createEc2Provider, type Ec2ProviderOptions } from '../../src/manager/providers/ec2.ts';
import { describeAwsError } from '../../src/manager/providers/ec2-engine.ts';
import {
  ClaimRefused,
  type NodeProvider,
  type ProvidedNode,
} from '../../src/manager/providers/provider.ts';
import { createFakeEc2, type FakeEc2, type FakeInstance } from '../helpers/fake-ec2.ts';
import { runPixpool } from '../helpers/processes.ts';

const POOL = 'cache-a';
const GROUP = 'pixpool-nodes';
const PORT = 5001;
const urlOf = (i: FakeInstance) => `http://${i.privateIp}:${PORT}`;

type Mode = Ec2ProviderOptions['mode'];
const settingsFor: Record<Mode, Partial<Ec2ProviderOptions>> = {
  launch: { launchTemplate: 'pixpool-node', launchTemplateVersion: '$Latest' },
  instances: {},
  asg: { asgName: GROUP },
};

interface World {
  fake: FakeEc2;
  /** The provider booting instances announce to (a test may swap it for a restarted one). */
  provider: NodeProvider;
  /** Instances whose node does not announce itself. */
  silent: Set<string> | 'all';
  /** What the announcements of booting instances got back. */
  refusals: Error[];
  create(overrides?: Partial<Ec2ProviderOptions>): NodeProvider;
  /** Instances of no pool and of another pool, with a snapshot to compare against. */
  foreign: FakeInstance[];
  foreignSnapshot(): string;
}

let world: World | undefined;
afterEach(async () => {
  await world?.provider.close();
  world?.fake.restore();
  world = undefined;
});

function setup(mode: Mode, options: { stopped?: number; groupMax?: number } = {}): World {
  const w = { silent: new Set<string>(), refusals: [] as Error[] } as unknown as World;
  w.fake = createFakeEc2({
    onBoot: async (instance) => {
      if (instance.tags['pixpool:pool'] !== POOL) return;
      if (w.silent === 'all' || w.silent.has(instance.id)) return;
      await w.provider
        .register?.({ url: urlOf(instance), ref: instance.id })
        .catch((error: Error) => w.refusals.push(error));
    },
  });
  if (mode === 'asg') {
    w.fake.addGroup({ name: GROUP, max: options.groupMax ?? 8, tags: { 'pixpool:pool': POOL } });
  }
  for (let k = 0; k < (options.stopped ?? (mode === 'instances' ? 8 : 0)); k++) {
    w.fake.addInstance({ state: 'stopped', tags: { 'pixpool:pool': POOL } });
  }
  w.foreign = [
    w.fake.addInstance({ tags: { Name: 'database' } }),
    w.fake.addInstance({ state: 'stopped', tags: {} }),
    w.fake.addInstance({ tags: { 'pixpool:pool': 'other', 'pixpool:node-id': 'node-1' } }),
    w.fake.addInstance({ state: 'stopped', tags: { 'pixpool:pool': 'other' } }),
  ];
  w.foreignSnapshot = () =>
    JSON.stringify(w.foreign.map((i) => [i.id, i.state, i.tags, i.protectedFromScaleIn]));
  w.create = (overrides = {}) =>
    createEc2Provider({
      mode,
      poolName: POOL,
      region: 'eu-west-1',
      ...settingsFor[mode],
      ...overrides,
    });
  w.provider = w.create();
  world = w;
  return w;
}

/** The node ids of the pool's running instances, sorted; each instance must carry one. */
function runningNodes(w: World): string[] {
  return w.fake
    .running(POOL)
    .map((i) => i.tags['pixpool:node-id'] ?? `untagged ${i.id}`)
    .sort();
}

const instanceOf = (w: World, id: string) =>
  w.fake.running(POOL).find((i) => i.tags['pixpool:node-id'] === id) as FakeInstance;

/** Grows the pool 1 → 8 and shrinks it back to 1, one node at a time, checking each step. */
async function growAndShrink(w: World, check: (ids: string[]) => void): Promise<void> {
  const ids: string[] = [];
  for (let n = 1; n <= 8; n++) {
    const id = `node-${n}`;
    const node = await w.provider.start(id);
    ids.push(id);
    await w.fake.settled();
    assert.equal(node.id, id);
    assert.equal(node.url, urlOf(instanceOf(w, id)), 'the node is at its instance address');
    check(ids);
  }
  while (ids.length > 1) {
    await w.provider.stop(ids.pop() as string);
    await w.fake.settled();
    check(ids);
  }
}

const sorted = (ids: string[]) => [...ids].sort();
const calls = <T>(stub: { commandCalls: (c: T) => unknown[] }, command: T) =>
  stub.commandCalls(command).length;

describe('ec2 provider, launch mode', () => {
  it('grown 1 → 8 → 1 leaves exactly n running tagged instances and touches no other', async () => {
    const w = setup('launch');
    const before = w.foreignSnapshot();
    await growAndShrink(w, (ids) => assert.deepEqual(runningNodes(w), sorted(ids)));
    for (const i of w.fake.running(POOL)) {
      assert.equal(i.tags.Name, `pixpool-${POOL}-${i.tags['pixpool:node-id']}`);
    }
    const runs = w.fake.ec2.commandCalls(RunInstancesCommand).map((c) => c.args[0].input);
    assert.equal(runs.length, 8);
    for (const input of runs) {
      assert.deepEqual(input.LaunchTemplate, {
        LaunchTemplateName: 'pixpool-node',
        Version: '$Latest',
      });
      assert.equal(input.MinCount, 1);
      assert.equal(input.MaxCount, 1);
    }
    assert.equal(calls(w.fake.ec2, TerminateInstancesCommand), 7);
    assert.equal(w.foreignSnapshot(), before);
    assert.deepEqual(w.refusals, []);
  });

  it('a restarted manager adopts the n running nodes, launches none and ends the extras', async () => {
    const w = setup('launch');
    const registry: ProvidedNode[] = [];
    for (const id of ['node-1', 'node-2', 'node-3']) registry.push(await w.provider.start(id));
    const stray = w.fake.addInstance({
      tags: { 'pixpool:pool': POOL, 'pixpool:node-id': 'node-9' },
    });
    const before = w.foreignSnapshot();
    await w.provider.close();
    assert.equal(w.fake.running(POOL).length, 4, 'close() ended nothing');

    w.provider = w.create();
    const runsBefore = calls(w.fake.ec2, RunInstancesCommand);
    const resumed = await w.provider.resume([
      ...registry,
      { id: 'node-4', url: 'http://10.9.9.9:5001' },
    ]);
    assert.deepEqual(resumed, [...registry, undefined]);
    assert.equal(calls(w.fake.ec2, RunInstancesCommand), runsBefore, 'launched none');
    assert.equal(w.fake.instance(stray.id)?.state, 'terminated', 'the node no registry names');
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2', 'node-3']);
    assert.equal(w.foreignSnapshot(), before);

    // Adopted nodes are the new provider's own: a shrink ends exactly the drained one's instance.
    const third = instanceOf(w, 'node-3');
    await w.provider.stop('node-3');
    assert.equal(w.fake.instance(third.id)?.state, 'terminated');
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2']);
  });

  it('close() terminates nothing, not even an instance whose node has not announced yet', async () => {
    const w = setup('launch');
    await w.provider.start('node-1');
    await w.provider.start('node-2');
    w.silent = 'all';
    const starting = w.provider.start('node-3');
    await w.fake.settled();
    await w.provider.close();
    await assert.rejects(starting, /the manager stopped while node node-3 started/);
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2', 'node-3']);
    assert.equal(calls(w.fake.ec2, TerminateInstancesCommand), 0);
    assert.equal(calls(w.fake.ec2, StopInstancesCommand), 0);
  });

  it('a start whose instance never announces times out clearly and terminates it', async () => {
    const w = setup('launch');
    w.provider = w.create({ bootTimeoutMs: 50 });
    w.silent = 'all';
    await assert.rejects(
      w.provider.start('node-1'),
      /instance i-\w+, started as node node-1, did not announce itself within 0\.05 s.*user data.*its instance was terminated/,
    );
    const launched = w.fake
      .instances()
      .filter((i) => i.tags['pixpool:pool'] === POOL && i.tags['pixpool:node-id'] === 'node-1');
    assert.deepEqual(
      launched.map((i) => i.state),
      ['terminated'],
    );
    // The lifecycle then stops the node: nothing is left to end, and that is no error.
    await w.provider.stop('node-1');
  });

  it('replacing a failed node terminates its instance and launches a new one under its id', async () => {
    const w = setup('launch');
    await w.provider.start('node-1');
    await w.provider.start('node-2');
    const old = instanceOf(w, 'node-2');
    const fresh = await w.provider.replace?.('node-2');
    await w.fake.settled();
    const now = instanceOf(w, 'node-2');
    assert.notEqual(now.id, old.id);
    assert.deepEqual(fresh, { id: 'node-2', url: urlOf(now) });
    assert.equal(w.fake.instance(old.id)?.state, 'terminated');
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2']);
  });

  it("a node's instance announcing itself at another address is the same node, reported replaced", async () => {
    const w = setup('launch');
    const replaced: ProvidedNode[] = [];
    w.provider.onReplaced((node) => replaced.push(node));
    await w.provider.start('node-1');
    const instance = instanceOf(w, 'node-1');
    const moved = `https://${instance.privateDns}:5443`;
    assert.deepEqual(await w.provider.register?.({ url: moved, ref: instance.id }), {
      id: 'node-1',
      url: moved,
    });
    assert.deepEqual(replaced, [{ id: 'node-1', url: moved }]);
    // Announcing again where it already is changes nothing.
    await w.provider.register?.({ url: moved, ref: instance.id });
    assert.equal(replaced.length, 1);
  });

  it('deletePool() terminates every instance of the pool and only those', async () => {
    const w = setup('launch');
    for (const id of ['node-1', 'node-2', 'node-3']) await w.provider.start(id);
    const before = w.foreignSnapshot();
    await w.provider.deletePool?.();
    assert.deepEqual(runningNodes(w), []);
    assert.equal(w.foreignSnapshot(), before);
  });

  it('an SDK error becomes a clear message that names what failed', async () => {
    const w = setup('launch');
    w.provider = w.create({ launchTemplate: 'no-such-template' });
    await assert.rejects(
      w.provider.start('node-1'),
      /launching an instance for node node-1 from launch template no-such-template failed \(ec2:RunInstances: InvalidLaunchTemplateName\.NotFoundException: /,
    );
    const denied = describeAwsError('launching an instance', 'ec2:RunInstances', {
      name: 'UnauthorizedOperation',
      message: 'You are not authorized to perform this operation.',
    });
    assert.match(denied.message, /may not call ec2:RunInstances: add it to its IAM policy/);
  });
});

describe('ec2 provider: announcements the engine does not back are refused', () => {
  const refused = async (w: World, claim: { url: string; ref: string }, why: RegExp) => {
    const error = await w.provider.register?.(claim).then(
      () => assert.fail(`accepted ${JSON.stringify(claim)}`),
      (e: Error) => e,
    );
    assert.ok(error instanceof ClaimRefused, `${error?.name}: ${error?.message}`);
    assert.match(error.message, why);
  };

  it('unknown, foreign, untagged, stopped, misaddressed or unawaited instances', async () => {
    const w = setup('launch');
    await w.provider.start('node-1');
    const [untagged, , otherPool] = w.foreign as [FakeInstance, FakeInstance, FakeInstance];
    const noNodeId = w.fake.addInstance({ tags: { 'pixpool:pool': POOL } });
    const unawaited = w.fake.addInstance({
      tags: { 'pixpool:pool': POOL, 'pixpool:node-id': 'node-7' },
    });
    const stopped = w.fake.addInstance({ state: 'stopped', tags: { 'pixpool:pool': POOL } });
    const node1 = instanceOf(w, 'node-1');
    const before = JSON.stringify(w.fake.instances());
    const mutations = () => [
      calls(w.fake.ec2, RunInstancesCommand),
      calls(w.fake.ec2, TerminateInstancesCommand),
      calls(w.fake.ec2, CreateTagsCommand),
      calls(w.fake.ec2, DeleteTagsCommand),
    ];
    const mutated = mutations();

    await refused(
      w,
      { url: 'http://10.0.0.99:5001', ref: 'i-00000000000000fff' },
      /EC2 knows no instance i-00000000000000fff/,
    );
    await refused(
      w,
      { url: 'http://10.0.0.99:5001', ref: 'node-1' },
      /"node-1" is not an EC2 instance id/,
    );
    await refused(
      w,
      { url: urlOf(otherPool), ref: otherPool.id },
      /belongs to pool "other", not "cache-a"/,
    );
    await refused(w, { url: urlOf(untagged), ref: untagged.id }, /has no pixpool:pool tag/);
    await refused(w, { url: urlOf(stopped), ref: stopped.id }, /is stopped, not running/);
    await refused(
      w,
      { url: 'http://10.200.0.1:5001', ref: node1.id },
      /http:\/\/10\.200\.0\.1:5001 is not an address of instance/,
    );
    await refused(w, { url: `ftp://${node1.privateIp}`, ref: node1.id }, /is not an http\(s\) URL/);
    await refused(w, { url: `${urlOf(node1)}/admin`, ref: node1.id }, /must be an origin/);
    await refused(
      w,
      { url: urlOf(noNodeId), ref: noNodeId.id },
      /has no pixpool:node-id tag: no start of this manager launched it/,
    );
    await refused(
      w,
      { url: urlOf(unawaited), ref: unawaited.id },
      /tagged as node node-7, which is not in the pool and not starting/,
    );
    assert.equal(JSON.stringify(w.fake.instances()), before, 'no instance changed');
    assert.deepEqual(mutations(), mutated, 'no call changed anything');
  });

  it('asg: an instance of the pool outside the group, or with no start waiting', async () => {
    const w = setup('asg');
    await w.provider.start('node-1');
    const outside = w.fake.addInstance({ tags: { 'pixpool:pool': POOL } });
    await refused(
      w,
      { url: urlOf(outside), ref: outside.id },
      /is not in Auto Scaling group pixpool-nodes/,
    );
    const elsewhere = 'other-group';
    w.fake.addGroup({ name: elsewhere, tags: { 'pixpool:pool': POOL } });
    const inOther = w.fake.addInstance({ tags: { 'pixpool:pool': POOL }, group: elsewhere });
    await refused(
      w,
      { url: urlOf(inOther), ref: inOther.id },
      /not in Auto Scaling group pixpool-nodes \(it is in other-group\)/,
    );
    const extra = w.fake.addInstance({ tags: { 'pixpool:pool': POOL }, group: GROUP });
    await refused(
      w,
      { url: urlOf(extra), ref: extra.id },
      /has no pixpool:node-id tag and no node is starting/,
    );
    assert.equal(extra.tags['pixpool:node-id'], undefined);
    assert.equal(extra.protectedFromScaleIn, false);
  });
});

describe('ec2 provider, asg mode', () => {
  it('desired capacity is the pool size at every step; a shrink ends exactly the drained node', async () => {
    const w = setup('asg');
    const before = w.foreignSnapshot();
    const drained: string[] = [];
    const stop = w.provider.stop.bind(w.provider);
    w.provider.stop = async (id) => {
      drained.push(instanceOf(w, id).id);
      return stop(id);
    };
    await growAndShrink(w, (ids) => {
      assert.deepEqual(runningNodes(w), sorted(ids));
      assert.equal(w.fake.group(GROUP)?.desired, ids.length);
      for (const i of w.fake.running(POOL)) assert.ok(i.protectedFromScaleIn, `${i.id} protected`);
    });
    const terminations = w.fake.autoScaling
      .commandCalls(TerminateInstanceInAutoScalingGroupCommand)
      .map((c) => c.args[0].input);
    assert.deepEqual(
      terminations,
      drained.map((InstanceId) => ({ InstanceId, ShouldDecrementDesiredCapacity: true })),
    );
    for (const c of w.fake.autoScaling.commandCalls(SetDesiredCapacityCommand)) {
      assert.equal(c.args[0].input.HonorCooldown, false);
    }
    assert.equal(calls(w.fake.ec2, TerminateInstancesCommand), 0, 'only through the group');
    assert.equal(w.foreignSnapshot(), before);
    assert.deepEqual(w.refusals, []);
  });

  it('a restarted manager adopts n, launches none, ends extras and corrects desired capacity', async () => {
    const w = setup('asg');
    const registry: ProvidedNode[] = [];
    for (const id of ['node-1', 'node-2', 'node-3']) registry.push(await w.provider.start(id));
    await w.provider.close();
    // While no manager ran, someone raised the group: its new instance announces to nobody.
    w.silent = 'all';
    const extra = w.fake.addInstance({ group: GROUP, tags: { 'pixpool:pool': POOL } });
    assert.equal(w.fake.group(GROUP)?.desired, 4);

    w.provider = w.create();
    const before = w.foreignSnapshot();
    const resumed = await w.provider.resume(registry);
    await w.fake.settled();
    assert.deepEqual(resumed, registry);
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2', 'node-3']);
    assert.equal(w.fake.group(GROUP)?.desired, 3);
    assert.equal(calls(w.fake.ec2, RunInstancesCommand), 0);
    assert.equal(w.foreignSnapshot(), before);
    assert.deepEqual(
      w.fake.autoScaling
        .commandCalls(TerminateInstanceInAutoScalingGroupCommand)
        .map((c) => c.args[0].input),
      [{ InstanceId: extra.id, ShouldDecrementDesiredCapacity: true }],
    );
    assert.equal(extra.state, 'terminated');
  });

  it("replacing a failed node keeps the group's size and gives its replacement the node's id", async () => {
    const w = setup('asg');
    await w.provider.start('node-1');
    await w.provider.start('node-2');
    const old = instanceOf(w, 'node-2');
    const fresh = await w.provider.replace?.('node-2');
    await w.fake.settled();
    const now = instanceOf(w, 'node-2');
    assert.notEqual(now.id, old.id);
    assert.deepEqual(fresh, { id: 'node-2', url: urlOf(now) });
    assert.ok(now.protectedFromScaleIn);
    assert.deepEqual(
      w.fake.autoScaling.commandCalls(TerminateInstanceInAutoScalingGroupCommand)[0]?.args[0].input,
      { InstanceId: old.id, ShouldDecrementDesiredCapacity: false },
    );
    assert.equal(w.fake.group(GROUP)?.desired, 2);
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2']);
  });

  it("a crashed node's replacement, launched by the group, joins once its node is replaced", async () => {
    const w = setup('asg');
    await w.provider.start('node-1');
    await w.provider.start('node-2');
    const dead = instanceOf(w, 'node-2');
    w.fake.crash(dead.id);
    await w.fake.settled();
    // The group replaced the instance at once; nothing waits for a node yet, so it is refused
    // (its node keeps announcing until it is accepted).
    const [fresh] = w.fake.running(POOL).filter((i) => !i.tags['pixpool:node-id']);
    assert.ok(fresh, 'the group launched a replacement');
    assert.match(w.refusals.map((e) => e.message).join(), /no node is starting/);
    const replaced = w.provider.replace?.('node-2');
    // As a node does: announce again until accepted (replace() first looks for the dead one).
    let announced: ProvidedNode | undefined;
    for (let attempt = 0; !announced && attempt < 100; attempt++) {
      announced = await w.provider
        .register?.({ url: urlOf(fresh), ref: fresh.id })
        .catch((error: Error) => {
          if (!(error instanceof ClaimRefused)) throw error;
          return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5));
        });
    }
    assert.deepEqual(await replaced, { id: 'node-2', url: urlOf(fresh) });
    assert.deepEqual(announced, { id: 'node-2', url: urlOf(fresh) });
    assert.ok(fresh.protectedFromScaleIn);
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2']);
    assert.equal(w.fake.group(GROUP)?.desired, 2);
  });

  it('a start whose instance never announces times out and leaves the group at the pool size', async () => {
    const w = setup('asg');
    await w.provider.start('node-1');
    w.provider = w.create({ bootTimeoutMs: 50 });
    await w.provider.resume([{ id: 'node-1', url: urlOf(instanceOf(w, 'node-1')) }]);
    w.silent = 'all';
    await assert.rejects(
      w.provider.start('node-2'),
      /no instance of Auto Scaling group pixpool-nodes announced itself as node node-2 within 0\.05 s.*its instance was terminated/,
    );
    await w.fake.settled();
    assert.equal(w.fake.group(GROUP)?.desired, 1);
    assert.deepEqual(runningNodes(w), ['node-1']);
  });

  it('a group at its maximum size says so', async () => {
    const w = setup('asg', { groupMax: 1 });
    await w.provider.start('node-1');
    await assert.rejects(
      w.provider.start('node-2'),
      /can hold at most 1 instance\(s\); raise its MaxSize/,
    );
    assert.equal(w.fake.group(GROUP)?.desired, 1);
  });

  it('close() ends nothing; deletePool() lifts protection and empties the group', async () => {
    const w = setup('asg');
    for (const id of ['node-1', 'node-2']) await w.provider.start(id);
    await w.provider.close();
    assert.equal(calls(w.fake.autoScaling, TerminateInstanceInAutoScalingGroupCommand), 0);
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2']);
    const before = w.foreignSnapshot();
    w.provider = w.create();
    await w.provider.deletePool?.();
    assert.deepEqual(runningNodes(w), []);
    assert.equal(w.fake.group(GROUP)?.desired, 0);
    const unprotect = w.fake.autoScaling.commandCalls(SetInstanceProtectionCommand).at(-1);
    assert.equal(unprotect?.args[0].input.ProtectedFromScaleIn, false);
    assert.equal(w.foreignSnapshot(), before);
  });
});

describe('ec2 provider, instances mode (a pre-provisioned pool)', () => {
  it('grown 1 → 8 → 1 starts and stops tagged instances, untagging the stopped ones', async () => {
    const w = setup('instances');
    const before = w.foreignSnapshot();
    await growAndShrink(w, (ids) => {
      assert.deepEqual(runningNodes(w), sorted(ids));
      const stopped = w.fake
        .instances()
        .filter((i) => i.tags['pixpool:pool'] === POOL && i.state === 'stopped');
      assert.equal(stopped.length, 8 - ids.length);
      for (const i of stopped) assert.equal(i.tags['pixpool:node-id'], undefined);
    });
    assert.equal(calls(w.fake.ec2, RunInstancesCommand), 0);
    assert.equal(calls(w.fake.ec2, TerminateInstancesCommand), 0);
    assert.equal(w.foreignSnapshot(), before);
  });

  it('says when no stopped instance is left, and ends nothing on close()', async () => {
    const w = setup('instances', { stopped: 1 });
    await w.provider.start('node-1');
    await assert.rejects(
      w.provider.start('node-2'),
      /no stopped instance tagged pixpool:pool=cache-a is free to start as node node-2/,
    );
    await w.provider.close();
    assert.deepEqual(runningNodes(w), ['node-1']);
    assert.equal(calls(w.fake.ec2, StopInstancesCommand), 0);
  });

  it('a restarted manager adopts n and stops the extras; a silent start is stopped', async () => {
    const w = setup('instances');
    const registry = [await w.provider.start('node-1'), await w.provider.start('node-2')];
    await w.provider.start('node-3');
    await w.provider.close();
    w.provider = w.create({ bootTimeoutMs: 50 });
    const starts = calls(w.fake.ec2, StartInstancesCommand);
    assert.deepEqual(await w.provider.resume(registry), registry);
    assert.equal(calls(w.fake.ec2, StartInstancesCommand), starts);
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2']);

    w.silent = 'all';
    await assert.rejects(
      w.provider.start('node-3'),
      /did not announce itself.*its instance was stopped/,
    );
    assert.deepEqual(runningNodes(w), ['node-1', 'node-2']);
    assert.equal(
      w.fake.instances().filter((i) => i.tags['pixpool:node-id'] === 'node-3').length,
      0,
      'untagged again',
    );
  });

  it('replacing a failed node stops its instance and starts another; deletePool() stops all', async () => {
    const w = setup('instances');
    await w.provider.start('node-1');
    const old = instanceOf(w, 'node-1');
    const fresh = await w.provider.replace?.('node-1');
    const now = instanceOf(w, 'node-1');
    assert.notEqual(now.id, old.id);
    assert.deepEqual(fresh, { id: 'node-1', url: urlOf(now) });
    assert.equal(old.state, 'stopped');
    assert.equal(old.tags['pixpool:node-id'], undefined);
    const before = w.foreignSnapshot();
    await w.provider.deletePool?.();
    assert.deepEqual(runningNodes(w), []);
    const tagged = w.fake.instances().filter((i) => i.tags['pixpool:pool'] === POOL);
    assert.deepEqual(new Set(tagged.map((i) => i.state)), new Set(['stopped']));
    assert.ok(
      tagged.every((i) => i.tags['pixpool:node-id'] === undefined),
      'untagged',
    );
    assert.equal(w.foreignSnapshot(), before);
  });
});

describe('ec2 provider settings', () => {
  it('refuses settings that do not fit the mode', () => {
    const base = { poolName: POOL, region: 'eu-west-1' };
    assert.throws(
      () => createEc2Provider({ ...base, mode: 'launch' }),
      /--ec2-mode launch needs --ec2-launch-template/,
    );
    assert.throws(
      () => createEc2Provider({ ...base, mode: 'asg' }),
      /--ec2-mode asg needs --ec2-asg/,
    );
    assert.throws(
      () => createEc2Provider({ ...base, mode: 'instances', asgName: 'g' }),
      /--ec2-asg is for --ec2-mode asg, not instances/,
    );
    assert.throws(
      () =>
        createEc2Provider({
          ...base,
          mode: 'launch',
          launchTemplate: 'tmpl-1',
          launchTemplateVersion: 'latest',
        }),
      /--ec2-launch-template-version must be a version number, \$Latest or \$Default/,
    );
    assert.throws(
      () => createEc2Provider({ ...base, poolName: 'no spaces', mode: 'instances' }),
      /A pool name is 1 to 63 letters/,
    );
  });

  it('the manager command stops at a bad ec2 flag with one line naming it', async () => {
    const run = async (args: string[]) => {
      const result = await runPixpool(['manager', '--provider', 'ec2', ...args]);
      return { code: result.code, stderr: result.stderr.trim() };
    };
    const cases: [string[], RegExp][] = [
      [[], /^pixpool: --ec2-mode launch needs --ec2-launch-template/],
      [
        ['--ec2-mode', 'fleet'],
        /'--ec2-mode <mode>' argument 'fleet' is invalid\. Allowed choices are launch, instances, asg\./,
      ],
      [
        ['--ec2-mode', 'asg', '--ec2-boot-timeout-s', '0', '--ec2-asg', 'g'],
        /--ec2-boot-timeout-s.*Expected a number of seconds above 0\./,
      ],
      [['--pool-name', 'a b', '--ec2-mode', 'instances'], /--pool-name.*A pool name is 1 to 63/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    for (const [k, [args, expected]] of cases.entries()) {
      const result = results[k];
      assert.equal(result?.code, 1, `${args.join(' ')}: ${result?.stderr}`);
      assert.equal(result?.stderr.split('\n').length, 1, result?.stderr);
      assert.match(result?.stderr ?? '', expected);
    }
  });
});
