/** The frontend's own Prometheus metrics (besides the process defaults every service has). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createFrontendMetrics(
  registry: Registry,
  /** Bytes of image memory kept for the next node reads (clients/node-client.ts recycle). */
  idleReadBytes: () => number = () => 0,
) {
  const registers = [registry];
  return {
    idleReadBuffers: new Gauge({
      name: 'pixpool_frontend_idle_read_buffer_bytes',
      help: 'Memory of answered images kept for the next reads from cache nodes to reuse',
      registers,
      collect() {
        this.set(idleReadBytes());
      },
    }),
    lookups: new Counter({
      name: 'pixpool_frontend_cache_lookups_total',
      help: 'Cache lookups by result (hit or miss; a failing node counts as a miss)',
      labelNames: ['result'] as const,
      registers,
    }),
    nearAdmissions: new Counter({
      name: 'pixpool_frontend_near_cache_admissions_total',
      help: 'Images from a node offered to the near cache as new keys, by outcome (admitted, or rejected: read less often lately than the entries they would evict)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    nodeErrors: new Counter({
      name: 'pixpool_frontend_node_errors_total',
      help: 'Cache node requests that failed or timed out',
      registers,
    }),
    nodeRefusals: new Counter({
      name: 'pixpool_frontend_node_refusals_total',
      help: 'Cache node requests a node refused because its pool view expired (it lost its manager)',
      registers,
    }),
    fills: new Counter({
      name: 'pixpool_frontend_fills_total',
      help: 'Cache fills after a miss by outcome (stored, stale: a newer version won, refused: the node has no view lease, error)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    uploads: new Counter({
      name: 'pixpool_frontend_uploads_total',
      help: 'Acknowledged uploads',
      registers,
    }),
    invalidationFailures: new Counter({
      name: 'pixpool_frontend_invalidation_failures_total',
      help: 'Uploads refused (503, not acknowledged) because the cache node of their key could not be told',
      registers,
    }),
    gcSweeps: new Counter({
      name: 'pixpool_frontend_gc_sweeps_total',
      help: 'Orphan-object garbage collection sweeps by outcome (ok, error)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    gcDeleted: new Counter({
      name: 'pixpool_frontend_gc_deleted_total',
      help: 'Objects deleted by garbage collection: orphans (no row) and leftovers (temp files)',
      labelNames: ['kind'] as const,
      registers,
    }),
    variantLookups: new Counter({
      name: 'pixpool_frontend_variant_lookups_total',
      help: 'Image variant lookups by result (hit: cached in the pool or leased here; miss: made from the original)',
      labelNames: ['result'] as const,
      registers,
    }),
    transformSeconds: new Histogram({
      name: 'pixpool_frontend_variant_transform_seconds',
      help: 'Time to make an image variant from its original (sharp), waiting for a turn included',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    variantRefusals: new Counter({
      name: 'pixpool_frontend_variant_refusals_total',
      help: 'Image variants not made, by reason (too_large: pixel limit, unreadable, animated: would lose frames, busy: queue full)',
      labelNames: ['reason'] as const,
      registers,
    }),
    fetchSeconds: new Histogram({
      name: 'pixpool_frontend_fetch_seconds',
      help: 'Time to answer an image fetch, by source (cache, storage, transform: a variant made now)',
      labelNames: ['source'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
  };
}

export type FrontendMetrics = ReturnType<typeof createFrontendMetrics>;
