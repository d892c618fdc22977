/**
 * The soak's load generator, run as its own process (pinned to the load CPU like wrk) by
 * bench/cases/soak.ts: `node --import tsx bench/soak-client.ts '<json options>'`.
 *
 * Open loop at a fixed rate, not "as fast as it answers": a timer issues the requests that are
 * due (fetches and uploads, each at its own rate), so a slow server shows as higher latency and,
 * past `maxInFlight`, as requests *skipped* — never as a quietly lower offered load.
 *
 * Every image carries its key's index and an upload sequence number in its first bytes (after a
 * JPEG signature, so the frontend accepts it), which lets every fetch be checked for more than
 * "200": the bytes belong to the key asked for (never someone else's), are whole, and are not
 * older than the newest upload of that key that was acknowledged before the fetch started (no
 * stale read). One upload per key is in flight at a time, so "newest acknowledged" is well defined.
 *
 * Before the clock starts every key is uploaded once, so a fetch never meets a 404. Prints one
 * JSON line per window of `windowSec` (counts, errors, exact latency percentiles), then a summary.
 */
import { Pool } from 'undici';
import { benchImage, multipartEncoder } from './lib/multipart.ts';

export interface SoakClientOptions {
  baseUrl: string;
  durationSec: number;
  windowSec: number;
  /** Fetches per second (GET /images/<key>), keys drawn by a Zipf-like law (hot keys exist). */
  fetchRate: number;
  /** Uploads per second (POST /api/upload), keys drawn uniformly. */
  uploadRate: number;
  keys: number;
  sizeBytes: number;
  /** Past this many requests in flight, a due request is skipped (and counted). */
  maxInFlight: number;
  /** Zipf exponent of the fetch key law. */
  skew: number;
}

export interface SoakWindow {
  /** Seconds since the clock started, at the window's end. */
  t: number;
  fetches: number;
  fetchErrors: number;
  /** Answers with the wrong key's bytes, truncated bytes, or older than an acknowledged upload. */
  wrong: number;
  uploads: number;
  uploadErrors: number;
  skipped: number;
  fetchMs: { p50: number; p99: number; max: number };
  uploadMs: { p50: number; p99: number; max: number };
  /** Fetches answered from a cache node or the frontend's near cache (x-pixpool-source: cache). */
  cacheShare: number;
  firstError?: string;
}

const HEADER = 12; // JPEG signature (4) + key index (4) + sequence (4)

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  if (values.length === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] as number };
}

/** Cumulative weights of a Zipf(s) law over n ranks, for inverse-transform sampling. */
function zipfTable(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  for (let k = 0; k < n; k++) cdf[k] = (cdf[k] as number) / sum;
  return cdf;
}

