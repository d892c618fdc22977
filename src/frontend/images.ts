/**
 * Upload and fetch, with the guarantees of SPEC §3.
 *
 * Upload: bytes → new object → commit the row (a new, globally increasing version) → invalidate
 * the owning node with that version → acknowledge → delete the replaced object. The node keeps a
 * tombstone of the version, so a fill of an older version that was already in flight is refused.
 *
 * Fetch: owning node (revalidating the near cache's copy when there is one: near-cache.ts) → on
 * a miss or a node failure, the row → the object → fill the node with the row's version
 * (conditional) → answer. Concurrent misses for the same key *and version*
 * share one object read; keying the flight by version means a fetch that starts after an upload
 * was acknowledged never joins a flight that read the old row.
 */
import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { NodeClient } from '../clients/node-client.ts';
import { badRequest, unsupportedMediaType } from '../core/errors.ts';
import { createFreshFlight } from '../core/fresh-flight.ts';
import { sniffImageType } from '../core/image-type.ts';
import { createSingleFlight } from '../core/singleflight.ts';
import type { CacheEntry } from '../core/stores/store.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import { newObjectName, type ObjectStore } from '../storage/object-store.ts';
import type { FrontendMetrics } from './metrics.ts';
import { createNearCache } from './near-cache.ts';
import type { Routing } from './routing.ts';

export interface FetchedImage {
  bytes: Buffer;
  contentType: string;
  version: number;
  modifiedAt: number | undefined;
  source: 'cache' | 'storage';
}

export interface ImageServiceDeps {
  metadata: MetadataStore;
  objects: ObjectStore;
  nodes: NodeClient;
  routing: Routing;
  metrics: FrontendMetrics;
  log: FastifyBaseLogger;
  /** Bytes of hot images this frontend keeps (revalidated on every use); 0 turns it off. */
  nearCacheBytes?: number;
}

const INVALIDATE_ATTEMPTS = 3;

export function createImageService(deps: ImageServiceDeps) {
  const { metadata, objects, nodes, routing, metrics, log } = deps;
  const reads = createSingleFlight<Buffer | undefined>();
  const near = createNearCache(deps.nearCacheBytes ?? 64 * 1024 * 1024);
  // Concurrent reads of one hot key share a node check that started after each of them arrived.
  const checks = createFreshFlight<CacheEntry | 'current' | undefined>();

  async function fromCache(node: string, key: string): Promise<FetchedImage | undefined> {
    const held = near.get(key);
    try {
      const entry = await checks.run(`${held?.version ?? ''}\u0000${key}`, () =>
        nodes.revalidate(node, key, held?.version),
      );
      if (entry === 'current') return held;
      if (!entry) {
        near.delete(key);
        return undefined;
      }
      const image: FetchedImage = {
        bytes: entry.value,
        contentType: entry.contentType,
        version: entry.version,
        modifiedAt: entry.modifiedAt,
        source: 'cache',
      };
      near.set(key, image);
      return image;
    } catch (error) {
      // A failing node is a miss: the person still gets the image from storage.
      near.delete(key);
      metrics.nodeErrors.inc();
      log.warn({ err: error, node, key }, 'cache node failed; reading from storage');
      return undefined;
    }
  }

  async function fromStorage(key: string): Promise<FetchedImage | undefined> {
    // Two tries: an upload may replace the row and delete its object between our two reads.
    for (let attempt = 0; attempt < 2; attempt++) {
      const row = await metadata.get(key);
      if (!row) return undefined;
      const bytes = await reads.run(`${row.version}\u0000${key}`, () => objects.get(row.object));
      if (bytes) {
        return {
          bytes,
          contentType: row.contentType,
          version: row.version,
          modifiedAt: row.updatedAt.getTime(),
          source: 'storage',
        };
      }
    }
    log.error({ key }, 'the row points to an object that does not exist');
    return undefined;
  }

  function fill(node: string, key: string, image: FetchedImage): void {
    const entry = {
      value: image.bytes,
      contentType: image.contentType,
      version: image.version,
      modifiedAt: image.modifiedAt,
    };
    nodes.put(node, key, entry).then(
      (outcome) => metrics.fills.inc({ outcome }),
      (error) => {
        metrics.fills.inc({ outcome: 'error' });
        log.warn({ err: error, node, key }, 'could not fill the cache node');
      },
    );
  }

  async function invalidate(key: string, version: number): Promise<void> {
    const node = routing.ownerOf(key);
    for (let attempt = 1; attempt <= INVALIDATE_ATTEMPTS; attempt++) {
      try {
        await nodes.invalidate(node, key, version);
        return;
      } catch (error) {
        if (attempt === INVALIDATE_ATTEMPTS) {
          metrics.invalidationFailures.inc();
          log.error({ err: error, node, key, version }, 'could not invalidate the cached key');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  return {
    async fetch(key: string): Promise<FetchedImage | undefined> {
      const node = routing.ownerOf(key);
      const cached = await fromCache(node, key);
      metrics.lookups.inc({ result: cached ? 'hit' : 'miss' });
      if (cached) return cached;
      const stored = await fromStorage(key);
      if (stored) fill(node, key, stored);
      return stored;
    },

    async upload(key: string, bytes: Buffer) {
      if (bytes.length === 0) throw badRequest('The file is empty.');
      const contentType = sniffImageType(bytes);
      if (!contentType) {
        throw unsupportedMediaType(
          'That file is not an image pixpool accepts: send a PNG, JPEG, GIF, WebP, BMP or SVG.',
        );
      }
      const object = newObjectName(key);
      await objects.put(object, bytes, contentType);
      let committed: Awaited<ReturnType<MetadataStore['commit']>>;
      try {
        committed = await metadata.commit({
          key,
          object,
          contentType,
          size: bytes.length,
          sha256: createHash('sha256').update(bytes).digest('hex'),
        });
      } catch (error) {
        // Not acknowledged: the new object is garbage, the old row and object stand.
        objects.delete(object).catch(() => {});
        throw error;
      }
      const { record, previousObject } = committed;
      await invalidate(key, record.version);
      metrics.uploads.inc();
      if (previousObject && previousObject !== object) {
        objects.delete(previousObject).catch((error) => {
          log.warn({ err: error, object: previousObject }, 'could not delete a replaced object');
        });
      }
      return record;
    },
  };
}

export type ImageService = ReturnType<typeof createImageService>;
