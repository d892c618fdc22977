/**
 * Hand-over: this node sends the entries of given regions (or given keys, for the seed payload)
 * straight to another node, in batches of raw bytes, then forgets what the receiver has.
 *
 * The node enumerates its own entries, so nothing is guessed by a frontend (the originals' frontend
 * kept its own list of cached keys, which drifted from what the nodes held). A local entry is
 * deleted only if it is still the version that was sent, so a newer upload that lands here during
 * the hand-over is never lost. If a receiver fails, the entries stay here and the order reports the
 * failure.
 */

import type { NodeClient } from '../clients/node-client.ts';
import { encodeBatchParts } from '../core/entry-batch.ts';
import { badRequest } from '../core/errors.ts';
import { nodeUrl } from '../core/node-address.ts';
import { REGION_COUNT } from '../core/regions.ts';
import type { CacheEntry } from '../core/stores/store.ts';
import type { NodeCache } from './node-cache.ts';

const BATCH_BYTES = 8 * 1024 * 1024;

export interface HandOverOrder {
  /** Base URL of the receiving node. */
  to: string;
  regions?: number[];
  keys?: string[];
}

export interface HandOverResult {
  to: string;
  entries: number;
  bytes: number;
  accepted: number;
  refused: number;
  /** Keys asked for by name that are not cached here (evicted or never cached). */
  missing: number;
  error?: string;
}

/** Accepts ours ({moves:[{to, regions|keys}]} or {to, regions|keys}) and the seed's ({dest}). */
export function parseOrders(body: Record<string, unknown>): HandOverOrder[] {
  if (body.dest !== undefined) {
    const dest = body.dest;
    if (typeof dest !== 'object' || dest === null || Array.isArray(dest)) {
      throw badRequest('dest must map a node address to a list of keys.');
    }
    return Object.entries(dest).map(([to, keys]) => ({ to: nodeUrl(to), keys: stringList(keys) }));
  }
  const moves = body.moves ?? (body.to !== undefined ? [body] : undefined);
  if (!Array.isArray(moves) || moves.length === 0) {
    throw badRequest(
      'Say what to move: {"to": "<node url>", "regions": [0..15]} or {"moves": [...]}.',
    );
  }
  return moves.map((m: Record<string, unknown>) => {
    if (typeof m?.to !== 'string') throw badRequest('Each move needs "to", a node URL.');
    const order: HandOverOrder = { to: nodeUrl(m.to) };
    if (m.regions !== undefined) order.regions = regionList(m.regions);
    if (m.keys !== undefined) order.keys = stringList(m.keys);
    if (!order.regions && !order.keys) throw badRequest('Each move needs "regions" or "keys".');
    return order;
  });
}

function regionList(value: unknown): number[] {
  if (
    !Array.isArray(value) ||
    !value.every((r) => Number.isInteger(r) && r >= 0 && r < REGION_COUNT)
  ) {
    throw badRequest(`regions must be a list of region numbers 0..${REGION_COUNT - 1}.`);
  }
  return value;
}

function stringList(value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((k) => typeof k === 'string')) {
    throw badRequest('keys must be a list of strings.');
  }
  return value;
}

function* selected(cache: NodeCache, order: HandOverOrder, missing: { count: number }) {
  if (order.regions) yield* cache.entriesOfRegions(new Set(order.regions));
  for (const key of order.keys ?? []) {
    const entry = cache.peek(key);
    if (entry) yield [key, entry] as [string, CacheEntry];
    else missing.count++;
  }
}

export async function handOver(
  cache: NodeCache,
  client: NodeClient,
  order: HandOverOrder,
  options: { keep?: boolean } = {},
): Promise<HandOverResult> {
  const missing = { count: 0 };
  // Snapshot first: deleting while iterating the store is not allowed, and the snapshot is
  // only references to the immutable value buffers.
  const entries = [...selected(cache, order, missing)];
  const result: HandOverResult = {
    to: order.to,
    entries: 0,
    bytes: 0,
    accepted: 0,
    refused: 0,
    missing: missing.count,
  };
  try {
    for (const batch of batches(entries)) {
      // The batch's parts (frame prefixes and the cached values themselves), not one joined
      // copy: the values go from the cache to the socket without being copied here.
      const parts = encodeBatchParts(
        batch.map(([key, e]) => ({
          key,
          contentType: e.contentType,
          version: e.version,
          modifiedAt: e.modifiedAt,
          value: e.value,
        })),
      );
      const { accepted, refused } = await client.importBatch(order.to, parts);
      result.accepted += accepted;
      result.refused += refused;
      for (const [key, e] of batch) {
        result.entries++;
        result.bytes += e.value.length;
        if (!options.keep) cache.deleteIfVersion(key, e.version);
      }
    }
  } catch (error) {
    result.error = (error as Error).message;
  }
  return result;
}

function* batches(entries: [string, CacheEntry][]): Generator<[string, CacheEntry][]> {
  let batch: [string, CacheEntry][] = [];
  let bytes = 0;
  for (const item of entries) {
    batch.push(item);
    bytes += item[1].value.length;
    if (bytes >= BATCH_BYTES) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}
