/**
 * Hand-over: this node sends the entries of given regions (or given keys, for the seed payload)
 * straight to another node, in batches of raw bytes, then forgets what the receiver has.
 *
 * A batch is streamed, not built: its frames are made as the request pulls them (the cached
 * values themselves go to the socket uncopied), and the next batch is on its way while the
 * receiver applies the last one. Each batch is all-or-nothing on the receiver, which holds at
 * most one batch per request in memory; so this node has at most BATCHES_IN_FLIGHT of them
 * open at a receiver, and a region of any size moves in bounded memory on both sides.
 *
 * The node enumerates its own entries, so nothing is guessed by a frontend (the originals' frontend
 * kept its own list of cached keys, which drifted from what the nodes held). A local entry is
 * deleted only if it is still the version that was sent, so a newer upload that lands here during
 * the hand-over is never lost. If a receiver fails, the entries stay here and the order reports the
 * failure.
 */

import { type BatchEntry, encodeBatchStream, frameBytes } from '../core/entry-batch.ts';
import { badRequest } from '../core/errors.ts';
import { nodeUrl } from '../core/node-address.ts';
import { REGION_COUNT } from '../core/regions.ts';
import type { CacheEntry } from '../core/stores/store.ts';
import type { NodeCache } from './node-cache.ts';
import type { BatchSender } from './plain-http.ts';

/** A batch is closed once its frames reach this many bytes. */
const BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Batches sent before the first is answered: two, so the receiver decodes one while the next
 * arrives, instead of the link standing idle for every answer.
 */
const BATCHES_IN_FLIGHT = 2;

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
  client: Pick<BatchSender, 'importBatch'>,
  order: HandOverOrder,
  options: { keep?: boolean } = {},
): Promise<HandOverResult> {
  const missing = { count: 0 };
  // Snapshot first: deleting while iterating the store is not allowed, and the snapshot is
  // only references to the immutable value buffers.
  const entries = [...selected(cache, order, missing)].map(
    ([key, e]): BatchEntry => ({
      key,
      contentType: e.contentType,
      version: e.version,
      modifiedAt: e.modifiedAt,
      value: e.value,
    }),
  );
  const result: HandOverResult = {
    to: order.to,
    entries: 0,
    bytes: 0,
    accepted: 0,
    refused: 0,
    missing: missing.count,
  };
  let failure: Error | undefined;
  const send = async ({ entries: batch, bytes }: Batch) => {
    const { accepted, refused } = await client.importBatch(
      order.to,
      encodeBatchStream(batch),
      bytes,
    );
    result.accepted += accepted;
    result.refused += refused;
    for (const e of batch) {
      result.entries++;
      result.bytes += e.value.length;
      if (!options.keep) cache.deleteIfVersion(e.key, e.version);
    }
  };
  const inFlight = new Set<Promise<void>>();
  for (const batch of batches(entries)) {
    if (failure) break;
    const sent = send(batch).then(
      () => inFlight.delete(sent),
      (error: Error) => {
        failure ??= error;
        inFlight.delete(sent);
      },
    ) as Promise<void>;
    inFlight.add(sent);
    if (inFlight.size >= BATCHES_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure) result.error = failure.message;
  return result;
}

interface Batch {
  entries: BatchEntry[];
  /** Its encoded size (Content-Length). */
  bytes: number;
}

function* batches(entries: BatchEntry[]): Generator<Batch> {
  let batch: BatchEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    batch.push(entry);
    bytes += frameBytes(entry);
    if (bytes >= BATCH_BYTES) {
      yield { entries: batch, bytes };
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield { entries: batch, bytes };
}
