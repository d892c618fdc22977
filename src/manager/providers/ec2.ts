/**
 * The ec2 provider: cache nodes on EC2 instances, in one of three modes (ec2-modes.ts). A start
 * asks EC2 or the Auto Scaling group for an instance, then waits for the node on it to announce
 * itself (pixpool cache-node --announce ec2): the manager hands the claim to register(), which
 * checks it with EC2 before the node may enter any view, and resolves the waiting start.
 *
 * Nodes are found by their tags, pixpool:pool=<pool> and pixpool:node-id=<id>, so a restarted
 * manager adopts the instances its registry names and ends the pool's others; an instance
 * without the pool's tag is never started, stopped, tagged or terminated. Instances outlive the
 * manager: close() ends none. A node that fails its health checks gets a fresh instance under
 * the same id. This provider cannot see an instance die: the manager's health checks do.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { checkClaim, hostOf, refuse } from './ec2-claims.ts';
import { createEc2Engine, EXISTING_STATES, LIVE_STATES, type Machine } from './ec2-engine.ts';
import { createMode } from './ec2-modes.ts';
import {
  checkEc2Settings,
  type Ec2Settings,
  NODE_TAG,
  POOL_TAG,
  parsePoolName,
} from './ec2-options.ts';
import type { NodeClaim, NodeProvider, ProvidedNode } from './provider.ts';

export interface Ec2ProviderOptions extends Ec2Settings {
  /** The value of every node instance's pixpool:pool tag. */
  poolName: string;
  /** Clients to use (tests); unset: created for `region`, and destroyed by close(). */
  ec2?: EC2Client;
  autoScaling?: AutoScalingClient;
  log?: (message: string) => void;
}

/** A start waiting for its node to announce itself. */
interface Waiter {
  id: string;
  /** The instance that will be the node, once known (asg: once one announces itself). */
  instanceId: string | undefined;
  settled: boolean;
  promise: Promise<ProvidedNode>;
  settle(outcome: ProvidedNode | Error): void;
}

function createWaiter(id: string): Waiter {
  let resolve!: (node: ProvidedNode) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<ProvidedNode>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const waiter: Waiter = {
    id,
    instanceId: undefined,
    settled: false,
    promise,
    settle(outcome) {
      if (waiter.settled) return;
      waiter.settled = true;
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    },
  };
  return waiter;
}

