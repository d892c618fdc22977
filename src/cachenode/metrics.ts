/** The node's Prometheus metrics, read from its counters at scrape time (no double bookkeeping). */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Counters } from '../core/stats.ts';
import type { NodeCache } from './node-cache.ts';

const counters: [keyof Counters, string][] = [
  ['gets', 'Cache reads'],
  ['hits', 'Cache reads that found the key'],
  ['misses', 'Cache reads that did not find the key'],
  ['puts', 'Cache writes from clients'],
  ['evictions', 'Entries evicted to make room'],
  ['imports', 'Entries received from other nodes in hand-overs'],
];

export function registerNodeMetrics(registry: Registry, cache: NodeCache): void {
  for (const [name, help] of counters) {
    new Counter({
      name: `pixpool_cache_${name}_total`,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(cache.stats.totals[name]);
      },
    });
  }
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('pixpool_cache_items', 'Entries held', () => cache.items);
  gauge('pixpool_cache_bytes', 'Value bytes held', () => cache.bytes);
  gauge('pixpool_cache_capacity_bytes', 'Configured capacity in bytes', () => cache.capacityBytes);
}
