/**
 * A small Kubernetes API server for tests: one namespace, one StatefulSet of cache nodes and the
 * pods the StatefulSet controller would keep for it, on a real socket (node:http, port 0). It
 * speaks the REST paths and JSON shapes `@kubernetes/client-node` sends and reads, so a provider
 * under test runs the real client, not a mock of it:
 *
 *   GET  /apis/apps/v1/namespaces/{ns}/statefulsets/{name}
 *   GET  /apis/apps/v1/namespaces/{ns}/statefulsets/{name}/scale
 *   PUT  …/scale (optimistic: a stale metadata.resourceVersion gets 409), PATCH …/scale (merge)
 *   GET  /api/v1/namespaces/{ns}/pods[?labelSelector=a=b,c=d]
 *   GET  /api/v1/namespaces/{ns}/pods/{name}
 *   DELETE /api/v1/namespaces/{ns}/pods/{name}
 *
 * Like the controller, a change of replicas creates the missing pods `<sts>-<ordinal>` in ordinal
 * order and removes the pods of the highest ordinals first, and a deleted pod of an ordinal below
 * replicas comes back under the same name with a new uid and a new pod IP. A pod starts Pending
 * and turns Running just after the request that created it is answered; then `onPod(pod)` is
 * called, in ordinal order, one pod at a time: a test announces the node there (provider
 * register()), a network-namespace test may start a real `pixpool cache-node` for it. A pod
 * removed (deleted, or above the replicas) is passed to `onPodGone`, whose process a
 * network-namespace test ends there: the kubelet's part.
 *
 * It also holds foreign pods (addPod: any labels, owner or none), can mark a pod terminating
 * without removing it, restart a pod's container, and records the replicas it was given and the
 * RBAC verb of every request, so a test can check both. With `token`, a request without that
 * bearer token is answered 401. Everything else answers 404 with a Status, as the real server
 * does for an unknown path.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The JSON of a pod, as the API serves it (only the fields this fake keeps). */
export interface FakePod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    deletionTimestamp?: string;
    labels: Record<string, string>;
    ownerReferences?: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
    }[];
  };
  spec: { hostname?: string; subdomain?: string; containers: { name: string; image: string }[] };
  status: {
    phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
    podIP?: string;
    podIPs?: { ip: string }[];
    startTime?: string;
    containerStatuses?: { name: string; ready: boolean; restartCount: number; image: string }[];
  };
}

/** One request, as RBAC sees it: the verb and the resource (with its subresource). */
export interface KubeRequest {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  resource: string;
  name?: string;
}

export interface FakeKubeApiOptions {
  namespace?: string;
  statefulSet?: string;
  /** The headless Service named in the StatefulSet (spec.serviceName). */
  service?: string;
  /** The `pixpool.io/pool` label of the pod template. */
  poolName?: string;
  /** Replicas at the start: those pods exist and run (onPod is called for each). */
  replicas?: number;
  /** Called when a pod turns Running; an error thrown is kept in `hookErrors`. */
  onPod?: (pod: FakePod) => void | Promise<void>;
  /**
   * Called once a pod is removed (deleted, or scaled away), after the answer that removed it and
   * whether it ran or not; an error thrown is kept in `hookErrors`. The controller does not wait
   * for it: a deleted pod's successor is made at once.
   */
  onPodGone?: (pod: FakePod) => void | Promise<void>;
  /** The IP a new pod gets; default 10.244.0.N, a new N for every pod. */
  podIp?: (name: string, ordinal: number) => string;
  /** Leave new pods Pending until run(name) (default false: they run at once). */
  hold?: boolean;
  /** A bearer token every request must carry (401 otherwise); default: none asked. */
  token?: string;
  /** The address it listens on (default 127.0.0.1; a lab's bridge, for namespaced hosts). */
  host?: string;
}

