/**
 * The few Kubernetes API calls the kubernetes provider makes, through the official client, and
 * nothing else: so the least RBAC it needs reads off this file.
 *
 *   statefulsets        get            (its uid: the owner every pool pod must name)
 *   statefulsets/scale  get, update    (replicas, read then written with its resourceVersion)
 *   pods                get, list, delete
 *
 * The scale is written with the resourceVersion it was read at, so a write that raced another
 * (kubectl scale, say) is refused by the server (409) and done again from a fresh read rather
 * than undoing the other. The connection is the pod's service account (in-cluster) unless an API
 * URL is given, with an optional bearer token file and CA file (tests, or a manager outside).
 */
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';

export interface KubeConnection {
  /** The API server's URL; unset: in-cluster (the service account's token, CA and namespace). */
  apiUrl?: string | undefined;
  /** A bearer token file, read again when it changes (projected tokens rotate). */
  tokenFile?: string | undefined;
  /** The CA certificates (PEM) the API server's certificate is verified with. */
  caFile?: string | undefined;
}

/** The client's configuration, and the namespace it defaults to (in-cluster: the pod's own). */
export function kubeConfigFor(connection: KubeConnection): {
  kubeConfig: KubeConfig;
  namespace: string | undefined;
} {
  const kubeConfig = new KubeConfig();
  if (connection.apiUrl) {
    kubeConfig.loadFromClusterAndUser(
      {
        name: 'pixpool',
        server: connection.apiUrl.replace(/\/+$/, ''),
        // The client refuses plain http unless told there is no certificate to verify.
        skipTLSVerify: connection.apiUrl.startsWith('http:'),
        ...(connection.caFile && { caFile: connection.caFile }),
      },
      {
        name: 'pixpool',
        ...(connection.tokenFile && {
          authProvider: { name: 'tokenFile', config: { tokenFile: connection.tokenFile } },
        }),
      },
    );
    return { kubeConfig, namespace: undefined };
  }
  kubeConfig.loadFromCluster();
  const server = kubeConfig.getCurrentCluster()?.server ?? '';
  if (server.includes('undefined')) {
    throw new Error(
      'the kubernetes provider runs in a cluster (KUBERNETES_SERVICE_HOST is not set here): give --kube-api-url',
    );
  }
  const namespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
  return { kubeConfig, namespace: namespace?.trim() || undefined };
}

export interface KubeTarget {
  namespace: string;
  statefulSet: string;
}

/** Conflicting writes of the scale tried again before giving up. */
const SCALE_ATTEMPTS = 5;

const isStatus = (error: unknown, code: number) =>
  error instanceof ApiException && error.code === code;

/** A short form of an API error for messages (the client's own is a page of headers). */
export function describeKubeError(error: unknown): string {
  if (error instanceof ApiException) {
    const body = error.body as { message?: unknown } | string | undefined;
    const message =
      typeof body === 'object' && typeof body?.message === 'string' ? body.message : '';
    return `the Kubernetes API answered ${error.code}${message ? `: ${message}` : ''}`;
  }
  return (error as Error)?.message ?? String(error);
}

/** Rethrows an API error with a message that names what was being done. */
function failed(what: string): (error: unknown) => never {
  return (error) => {
    throw new Error(`${what}: ${describeKubeError(error)}`, { cause: error });
  };
}

export function createKubeApi(kubeConfig: KubeConfig, target: KubeTarget) {
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const { namespace, statefulSet: name } = target;
  const where = `StatefulSet ${name} in namespace ${namespace}`;

  return {
    /** The StatefulSet's uid. */
    async statefulSetUid(): Promise<string> {
      const sts = await apps
        .readNamespacedStatefulSet({ name, namespace })
        .catch(failed(`reading ${where}`));
      const uid = sts.metadata?.uid;
      if (!uid) throw new Error(`${where} has no uid`);
      return uid;
    },

    /** The replicas the StatefulSet is asked for now. */
    async replicas(): Promise<number> {
      const scale = await apps
        .readNamespacedStatefulSetScale({ name, namespace })
        .catch(failed(`reading the scale of ${where}`));
      return scale.spec?.replicas ?? 0;
    },

    /**
     * Sets the replicas to what `next` makes of the current count (read with its version, then
     * written with it); returns the count written, or the current one when `next` keeps it.
     */
    async scale(next: (current: number) => number): Promise<number> {
      for (let attempt = 1; ; attempt++) {
        const scale = await apps
          .readNamespacedStatefulSetScale({ name, namespace })
          .catch(failed(`reading the scale of ${where}`));
        const current = scale.spec?.replicas ?? 0;
        const replicas = next(current);
        if (replicas === current) return current;
        try {
          await apps.replaceNamespacedStatefulSetScale({
            name,
            namespace,
            body: { ...scale, spec: { ...scale.spec, replicas } },
          });
          return replicas;
        } catch (error) {
          if (isStatus(error, 409) && attempt < SCALE_ATTEMPTS) continue;
          failed(`scaling ${where} to ${replicas}`)(error);
        }
      }
    },

    /** The pod, or undefined when there is none of that name. */
    async pod(podName: string): Promise<V1Pod | undefined> {
      try {
        return await core.readNamespacedPod({ name: podName, namespace });
      } catch (error) {
        if (isStatus(error, 404)) return undefined;
        return failed(`reading pod ${podName} in namespace ${namespace}`)(error);
      }
    },

    async pods(labelSelector: string): Promise<V1Pod[]> {
      const list = await core
        .listNamespacedPod({ namespace, labelSelector })
        .catch(failed(`listing the pods ${labelSelector} in namespace ${namespace}`));
      return list.items;
    },

    /** Deletes a pod; one that is gone already is no error. */
    async deletePod(podName: string): Promise<void> {
      try {
        await core.deleteNamespacedPod({ name: podName, namespace });
      } catch (error) {
        if (!isStatus(error, 404))
          failed(`deleting pod ${podName} in namespace ${namespace}`)(error);
      }
    },
  };
}

export type KubeApi = ReturnType<typeof createKubeApi>;
