/**
 * The ec2 provider's hands on AWS: each EC2 and Auto Scaling call it makes, over clients it is
 * given, with the answers cut down to what the provider decides on. Two rules live here so no
 * mode can forget them:
 *
 * - Only the pool's own instances are touched: every call that changes an instance first checks
 *   that it carries pixpool:pool=<pool>, and every listing filters by that tag.
 * - An SDK error becomes one sentence saying what was being done, the IAM action, and AWS's own
 *   words, with a hint for the usual fixes (a missing permission, no credentials): the manager
 *   logs these, and an operator should not need the stack to act on them.
 */
import {
  type AutoScalingClient,
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
  type EC2Client,
  type Filter,
  type Instance,
  paginateDescribeInstances,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { NODE_TAG, POOL_TAG } from './ec2-options.ts';

/** An instance as the provider sees it. */
export interface Machine {
  id: string;
  /** pending, running, stopping, stopped, shutting-down or terminated. */
  state: string;
  tags: Record<string, string>;
  /** Every name the instance is reached at: private and public IPs and DNS names. */
  addresses: string[];
  privateIp: string | undefined;
  launchedAt: number;
}

/** An instance's place in an Auto Scaling group. */
export interface Membership {
  group: string;
  /** Pending, Pending:Wait, InService, Terminating, … */
  lifecycle: string;
  protected: boolean;
}

export interface GroupState {
  desired: number;
  min: number;
  max: number;
  members: (Membership & { id: string })[];
}

/** States in which an instance is, or is becoming, a node. */
export const LIVE_STATES = ['pending', 'running'];
/** States in which an instance still exists (not ending or ended). */
export const EXISTING_STATES = ['pending', 'running', 'stopping', 'stopped'];

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
export const isInstanceId = (ref: string) => INSTANCE_ID.test(ref);

function toMachine(instance: Instance): Machine {
  const tags: Record<string, string> = {};
  for (const tag of instance.Tags ?? []) if (tag.Key) tags[tag.Key] = tag.Value ?? '';
  const addresses = new Set<string>();
  const add = (value: string | undefined) => value && addresses.add(value.toLowerCase());
  add(instance.PrivateIpAddress);
  add(instance.PrivateDnsName);
  add(instance.PublicIpAddress);
  add(instance.PublicDnsName);
  add(instance.Ipv6Address);
  for (const nic of instance.NetworkInterfaces ?? []) {
    for (const ip of nic.PrivateIpAddresses ?? []) add(ip.PrivateIpAddress);
    for (const ip of nic.Ipv6Addresses ?? []) add(ip.Ipv6Address);
  }
  return {
    id: instance.InstanceId ?? '',
    state: instance.State?.Name ?? 'unknown',
    tags,
    addresses: [...addresses],
    privateIp: instance.PrivateIpAddress,
    launchedAt: instance.LaunchTime?.getTime() ?? 0,
  };
}

/** One line for an SDK error: what failed, the IAM action, AWS's words, and the usual fix. */
export function describeAwsError(what: string, action: string, error: unknown): Error {
  const name = (error as Error)?.name ?? 'Error';
  const message = (error as Error)?.message ?? String(error);
  let hint = '';
  if (/^(UnauthorizedOperation|AccessDenied|AccessDeniedException)$/.test(name)) {
    hint = `; the manager's AWS identity may not call ${action}: add it to its IAM policy`;
  } else if (name === 'CredentialsProviderError') {
    hint = '; the manager found no AWS credentials: give it an instance profile or set AWS_PROFILE';
  }
  return new Error(`${what} failed (${action}: ${name}: ${message})${hint}`, { cause: error });
}

export function createEc2Engine(deps: {
  ec2: EC2Client;
  autoScaling: AutoScalingClient;
  poolName: string;
}) {
  const { ec2, autoScaling, poolName } = deps;

  async function call<T>(what: string, action: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw describeAwsError(what, action, error);
    }
  }

  /** Refuses to change an instance that is not the pool's: the provider's first rule. */
  function ours(machines: Machine[]): string[] {
    for (const m of machines) {
      if (m.tags[POOL_TAG] !== poolName) {
        throw new Error(
          `refusing to touch instance ${m.id}: it is not tagged ${POOL_TAG}=${poolName}`,
        );
      }
    }
    return machines.map((m) => m.id);
  }

  async function listWith(filters: Filter[], what: string): Promise<Machine[]> {
    const machines: Machine[] = [];
    await call(what, 'ec2:DescribeInstances', async () => {
      for await (const page of paginateDescribeInstances({ client: ec2 }, { Filters: filters })) {
        for (const reservation of page.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) machines.push(toMachine(instance));
        }
      }
    });
    // The filter is AWS's; the check is ours, so a filter gone wrong cannot widen the pool.
    return machines
      .filter((m) => m.tags[POOL_TAG] === poolName)
      .sort((a, b) => a.launchedAt - b.launchedAt || a.id.localeCompare(b.id));
  }

  async function setDesired(name: string, desired: number): Promise<void> {
    await call(
      `setting group ${name}'s desired capacity to ${desired}`,
      'autoscaling:SetDesiredCapacity',
      () =>
        autoScaling.send(
          new SetDesiredCapacityCommand({
            AutoScalingGroupName: name,
            DesiredCapacity: desired,
            HonorCooldown: false,
          }),
        ),
    );
  }

  return {
    /** The instance `id`, or undefined when EC2 knows none by that id. */
    async describe(id: string): Promise<Machine | undefined> {
      if (!isInstanceId(id)) return undefined;
      try {
        const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
        const instance = out.Reservations?.[0]?.Instances?.[0];
        return instance && toMachine(instance);
      } catch (error) {
        if (/^InvalidInstanceID\.(NotFound|Malformed)$/.test((error as Error).name))
          return undefined;
        throw describeAwsError(`looking up instance ${id}`, 'ec2:DescribeInstances', error);
      }
    },

    /** The pool's instances in `states`, oldest first; only those of node `nodeId` if given. */
    list(states: string[], nodeId?: string): Promise<Machine[]> {
      return listWith(
        [
          { Name: `tag:${POOL_TAG}`, Values: [poolName] },
          { Name: 'instance-state-name', Values: states },
          ...(nodeId === undefined ? [] : [{ Name: `tag:${NODE_TAG}`, Values: [nodeId] }]),
        ],
        nodeId === undefined ? `listing pool ${poolName}'s instances` : `finding node ${nodeId}`,
      );
    },

    /** Runs one instance from the launch template with these tags; resolves to its id. */
    async run(
      template: { LaunchTemplateId?: string; LaunchTemplateName?: string; Version?: string },
      tags: Record<string, string>,
      nodeId: string,
    ): Promise<string> {
      const named = template.LaunchTemplateName ?? template.LaunchTemplateId;
      const out = await call(
        `launching an instance for node ${nodeId} from launch template ${named}`,
        'ec2:RunInstances',
        () =>
          ec2.send(
            new RunInstancesCommand({
              LaunchTemplate: template,
              MinCount: 1,
              MaxCount: 1,
              TagSpecifications: [
                {
                  ResourceType: 'instance',
                  Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
                },
              ],
            }),
          ),
      );
      const id = out.Instances?.[0]?.InstanceId;
      if (!id) throw new Error(`RunInstances for node ${nodeId} returned no instance`);
      return id;
    },

    async start(m: Machine): Promise<void> {
      const ids = ours([m]);
      await call(`starting instance ${m.id}`, 'ec2:StartInstances', () =>
        ec2.send(new StartInstancesCommand({ InstanceIds: ids })),
      );
    },

    async stop(machines: Machine[]): Promise<void> {
      const ids = ours(machines);
      if (ids.length === 0) return;
      await call(`stopping instance(s) ${ids.join(', ')}`, 'ec2:StopInstances', () =>
        ec2.send(new StopInstancesCommand({ InstanceIds: ids })),
      );
    },

    async terminate(machines: Machine[]): Promise<void> {
      const ids = ours(machines);
      if (ids.length === 0) return;
      await call(`terminating instance(s) ${ids.join(', ')}`, 'ec2:TerminateInstances', () =>
        ec2.send(new TerminateInstancesCommand({ InstanceIds: ids })),
      );
    },

    /** Names the instance as node `nodeId` of the pool. */
    async tag(m: Machine, nodeId: string): Promise<void> {
      const ids = ours([m]);
      await call(`tagging instance ${m.id} as node ${nodeId}`, 'ec2:CreateTags', () =>
        ec2.send(
          new CreateTagsCommand({ Resources: ids, Tags: [{ Key: NODE_TAG, Value: nodeId }] }),
        ),
      );
      m.tags[NODE_TAG] = nodeId;
    },

    /** Takes the node id off instances that no longer serve as that node. */
    async untag(machines: Machine[]): Promise<void> {
      const ids = ours(machines);
      if (ids.length === 0) return;
      await call(`removing ${NODE_TAG} from ${ids.join(', ')}`, 'ec2:DeleteTags', () =>
        ec2.send(new DeleteTagsCommand({ Resources: ids, Tags: [{ Key: NODE_TAG }] })),
      );
      for (const m of machines) delete m.tags[NODE_TAG];
    },

    async group(name: string): Promise<GroupState> {
      const out = await call(
        `reading Auto Scaling group ${name}`,
        'autoscaling:DescribeAutoScalingGroups',
        () =>
          autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })),
      );
      const group = out.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === name);
      if (!group) throw new Error(`there is no Auto Scaling group named ${name} in this region`);
      return {
        desired: group.DesiredCapacity ?? 0,
        min: group.MinSize ?? 0,
        max: group.MaxSize ?? 0,
        members: (group.Instances ?? []).map((i) => ({
          id: i.InstanceId ?? '',
          group: name,
          lifecycle: i.LifecycleState ?? 'unknown',
          protected: Boolean(i.ProtectedFromScaleIn),
        })),
      };
    },

    /** The group the instance belongs to, if any. */
    async membership(id: string): Promise<Membership | undefined> {
      const out = await call(
        `looking up instance ${id} in Auto Scaling`,
        'autoscaling:DescribeAutoScalingInstances',
        () => autoScaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [id] })),
      );
      const found = out.AutoScalingInstances?.find((i) => i.InstanceId === id);
      return (
        found && {
          group: found.AutoScalingGroupName ?? '',
          lifecycle: found.LifecycleState ?? 'unknown',
          protected: Boolean(found.ProtectedFromScaleIn),
        }
      );
    },

    setDesired,

    /** Lets the group never pick these instances when it scales in (or lets it again). */
    async protect(name: string, machines: Machine[], on: boolean): Promise<void> {
      const ids = ours(machines);
      if (ids.length === 0) return;
      await call(
        `${on ? 'setting' : 'clearing'} scale-in protection of ${ids.join(', ')}`,
        'autoscaling:SetInstanceProtection',
        () =>
          autoScaling.send(
            new SetInstanceProtectionCommand({
              AutoScalingGroupName: name,
              InstanceIds: ids,
              ProtectedFromScaleIn: on,
            }),
          ),
      );
    },

    /** Ends exactly this instance of the group; `decrement`: and the group's size with it. */
    async terminateInGroup(m: Machine, decrement: boolean): Promise<void> {
      const [id] = ours([m]);
      await call(
        `terminating instance ${m.id} in its Auto Scaling group`,
        'autoscaling:TerminateInstanceInAutoScalingGroup',
        () =>
          autoScaling.send(
            new TerminateInstanceInAutoScalingGroupCommand({
              InstanceId: id,
              ShouldDecrementDesiredCapacity: decrement,
            }),
          ),
      );
    },

    /** Sizes the group to 0, lowering its minimum first when it is above 0. */
    async lowerMin(name: string, min: number): Promise<void> {
      await call(
        `lowering Auto Scaling group ${name}'s minimum size to ${min}`,
        'autoscaling:UpdateAutoScalingGroup',
        () =>
          autoScaling.send(
            new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: name, MinSize: min }),
          ),
      );
    },
  };
}

export type Ec2Engine = ReturnType<typeof createEc2Engine>;