export interface FakeKubeApi {
  /** The API server's origin, for --kube-api-url. */
  url: string;
  namespace: string;
  statefulSet: string;
  service: string;
  /** Every replica count the scale subresource was given, in order. */
  readonly replicaHistory: number[];
  /** Every request so far. */
  readonly requests: KubeRequest[];
  /** Errors the onPod hook threw. */
  readonly hookErrors: unknown[];
  replicas(): number;
  /** The pods, sorted by name (a copy). */
  pods(): FakePod[];
  pod(name: string): FakePod | undefined;
  /** The pod's stable DNS name under the headless Service. */
  dnsName(name: string): string;
  /** A pod no StatefulSet owns unless `ownerReferences` says so; Running at once. */
  addPod(pod: {
    name: string;
    labels?: Record<string, string>;
    ownerReferences?: FakePod['metadata']['ownerReferences'];
    podIP?: string;
  }): FakePod;
  /** Sets replicas as `kubectl scale` would (recorded in replicaHistory too). */
  scaleTo(replicas: number): void;
  /** Marks a pod terminating (deletionTimestamp set) and keeps it, as a graceful delete does. */
  terminate(name: string): void;
  /** Restarts a pod's container: same pod and uid, restartCount + 1, onPod called again. */
  restart(name: string): Promise<void>;
  /** Turns a held (Pending) pod Running and calls onPod. */
  run(name: string): Promise<void>;
  /**
   * Resolves once every pod created so far has been run and its onPod hook has returned, and
   * every onPodGone hook of a pod removed so far has returned.
   */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const namespace = options.namespace ?? 'pixpool';
  const stsName = options.statefulSet ?? 'pixpool-node';
  const service = options.service ?? stsName;
  const templateLabels = {
    'app.kubernetes.io/name': 'pixpool-node',
    'pixpool.io/pool': options.poolName ?? 'pixpool',
  };
  const stsUid = randomUUID();
  let resourceVersion = 1;
  let replicas = 0;
  let ipCounter = 10;
  const pods = new Map<string, FakePod>();
  const replicaHistory: number[] = [];
  const requests: KubeRequest[] = [];
  const hookErrors: unknown[] = [];
  /** Pods turn Running one at a time, in the order they were created. */
  let running: Promise<void> = Promise.resolve();
  /** The onPodGone hooks still running. */
  const going = new Set<Promise<void>>();

  const now = () => new Date().toISOString();
  const nextVersion = () => String(++resourceVersion);
  const ordinalOf = (name: string) => {
    const match = new RegExp(`^${stsName}-(\\d+)$`).exec(name);
    return match ? Number(match[1]) : undefined;
  };
  const owned = (pod: FakePod) =>
    pod.metadata.ownerReferences?.some((o) => o.kind === 'StatefulSet' && o.uid === stsUid);

  /** Runs pod `name`: the pod of that name now, unless `uid` says which one (a later one waits). */
  function startRunning(name: string, uid = pods.get(name)?.metadata.uid): Promise<void> {
    running = running.then(async () => {
      await new Promise((resolve) => setImmediate(resolve)); // after the answer that made it
      const pod = pods.get(name);
      // Gone (maybe already made again under its name: that pod runs on its own turn).
      if (!pod || pod.metadata.uid !== uid || pod.metadata.deletionTimestamp) return;
      pod.status.phase = 'Running';
      pod.status.startTime ??= now();
      for (const container of pod.status.containerStatuses ?? []) container.ready = true;
      pod.metadata.resourceVersion = nextVersion();
      try {
        await options.onPod?.(structuredClone(pod));
      } catch (error) {
        hookErrors.push(error);
      }
    });
    return running;
  }

