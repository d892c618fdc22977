/**
 * A small stateful EC2 and Auto Scaling in memory, answering the real SDK v3 clients through
 * aws-sdk-client-mock: every EC2Client and AutoScalingClient in this process talks to it until
 * restore(). Cloud APIs cannot be reached from the tests, so this is where the engine's rules
 * live for them; it keeps only what pixpool's providers act on:
 *
 * - instances: id, state, tags, private IP and DNS name, group membership, scale-in protection.
 *   An instance boots a tick after RunInstances or StartInstances (pending, then running), and
 *   onBoot(instance) is called then: a test announces its node from there. Stops and
 *   terminations take effect at once (onShutdown(instance) is called then); terminated
 *   instances stay listed, as in EC2.
 * - launch templates by name or id; Auto Scaling groups with min, max and desired capacity,
 *   tags propagated at launch, and AWS's reconciliation: a group short of its desired capacity
 *   launches instances, one above it terminates unprotected instances (newest first), and an
 *   instance of a group terminated outside the group's own calls is replaced.
 * - errors by AWS's names (InvalidInstanceID.NotFound, ValidationError, …) for what AWS refuses.
 *
 * Untagged instances and other pools' instances are added with addInstance(), so a test can show
 * that a provider never touches them.
 */
import {
  AutoScalingClient,
  AutoScalingServiceException,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  SetDesiredCapacityCommand,
  SetInstanceProtectionCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  type Filter,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';

export type InstanceState =
  | 'pending'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'shutting-down'
  | 'terminated';

export interface FakeInstance {
  id: string;
  state: InstanceState;
  tags: Record<string, string>;
  privateIp: string;
  privateDns: string;
  publicIp: string | undefined;
  /** The Auto Scaling group it belongs to. */
  group: string | undefined;
  /** In its group: Pending, InService, Terminating, Terminated. */
  lifecycle: string | undefined;
  protectedFromScaleIn: boolean;
  launchedAt: Date;
}

export interface FakeGroup {
  name: string;
  min: number;
  max: number;
  desired: number;
  /** Tags every instance the group launches gets. */
  tags: Record<string, string>;
}

export interface FakeEc2Options {
  /**
   * Called when an instance starts running (after RunInstances, StartInstances or a group
   * launch); settled() waits for what it returns.
   */
  onBoot?: (instance: FakeInstance) => void | Promise<void>;
  /**
   * Called when a pending or running instance is stopped or terminated (by a call, by its group,
   * or crash()): a test ends the node process it started in onBoot, as the machine's end does.
   */
  onShutdown?: (instance: FakeInstance) => void;
  /**
   * The private IP of the n-th instance (default 10.0.x.y, all different). A suite that runs real
   * nodes on this host gives 127.0.0.1, so a node's URL names its instance's address.
   */
  privateIp?: (n: number) => string;
  /** Launch templates RunInstances accepts, by name or id. */
  launchTemplates?: string[];
}

const ec2Error = (name: string, message: string) =>
  new EC2ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: 400 }, message });
const asgError = (message: string) =>
  new AutoScalingServiceException({
    name: 'ValidationError',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message,
  });

