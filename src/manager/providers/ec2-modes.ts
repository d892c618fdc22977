/**
 * What each ec2 mode does to the engine when a node is asked for, given up on, ended or replaced,
 * and when the pool is resumed or deleted. The provider (ec2.ts) keeps the bookkeeping (which
 * node waits for which instance) and checks announcements; a mode only acts.
 *
 * - launch: an instance per node from a launch template, tagged with its node id at launch;
 *   ended by TerminateInstances.
 * - instances: the pool is a fixed set of pre-provisioned instances; a stopped one is tagged with
 *   the node id and started, and a leaving node's instance is stopped and untagged.
 * - asg: the group's desired capacity is the pool's size; the group launches instances, an
 *   announcing one is given the waiting node id and scale-in protection (so the group never
 *   picks a node itself), and a leaving node's instance is terminated in the group with the
 *   capacity decremented, so exactly the drained node goes.
 */
import type { Ec2Engine, Machine } from './ec2-engine.ts';
import { EXISTING_STATES, LIVE_STATES } from './ec2-engine.ts';
import { type CheckedEc2Settings, launchTemplateSpec, NODE_TAG, POOL_TAG } from './ec2-options.ts';

export interface ModeDeps {
  engine: Ec2Engine;
  settings: CheckedEc2Settings;
  poolName: string;
  log: (message: string) => void;
  /** Node ids in the pool or starting. */
  inUse: () => Set<string>;
  /** Instances serving, or promised to, a node. */
  claimed: () => Set<string>;
}

export interface Ec2Mode {
  /**
   * Asks for an instance to serve as `id`; resolves to its id when it is known now. `size`: the
   * pool's size with that node.
   */
  begin(id: string, size: number): Promise<string | undefined>;
  /** Ends the failed node's instances and asks for another in their place. */
  beginReplacement(id: string, old: Machine[], size: number): Promise<string | undefined>;
  /** Ends instances whose nodes leave the pool (a shrink, or extras found at a restart). */
  end(machines: Machine[]): Promise<void>;
  /** After a start gave up: ends what it asked for. `size`: the pool without that node. */
  abandon(id: string, instanceId: string | undefined, size: number): Promise<string>;
  /** Why an instance that announces itself is refused beyond the common checks, if it is. */
  check?(m: Machine): Promise<string | undefined>;
  /** asg: makes an untagged instance that announced itself node `id` (the waiting start's). */
  take?(m: Machine, id: string): Promise<void>;
  /** After a restart adopted these nodes' instances. */
  resumed?(adopted: Machine[]): Promise<void>;
  /** Ends every instance of the pool; resolves to what it ended, one line each. */
  deletePool(): Promise<string[]>;
}

/** One line of what deletePool() did to an instance. */
const ended = (m: Machine, how: string) =>
  `instance ${m.id}${m.tags[NODE_TAG] === undefined ? '' : ` (node ${m.tags[NODE_TAG]})`}: ${how}`;

export function createMode(deps: ModeDeps): Ec2Mode {
  if (deps.settings.mode === 'launch') return launchMode(deps);
  if (deps.settings.mode === 'instances') return instancesMode(deps);
  return asgMode(deps);
}

function launchMode({ engine, settings, poolName }: ModeDeps): Ec2Mode {
  const template = launchTemplateSpec(
    settings.launchTemplate as string,
    settings.launchTemplateVersion,
  );
  const begin = (id: string) =>
    engine.run(
      template,
      { [POOL_TAG]: poolName, [NODE_TAG]: id, Name: `pixpool-${poolName}-${id}` },
      id,
    );
  return {
    begin,
    async beginReplacement(id, old) {
      await engine.terminate(old);
      return begin(id);
    },
    end: (machines) => engine.terminate(machines),
    async abandon(id) {
      await engine.terminate(await engine.list(EXISTING_STATES, id));
      return 'terminated';
    },
    async deletePool() {
      const machines = await engine.list(EXISTING_STATES);
      await engine.terminate(machines);
      return machines.map((m) => ended(m, 'terminated'));
    },
  };
}

