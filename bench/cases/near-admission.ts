/**
 * Bench case `near-admission` (issue 23): the frontend's near cache alone (src/frontend/
 * near-cache.ts), with its frequency admission (TinyLFU) and without it (LRU alone, as before),
 * replayed in-process by bench/hit-ratio.ts on seeded traces: uniform reads over a working set 2×
 * and 4× the cache, and the hit-ratio case's Zipf traces. Ratios and counts only, so the figures
 * depend on the seeds, not on the machine's load.
 */
import { createSeededRandom } from '../../src/core/seeded-random.ts';
import {
  generateTrace,
  type NearCacheCounts,
  objectHitRatio,
  replayOnNearCache,
  type SizeModel,
  totalBytes,
} from '../hit-ratio.ts';
import type { BenchCase, CaseResult } from '../lib/case.ts';
import { ALPHA, CACHE_SHARE, OBJECTS, REQUESTS, SEEDS, SIZES, WARMUP } from './hit-ratio.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The frontend's default near cache. */
const NEAR_DEFAULT = 64 * MiB;
/** The uniform workload: 2,000 images of ~100 KB. */
const UNIFORM_OBJECTS = 2_000;
const UNIFORM_SIZES: SizeModel = { median: 100 * KiB, sigma: 0.25, min: 4 * KiB, max: 5 * MiB };
const UNIFORM_REQUESTS = 400_000;
const UNIFORM_WARMUP = 100_000;
/** After ÷ before, admissions per read on the uniform traces: the churn must mostly go. */
const TARGET_ADMISSION_RATIO = 0.25;
/** Hit ratio after − before, in points: no workload may lose hits. */
const TARGET_POINTS = -0.5;

interface TraceSpec {
  name: string;
  objects: number;
  requests: number;
  warmup: number;
  alpha: number;
  sizes: SizeModel;
  /** Near cache sizes: a share of the trace's bytes, or bytes. */
  capacities: { name: string; share?: number; bytes?: number; uniform?: boolean }[];
}

const TRACES: TraceSpec[] = [
  {
    name: `uniform over ${UNIFORM_OBJECTS.toLocaleString('en-US')} images of ~100 KiB`,
    objects: UNIFORM_OBJECTS,
    requests: UNIFORM_REQUESTS,
    warmup: UNIFORM_WARMUP,
    alpha: 0,
    sizes: UNIFORM_SIZES,
    capacities: [
      { name: 'working set 2× the cache', share: 0.5, uniform: true },
      { name: 'working set 4× the cache', share: 0.25, uniform: true },
    ],
  },
  {
    name: `Zipf(${ALPHA.toFixed(1)}), the hit-ratio case's trace`,
    objects: OBJECTS,
    requests: REQUESTS,
    warmup: WARMUP,
    alpha: ALPHA,
    sizes: SIZES,
    capacities: [
      { name: `cache ${CACHE_SHARE * 100} % of the bytes`, share: CACHE_SHARE },
      { name: 'cache 64 MiB (the default)', bytes: NEAR_DEFAULT },
    ],
  },
  {
    name: 'Zipf(0.8), otherwise the same',
    objects: OBJECTS,
    requests: REQUESTS,
    warmup: WARMUP,
    alpha: 0.8,
    sizes: SIZES,
    capacities: [{ name: `cache ${CACHE_SHARE * 100} % of the bytes`, share: CACHE_SHARE }],
  },
];

interface Workload {
  name: string;
  uniform: boolean;
  /** Per seed: the cache size, and the counts without admission (LRU) and with it. */
  seeds: { seed: number; capacity: number; lru: NearCacheCounts; tinyLfu: NearCacheCounts }[];
}

const perRead = (c: NearCacheCounts) => c.admitted / c.requests;
const hitsPerAdmission = (c: NearCacheCounts) => (c.admitted > 0 ? c.hits / c.admitted : Infinity);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const spread = (xs: number[], f: (x: number) => string) =>
  `${f(mean(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
const dec = (digits: number) => (x: number) => x.toFixed(digits);

function replayTrace(spec: TraceSpec, log: (line: string) => void): Workload[] {
  const workloads: Workload[] = spec.capacities.map((c) => ({
    name: `${spec.name}, ${c.name}`,
    uniform: c.uniform ?? false,
    seeds: [],
  }));
  for (const seed of SEEDS) {
    const started = performance.now();
    const trace = generateTrace({ ...spec, random: createSeededRandom(seed) });
    const total = totalBytes(trace);
    spec.capacities.forEach((c, i) => {
      const capacity = c.bytes ?? Math.floor(total * (c.share ?? 1));
      const lru = replayOnNearCache(trace, capacity, spec.warmup, false);
      const tinyLfu = replayOnNearCache(trace, capacity, spec.warmup, true);
      workloads[i]?.seeds.push({ seed, capacity, lru, tinyLfu });
    });
    log(
      `near-admission: ${spec.name}, seed ${seed} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
  }
  return workloads;
}

