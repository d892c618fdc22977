/**
 * The kubernetes provider: cache nodes as the pods of a StatefulSet, each reached at its stable
 * DNS name under a headless Service (`<sts>-<n>.<service>.<namespace>.svc`). The manager's node
 * ids are its own; this provider keeps which ordinal each id is. The pool's nodes are ordinals
 * 0…n-1 in the order they joined, which is the order the manager's map keeps them in, so the
 * node a shrink drains (the map's last) is the pod a scale-down removes (the highest ordinal).
 *
 * - start(id): the next ordinal; replicas set to it + 1 through the scale subresource; resolves
 *   once that pod's node announces itself and register() accepts it (or rejects after the start
 *   timeout). A pod already at that ordinal (left from an older pool) is deleted first, so the
 *   node that joins starts empty.
 * - stop(id): only the highest ordinal (replicas set to it); any other is refused untouched.
 * - replace(id): deletes the pod; the StatefulSet makes it again under the same name, and its
 *   node's announcement resolves the replacement. A pool pod that announces itself with nothing
 *   waiting (its container restarted) is the same node again, reported through onReplaced.
 * - resume(): a registry node whose pod runs is adopted (found by the DNS name or pod IP in its
 *   URL); replicas are set to the pool's size; a node whose pod is not running yet keeps its
 *   ordinal, and the start() the manager then asks for waits for that pod.
 *
 * Pods outlive the manager: close() scales nothing; only a shrink or deletePool() (replicas 0)
 * ends them. register() refuses, with a reason, every claim but a running, non-terminating pod
 * the StatefulSet owns, with the pool's labels, naming its own DNS name or pod IP.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { createKubeApi, type KubeConnection, kubeConfigFor } from './kubernetes-api.ts';
import {
  checkPoolPods,
  ordinalOf,
  ordinalOfUrl,
  type PoolPods,
  podName,
  podRefusal,
  podServes,
  poolSelector,
  urlRefusal,
} from './kubernetes-pods.ts';
import { ClaimRefused, type NodeClaim, type NodeProvider, type ProvidedNode } from './provider.ts';

export interface KubernetesProviderOptions extends KubeConnection {
  /** Default: the manager's own namespace in a cluster, else `default`. */
  namespace?: string | undefined;
  /** The StatefulSet of cache nodes (default `pixpool-node`). */
  statefulSet?: string | undefined;
  /** Its headless Service (default: the StatefulSet's name). */
  service?: string | undefined;
  /** The `pixpool.io/pool` label its pods carry (default `pixpool`). */
  poolName?: string | undefined;
  clusterDomain?: string | undefined;
  /** How long a started or replaced pod has to announce its node, ms (default 300 s). */
  startTimeoutMs?: number | undefined;
  /** A client configuration made elsewhere, instead of the connection options. */
  kubeConfig?: KubeConfig | undefined;
  log?: (message: string) => void;
}

export const DEFAULT_START_TIMEOUT_MS = 300_000;

/** Which run of a pod's node this is: a new pod (uid) or a restarted container is a new one. */
const incarnation = (pod: V1Pod) =>
  `${pod.metadata?.uid}/${(pod.status?.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0)}`;

/** A start or a replacement waiting for its pod's node to announce itself. */
interface Waiter {
  id: string;
  /** Pod uids that may not answer it: the pod being replaced, one left from before. */
  stale: Set<string>;
  resolve(node: ProvidedNode): void;
  reject(error: Error): void;
}

