/**
 * The least RBAC the kubernetes provider needs: exactly the calls of kubernetes-api.ts. One list,
 * so the provider's test (which records every request it makes) and the deploy files' test (which
 * reads the Role in deploy/kubernetes/base) hold both sides to the same thing.
 */
export const KUBERNETES_RBAC = [
  { apiGroup: '', resource: 'pods', verbs: ['delete', 'get', 'list'] },
  { apiGroup: 'apps', resource: 'statefulsets', verbs: ['get'] },
  { apiGroup: 'apps', resource: 'statefulsets/scale', verbs: ['get', 'update'] },
] as const;
