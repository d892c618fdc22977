/**
 * Upload and fetch, so that no read answers an image older than the last acknowledged upload.
 *
 * Upload: bytes → new object → commit the row (a new, globally increasing version) → invalidate
 * the owning node with that version → acknowledge → delete the replaced object. The node keeps a
 * tombstone of the version, so a fill of an older version that was already in flight is refused.
 * An upload whose node cannot be told (out of reach, or our view is outdated and the manager out
 * of reach) is not acknowledged: 503. Its row is committed, but an older copy may still be served
 * by that node, to whoever reaches it, until its view lease runs out (src/cachenode/view.ts). A
 * node the view says is down holds nothing readable: it is neither read nor told.
 *
 * A node whose view lease ran out answers 503: that is a miss, not a failure worth a warning.
 *
 * Fetch: the near cache's copy while a read lease from its owning node vouches for it
 * (src/cachenode/leases.ts) → owning node (revalidating the near copy when there is one, and
 * asking for a lease; its answer is kept near if frequency admits it: near-cache.ts) → on
 * a miss or a node failure, the row → the object → fill the node with the row's version
 * (conditional) → answer. Concurrent misses for the same key *and version*
 * share one object read; keying the flight by version means a fetch that starts after an upload
 * was acknowledged never joins a flight that read the old row.
 *
 * Variants (fetchVariant): the same, under the variant's entry key `key/variant` (core/keys.ts),
 * which the nodes keep in the key's region, under its leases and its version: the near copy
 * within a lease → the owning node → on a miss, the original (by fetch, above) → transform →
 * fill the node with the variant, tagged with the original's version (conditional: after an
 * upload's invalidation the node refuses it) → answer. Concurrent misses of one variant of one
 * original version share one transform; keyed by that version, a fetch that starts after an
 * upload was acknowledged (and so gets the new original) never joins a transform of the old one.
 */
import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type NodeClient, NodeRequestError, STALE_VIEW_STATUS } from '../clients/node-client.ts';
import { badRequest, PixpoolError, unavailable, unsupportedMediaType } from '../core/errors.ts';
import { createFreshFlight } from '../core/fresh-flight.ts';
import { sniffImageType } from '../core/image-type.ts';
import { variantEntryKey, variantOf } from '../core/keys.ts';
import { createSingleFlight } from '../core/singleflight.ts';
import type { CacheEntry } from '../core/stores/store.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import { newObjectName, type ObjectStore } from '../storage/object-store.ts';
import type { FetchedImage } from './fetched-image.ts';
import type { FrontendMetrics } from './metrics.ts';
import { createNearCache } from './near-cache.ts';
import type { Route, Routing } from './routing.ts';
import { type VariantSpec, variantId } from './variants/spec.ts';
import type { Transformer } from './variants/transform.ts';

export interface ImageServiceDeps {
  metadata: MetadataStore;
  objects: ObjectStore;
  nodes: NodeClient;
  routing: Routing;
  metrics: FrontendMetrics;
  log: FastifyBaseLogger;
  /** Bytes of hot images this frontend keeps (revalidated on every use); 0 turns it off. */
  nearCacheBytes?: number;
  /** Fetches the current pool view into `routing` (from the manager), when there is one. */
  refreshView?: (() => Promise<unknown>) | undefined;
  /** Makes image variants (variants/transform.ts). */
  transformer: Transformer;
}

/** The variant refusals' metric label, by the transformer's error code. */
const REFUSAL_REASONS: Partial<Record<string, string>> = {
  PAYLOAD_TOO_LARGE: 'too_large',
  UNSUPPORTED_MEDIA_TYPE: 'unreadable',
  BAD_REQUEST: 'animated',
  UNAVAILABLE: 'busy',
};

/**
 * The POST /api/key answer as bytes: exactly what JSON.stringify of
 * `{success: 'true', key, content: 'data:<type>;base64,<bytes>'}` gives (base64 and a MIME type
 * need no escaping), built without a 133 KB string going through the serializer's escape scan.
 */
export function dataUrlJson(key: string, contentType: string, bytes: Buffer): Buffer {
  const head = Buffer.from(
    `{"success":"true","key":${JSON.stringify(key)},"content":${JSON.stringify(`data:${contentType};base64,`).slice(0, -1)}`,
  );
  const base64Length = Math.ceil(bytes.length / 3) * 4;
  const body = Buffer.allocUnsafe(head.length + base64Length + 2);
  head.copy(body, 0);
  body.write(bytes.toString('base64'), head.length, base64Length, 'latin1');
  body.write('"}', head.length + base64Length, 'latin1');
  return body;
}

/**
 * Tries over ~2.5 s: long enough for the manager to publish a restarted node's new address. After
 * that the upload is refused (503) rather than acknowledged without its node knowing.
 */
const INVALIDATE_ATTEMPTS = 7;
const INVALIDATE_BACKOFF_MS = [50, 100, 200, 400, 800, 1000];

