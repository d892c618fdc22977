/**
 * The engine providers (ec2, kubernetes) made from the manager's options: the one place that
 * turns `--provider` and its flags into a provider, for `pixpool manager` and for
 * `pixpool delete-pool`, which ends the pool's nodes the same provider would run. Each is loaded
 * only when asked for, so a manager on another provider never loads its SDK.
 */
import { DEFAULT_POOL_NAME, type Ec2Settings } from './ec2-options.ts';
import type { KubernetesProviderOptions } from './kubernetes.ts';
import type { NodeProvider } from './provider.ts';

export const ENGINE_PROVIDERS = ['ec2', 'kubernetes'] as const;
export type EngineProviderName = (typeof ENGINE_PROVIDERS)[number];

export const isEngineProvider = (name: string): name is EngineProviderName =>
  (ENGINE_PROVIDERS as readonly string[]).includes(name);

export interface EngineProviderOptions {
  provider: EngineProviderName;
  /** The tag (or label) value every node of this pool carries. */
  poolName?: string | undefined;
  /** For the ec2 provider: its mode and where it finds instances. */
  ec2?: Ec2Settings | undefined;
  /** For the kubernetes provider: the StatefulSet and how to reach the API. */
  kubernetes?: Omit<KubernetesProviderOptions, 'poolName'> | undefined;
}

export async function createEngineProvider(
  options: EngineProviderOptions,
  log: (message: string) => void,
): Promise<NodeProvider> {
  const poolName = options.poolName ?? DEFAULT_POOL_NAME;
  if (options.provider === 'ec2') {
    const { createEc2Provider } = await import('./ec2.ts');
    return createEc2Provider({ ...(options.ec2 ?? { mode: 'launch' }), poolName, log });
  }
  const { createKubernetesProvider } = await import('./kubernetes.ts');
  return createKubernetesProvider({ ...options.kubernetes, poolName, log });
}