function sampleZipf(cdf: Float64Array): number {
  const u = Math.random();
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cdf[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as SoakClientOptions;
  const origin = new URL(o.baseUrl).origin;
  const pool = new Pool(origin, { connections: o.maxInFlight, keepAliveTimeout: 60_000 });
  const template = benchImage(o.sizeBytes);
  const encoder = multipartEncoder();
  const keyName = (k: number) => `soak-${k}`;
  const acked = new Int32Array(o.keys); // newest acknowledged sequence per key
  const uploading = new Uint8Array(o.keys);
  let seq = 0;
  let inFlight = 0;

  let w = freshWindow();
  function freshWindow() {
    return {
      fetches: 0,
      fetchErrors: 0,
      wrong: 0,
      uploads: 0,
      uploadErrors: 0,
      skipped: 0,
      fromCache: 0,
      fetchMs: [] as number[],
      uploadMs: [] as number[],
      firstError: undefined as string | undefined,
    };
  }

  async function upload(k: number): Promise<boolean> {
    uploading[k] = 1;
    const mySeq = ++seq;
    const image = Buffer.from(template);
    image.writeUInt32BE(k, 4);
    image.writeUInt32BE(mySeq, 8);
    const { contentType, body } = encoder.encode(keyName(k), image);
    const t0 = performance.now();
    try {
      const response = await pool.request({
        method: 'POST',
        path: '/api/upload',
        headers: { 'content-type': contentType },
        body,
      });
      const text = await response.body.text();
      if (response.statusCode === 200 && text.includes('"success":"true"')) {
        acked[k] = Math.max(acked[k] as number, mySeq);
        w.uploads++;
        w.uploadMs.push(performance.now() - t0);
        return true;
      }
      w.uploadErrors++;
      w.firstError ??= `upload ${keyName(k)}: ${response.statusCode} ${text.slice(0, 200)}`;
    } catch (error) {
      w.uploadErrors++;
      w.firstError ??= `upload ${keyName(k)}: ${(error as Error).message}`;
    } finally {
      uploading[k] = 0;
    }
    return false;
  }

  async function fetchOne(k: number): Promise<void> {
    const floor = acked[k] as number;
    const t0 = performance.now();
    try {
      const response = await pool.request({ method: 'GET', path: `/images/${keyName(k)}` });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      const ms = performance.now() - t0;
      if (response.statusCode !== 200) {
        w.fetchErrors++;
        w.firstError ??= `GET ${keyName(k)}: ${response.statusCode} ${bytes.toString('utf8', 0, 200)}`;
        return;
      }
      w.fetches++;
      w.fetchMs.push(ms);
      const source = response.headers['x-pixpool-source'];
      if (source === 'cache') w.fromCache++;
      const ok =
        bytes.length === o.sizeBytes &&
        bytes.length >= HEADER &&
        bytes.readUInt32BE(4) === k &&
        bytes.readUInt32BE(8) >= floor;
      if (!ok) {
        w.wrong++;
        w.firstError ??= `GET ${keyName(k)}: ${bytes.length} bytes, key ${bytes.length >= HEADER ? bytes.readUInt32BE(4) : '?'}, sequence ${bytes.length >= HEADER ? bytes.readUInt32BE(8) : '?'} (acknowledged ≥ ${floor} before the request)`;
      }
    } catch (error) {
      w.fetchErrors++;
      w.firstError ??= `GET ${keyName(k)}: ${(error as Error).message}`;
    }
  }

  // Every key once, 8 at a time, before the clock starts.
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < o.keys) {
        const k = next++;
        if (!(await upload(k))) throw new Error(`prefill failed: ${w.firstError}`);
      }
    }),
  );
  w = freshWindow();

  const cdf = zipfTable(o.keys, o.skew);
  const track = (promise: Promise<unknown>) => {
    inFlight++;
    void promise.finally(() => inFlight--);
  };
  const started = performance.now();
  let fetchesIssued = 0;
  let uploadsIssued = 0;
  let windowEnd = o.windowSec;
  const windows: SoakWindow[] = [];

  const flush = (t: number) => {
    const line: SoakWindow = {
      t,
      fetches: w.fetches,
      fetchErrors: w.fetchErrors,
      wrong: w.wrong,
      uploads: w.uploads,
      uploadErrors: w.uploadErrors,
      skipped: w.skipped,
      fetchMs: percentiles(w.fetchMs),
      uploadMs: percentiles(w.uploadMs),
      cacheShare: w.fetches === 0 ? 0 : w.fromCache / w.fetches,
      ...(w.firstError !== undefined && { firstError: w.firstError }),
    };
    windows.push(line);
    process.stdout.write(`${JSON.stringify({ window: line })}\n`);
    w = freshWindow();
  };

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = (performance.now() - started) / 1000;
      if (elapsed >= windowEnd) {
        flush(windowEnd);
        windowEnd += o.windowSec;
      }
      if (elapsed >= o.durationSec) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (; fetchesIssued < Math.floor(elapsed * o.fetchRate); fetchesIssued++) {
        if (inFlight >= o.maxInFlight) w.skipped++;
        else track(fetchOne(sampleZipf(cdf)));
      }
      for (; uploadsIssued < Math.floor(elapsed * o.uploadRate); uploadsIssued++) {
        const k = Math.floor(Math.random() * o.keys);
        if (inFlight >= o.maxInFlight || uploading[k]) w.skipped++;
        else track(upload(k));
      }
    }, 5);
  });
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
  await pool.close();
  process.stdout.write(`${JSON.stringify({ done: true, windows: windows.length })}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`soak client: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
