/**
 * Validation of a cache config (capacity in MB, replacement policy), shared by the node that
 * applies it and the manager that stores and pushes it, so both refuse the same input with the
 * same message.
 */
import { totalmem } from 'node:os';
import { badRequest } from './errors.ts';
import { POLICIES, type PolicyName } from './stores/store.ts';

export const MB = 1024 * 1024;

/** What every node of a pool is configured with (the manager stores it, nodes apply it). */
export interface CacheConfig {
  /** MB (MiB). */
  capacity: number;
  replacement_policy: PolicyName;
}

/**
 * The largest capacity a node takes with `totalBytes` of memory (os.totalmem()) under a limit of
 * `constrainedBytes` (process.constrainedMemory(): a container's cgroup limit; 0, or more than
 * the machine has, when there is none): beyond ~90% of the smaller, a capacity cannot be meant,
 * and in a container it would end with the kernel killing the node.
 */
export function capacityLimitMb(totalBytes: number, constrainedBytes = 0): number {
  const usable = constrainedBytes > 0 ? Math.min(totalBytes, constrainedBytes) : totalBytes;
  return Math.floor((usable / MB) * 0.9);
}

/** capacityLimitMb for this process: its machine, or its container's memory limit. */
export const localCapacityLimitMb = (): number =>
  capacityLimitMb(totalmem(), process.constrainedMemory());

export function parsePolicy(value: unknown): PolicyName {
  const name = typeof value === 'string' ? value.trim().toUpperCase() : '';
  const policy = name === 'RANDOM' ? 'RR' : name;
  if ((POLICIES as readonly string[]).includes(policy)) return policy as PolicyName;
  throw badRequest(
    `Unknown replacement policy ${JSON.stringify(value)}: use LRU (least recently used), RR (random replacement) or SIEVE.`,
  );
}

export function parseCapacityMb(value: unknown, maxMb: number): number {
  const mb = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof mb !== 'number' || !Number.isFinite(mb)) {
    throw badRequest(`Capacity must be a number of MB; got ${JSON.stringify(value)}.`);
  }
  if (mb <= 0 || Math.floor(mb * MB) < 1) {
    throw badRequest(`Capacity must be more than 0 MB; got ${mb}.`);
  }
  if (mb > maxMb) {
    throw badRequest(`Capacity of ${mb} MB is more than this node allows (${maxMb} MB).`);
  }
  return mb;
}