const STATE_CODES: Record<InstanceState, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export function createFakeEc2(options: FakeEc2Options = {}) {
  const instances = new Map<string, FakeInstance>();
  const groups = new Map<string, FakeGroup>();
  const templates = new Set(options.launchTemplates ?? ['pixpool-node', 'lt-0a1b2c3d4e5f60718']);
  const booting = new Set<Promise<void>>();
  let next = 1;

  function create(fields: Partial<FakeInstance>): FakeInstance {
    const n = next++;
    const ip = options.privateIp?.(n) ?? `10.0.${n >> 8}.${n & 255}`;
    const instance: FakeInstance = {
      id: `i-${n.toString(16).padStart(17, '0')}`,
      state: 'pending',
      tags: {},
      privateIp: ip,
      privateDns: `ip-${ip.replaceAll('.', '-')}.eu-west-1.compute.internal`,
      publicIp: undefined,
      group: undefined,
      lifecycle: undefined,
      protectedFromScaleIn: false,
      launchedAt: new Date(Date.UTC(2026, 0, 1) + n * 1000),
      ...fields,
    };
    instances.set(instance.id, instance);
    return instance;
  }

  /** Pending → running a tick later, as EC2's boot is never synchronous with its call. */
  function boot(instance: FakeInstance): void {
    instance.state = 'pending';
    const done = new Promise<void>((resolve) => setImmediate(resolve))
      .then(async () => {
        if (instance.state !== 'pending') return; // stopped or terminated meanwhile
        instance.state = 'running';
        if (instance.group) instance.lifecycle = 'InService';
        await options.onBoot?.(instance);
      })
      .finally(() => booting.delete(done));
    booting.add(done);
  }

  function find(id: string | undefined): FakeInstance {
    if (!id || !/^i-[0-9a-f]{8,17}$/.test(id)) {
      throw ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    }
    const instance = instances.get(id);
    if (!instance) {
      throw ec2Error('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    return instance;
  }

  const gone = (i: FakeInstance) => i.state === 'shutting-down' || i.state === 'terminated';

  /** The instance leaves `previous` for a state in which nothing runs on it. */
  function halted(instance: FakeInstance, previous: InstanceState): void {
    if (previous === 'pending' || previous === 'running') options.onShutdown?.(instance);
  }

  function end(instance: FakeInstance): void {
    if (gone(instance)) return;
    const previous = instance.state;
    instance.state = 'terminated';
    halted(instance, previous);
    if (instance.group) {
      instance.lifecycle = 'Terminated';
      const group = groups.get(instance.group);
      instance.group = undefined;
      if (group) reconcile(group);
    }
  }

  /** What Auto Scaling does on its own: brings the group's live instances to desired. */
  function reconcile(group: FakeGroup): void {
    const live = [...instances.values()].filter((i) => i.group === group.name && !gone(i));
    for (let k = live.length; k < group.desired; k++) {
      boot(
        create({
          group: group.name,
          lifecycle: 'Pending',
          tags: { ...group.tags, 'aws:autoscaling:groupName': group.name },
        }),
      );
    }
    const removable = live.filter((i) => !i.protectedFromScaleIn).reverse();
    for (let k = live.length; k > group.desired && removable.length > 0; k--) {
      end(removable.shift() as FakeInstance);
    }
  }

  function matches(instance: FakeInstance, filter: Filter): boolean {
    const values = filter.Values ?? [];
    const name = filter.Name ?? '';
    if (name === 'instance-state-name') return values.includes(instance.state);
    if (name === 'instance-id') return values.includes(instance.id);
    if (name === 'tag-key') return values.some((key) => key in instance.tags);
    if (name.startsWith('tag:')) {
      const value = instance.tags[name.slice(4)];
      return value !== undefined && values.includes(value);
    }
    throw ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
  }

  const describe = (instance: FakeInstance) => ({
    InstanceId: instance.id,
    State: { Name: instance.state, Code: STATE_CODES[instance.state] },
    Tags: Object.entries(instance.tags).map(([Key, Value]) => ({ Key, Value })),
    PrivateIpAddress: gone(instance) ? undefined : instance.privateIp,
    PrivateDnsName: gone(instance) ? '' : instance.privateDns,
    PublicIpAddress: instance.state === 'running' ? instance.publicIp : undefined,
    LaunchTime: instance.launchedAt,
  });
  const change = (instance: FakeInstance, previous: InstanceState) => ({
    InstanceId: instance.id,
    PreviousState: { Name: previous, Code: STATE_CODES[previous] },
    CurrentState: { Name: instance.state, Code: STATE_CODES[instance.state] },
  });
  function group(name: string | undefined): FakeGroup {
    const found = groups.get(name ?? '');
    if (!found) throw asgError(`AutoScalingGroup name not found - ${name}`);
    return found;
  }
  function setDesired(g: FakeGroup, desired: number): void {
    if (desired > g.max) {
      throw asgError(`New SetDesiredCapacity value ${desired} is above max value ${g.max}`);
    }
    if (desired < g.min) {
      throw asgError(`New SetDesiredCapacity value ${desired} is below min value ${g.min}`);
    }
    g.desired = desired;
    reconcile(g);
  }

  const ec2 = mockClient(EC2Client);
  const autoScaling = mockClient(AutoScalingClient);
  ec2.onAnyCommand().rejects(ec2Error('UnsupportedOperation', 'The fake EC2 has no such call'));
  autoScaling.onAnyCommand().rejects(asgError('The fake Auto Scaling has no such call'));

  ec2.on(DescribeInstancesCommand).callsFake((input) => {
    const picked = input.InstanceIds
      ? (input.InstanceIds as string[]).map(find)
      : [...instances.values()];
    const filters: Filter[] = input.Filters ?? [];
    const found = picked.filter((i) => filters.every((f) => matches(i, f)));
    return { Reservations: found.map((i) => ({ Instances: [describe(i)] })) };
  });
  ec2.on(RunInstancesCommand).callsFake((input) => {
    const template =
      input.LaunchTemplate?.LaunchTemplateName ?? input.LaunchTemplate?.LaunchTemplateId;
    if (!template || !templates.has(template)) {
      throw ec2Error(
        'InvalidLaunchTemplateName.NotFoundException',
        `The specified launch template, with template name ${template}, does not exist.`,
      );
    }
    const tags: Record<string, string> = {};
    for (const spec of input.TagSpecifications ?? []) {
      if (spec.ResourceType !== 'instance') continue;
      for (const tag of spec.Tags ?? []) tags[tag.Key] = tag.Value ?? '';
    }
    const launched = Array.from({ length: input.MaxCount ?? 1 }, () =>
      create({ tags: { ...tags } }),
    );
    for (const instance of launched) boot(instance);
    return { Instances: launched.map(describe) };
  });
  ec2.on(StartInstancesCommand).callsFake((input) => {
    const picked = (input.InstanceIds as string[]).map(find);
    for (const i of picked) {
      if (gone(i))
        throw ec2Error(
          'IncorrectInstanceState',
          `The instance '${i.id}' is not in a state from which it can be started.`,
        );
    }
    return {
      StartingInstances: picked.map((i) => {
        const previous = i.state;
        if (previous === 'stopped') boot(i);
        return change(i, previous);
      }),
    };
  });
  ec2.on(StopInstancesCommand).callsFake((input) => {
    const picked = (input.InstanceIds as string[]).map(find);
    return {
      StoppingInstances: picked.map((i) => {
        const previous = i.state;
        if (gone(i))
          throw ec2Error(
            'IncorrectInstanceState',
            `The instance '${i.id}' is not in a state from which it can be stopped.`,
          );
        i.state = 'stopped';
        halted(i, previous);
        return change(i, previous);
      }),
    };
  });
  ec2.on(TerminateInstancesCommand).callsFake((input) => {
    const picked = (input.InstanceIds as string[]).map(find);
    return {
      TerminatingInstances: picked.map((i) => {
        const previous = i.state;
        end(i);
        return change(i, previous);
      }),
    };
  });
  ec2.on(CreateTagsCommand).callsFake((input) => {
    const picked = (input.Resources as string[]).map(find);
    for (const i of picked) for (const tag of input.Tags ?? []) i.tags[tag.Key] = tag.Value ?? '';
    return {};
  });
  ec2.on(DeleteTagsCommand).callsFake((input) => {
    const picked = (input.Resources as string[]).map(find);
    for (const i of picked) {
      for (const tag of input.Tags ?? []) {
        if (tag.Value === undefined || i.tags[tag.Key] === tag.Value) delete i.tags[tag.Key];
      }
    }
    return {};
  });

  const members = (g: FakeGroup) => [...instances.values()].filter((i) => i.group === g.name);
  const asgInstance = (i: FakeInstance) => ({
    InstanceId: i.id,
    AutoScalingGroupName: i.group,
    LifecycleState: i.lifecycle,
    ProtectedFromScaleIn: i.protectedFromScaleIn,
    HealthStatus: 'HEALTHY',
    AvailabilityZone: 'eu-west-1a',
  });
  autoScaling.on(DescribeAutoScalingGroupsCommand).callsFake((input) => ({
    AutoScalingGroups: [...groups.values()]
      .filter((g) => !input.AutoScalingGroupNames || input.AutoScalingGroupNames.includes(g.name))
      .map((g) => ({
        AutoScalingGroupName: g.name,
        MinSize: g.min,
        MaxSize: g.max,
        DesiredCapacity: g.desired,
        Instances: members(g).map(asgInstance),
      })),
  }));
  autoScaling.on(DescribeAutoScalingInstancesCommand).callsFake((input) => ({
    AutoScalingInstances: (input.InstanceIds as string[])
      .map((id) => instances.get(id))
      .filter((i): i is FakeInstance => i?.group !== undefined)
      .map(asgInstance),
  }));
  autoScaling.on(SetDesiredCapacityCommand).callsFake((input) => {
    setDesired(group(input.AutoScalingGroupName), input.DesiredCapacity);
    return {};
  });
  autoScaling.on(UpdateAutoScalingGroupCommand).callsFake((input) => {
    const g = group(input.AutoScalingGroupName);
    g.min = input.MinSize ?? g.min;
    g.max = input.MaxSize ?? g.max;
    setDesired(g, input.DesiredCapacity ?? g.desired);
    return {};
  });
  autoScaling.on(SetInstanceProtectionCommand).callsFake((input) => {
    const g = group(input.AutoScalingGroupName);
    const picked = (input.InstanceIds as string[]).map((id) => {
      const i = instances.get(id);
      if (i?.group !== g.name) {
        throw asgError(`The instance ${id} is not part of Auto Scaling group ${g.name}.`);
      }
      return i;
    });
    for (const i of picked) i.protectedFromScaleIn = Boolean(input.ProtectedFromScaleIn);
    return {};
  });
  autoScaling.on(TerminateInstanceInAutoScalingGroupCommand).callsFake((input) => {
    const i = instances.get(input.InstanceId);
    const g = i?.group ? groups.get(i.group) : undefined;
    if (!i || !g) {
      throw asgError(
        `Instance Id not found - No managed instance found for instance ID: ${input.InstanceId}`,
      );
    }
    if (input.ShouldDecrementDesiredCapacity) {
      if (g.desired - 1 < g.min) {
        throw asgError(
          `Currently, desiredSize equals minSize (${g.min}). Terminating instance without replacement will violate group's min size constraint.`,
        );
      }
      g.desired--;
    }
    end(i); // reconciles: without the decrement the group launches a replacement
    return {
      Activity: { ActivityId: `a-${i.id}`, AutoScalingGroupName: g.name, StatusCode: 'InProgress' },
    };
  });

  return {
    /** The mocks, for call assertions (commandCalls). */
    ec2,
    autoScaling,
    instance: (id: string) => instances.get(id),
    instances: () => [...instances.values()],
    /** Running instances tagged pixpool:pool=<pool>. */
    running: (pool: string) =>
      [...instances.values()].filter(
        (i) => i.state === 'running' && i.tags['pixpool:pool'] === pool,
      ),
    /** An instance that already exists: running unless told otherwise (no onBoot for it). */
    addInstance(
      fields: Partial<
        Pick<FakeInstance, 'state' | 'tags' | 'publicIp' | 'group' | 'protectedFromScaleIn'>
      > = {},
    ): FakeInstance {
      const instance = create({ state: 'running', ...fields });
      if (instance.group) {
        instance.lifecycle = instance.state === 'running' ? 'InService' : 'Pending';
        const g = group(instance.group);
        g.desired = Math.max(g.desired, members(g).filter((m) => !gone(m)).length);
      }
      return instance;
    },
    /** An Auto Scaling group; it launches `desired` instances at once (default 0). */
    addGroup(fields: Partial<FakeGroup> & { name: string }): FakeGroup {
      const g: FakeGroup = { min: 0, max: 8, desired: 0, tags: {}, ...fields };
      groups.set(g.name, g);
      reconcile(g);
      return g;
    },
    group: (name: string) => groups.get(name),
    /** The instance dies (a host failure): terminated; its group, if any, replaces it. */
    crash(id: string): void {
      end(find(id));
    },
    /** Resolves once every boot under way has happened (and its onBoot was called). */
    async settled(): Promise<void> {
      while (booting.size > 0) await Promise.all(booting);
    },
    restore(): void {
      ec2.restore();
      autoScaling.restore();
    },
  };
}

export type FakeEc2 = ReturnType<typeof createFakeEc2>;