  function createPod(ordinal: number): void {
    const name = `${stsName}-${ordinal}`;
    const ip = options.podIp?.(name, ordinal) ?? `10.244.0.${ipCounter++}`;
    pods.set(name, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        uid: randomUUID(),
        resourceVersion: nextVersion(),
        creationTimestamp: now(),
        labels: {
          ...templateLabels,
          'apps.kubernetes.io/pod-index': String(ordinal),
          'statefulset.kubernetes.io/pod-name': name,
        },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'StatefulSet',
            name: stsName,
            uid: stsUid,
            controller: true,
          },
        ],
      },
      spec: {
        hostname: name,
        subdomain: service,
        containers: [{ name: 'cache-node', image: 'pixpool:test' }],
      },
      status: {
        phase: 'Pending',
        podIP: ip,
        podIPs: [{ ip }],
        containerStatuses: [
          { name: 'cache-node', ready: false, restartCount: 0, image: 'pixpool:test' },
        ],
      },
    });
    if (!options.hold) void startRunning(name);
  }

  /** Removes a pod; its onPodGone hook runs after the current request is answered. */
  function removePod(pod: FakePod): void {
    pods.delete(pod.metadata.name);
    if (!options.onPodGone) return;
    const gone = structuredClone(pod);
    const hook = new Promise((resolve) => setImmediate(resolve))
      .then(() => options.onPodGone?.(gone))
      .catch((error: unknown) => {
        hookErrors.push(error);
      })
      .finally(() => going.delete(hook));
    going.add(hook);
  }

  /** What the StatefulSet controller does: ordinals below replicas exist, the others go. */
  function reconcile(): void {
    const stale = [...pods.values()]
      .filter((pod) => owned(pod) && (ordinalOf(pod.metadata.name) ?? -1) >= replicas)
      .sort((a, b) => (ordinalOf(b.metadata.name) ?? 0) - (ordinalOf(a.metadata.name) ?? 0));
    for (const pod of stale) removePod(pod);
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      if (!pods.has(`${stsName}-${ordinal}`)) createPod(ordinal);
    }
  }

  function setReplicas(value: number): void {
    replicas = value;
    replicaHistory.push(value);
    reconcile();
  }

  const selector = () =>
    Object.entries(templateLabels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  const statefulSet = () => ({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: stsName,
      namespace,
      uid: stsUid,
      resourceVersion: String(resourceVersion),
      creationTimestamp: now(),
      labels: templateLabels,
    },
    spec: {
      replicas,
      serviceName: service,
      selector: { matchLabels: templateLabels },
      template: {
        metadata: { labels: templateLabels },
        spec: { containers: [{ name: 'cache-node', image: 'pixpool:test' }] },
      },
    },
    status: { replicas: [...pods.values()].filter(owned).length, availableReplicas: 0 },
  });
  const scale = () => ({
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: {
      name: stsName,
      namespace,
      uid: stsUid,
      resourceVersion: String(resourceVersion),
      creationTimestamp: now(),
    },
    spec: { replicas },
    status: { replicas: [...pods.values()].filter(owned).length, selector: selector() },
  });

  /** `a=b,c=d` (and `a==b`, `a!=b`): the equality-based label selectors. */
  function matches(labels: Record<string, string>, labelSelector: string | null): boolean {
    if (!labelSelector) return true;
    return labelSelector.split(',').every((term) => {
      const negated = term.match(/^([^!=]+)!=(.*)$/);
      if (negated) return labels[negated[1] as string] !== negated[2];
      const [key, value] = term.split(/==?/) as [string, string | undefined];
      return value === undefined ? key in labels : labels[key] === value;
    });
  }

  const status = (code: number, reason: string, message: string) => ({
    apiVersion: 'v1',
    kind: 'Status',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
  }

  function send(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const ns = `/namespaces/${namespace}`;
    const stsPath = `/apis/apps/v1${ns}/statefulsets/${stsName}`;
    const podsPath = `/api/v1${ns}/pods`;
    const notFound = (what: string) => send(res, 404, status(404, 'NotFound', `${what} not found`));
    if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
      return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }

    if (url.pathname === stsPath && method === 'GET') {
      requests.push({ verb: 'get', resource: 'statefulsets', name: stsName });
      return send(res, 200, statefulSet());
    }
    if (url.pathname === `${stsPath}/scale`) {
      if (method === 'GET') {
        requests.push({ verb: 'get', resource: 'statefulsets/scale', name: stsName });
        return send(res, 200, scale());
      }
      if (method === 'PUT' || method === 'PATCH') {
        requests.push({
          verb: method === 'PUT' ? 'update' : 'patch',
          resource: 'statefulsets/scale',
          name: stsName,
        });
        const body = (await readBody(req)) as {
          metadata?: { resourceVersion?: string };
          spec?: { replicas?: unknown };
        };
        const version = body?.metadata?.resourceVersion;
        if (method === 'PUT' && version && version !== String(resourceVersion)) {
          return send(
            res,
            409,
            status(409, 'Conflict', 'the object has been modified; apply your changes again'),
          );
        }
        const value = body?.spec?.replicas;
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
          return send(res, 422, status(422, 'Invalid', 'spec.replicas: must be an integer ≥ 0'));
        }
        nextVersion();
        setReplicas(value);
        return send(res, 200, scale());
      }
    }
    if (url.pathname === podsPath && method === 'GET') {
      const watch = url.searchParams.get('watch') === 'true';
      requests.push({ verb: watch ? 'watch' : 'list', resource: 'pods' });
      const items = [...pods.values()]
        .filter((pod) => matches(pod.metadata.labels, url.searchParams.get('labelSelector')))
        .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
      return send(res, 200, {
        apiVersion: 'v1',
        kind: 'PodList',
        metadata: { resourceVersion: String(resourceVersion) },
        items,
      });
    }
    if (url.pathname.startsWith(`${podsPath}/`)) {
      const name = decodeURIComponent(url.pathname.slice(podsPath.length + 1));
      const pod = pods.get(name);
      if (method === 'GET') {
        requests.push({ verb: 'get', resource: 'pods', name });
        return pod ? send(res, 200, pod) : notFound(`pods "${name}"`);
      }
      if (method === 'DELETE') {
        requests.push({ verb: 'delete', resource: 'pods', name });
        if (!pod) return notFound(`pods "${name}"`);
        removePod(pod);
        nextVersion();
        reconcile(); // the controller puts the ordinal back
        return send(res, 200, { ...pod, metadata: { ...pod.metadata, deletionTimestamp: now() } });
      }
    }
    requests.push({ verb: method === 'GET' ? 'get' : 'update', resource: url.pathname });
    return notFound(`the path ${url.pathname}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => send(res, 500, status(500, 'InternalError', String(error))));
  });
  const host = options.host ?? '127.0.0.1';
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  if (options.replicas) {
    replicas = options.replicas;
    reconcile();
  }

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    namespace,
    statefulSet: stsName,
    service,
    replicaHistory,
    requests,
    hookErrors,
    replicas: () => replicas,
    pods: () =>
      [...pods.values()]
        .map((pod) => structuredClone(pod))
        .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)),
    pod: (name) => {
      const pod = pods.get(name);
      return pod && structuredClone(pod);
    },
    dnsName: (name) => `${name}.${service}.${namespace}.svc.cluster.local`,
    addPod(spec) {
      const ip = spec.podIP ?? `10.244.1.${ipCounter++}`;
      const pod: FakePod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: spec.name,
          namespace,
          uid: randomUUID(),
          resourceVersion: nextVersion(),
          creationTimestamp: now(),
          labels: spec.labels ?? {},
          ...(spec.ownerReferences && { ownerReferences: spec.ownerReferences }),
        },
        spec: { containers: [{ name: 'main', image: 'other:latest' }] },
        status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], startTime: now() },
      };
      pods.set(spec.name, pod);
      return structuredClone(pod);
    },
    scaleTo: (value) => {
      nextVersion();
      setReplicas(value);
    },
    terminate(name) {
      const pod = pods.get(name);
      if (!pod) throw new Error(`no pod ${name}`);
      pod.metadata.deletionTimestamp = now();
      pod.metadata.resourceVersion = nextVersion();
    },
    async restart(name) {
      const pod = pods.get(name);
      if (!pod) throw new Error(`no pod ${name}`);
      for (const container of pod.status.containerStatuses ?? []) container.restartCount++;
      await startRunning(name);
    },
    run: (name) => startRunning(name),
    async settled() {
      // A hook may scale (and so queue more pods): wait until nothing new was queued.
      let last: Promise<void> | undefined;
      while (last !== running || going.size > 0) {
        last = running;
        await Promise.all([last, ...going]);
      }
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
