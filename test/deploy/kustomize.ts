/**
 * Renders a kustomization in-process, for the deploy tests: no kubectl on CI. It implements only
 * what pixpool's kustomizations use (resources, namespace, images, replicas) the way kustomize
 * does, and refuses any other field, so a kustomization that grows a transformer fails here
 * instead of being rendered without it. Where kubectl exists, manifests.test.ts checks that
 * `kubectl kustomize` renders exactly the same objects.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are read loosely, then validated
export type K8sObject = Record<string, any>;

const HANDLED = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'images', 'replicas']);
/** Kinds that live in no namespace (the ones a kustomization here could hold). */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

/** Every document of a YAML file, as plain objects (empty documents dropped). */
export async function readYamlDocuments(path: string): Promise<K8sObject[]> {
  const documents = parseAllDocuments(await readFile(path, 'utf8'));
  return documents
    .map((document) => {
      if (document.errors.length > 0) {
        throw new Error(`${path}: ${document.errors.map((e) => e.message).join('; ')}`);
      }
      return document.toJS() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
}

/** The pod template's containers of a workload (none for other kinds). */
export function containersOf(object: K8sObject): K8sObject[] {
  const spec = object.spec?.template?.spec;
  return spec ? [...(spec.initContainers ?? []), ...(spec.containers ?? [])] : [];
}

export async function renderKustomization(dir: string): Promise<K8sObject[]> {
  const [kustomization] = await readYamlDocuments(join(dir, 'kustomization.yaml'));
  if (!kustomization) throw new Error(`${dir}/kustomization.yaml is empty`);
  for (const field of Object.keys(kustomization)) {
    if (!HANDLED.has(field)) {
      throw new Error(`${dir}/kustomization.yaml: the test renderer does not implement ${field}`);
    }
  }
  const objects: K8sObject[] = [];
  for (const resource of (kustomization.resources ?? []) as string[]) {
    const path = join(dir, resource);
    objects.push(
      ...((await stat(path)).isDirectory()
        ? await renderKustomization(path)
        : await readYamlDocuments(path)),
    );
  }
  const namespace = kustomization.namespace as string | undefined;
  if (namespace) {
    const accounts = new Set(
      objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name),
    );
    for (const object of objects) {
      if (!CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = namespace;
      // kustomize moves a binding's ServiceAccount subjects along when the account is one of
      // the kustomization's own, or names no namespace (or `default`).
      if (object.kind === 'RoleBinding' || object.kind === 'ClusterRoleBinding') {
        for (const subject of object.subjects ?? []) {
          const own =
            accounts.has(subject.name) || [undefined, 'default'].includes(subject.namespace);
          if (subject.kind === 'ServiceAccount' && own) subject.namespace = namespace;
        }
      }
    }
  }
  for (const image of (kustomization.images ?? []) as K8sObject[]) {
    for (const container of objects.flatMap(containersOf)) {
      const [name, tag] = String(container.image).split(':');
      if (name !== image.name) continue;
      container.image = `${image.newName ?? name}${image.newTag ? `:${image.newTag}` : tag ? `:${tag}` : ''}`;
    }
  }
  for (const { name, count } of (kustomization.replicas ?? []) as K8sObject[]) {
    const target = objects.find((o) => o.metadata?.name === name && o.spec?.replicas !== undefined);
    if (!target) throw new Error(`${dir}: replicas names ${name}, which has no replicas`);
    target.spec.replicas = count;
  }
  return objects;
}

/** `Kind namespace/name`: how the tests name an object. */
export const objectId = (o: K8sObject): string =>
  `${o.kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