export function createEc2Provider(options: Ec2ProviderOptions): NodeProvider {
  const settings = checkEc2Settings(options);
  const poolName = parsePoolName(options.poolName);
  const log = options.log ?? (() => {});
  const clientConfig = settings.region ? { region: settings.region } : {};
  const ec2 = options.ec2 ?? new EC2Client(clientConfig);
  const autoScaling = options.autoScaling ?? new AutoScalingClient(clientConfig);
  const engine = createEc2Engine({ ec2, autoScaling, poolName });

  /** The pool's nodes: id → the instance serving as it, and where it serves. */
  const nodes = new Map<string, { instanceId: string; url: string }>();
  const waiting = new Map<string, Waiter>();
  const replacedListeners: ((node: ProvidedNode) => void)[] = [];
  let closed = false;

  const mode = createMode({
    engine,
    settings,
    poolName,
    log,
    inUse: () => new Set([...nodes.keys(), ...waiting.keys()]),
    claimed: () =>
      new Set(
        [...nodes.values()]
          .map((n) => n.instanceId)
          .concat([...waiting.values()].flatMap((w) => (w.instanceId ? [w.instanceId] : []))),
      ),
  });

  /** Asks for an instance for `id` and waits for its node to announce itself. */
  async function bringUp(
    id: string,
    ask: (size: number) => Promise<string | undefined>,
  ): Promise<ProvidedNode> {
    if (closed) throw new Error(`the ec2 provider is closed; node ${id} was not started`);
    if (waiting.has(id)) throw new Error(`node ${id} is already starting`);
    const waiter = createWaiter(id);
    waiting.set(id, waiter);
    try {
      const instanceId = await ask(nodes.size + waiting.size);
      if (instanceId) waiter.instanceId = instanceId;
    } catch (error) {
      waiting.delete(id);
      throw error;
    }
    const seconds = settings.bootTimeoutMs / 1000;
    const timer = setTimeout(() => {
      const what = waiter.instanceId
        ? `instance ${waiter.instanceId}, started as node ${id}, did not announce itself`
        : `no instance of Auto Scaling group ${settings.asgName} announced itself as node ${id}`;
      waiter.settle(
        new Error(
          `${what} within ${seconds} s: check that the instances' user data runs pixpool cache-node --announce ec2 with this manager's URL and secret, and that they can reach the manager`,
        ),
      );
    }, settings.bootTimeoutMs);
    try {
      return await waiter.promise;
    } catch (error) {
      if (waiting.get(id) === waiter) waiting.delete(id);
      if (closed) throw error; // a closing manager ends nothing; the next one ends what is extra
      const ended = await mode.abandon(id, waiter.instanceId, nodes.size + waiting.size).then(
        (how) => `its instance was ${how}`,
        (e: Error) => `its instance could not be ended: ${e.message}`,
      );
      throw new Error(`${(error as Error).message}; ${ended}`, { cause: error });
    } finally {
      clearTimeout(timer);
      if (waiting.get(id) === waiter) waiting.delete(id);
    }
  }

  /** Node `id` is the instance `m`, serving at `url`: the start waiting for it resolves. */
  function join(waiter: Waiter, m: Machine, url: string): ProvidedNode {
    const node = { id: waiter.id, url };
    nodes.set(waiter.id, { instanceId: m.id, url });
    waiter.settle(node);
    return node;
  }

  /** Which node an announcing instance of the pool is, once its claim checked out. */
  async function identify(m: Machine, url: string): Promise<ProvidedNode> {
    const id = m.tags[NODE_TAG];
    if (id !== undefined) {
      const waiter = waiting.get(id);
      if (waiter && !waiter.settled && (!waiter.instanceId || waiter.instanceId === m.id)) {
        waiter.instanceId = m.id;
        return join(waiter, m, url);
      }
      const known = nodes.get(id);
      if (known?.instanceId === m.id) {
        if (known.url !== url) {
          // The same instance at another address (a reboot, a new port): the node is new too.
          log(`node ${id} (instance ${m.id}) announced itself at ${url}, was at ${known.url}`);
          known.url = url;
          for (const listener of replacedListeners) listener({ id, url });
        }
        return { id, url };
      }
      if (known) {
        refuse(
          `instance ${m.id} is tagged ${NODE_TAG}=${id}, but node ${id} is instance ${known.instanceId}`,
        );
      }
      refuse(`instance ${m.id} is tagged as node ${id}, which is not in the pool and not starting`);
    }
    if (mode.take) {
      const waiter = [...waiting.values()].find((w) => !w.instanceId && !w.settled);
      if (!waiter) refuse(`instance ${m.id} has no ${NODE_TAG} tag and no node is starting`);
      waiter.instanceId = m.id; // claimed now, so a second announcement cannot take it too
      try {
        await mode.take(m, waiter.id);
      } catch (error) {
        waiter.instanceId = undefined;
        throw error;
      }
      if (waiter.settled) throw new Error(`node ${waiter.id} stopped waiting for instance ${m.id}`);
      return join(waiter, m, url);
    }
    refuse(`instance ${m.id} has no ${NODE_TAG} tag: no start of this manager launched it`);
  }

  return {
    name: 'ec2',
    outlivesManager: true,
    start: (id) => bringUp(id, (size) => mode.begin(id, size)),

    async register(claim: NodeClaim): Promise<ProvidedNode> {
      if (closed) throw new Error('the manager is stopping; announce again to the next one');
      const url = checkClaim(claim);
      const m = await engine.describe(claim.ref);
      if (!m) refuse(`EC2 knows no instance ${claim.ref} in this region`);
      if (!LIVE_STATES.includes(m.state)) refuse(`instance ${m.id} is ${m.state}, not running`);
      const pool = m.tags[POOL_TAG];
      if (pool === undefined) {
        refuse(`instance ${m.id} has no ${POOL_TAG} tag: it is no pixpool node`);
      }
      if (pool !== poolName)
        refuse(`instance ${m.id} belongs to pool "${pool}", not "${poolName}"`);
      if (!m.addresses.includes(url.host)) {
        refuse(
          `${url.origin} is not an address of instance ${m.id} (${m.addresses.join(', ') || 'it has none'})`,
        );
      }
      const why = await mode.check?.(m);
      if (why) refuse(why);
      return identify(m, url.origin);
    },

    async stop(id) {
      waiting.get(id)?.settle(new Error(`node ${id} was stopped before it announced itself`));
      nodes.delete(id);
      await mode.end(await engine.list(EXISTING_STATES, id));
    },

    async replace(id) {
      if (closed) throw new Error(`the ec2 provider is closed; node ${id} was not replaced`);
      const old = await engine.list(EXISTING_STATES, id);
      nodes.delete(id);
      log(`node ${id} failed its health checks: replacing instance(s) ${old.map((m) => m.id)}`);
      return bringUp(id, (size) => mode.beginReplacement(id, old, size));
    },

    async resume(registry) {
      const live = await engine.list(LIVE_STATES);
      const byNode = new Map<string, Machine>();
      for (const m of live) {
        const id = m.tags[NODE_TAG];
        if (id !== undefined && !byNode.has(id)) byNode.set(id, m);
      }
      const adopted: Machine[] = [];
      const resumed = registry.map((node) => {
        const m = byNode.get(node.id);
        if (!m) return undefined;
        byNode.delete(node.id);
        const recorded = URL.parse(node.url);
        if (!recorded || !m.addresses.includes(hostOf(recorded))) {
          log(`node ${node.id}: instance ${m.id} does not serve at ${node.url}; not adopted`);
          return undefined;
        }
        adopted.push(m);
        nodes.set(node.id, { instanceId: m.id, url: node.url });
        log(`node ${node.id} still runs on instance ${m.id} at ${node.url}: adopted`);
        return node;
      });
      const extra = live.filter((m) => !adopted.includes(m));
      if (extra.length > 0) {
        log(
          `ending ${extra.length} instance(s) of the pool that no node names: ${extra.map((m) => m.id)}`,
        );
        await mode.end(extra).catch((e: Error) => log(e.message));
      }
      await mode.resumed?.(adopted).catch((e: Error) => log(e.message));
      return resumed;
    },

    async deletePool() {
      for (const waiter of waiting.values()) {
        waiter.settle(new Error(`the pool was deleted while node ${waiter.id} started`));
      }
      nodes.clear();
      return mode.deletePool();
    },

    onReplaced: (listener) => {
      replacedListeners.push(listener);
    },

    async close() {
      closed = true;
      for (const waiter of waiting.values()) {
        waiter.settle(new Error(`the manager stopped while node ${waiter.id} started`));
      }
      if (!options.ec2) ec2.destroy();
      if (!options.autoScaling) autoScaling.destroy();
    },
  };
}