function instancesMode({ engine, poolName, inUse }: ModeDeps): Ec2Mode {
  async function end(machines: Machine[]): Promise<void> {
    await engine.stop(machines.filter((m) => LIVE_STATES.includes(m.state)));
    await engine.untag(machines.filter((m) => m.tags[NODE_TAG] !== undefined));
  }
  async function begin(id: string, avoid: string[] = []): Promise<string> {
    const stopped = await engine.list(['stopped']);
    const used = inUse();
    // A stopped instance still named after a node no longer in the pool is free too.
    const free = stopped.filter((m) => {
      const node = m.tags[NODE_TAG];
      return !avoid.includes(m.id) && (node === undefined || node === id || !used.has(node));
    });
    const m = free[0];
    if (!m) {
      throw new Error(
        `no stopped instance tagged ${POOL_TAG}=${poolName} is free to start as node ${id} (${stopped.length} stopped, ${stopped.length - free.length} of them taken)`,
      );
    }
    await engine.tag(m, id);
    try {
      await engine.start(m);
    } catch (error) {
      await engine.untag([m]).catch(() => {}); // the start's error is the one to report
      throw error;
    }
    return m.id;
  }
  return {
    begin: (id) => begin(id),
    async beginReplacement(id, old) {
      await end(old);
      return begin(
        id,
        old.map((m) => m.id),
      );
    },
    end,
    async abandon(id) {
      await end(await engine.list(EXISTING_STATES, id));
      return 'stopped';
    },
    async deletePool() {
      const machines = await engine.list(EXISTING_STATES);
      // Described before end() takes their node tags off.
      const lines = machines
        .filter((m) => LIVE_STATES.includes(m.state))
        .map((m) => ended(m, 'stopped'));
      await end(machines);
      return lines;
    },
  };
}

function asgMode({ engine, settings, log, claimed }: ModeDeps): Ec2Mode {
  const name = settings.asgName as string;
  /** Sets the group's desired capacity to `size`, the pool's, unless it is there already. */
  async function size(target: number): Promise<void> {
    const group = await engine.group(name);
    if (group.desired === target) return;
    if (target > group.max) {
      throw new Error(
        `Auto Scaling group ${name} can hold at most ${group.max} instance(s); raise its MaxSize to grow the pool to ${target}`,
      );
    }
    await engine.setDesired(name, target);
  }
  async function end(machines: Machine[]): Promise<void> {
    if (machines.length === 0) return;
    const members = new Set((await engine.group(name)).members.map((m) => m.id));
    for (const m of machines) {
      // One of the pool's instances outside the group (detached by hand) is ended plainly.
      if (members.has(m.id)) await engine.terminateInGroup(m, true);
      else await engine.terminate([m]);
    }
  }
  return {
    // The group grows to the pool's size (one more than now, unless it was short).
    async begin(_id, target) {
      await size(target);
      return undefined;
    },
    async beginReplacement(_id, old, target) {
      // Without the decrement the group launches the replacement itself.
      for (const m of old) await engine.terminateInGroup(m, false);
      await size(target);
      return undefined;
    },
    end,
    async abandon(id, instanceId, target) {
      if (instanceId) {
        await end(await engine.list(EXISTING_STATES, id));
      } else {
        // The group launched an instance that never announced itself: it is the group's only
        // unprotected instance of the pool that no node claims.
        const group = await engine.group(name);
        const taken = claimed();
        const candidates = new Set(
          group.members.filter((m) => !m.protected && !taken.has(m.id)).map((m) => m.id),
        );
        const silent = (await engine.list(LIVE_STATES)).filter(
          (m) => candidates.has(m.id) && m.tags[NODE_TAG] === undefined,
        );
        const last = silent.at(-1);
        if (last) await engine.terminateInGroup(last, true);
      }
      await size(target);
      return 'terminated';
    },
    async check(m) {
      const membership = await engine.membership(m.id);
      if (!membership || membership.group !== name) {
        return `instance ${m.id} is not in Auto Scaling group ${name}${membership ? ` (it is in ${membership.group})` : ''}`;
      }
      if (membership.lifecycle !== 'InService' && !membership.lifecycle.startsWith('Pending')) {
        return `instance ${m.id} is ${membership.lifecycle} in Auto Scaling group ${name}, not InService or Pending`;
      }
      return undefined;
    },
    async take(m, id) {
      await engine.tag(m, id);
      await engine.protect(name, [m], true);
    },
    async resumed(adopted) {
      await engine.protect(name, adopted, true);
      await size(adopted.length);
      log(`Auto Scaling group ${name} sized to the ${adopted.length} adopted node(s)`);
    },
    async deletePool() {
      const group = await engine.group(name);
      const members = new Set(group.members.map((m) => m.id));
      const machines = await engine.list(EXISTING_STATES);
      const inGroup = machines.filter((m) => members.has(m.id));
      // Each of the pool's instances leaves with the group's desired capacity decremented, so
      // the group launches nothing in their place and an instance of it without the pool's tag
      // (attached by hand) stays. The minimum must allow it: lowered to what is left, no more.
      const left = group.members.length - inGroup.length;
      if (group.min > left) await engine.lowerMin(name, left);
      await engine.protect(name, inGroup, false);
      for (const m of inGroup) await engine.terminateInGroup(m, true);
      const outside = machines.filter((m) => !members.has(m.id));
      await engine.terminate(outside);
      return [
        `Auto Scaling group ${name}: desired capacity ${group.desired} → ${group.desired - inGroup.length}${group.min > left ? `, minimum ${group.min} → ${left}` : ''}`,
        ...machines.map((m) => ended(m, 'terminated')),
      ];
    },
  };
}
