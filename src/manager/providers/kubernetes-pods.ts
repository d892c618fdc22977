/**
 * What makes a pod one of this pool's cache nodes, and what its node may claim as its address:
 * the pure checks behind the kubernetes provider's register() and resume(), apart from the API
 * calls so each reason for a refusal reads as one sentence an operator can act on.
 *
 * A pod is ours when the StatefulSet owns it (an ownerReference to it, by uid once known) and it
 * carries the pool's labels, so a pod someone starts by hand with copied labels, or a pod of
 * another pool's StatefulSet, never joins. A node may claim only its pod's stable DNS name under
 * the headless Service, or its pod IP: anything else would let one pod point the pool elsewhere.
 */
import type { V1Pod } from '@kubernetes/client-node';

/** The labels every cache-node pod of a pool carries (the StatefulSet's pod template). */
export const NODE_APP_LABEL = 'app.kubernetes.io/name';
export const NODE_APP = 'pixpool-node';
export const POOL_LABEL = 'pixpool.io/pool';

export interface PoolPods {
  namespace: string;
  statefulSet: string;
  /** The headless Service that gives each pod its DNS name. */
  service: string;
  poolName: string;
  /** The cluster's DNS domain (default cluster.local). */
  clusterDomain: string;
}

/**
 * An API server URL as --kube-api-url takes it: http(s), an origin. Here, not beside the client,
 * so the command's parser does not load the client.
 */
export function parseKubeApiUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(
      `Expected the API server's URL (https://host:port), not ${JSON.stringify(value)}.`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`Expected an http or https URL, not ${JSON.stringify(value)}.`);
  }
  return url.origin;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Throws, naming the option, when a name could not be a namespace, StatefulSet or label. */
export function checkPoolPods(pool: PoolPods): void {
  for (const [what, name] of [
    ['namespace', pool.namespace],
    ['StatefulSet', pool.statefulSet],
    ['Service', pool.service],
  ] as const) {
    if (!DNS_LABEL.test(name)) {
      throw new Error(
        `the Kubernetes ${what} name ${JSON.stringify(name)} is not a DNS label (a-z, 0-9, '-', at most 63)`,
      );
    }
  }
  if (!LABEL_VALUE.test(pool.poolName)) {
    throw new Error(
      `the pool name ${JSON.stringify(pool.poolName)} is not a Kubernetes label value (letters, digits, '-', '_', '.', at most 63)`,
    );
  }
}

/** `app.kubernetes.io/name=pixpool-node,pixpool.io/pool=<pool>`: the pods of this pool. */
export const poolSelector = (pool: PoolPods): string =>
  `${NODE_APP_LABEL}=${NODE_APP},${POOL_LABEL}=${pool.poolName}`;

export const podName = (pool: PoolPods, ordinal: number): string =>
  `${pool.statefulSet}-${ordinal}`;

/** The ordinal of a pod name of this StatefulSet (`<sts>-<n>`), or undefined. */
export function ordinalOf(pool: PoolPods, name: string): number | undefined {
  const prefix = `${pool.statefulSet}-`;
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  return /^(0|[1-9]\d{0,5})$/.test(rest) ? Number(rest) : undefined;
}

/** The pod's stable names: `<pod>.<service>.<ns>.svc` and the same under the cluster domain. */
export function dnsNames(pool: PoolPods, name: string): string[] {
  const short = `${name}.${pool.service}.${pool.namespace}.svc`;
  return [short, `${short}.${pool.clusterDomain}`];
}

/** The pod's IPs, as URL hostnames (IPv6 without brackets, lower case). */
function podIps(pod: V1Pod): string[] {
  const ips = [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p.ip)];
  return ips.filter((ip): ip is string => Boolean(ip)).map((ip) => ip.toLowerCase());
}

/** The ordinal of the pod a registry URL names by its DNS name, or undefined. */
export function ordinalOfUrl(pool: PoolPods, url: string): number | undefined {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  const name = host.split('.')[0] ?? '';
  const ordinal = ordinalOf(pool, name);
  return ordinal !== undefined && dnsNames(pool, name).includes(host) ? ordinal : undefined;
}

/** The host a registry URL or a claim names, IPv6 brackets removed; undefined if no URL. */
export function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  } catch {
    return undefined;
  }
}

/** Why this pod is not a running node of the pool (a sentence), or undefined when it is. */
export function podRefusal(pool: PoolPods, pod: V1Pod, statefulSetUid: string): string | undefined {
  const name = pod.metadata?.name ?? '?';
  const owners = pod.metadata?.ownerReferences ?? [];
  const owned = owners.some(
    (o) => o.kind === 'StatefulSet' && o.name === pool.statefulSet && o.uid === statefulSetUid,
  );
  if (!owned) {
    return `pod ${name} is not owned by StatefulSet ${pool.statefulSet} in namespace ${pool.namespace}`;
  }
  const labels = pod.metadata?.labels ?? {};
  if (labels[NODE_APP_LABEL] !== NODE_APP || labels[POOL_LABEL] !== pool.poolName) {
    return `pod ${name} lacks the labels ${poolSelector(pool)} of this pool`;
  }
  if (pod.metadata?.deletionTimestamp) return `pod ${name} is terminating`;
  if (pod.status?.phase !== 'Running') {
    return `pod ${name} is not running (phase ${pod.status?.phase ?? 'unknown'})`;
  }
  return undefined;
}

/**
 * Why a node of this pod may not claim `url` (a sentence), or undefined: it must be an http(s)
 * origin whose host is the pod's DNS name under the headless Service or one of its pod IPs.
 */
export function urlRefusal(pool: PoolPods, pod: V1Pod, url: string): string | undefined {
  const name = pod.metadata?.name ?? '?';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `the claimed URL ${JSON.stringify(url)} is not a URL`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `the claimed URL ${url} is not http or https`;
  }
  if (
    parsed.username ||
    parsed.password ||
    parsed.search ||
    parsed.hash ||
    parsed.pathname !== '/'
  ) {
    return `the claimed URL ${url} is not an origin (scheme, host and port only)`;
  }
  const host = hostOf(url) ?? '';
  if (dnsNames(pool, name).includes(host) || podIps(pod).includes(host)) return undefined;
  return `the claimed URL ${url} does not name pod ${name}: expected its DNS name ${dnsNames(pool, name)[0]} (or ${dnsNames(pool, name)[1]}) or its pod IP`;
}

/** Whether a pod of the pool serves at `url` (its DNS name or pod IP), for resume. */
export function podServes(pool: PoolPods, pod: V1Pod, url: string): boolean {
  const host = hostOf(url);
  const name = pod.metadata?.name ?? '';
  return Boolean(host && (dnsNames(pool, name).includes(host) || podIps(pod).includes(host)));
}
