/**
 * The Kubernetes manifests (deploy/kubernetes), checked offline: no cluster runs here. The base
 * and the example overlay are rendered in-process (kustomize.ts), every object is validated
 * against the Kubernetes schemas (kubernetes-models), and what must agree across objects does:
 * selectors and labels, the StatefulSet and its headless Service, probes and ports, the Secrets
 * the docs say to create, the RBAC the kubernetes provider needs, the node's memory and its
 * capacity, and every `pixpool` command line, against the real command's parser. Where kubectl
 * exists, `kubectl kustomize` must render exactly the same objects.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { KUBERNETES_RBAC } from '../../src/manager/providers/kubernetes-rbac.ts';
import { commandLineProblems, REPO } from './cli-help.ts';
import { containersOf, type K8sObject, objectId, renderKustomization } from './kustomize.ts';

const BASE = join(REPO, 'deploy', 'kubernetes', 'base');
const OVERLAY = join(REPO, 'deploy', 'kubernetes', 'overlays', 'example');

const MODELS: Record<string, { new (data: never): { validate(): void } }> = {
  'v1 ConfigMap': ConfigMap,
  'v1 Service': Service,
  'v1 ServiceAccount': ServiceAccount,
  'apps/v1 Deployment': Deployment,
  'apps/v1 StatefulSet': StatefulSet,
  'rbac.authorization.k8s.io/v1 Role': Role,
  'rbac.authorization.k8s.io/v1 RoleBinding': RoleBinding,
};

/** What the kubernetes provider calls: the Role must grant exactly this. */
const PROVIDER_RULES = KUBERNETES_RBAC;

const WORKLOADS = new Set(['Deployment', 'StatefulSet']);

/** The value of `--name=value` in a container's args. */
function flag(container: K8sObject, name: string): string | undefined {
  const arg = (container.args as string[]).find((a) => a.startsWith(`${name}=`));
  return arg?.slice(name.length + 1);
}

/** A memory quantity in MiB (the forms these manifests use). */
function mebibytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!match) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

/** Secret name → keys, from the `kubectl create secret generic` commands docs/deploy.md gives. */
async function documentedSecrets(): Promise<Map<string, Set<string>>> {
  const docs = (await readFile(join(REPO, 'docs', 'deploy.md'), 'utf8')).replace(/\\\n/g, ' ');
  const secrets = new Map<string, Set<string>>();
  for (const [, name, rest] of docs.matchAll(/create secret generic ([a-z0-9-]+)([^\n]*)/g)) {
    const keys = [...(rest as string).matchAll(/--from-literal=([A-Za-z0-9_.-]+)=/g)];
    secrets.set(name as string, new Set(keys.map((k) => k[1] as string)));
  }
  return secrets;
}

