/**
 * The upload load generator, run as its own process (pinned to the load CPU like wrk) by
 * bench/lib/uploads.ts: `node --import tsx bench/upload-client.ts '<json options>'`.
 *
 * A fixed number of workers, each with one upload in flight at a time over kept-alive
 * connections (an undici Pool of as many connections), POST /api/upload multipart bodies with a
 * distinct key per request and distinct bytes per request (a counter after the JPEG signature),
 * until the time is up. Prints one JSON line: counts, uploads/s, exact latency percentiles of the
 * successful uploads, its own CPU time.
 */
import { Pool } from 'undici';
import { benchImage, multipartEncoder } from './lib/multipart.ts';
import type { UploadClientOptions, UploadClientResult } from './lib/uploads.ts';

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as UploadClientOptions;
  const url = new URL('/api/upload', options.baseUrl);
  const pool = new Pool(url.origin, {
    connections: options.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
  });
  const image = benchImage(options.sizeBytes);
  const encoder = multipartEncoder();
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let failed = 0;
  let firstError: string | undefined;
  let counter = 0;

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.durationSec * 1000;
  const worker = async (w: number) => {
    for (let n = 0; performance.now() < deadline; n++) {
      image.writeUInt32BE(counter++, 4); // distinct bytes per upload
      const { contentType, body } = encoder.encode(`${options.keyPrefix}-${w}-${n}`, image);
      const t0 = performance.now();
      try {
        const response = await pool.request({
          method: 'POST',
          path: url.pathname,
          headers: { 'content-type': contentType },
          body,
        });
        const text = await response.body.text();
        const ms = performance.now() - t0;
        const status = String(response.statusCode);
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (response.statusCode === 200 && text.includes('"success":"true"')) {
          latencies.push(ms);
        } else {
          failed++;
          firstError ??= `${status}: ${text.slice(0, 300)}`;
        }
      } catch (error) {
        failed++;
        statuses.error = (statuses.error ?? 0) + 1;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  const durationSec = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  await pool.close();

  const sorted = Float64Array.from(latencies).sort();
  const sum = latencies.reduce((a, b) => a + b, 0);
  const result: UploadClientResult = {
    uploads: latencies.length,
    failed,
    statuses,
    firstError,
    durationSec,
    uploadsPerSec: latencies.length / durationSec,
    latencyMs: {
      avg: latencies.length > 0 ? sum / latencies.length : Number.NaN,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : Number.NaN,
    },
    cpuSec: { user: cpu.user / 1e6, system: cpu.system / 1e6 },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`upload-client: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