export const nearAdmission: BenchCase = {
  id: 'near-admission',
  title:
    "The frontend's near cache alone: hit ratio and admissions per read with frequency admission (TinyLFU) vs LRU alone, uniform and Zipf traces",
  async run(ctx): Promise<CaseResult> {
    const workloads = TRACES.flatMap((spec) => replayTrace(spec, ctx.log));
    const column = (w: Workload, of: (s: Workload['seeds'][number]) => number) => w.seeds.map(of);
    const rows = workloads.map((w) => [
      w.name,
      `${(mean(column(w, (s) => s.capacity)) / MiB).toFixed(0)} MiB`,
      spread(
        column(w, (s) => objectHitRatio(s.lru)),
        pct,
      ),
      spread(
        column(w, (s) => objectHitRatio(s.tinyLfu)),
        pct,
      ),
      spread(
        column(w, (s) => perRead(s.lru)),
        dec(3),
      ),
      spread(
        column(w, (s) => perRead(s.tinyLfu)),
        dec(3),
      ),
      spread(
        column(w, (s) => hitsPerAdmission(s.lru)),
        dec(2),
      ),
      spread(
        column(w, (s) => hitsPerAdmission(s.tinyLfu)),
        dec(2),
      ),
    ]);
    const uniformRatio = Math.max(
      ...workloads
        .filter((w) => w.uniform)
        .flatMap((w) => column(w, (s) => perRead(s.tinyLfu) / perRead(s.lru))),
    );
    const worstPoints = Math.min(
      ...workloads.flatMap((w) =>
        column(w, (s) => (objectHitRatio(s.tinyLfu) - objectHitRatio(s.lru)) * 100),
      ),
    );
    return {
      id: nearAdmission.id,
      title: nearAdmission.title,
      fairness: [
        "Both sides are the frontend's own near cache (createNearCache) replaying the same requests of each seed at the same byte capacity, one with admission and one without (admission: false, the near cache as it was before).",
        'Each request is recorded, a held copy counts as a hit (as within a read lease), and a miss offers a fresh image object of the true size to the cache, as the image service does with a node answer. Warm-up requests are replayed and not counted.',
      ],
      table: {
        head: [
          'workload',
          'near cache',
          'hit ratio, LRU alone',
          'hit ratio, TinyLFU',
          'admissions/read, LRU',
          'admissions/read, TinyLFU',
          'hits per admission, LRU',
          'hits per admission, TinyLFU',
        ],
        rows,
      },
      checks: [
        {
          name: 'uniform traces: admissions per read, TinyLFU ÷ LRU alone (worst seed)',
          value: uniformRatio,
          target: `≤ ${TARGET_ADMISSION_RATIO}`,
          met: uniformRatio <= TARGET_ADMISSION_RATIO,
        },
        {
          name: 'every workload: hit ratio, TinyLFU − LRU alone, in points (worst seed)',
          value: worstPoints,
          target: `≥ ${TARGET_POINTS}`,
          met: worstPoints >= TARGET_POINTS,
        },
      ],
      notes: [
        `Uniform: ${UNIFORM_OBJECTS.toLocaleString('en-US')} objects, sizes log-normal (median ${UNIFORM_SIZES.median / KiB} KiB, sigma ${UNIFORM_SIZES.sigma}), ${UNIFORM_REQUESTS.toLocaleString('en-US')} requests of which the first ${UNIFORM_WARMUP.toLocaleString('en-US')} warm up. Zipf: the hit-ratio case's trace (${OBJECTS.toLocaleString('en-US')} objects, ${REQUESTS.toLocaleString('en-US')} requests, ${WARMUP.toLocaleString('en-US')} warm-up), and the same at alpha 0.8. Seeds ${SEEDS.join(', ')}.`,
        'An admission is a new key let into the near cache (a held key replaced by a newer version is not one). Hits per admission: counted hits ÷ counted admissions, how much each admission is used.',
        'Each cell: mean over the seeds (min–max).',
      ],
      figures: { seeds: SEEDS, workloads },
    };
  },
};