describe('the kustomize base', () => {
  let objects: K8sObject[];
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
  const named = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    assert.ok(found, `${kind} ${name} is in the base`);
    return found;
  };
  const workloads = () => objects.filter((o) => WORKLOADS.has(o.kind));
  const containerOf = (kind: string, name: string) => {
    const [container] = containersOf(named(kind, name));
    assert.ok(container, `${kind} ${name} has a container`);
    return container;
  };

  before(async () => {
    objects = await renderKustomization(BASE);
  });

  it('renders the objects of a pool, each valid against the Kubernetes schemas', async (t) => {
    assert.deepEqual(objects.map(objectId).sort(), [
      'ConfigMap pixpool/pixpool-config',
      'Deployment pixpool/pixpool-autoscaler',
      'Deployment pixpool/pixpool-frontend',
      'Deployment pixpool/pixpool-manager',
      'Role pixpool/pixpool-manager',
      'RoleBinding pixpool/pixpool-manager',
      'Service pixpool/pixpool-frontend',
      'Service pixpool/pixpool-manager',
      'Service pixpool/pixpool-node',
      'ServiceAccount pixpool/pixpool-manager',
      'StatefulSet pixpool/pixpool-node',
    ]);
    for (const object of objects) {
      const Model = MODELS[`${object.apiVersion} ${object.kind}`];
      assert.ok(Model, `${objectId(object)}: no schema for ${object.apiVersion} ${object.kind}`);
      assert.doesNotThrow(() => new Model(object as never).validate(), objectId(object));
    }
    t.diagnostic(`${objects.length} objects valid`);
  });

  it('the schema check refuses a malformed object', () => {
    const broken = structuredClone(named('StatefulSet', 'pixpool-node'));
    broken.spec.replicas = 'three';
    assert.throws(() => new StatefulSet(broken as never).validate(), /replicas must be integer/);
  });

  it('renders exactly as kubectl kustomize does, where kubectl exists', async (t) => {
    const kubectl = await promisify(execFile)('kubectl', ['version', '--client']).then(
      () => true,
      () => false,
    );
    if (!kubectl) {
      t.diagnostic('kubectl is not installed: only the in-process rendering was checked');
      return;
    }
    for (const dir of [BASE, OVERLAY]) {
      const { stdout } = await promisify(execFile)('kubectl', ['kustomize', dir]);
      const theirs = parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject);
      const ours = await renderKustomization(dir);
      const sort = (list: K8sObject[]) =>
        [...list].sort((a, b) => objectId(a).localeCompare(objectId(b)));
      assert.deepEqual(sort(ours), sort(theirs), dir);
    }
  });

  it('every workload selects its own pod labels, and every Service selects one workload', () => {
    for (const workload of workloads()) {
      const labels = workload.spec.template.metadata.labels;
      for (const [key, value] of Object.entries(workload.spec.selector.matchLabels)) {
        assert.equal(labels[key], value, `${objectId(workload)}: selector ${key}`);
      }
    }
    for (const service of byKind('Service')) {
      const selected = workloads().filter((w) =>
        Object.entries(service.spec.selector).every(
          ([key, value]) => w.spec.template.metadata.labels[key] === value,
        ),
      );
      assert.equal(selected.length, 1, `${objectId(service)} selects one workload`);
      const ports = containersOf(selected[0] as K8sObject).flatMap((c) => c.ports ?? []);
      for (const port of service.spec.ports) {
        assert.ok(
          ports.some((p: K8sObject) => [p.name, p.containerPort].includes(port.targetPort)),
          `${objectId(service)}: targetPort ${port.targetPort} is a container port`,
        );
      }
    }
  });

  it('the node StatefulSet has a headless Service that publishes pods before they are ready', () => {
    const nodes = named('StatefulSet', 'pixpool-node');
    const service = named('Service', nodes.spec.serviceName);
    assert.equal(service.spec.clusterIP, 'None');
    assert.equal(service.spec.publishNotReadyAddresses, true);
    assert.equal(nodes.spec.replicas, 0, 'only the manager scales the nodes');
    assert.equal(nodes.spec.podManagementPolicy, 'Parallel');
  });

  it('every container has liveness on /health and readiness on a port it listens on', () => {
    for (const workload of workloads()) {
      for (const container of containersOf(workload)) {
        const ports = (container.ports ?? []) as K8sObject[];
        for (const kind of ['livenessProbe', 'readinessProbe']) {
          const probe = container[kind]?.httpGet;
          assert.ok(probe, `${objectId(workload)}: ${kind}`);
          assert.ok(
            ports.some((p) => [p.name, p.containerPort].includes(probe.port)),
            `${objectId(workload)}: ${kind} port ${probe.port} is a container port`,
          );
        }
        assert.equal(container.livenessProbe.httpGet.path, '/health');
      }
    }
    // Readiness means "can really serve" where the service has a /ready (src/*/ready-route.ts).
    for (const [kind, name] of [
      ['Deployment', 'pixpool-frontend'],
      ['StatefulSet', 'pixpool-node'],
    ] as const) {
      assert.equal(containerOf(kind, name).readinessProbe.httpGet.path, '/ready', name);
    }
  });

  it('secrets are referenced, never inlined, and each one is a Secret the docs say to create', async () => {
    assert.equal(byKind('Secret').length, 0, 'no Secret object in the base');
    const documented = await documentedSecrets();
    const configMaps = new Map(byKind('ConfigMap').map((c) => [c.metadata.name, c.data]));
    let refs = 0;
    for (const workload of workloads()) {
      for (const container of containersOf(workload)) {
        for (const env of container.env ?? []) {
          assert.ok(env.value === undefined, `${objectId(workload)}: ${env.name} set inline`);
          const secret = env.valueFrom?.secretKeyRef;
          if (secret) {
            refs++;
            assert.ok(
              documented.get(secret.name)?.has(secret.key),
              `${objectId(workload)}: ${env.name} reads Secret ${secret.name} key ${secret.key}, which docs/deploy.md does not create`,
            );
          }
          const config = env.valueFrom?.configMapKeyRef;
          if (config) assert.ok(config.key in (configMaps.get(config.name) ?? {}), env.name);
        }
        for (const from of container.envFrom ?? []) {
          assert.ok(configMaps.has(from.configMapRef?.name), `${objectId(workload)}: envFrom`);
        }
      }
    }
    assert.ok(refs >= 6, `the services read their secrets from Secrets (${refs} references)`);
  });

  it('the manager alone gets an API identity, and its Role grants exactly what the provider calls', () => {
    const manager = named('Deployment', 'pixpool-manager');
    const account = manager.spec.template.spec.serviceAccountName;
    named('ServiceAccount', account);
    for (const workload of workloads()) {
      if (workload === manager) continue;
      assert.equal(workload.spec.template.spec.automountServiceAccountToken, false);
      assert.equal(workload.spec.template.spec.serviceAccountName, undefined);
    }
    const bindings = byKind('RoleBinding');
    assert.equal(bindings.length, 1);
    const [binding] = bindings as [K8sObject];
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: account, namespace: 'pixpool' },
    ]);
    assert.equal(binding.roleRef.kind, 'Role');
    const role = named('Role', binding.roleRef.name);
    const granted = role.rules.flatMap((rule: K8sObject) =>
      rule.apiGroups.flatMap((apiGroup: string) =>
        rule.resources.map((resource: string) => ({
          apiGroup,
          resource,
          verbs: [...rule.verbs].sort(),
        })),
      ),
    );
    assert.deepEqual(granted, PROVIDER_RULES);
    const statefulSet = flag(containerOf('Deployment', 'pixpool-manager'), '--kube-statefulset');
    for (const rule of role.rules) {
      if (rule.apiGroups.includes('apps')) assert.deepEqual(rule.resourceNames, [statefulSet]);
    }
  });

  it('the manager, nodes and frontends name each other consistently', () => {
    const manager = containerOf('Deployment', 'pixpool-manager');
    const nodes = named('StatefulSet', 'pixpool-node');
    const node = containerOf('StatefulSet', 'pixpool-node');
    assert.equal(flag(manager, '--provider'), 'kubernetes');
    assert.equal(flag(manager, '--kube-statefulset'), nodes.metadata.name);
    assert.equal(flag(manager, '--kube-service'), nodes.spec.serviceName);
    assert.equal(
      flag(manager, '--pool-name'),
      nodes.spec.template.metadata.labels['pixpool.io/pool'],
    );
    assert.equal(nodes.spec.template.metadata.labels['app.kubernetes.io/name'], 'pixpool-node');
    assert.equal(flag(manager, '--kube-namespace'), '$(POD_NAMESPACE)');

    const managerService = named('Service', 'pixpool-manager');
    const managerUrl = `http://${managerService.metadata.name}:${managerService.spec.ports[0].port}`;
    assert.equal(managerService.spec.ports[0].targetPort, 'http');
    assert.equal(manager.ports[0].containerPort, Number(flag(manager, '--port')));
    for (const container of [node, containerOf('Deployment', 'pixpool-frontend')]) {
      assert.equal(flag(container, '--manager-url'), managerUrl);
    }
    assert.equal(flag(node, '--announce'), 'kubernetes');
    const port = node.ports[0].containerPort;
    assert.equal(Number(flag(node, '--port')), port);
    assert.equal(
      flag(node, '--advertise-url'),
      `http://$(POD_NAME).${nodes.spec.serviceName}.$(POD_NAMESPACE).svc.cluster.local:${port}`,
    );
  });

  it('every $(VAR) in a command line is a variable of its container, from the downward API', () => {
    for (const workload of workloads()) {
      for (const container of containersOf(workload)) {
        const env = new Map(
          (container.env ?? []).map((e: K8sObject) => [e.name, e.valueFrom?.fieldRef]),
        );
        for (const arg of container.args) {
          for (const [, name] of arg.matchAll(/\$\(([A-Z_]+)\)/g)) {
            assert.ok(env.get(name), `${objectId(workload)}: ${arg} uses ${name}`);
          }
        }
      }
    }
  });

  it('the command-line check refuses unknown flags, missing values and values off the choices', async () => {
    assert.deepEqual(
      await commandLineProblems([
        'manager',
        '--no-such-flag=1',
        '--port',
        '--assignment=round-robin',
        '--provider',
        'local',
        'stray',
      ]),
      [
        'manager: unknown flag --no-such-flag',
        'manager: --port needs a value',
        'manager: --assignment round-robin is not one of modulo, balanced',
        'manager: stray is not a flag (the command takes no arguments)',
      ],
    );
  });

  it('every pixpool command line is one the real command accepts', async () => {
    const problems: string[] = [];
    for (const workload of workloads()) {
      for (const container of containersOf(workload)) {
        for (const problem of await commandLineProblems(container.args)) {
          problems.push(`${objectId(workload)}: ${problem}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('a node has the memory a full node of its capacity holds, reserved whole', () => {
    const node = containerOf('StatefulSet', 'pixpool-node');
    const capacity = Number(flag(node, '--capacity'));
    const { requests, limits } = node.resources;
    // README, "Running a cache node": a full node holds about 1.15 × its capacity + 80 MiB.
    assert.ok(
      mebibytes(limits.memory) >= Math.ceil(1.15 * capacity + 80),
      `${limits.memory} holds a full node of ${capacity} MiB`,
    );
    assert.ok(mebibytes(limits.memory) <= 2 * capacity + 256, 'and not twice as much');
    assert.equal(requests.memory, limits.memory);
  });

  it('every pod runs as the image user, unprivileged, on a read-only root with its own /tmp', async () => {
    const dockerfile = await readFile(join(REPO, 'Dockerfile'), 'utf8');
    const uid = Number(/^USER (\d+):(\d+)$/m.exec(dockerfile)?.[1]);
    for (const workload of workloads()) {
      const pod = workload.spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(pod.securityContext.runAsUser, uid, objectId(workload));
      for (const container of containersOf(workload)) {
        assert.equal(container.securityContext.readOnlyRootFilesystem, true);
        assert.equal(container.securityContext.allowPrivilegeEscalation, false);
        assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
        const tmp = container.volumeMounts.find((m: K8sObject) => m.mountPath === '/tmp');
        assert.ok(
          pod.volumes.some((v: K8sObject) => v.name === tmp?.name && v.emptyDir),
          objectId(workload),
        );
      }
    }
  });
});

describe('the example overlay', () => {
  it('puts the base in its namespace with its image, and stays valid', async () => {
    const objects = await renderKustomization(OVERLAY);
    assert.equal(objects.length, 11);
    for (const object of objects) {
      assert.equal(object.metadata.namespace, 'pixpool-prod', objectId(object));
      const Model = MODELS[`${object.apiVersion} ${object.kind}`];
      assert.ok(Model);
      assert.doesNotThrow(() => new Model(object as never).validate(), objectId(object));
      for (const container of containersOf(object)) {
        assert.equal(container.image, 'registry.example.com/pixpool:0.1.0');
      }
    }
    const binding = objects.find((o) => o.kind === 'RoleBinding');
    assert.equal(binding?.subjects[0].namespace, 'pixpool-prod');
    const frontend = objects.find((o) => o.metadata.name === 'pixpool-frontend' && o.spec.replicas);
    assert.equal(frontend?.spec.replicas, 3);
  });
});