export function createKubernetesProvider(options: KubernetesProviderOptions): NodeProvider {
  const connected = options.kubeConfig
    ? { kubeConfig: options.kubeConfig, namespace: undefined }
    : kubeConfigFor(options);
  const statefulSet = options.statefulSet ?? 'pixpool-node';
  const pool: PoolPods = {
    namespace: options.namespace ?? connected.namespace ?? 'default',
    statefulSet,
    service: options.service ?? statefulSet,
    poolName: options.poolName ?? 'pixpool',
    clusterDomain: options.clusterDomain ?? 'cluster.local',
  };
  checkPoolPods(pool);
  const api = createKubeApi(connected.kubeConfig, pool);
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const log = options.log ?? (() => {});

  const ordinals = new Map<string, number>(); // node id → ordinal
  const urls = new Map<string, string>(); // node id → the URL its pod announced
  /** ordinal → the pod and container run whose node the pool took (uid and restarts). */
  const incarnations = new Map<number, string>();
  const waiters = new Map<number, Waiter>(); // ordinal → what waits for its pod
  const replacing = new Map<string, Promise<ProvidedNode>>();
  const replacedListeners: ((node: ProvidedNode) => void)[] = [];
  let ownerUid: Promise<string> | undefined;
  let closed = false;

  const statefulSetUid = () => {
    ownerUid ??= api.statefulSetUid().catch((error) => {
      ownerUid = undefined; // asked again next time
      throw error;
    });
    return ownerUid;
  };
  const highest = () => Math.max(-1, ...ordinals.values());
  const idAt = (ordinal: number) => [...ordinals].find(([, o]) => o === ordinal)?.[0];

  /** Waits for the node of pod `ordinal`; the timer starts now. */
  function waitFor(ordinal: number, id: string, stale: Set<string>): Promise<ProvidedNode> {
    waiters.get(ordinal)?.reject(new Error(`another start of pod ${podName(pool, ordinal)} began`));
    return new Promise<ProvidedNode>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        if (waiters.get(ordinal) === waiter) waiters.delete(ordinal);
      };
      const waiter: Waiter = {
        id,
        stale,
        resolve(node) {
          done();
          resolve(node);
        },
        reject(error) {
          done();
          reject(error);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new Error(
              `pod ${podName(pool, ordinal)} did not announce its node within ${timeoutMs / 1000} s`,
            ),
          ),
        timeoutMs,
      );
      timer.unref();
      waiters.set(ordinal, waiter);
    });
  }

  function cancel(ordinal: number, why: string): void {
    waiters.get(ordinal)?.reject(new Error(why));
  }

  async function start(id: string): Promise<ProvidedNode> {
    if (closed) throw new Error(`the kubernetes provider is closed; node ${id} not started`);
    const known = ordinals.get(id);
    const ordinal = known ?? highest() + 1;
    const name = podName(pool, ordinal);
    const url = urls.get(id);
    if (known !== undefined && url) return { id, url }; // its pod announced itself meanwhile
    ordinals.set(id, ordinal);
    const stale = new Set<string>();
    try {
      const left = await api.pod(name);
      if (known === undefined && left?.metadata?.uid) {
        // Not a node of this pool: it may hold entries from before. Its successor starts empty.
        stale.add(left.metadata.uid);
        if (!left.metadata.deletionTimestamp) {
          log(
            `pod ${name} exists but is no node of the pool; deleting it so node ${id} starts empty`,
          );
          await api.deletePod(name);
        }
      }
    } catch (error) {
      if (known === undefined) ordinals.delete(id);
      throw error;
    }
    const announced = waitFor(ordinal, id, stale);
    announced.catch(() => {}); // rejected below, or observed by the caller
    try {
      const replicas = await api.scale((current) =>
        known === undefined ? ordinal + 1 : Math.max(current, ordinal + 1),
      );
      log(`node ${id} is pod ${name}; StatefulSet ${statefulSet} at ${replicas} replicas`);
    } catch (error) {
      cancel(ordinal, (error as Error).message);
      if (known === undefined) ordinals.delete(id);
      throw error;
    }
    return announced;
  }

  async function replace(id: string): Promise<ProvidedNode> {
    const ordinal = ordinals.get(id);
    if (ordinal === undefined) throw new Error(`node ${id} is no pod of this pool`);
    if (closed) throw new Error(`the kubernetes provider is closed; node ${id} not replaced`);
    const name = podName(pool, ordinal);
    const failed = await api.pod(name);
    const stale = new Set(failed?.metadata?.uid ? [failed.metadata.uid] : []);
    const announced = waitFor(ordinal, id, stale);
    announced.catch(() => {});
    try {
      await api.deletePod(name);
      // With no pod to recreate below the replicas, the controller would make none.
      if (!failed) await api.scale((current) => Math.max(current, ordinal + 1));
    } catch (error) {
      cancel(ordinal, (error as Error).message);
      throw error;
    }
    urls.delete(id);
    log(`node ${id} failed its health checks: deleted pod ${name}, waiting for it to come back`);
    return announced;
  }

  async function register(claim: NodeClaim): Promise<ProvidedNode> {
    if (typeof claim?.ref !== 'string' || typeof claim.url !== 'string') {
      throw new ClaimRefused('a claim names a pod (ref) and a URL (url), both strings');
    }
    if (closed) throw new Error('the manager is stopping; announce again');
    const ordinal = ordinalOf(pool, claim.ref);
    if (ordinal === undefined) {
      throw new ClaimRefused(
        `pod ${JSON.stringify(claim.ref)} is not a pod of StatefulSet ${statefulSet} (${statefulSet}-<ordinal>)`,
      );
    }
    const pod = await api.pod(claim.ref);
    if (!pod) throw new ClaimRefused(`no pod ${claim.ref} in namespace ${pool.namespace}`);
    const refusal =
      podRefusal(pool, pod, await statefulSetUid()) ?? urlRefusal(pool, pod, claim.url);
    if (refusal) throw new ClaimRefused(refusal);
    const uid = pod.metadata?.uid ?? '';
    const url = claim.url.replace(/\/+$/, '');

    const waiter = waiters.get(ordinal);
    if (waiter) {
      if (waiter.stale.has(uid)) {
        throw new ClaimRefused(`pod ${claim.ref} is being replaced; only its successor may join`);
      }
      urls.set(waiter.id, url);
      incarnations.set(ordinal, incarnation(pod));
      const node = { id: waiter.id, url };
      waiter.resolve(node);
      return node;
    }
    const id = idAt(ordinal);
    if (id === undefined) {
      throw new ClaimRefused(
        `pod ${claim.ref} is no node of pool ${pool.poolName}: no node holds ordinal ${ordinal} (the pool's nodes are ordinals 0 to ${highest()}) and no start waits for it`,
      );
    }
    const node = { id, url };
    // The same process again (its answer was lost, or it lost this manager): nothing changed.
    if (incarnations.get(ordinal) === incarnation(pod) && urls.get(id) === url) return node;
    // A node of the pool announcing again from a new container: it restarted and starts empty.
    urls.set(id, url);
    incarnations.set(ordinal, incarnation(pod));
    log(`node ${id} (pod ${claim.ref}) announced itself again at ${url}: it restarted`);
    for (const listener of replacedListeners) listener(node);
    return node;
  }

  async function resume(nodes: ProvidedNode[]): Promise<(ProvidedNode | undefined)[]> {
    const owner = await statefulSetUid();
    const pods = await api.pods(poolSelector(pool));
    const results = nodes.map((node): ProvidedNode | undefined => {
      const byIp = pods.find((pod) => podServes(pool, pod, node.url))?.metadata?.name;
      const ordinal =
        ordinalOfUrl(pool, node.url) ?? (byIp === undefined ? undefined : ordinalOf(pool, byIp));
      if (ordinal === undefined || idAt(ordinal) !== undefined) {
        log(`node ${node.id} at ${node.url} names no pod of StatefulSet ${statefulSet}`);
        return undefined;
      }
      ordinals.set(node.id, ordinal);
      const name = podName(pool, ordinal);
      const pod = pods.find((p) => p.metadata?.name === name);
      const refusal = pod ? podRefusal(pool, pod, owner) : `pod ${name} does not exist`;
      if (refusal) {
        log(`node ${node.id}: ${refusal}; waiting for it to announce itself`);
        return undefined;
      }
      urls.set(node.id, node.url);
      if (pod) incarnations.set(ordinal, incarnation(pod));
      return node;
    });
    const size = highest() + 1;
    const before = await api.replicas();
    if (before !== size) {
      await api.scale(() => size);
      log(`StatefulSet ${statefulSet} had ${before} replicas for a pool of ${size}: scaled it`);
    }
    return results;
  }

  return {
    name: 'kubernetes',
    outlivesManager: true,
    start,
    register,
    replace(id) {
      let pending = replacing.get(id);
      if (!pending) {
        pending = replace(id).finally(() => replacing.delete(id));
        replacing.set(id, pending);
      }
      return pending;
    },
    async stop(id) {
      const ordinal = ordinals.get(id);
      if (ordinal === undefined) return;
      const last = highest();
      if (ordinal !== last) {
        throw new Error(
          `refusing to stop node ${id} (pod ${podName(pool, ordinal)}): a StatefulSet removes only its highest ordinal, pod ${podName(pool, last)} (node ${idAt(last)}); nothing was changed`,
        );
      }
      cancel(ordinal, `node ${id} was stopped while it started`);
      await api.scale((current) => Math.min(current, ordinal));
      ordinals.delete(id);
      urls.delete(id);
      incarnations.delete(ordinal);
      log(`node ${id} stopped: StatefulSet ${statefulSet} scaled to ${ordinal}`);
    },
    resume,
    async deletePool() {
      for (const ordinal of waiters.keys()) cancel(ordinal, 'the pool is being deleted');
      let before = 0;
      await api.scale((current) => {
        before = current;
        return 0;
      });
      ordinals.clear();
      urls.clear();
      incarnations.clear();
      log(`pool ${pool.poolName} deleted: StatefulSet ${statefulSet} scaled to 0`);
      return before > 0 ? [`StatefulSet ${statefulSet}: scaled from ${before} pod(s) to 0`] : [];
    },
    onReplaced(listener) {
      replacedListeners.push(listener);
    },
    async close() {
      closed = true;
      for (const ordinal of waiters.keys()) {
        cancel(ordinal, 'the manager is stopping (the pods are left running)');
      }
    },
  };
}