export function createImageService(deps: ImageServiceDeps) {
  const { metadata, objects, nodes, routing, metrics, log } = deps;
  const reads = createSingleFlight<Buffer | undefined>();
  const transforms = createSingleFlight<FetchedImage>();
  const near = createNearCache(deps.nearCacheBytes ?? 64 * 1024 * 1024, {
    admitted: metrics.nearAdmissions.labels('admitted'),
    rejected: metrics.nearAdmissions.labels('rejected'),
  });
  // Concurrent reads of one hot key share a node check that started after each of them arrived.
  type Answer = { entry: CacheEntry | 'current' | undefined; leaseUntil: number; sharers: number };
  const checks = createFreshFlight<Answer>();

  // Bound once: a labelled inc() hashes its labels on every call (a leased hit is all lookup).
  const hits = metrics.lookups.labels('hit');
  const misses = metrics.lookups.labels('miss');
  const variantHits = metrics.variantLookups.labels('hit');

  const isStaleView = (error: unknown) =>
    error instanceof NodeRequestError && error.status === STALE_VIEW_STATUS;
  /** A node without a view lease (it lost its manager) declines; nothing is wrong with it. */
  const isRefusal = (error: unknown) => error instanceof NodeRequestError && error.status === 503;

  /**
   * One node's answer for `key`, revalidating the near cache's copy; throws on node failure.
   * `release`: the caller will hold the image only to answer it (see FetchedImage.release).
   */
  async function askNode(
    node: string,
    key: string,
    release: boolean,
  ): Promise<FetchedImage | undefined> {
    const held = near.get(key);
    const { entry, leaseUntil, sharers } = await checks.run(
      `${node}\u0000${held?.version ?? ''}\u0000${key}`,
      async (sharers) => {
        // The lease counts from before the request left: it ends before the node's record of it.
        const sent = performance.now();
        const answer = await nodes.read(node, key, held?.version, true);
        return {
          entry: answer.entry,
          leaseUntil: answer.leaseMs && sent + answer.leaseMs,
          sharers,
        };
      },
    );
    const lease = leaseUntil ? { node, until: leaseUntil } : undefined;
    if (entry === 'current') {
      if (held && lease) held.lease = lease;
      return held;
    }
    if (!entry) return undefined;
    const image: FetchedImage = {
      bytes: entry.value,
      contentType: entry.contentType,
      version: entry.version,
      modifiedAt: entry.modifiedAt,
      source: 'cache',
      variant: variantOf(key),
      ...(lease && { lease }),
    };
    if (!near.set(key, image) && release && sharers === 1) {
      const bytes = entry.value;
      image.release = () => nodes.recycle(bytes);
    }
    return image;
  }

  /**
   * The near copy of `key` while a lease from its only owner still vouches for it (no I/O),
   * counted as a hit. Not during a hand-over (two owners), and not from a node that is no
   * longer the owner in this frontend's view.
   */
  function leasedCopy(key: string, counter = hits): FetchedImage | undefined {
    // The near cache first: it holds only checked keys, while the socket lane passes any key of
    // any length (routing remembers the regions of the keys it is asked about).
    const held = near.get(key);
    const lease = held?.lease;
    if (!lease || lease.until <= performance.now()) return undefined;
    const owners = routing.routeOf(key).owners;
    if (owners.length !== 1 || lease.node !== owners[0]) return undefined;
    near.record(key);
    counter.inc();
    return held;
  }

  /**
   * The owner, then (while a resize hands the region over) the previous owner. A node that fails
   * is a miss; a node that says our view is outdated makes the whole read start again.
   */
  async function fromCache(
    key: string,
    { owners, owner }: Route,
  ): Promise<FetchedImage | undefined> {
    for (const node of owners) {
      // Found on the previous owner: the owner is warmed with it now rather than after the
      // hand-over (so the image is not released: the fill holds its bytes).
      const warms = owner !== undefined && node !== owner;
      try {
        const image = await askNode(node, key, !warms);
        if (image) {
          if (warms) fill(owner, key, image);
          return image;
        }
      } catch (error) {
        if (isStaleView(error)) throw error;
        if (isRefusal(error)) {
          metrics.nodeRefusals.inc();
          continue;
        }
        metrics.nodeErrors.inc();
        log.warn({ err: error, node, key }, 'cache node failed; trying the next place');
      }
    }
    near.delete(key);
    return undefined;
  }

  async function fromStorage(key: string): Promise<FetchedImage | undefined> {
    // An upload may replace the row and delete its object between our two reads, and under
    // back-to-back uploads of one key it can happen twice in one read: a few tries, each with
    // the newer row.
    for (let attempt = 0; attempt < 4; attempt++) {
      const row = await metadata.get(key);
      if (!row) return undefined;
      const bytes = await reads.run(`${row.version}\u0000${key}`, () =>
        objects.get(row.object, row.size),
      );
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
        if (isRefusal(error)) {
          metrics.fills.inc({ outcome: 'refused' });
          return;
        }
        metrics.fills.inc({ outcome: 'error' });
        log.warn({ err: error, node, key }, 'could not fill the cache node');
      },
    );
  }

  /**
   * Invalidates the key on every node that may hold it (owner and previous owner); throws 503
   * when one cannot be told.
   */
  async function invalidate(key: string, version: number): Promise<void> {
    for (let attempt = 1; attempt <= INVALIDATE_ATTEMPTS; attempt++) {
      const owners = routing.routeOf(key).owners;
      const results = await Promise.allSettled(
        owners.map((node) => nodes.invalidate(node, key, version)),
      );
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      if (failed.length === 0) return;
      if (attempt === INVALIDATE_ATTEMPTS) {
        metrics.invalidationFailures.inc();
        log.error({ err: failed[0], key, version }, 'could not invalidate the cached key');
        throw unavailable(
          `The image was stored, but the cache node that serves ${JSON.stringify(key)} could not be told, so this upload is not acknowledged: an older copy may still be served for a few seconds. Upload it again.`,
          { cause: failed[0] },
        );
      }
      // Outdated view or a node that does not answer: the manager may have replaced that node
      // (a restart moves it to a new address), so ask for the current view before retrying.
      await new Promise((resolve) => setTimeout(resolve, INVALIDATE_BACKOFF_MS[attempt - 1]));
      await refreshView();
    }
  }

  /**
   * The cached copy of an entry key (near copy revalidated, owner, previous owner), and the
   * owners it asked; a node that says our view is outdated makes it refresh the view and ask
   * once more.
   */
  async function cachedCopy(key: string) {
    let route = routing.routeOf(key);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        return { cached: await fromCache(key, route), owner: route.owner };
      } catch {
        // Our view is older than the nodes': refresh it and try once more.
        await refreshView();
        route = routing.routeOf(key);
      }
    }
    return { cached: undefined, owner: route.owner };
  }

  async function fetch(key: string): Promise<FetchedImage | undefined> {
    const leased = leasedCopy(key);
    if (leased) return leased;
    // Counted here and on a leased hit, not in leasedCopy: the socket lane calls that first too.
    near.record(key);
    const { cached, owner } = await cachedCopy(key);
    (cached ? hits : misses).inc();
    if (cached) return cached;
    const stored = await fromStorage(key);
    if (stored && owner) fill(owner, key, stored);
    return stored;
  }

  /** The variant `spec` of `key`, or undefined when no image is stored under `key`. */
  async function fetchVariant(key: string, spec: VariantSpec): Promise<FetchedImage | undefined> {
    const id = variantId(spec);
    const entryKey = variantEntryKey(key, id);
    const leased = leasedCopy(entryKey, variantHits);
    if (leased) return leased;
    near.record(entryKey);
    const { cached, owner } = await cachedCopy(entryKey);
    metrics.variantLookups.inc({ result: cached ? 'hit' : 'miss' });
    if (cached) return cached;
    const original = await fetch(key);
    if (!original) return undefined;
    const { transformer } = deps;
    // Keyed by the original's version: see the module comment.
    return transforms.run(`${original.version}\u0000${entryKey}`, async () => {
      const started = performance.now();
      let made: Awaited<ReturnType<Transformer['transform']>>;
      try {
        made = await transformer.transform(original.bytes, spec);
      } catch (error) {
        const code = error instanceof PixpoolError ? error.code : '';
        metrics.variantRefusals.inc({ reason: REFUSAL_REASONS[code] ?? 'error' });
        throw error;
      }
      metrics.transformSeconds.observe((performance.now() - started) / 1000);
      const variant: FetchedImage = {
        bytes: made.bytes,
        contentType: made.contentType,
        version: original.version,
        modifiedAt: original.modifiedAt,
        source: 'transform',
        variant: id,
      };
      if (owner) fill(owner, entryKey, variant);
      return variant;
    });
  }

  /** Asks for the current pool view (after a node said ours is outdated). */
  async function refreshView(): Promise<void> {
    try {
      await deps.refreshView?.();
    } catch (error) {
      log.warn({ err: error }, 'could not refresh the pool view');
    }
  }

  return {
    /**
     * The POST /api/key answer for `image`, encoded once per version: kept with the near cache's
     * copy (which is revalidated or leased like the bytes).
     */
    dataUrlJsonOf(key: string, image: FetchedImage): Buffer {
      if (image.dataUrlJson) return image.dataUrlJson;
      const body = dataUrlJson(key, image.contentType, image.bytes);
      near.attach(key, image, body);
      return body;
    },

    leasedCopy: (key: string) => leasedCopy(key),

    /** The near copy of a variant while a lease vouches for it (no I/O), counted as a hit. */
    leasedVariant: (key: string, spec: VariantSpec) =>
      leasedCopy(variantEntryKey(key, variantId(spec)), variantHits),
    fetch,
    fetchVariant,

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
      // If the commit fails, the object is not deleted here: a connection lost during COMMIT may
      // have committed it (not acknowledged, yet stored), and deleting it could leave a row
      // without bytes. The garbage collector (src/storage/gc.ts) checks the rows first.
      const { record, previousObject } = await metadata.commit({
        key,
        object,
        contentType,
        size: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
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
