/**
 * A Jepsen-style history for multi-host tests (issue 17): uploads and reads run through the
 * frontends, every operation is recorded with when it started and ended (this process's clock),
 * and each read is judged against the uploads of its key.
 *
 * Uploads of one key never overlap: each key belongs to one writer loop, which waits for an
 * upload's answer before it starts the next (no client timeout cuts an upload short; the frontend
 * answers only once it is done with the row), so a key's uploads are totally ordered by their
 * sequence number, and every upload has bytes of its own (a real PNG naming key and number).
 *
 * A read is
 * - STALE if its bytes belong to an upload older than one ACKNOWLEDGED (a 200 seen here) before
 *   the read started. An upload still in flight may or may not be visible yet, and an upload that
 *   failed or was refused may still have been committed: answering its bytes is not stale unless
 *   a later upload had been acknowledged before the read began.
 * - REFUSED if it got a 503 with the JSON error envelope ({success:"false", error:{code, message}},
 *   SPEC §3): a refusal the design chose, counted apart.
 * - FAILED for anything else but the right bytes: another status, a 503 without the envelope, a
 *   network error or timeout, bytes of no upload of that key.
 * Uploads are acknowledged (200 and {success:"true", key}), refused (503 with the envelope) or
 * failed (anything else, counted in `failed` too).
 */
import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { regionOf } from '../../src/core/regions.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A frontend the workload goes through. */
export interface Via {
  name: string;
  url: string;
}

export interface UploadOp {
  kind: 'upload';
  phase: string;
  key: string;
  seq: number;
  via: string;
  start: number;
  end: number;
  status: number;
  outcome: 'acked' | 'refused' | 'failed';
  detail?: string;
}

export interface ReadOp {
  kind: 'read';
  phase: string;
  key: string;
  via: string;
  start: number;
  end: number;
  status: number;
  /** The upload whose bytes came back, when they were some upload's. */
  seq?: number;
  /** The newest upload acknowledged before the read started. */
  floor: number;
  /** x-pixpool-source: near, cache or storage. */
  source?: string;
  outcome: 'ok' | 'stale' | 'refused' | 'failed';
  detail?: string;
}

export type Op = UploadOp | ReadOp;

export interface Counts {
  requests: number;
  reads: number;
  uploads: number;
  uploadsRefused: number;
  stale: number;
  failed: number;
  refused: number;
}

/** `perRegion` keys in each of the 16 regions, region 0's first. */
export function keysOverRegions(prefix: string, perRegion = 2): string[] {
  const byRegion: string[][] = Array.from({ length: 16 }, () => []);
  for (let n = 0; byRegion.some((keys) => keys.length < perRegion); n++) {
    const key = `${prefix}-${n}`;
    const keys = byRegion[regionOf(key)] as string[];
    if (keys.length < perRegion) keys.push(key);
  }
  return byRegion.flat();
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A real 8×8 RGB PNG whose pixels and text chunk are unique to (`key`, `seq`). */
export function pngFor(key: string, seq: number): Buffer {
  const seed = createHash('sha256').update(`${key}#${seq}`).digest();
  const size = 8;
  const rows: Buffer[] = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3); // filter byte 0, then RGB
    for (let x = 0; x < size * 3; x++)
      row[1 + x] = seed[(y * size * 3 + x) % seed.length] as number;
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('tEXt', Buffer.from(`Comment\0pixpool ${key} upload ${seq}`, 'latin1')),
    pngChunk('IDAT', deflateSync(Buffer.concat(rows))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Whether `body` is the error envelope with `code` (SPEC §3). */
function isEnvelope(body: string, code: number): boolean {
  try {
    const parsed = JSON.parse(body) as {
      success?: unknown;
      error?: { code?: unknown; message?: unknown };
    };
    return (
      parsed.success === 'false' &&
      parsed.error?.code === code &&
      typeof parsed.error.message === 'string' &&
      parsed.error.message.length > 0
    );
  } catch {
    return false;
  }
}

export function createHistory() {
  const ops: Op[] = [];
  /** sha256 of an upload's bytes → its key and number. */
  const uploads = new Map<string, { key: string; seq: number }>();
  const nextSeq = new Map<string, number>();
  const lastAcked = new Map<string, number>();
  const notes: { at: number; text: string }[] = [];
  let phase = 'setup';

  return {
    ops,
    notes,
    /** Records what the test did and when, beside the operations. */
    note(text: string): void {
      notes.push({ at: performance.now(), text });
    },
    get phase() {
      return phase;
    },
    /** Labels the operations that start from now on. */
    setPhase(name: string): void {
      phase = name;
    },
    /** Uploads the next bytes of `key` through `via` and records the outcome. */
    async upload(via: Via, key: string): Promise<UploadOp> {
      const seq = nextSeq.get(key) ?? 0;
      nextSeq.set(key, seq + 1);
      const bytes = pngFor(key, seq);
      uploads.set(sha256(bytes), { key, seq });
      const op: UploadOp = {
        kind: 'upload',
        phase,
        key,
        seq,
        via: via.name,
        start: performance.now(),
        end: 0,
        status: 0,
        outcome: 'failed',
      };
      try {
        const form = new FormData();
        form.append('key', key);
        form.append('file', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'a.png');
        // A long limit only: cutting an upload short here would let it commit after the next.
        const response = await fetch(`${via.url}/api/upload`, {
          method: 'POST',
          body: form,
          signal: AbortSignal.timeout(60_000),
        });
        const body = await response.text();
        op.status = response.status;
        let acked = false;
        try {
          const parsed = JSON.parse(body) as { success?: unknown; key?: unknown };
          acked = response.status === 200 && parsed.success === 'true' && parsed.key === key;
        } catch {}
        if (acked) op.outcome = 'acked';
        else if (response.status === 503 && isEnvelope(body, 503)) op.outcome = 'refused';
        else op.detail = `HTTP ${response.status} ${body.slice(0, 200)}`;
      } catch (error) {
        op.detail = `${(error as Error).message} ${(error as { cause?: Error }).cause?.message ?? ''}`;
      }
      op.end = performance.now();
      if (op.outcome === 'acked') lastAcked.set(key, Math.max(lastAcked.get(key) ?? -1, seq));
      ops.push(op);
      return op;
    },

    /**
     * Reads `key` through `via` (GET /images/:key, or POST /api/key/:key with `asJson`), and
     * judges the answer against the uploads acknowledged before it started.
     */
    async read(via: Via, key: string, asJson = false): Promise<ReadOp> {
      const op: ReadOp = {
        kind: 'read',
        phase,
        key,
        via: via.name,
        start: performance.now(),
        end: 0,
        status: 0,
        floor: lastAcked.get(key) ?? -1,
        outcome: 'failed',
      };
      try {
        const response = asJson
          ? await fetch(`${via.url}/api/key/${encodeURIComponent(key)}`, {
              method: 'POST',
              signal: AbortSignal.timeout(15_000),
            })
          : await fetch(`${via.url}/images/${encodeURIComponent(key)}`, {
              signal: AbortSignal.timeout(15_000),
            });
        op.status = response.status;
        op.source = response.headers.get('x-pixpool-source') ?? undefined;
        const raw = Buffer.from(await response.arrayBuffer());
        if (response.status === 200) {
          let bytes: Buffer | undefined = raw;
          if (asJson) {
            const content = (JSON.parse(raw.toString()) as { content?: string }).content ?? '';
            const comma = content.indexOf(',');
            bytes = comma > 0 ? Buffer.from(content.slice(comma + 1), 'base64') : undefined;
          }
          const found = bytes && uploads.get(sha256(bytes));
          if (!found || found.key !== key) {
            op.detail = `bytes of no upload of ${key}`;
          } else {
            op.seq = found.seq;
            op.outcome = found.seq < op.floor ? 'stale' : 'ok';
            if (op.outcome === 'stale') op.detail = `upload ${found.seq}, ${op.floor} acknowledged`;
          }
        } else if (response.status === 503 && isEnvelope(raw.toString(), 503)) {
          op.outcome = 'refused';
        } else {
          op.detail = `HTTP ${response.status} ${raw.toString().slice(0, 200)}`;
        }
      } catch (error) {
        op.detail = `${(error as Error).message} ${(error as { cause?: Error }).cause?.message ?? ''}`;
      }
      op.end = performance.now();
      ops.push(op);
      return op;
    },

    /** The counts over the operations of `phases` (all when none is named). */
    counts(phases?: string[]): Counts {
      const c: Counts = {
        requests: 0,
        reads: 0,
        uploads: 0,
        uploadsRefused: 0,
        stale: 0,
        failed: 0,
        refused: 0,
      };
      for (const op of ops) {
        if (phases && !phases.includes(op.phase)) continue;
        c.requests++;
        if (op.kind === 'upload') {
          if (op.outcome === 'acked') c.uploads++;
          else if (op.outcome === 'refused') c.uploadsRefused++;
          else c.failed++;
        } else {
          c.reads++;
          if (op.outcome === 'stale') c.stale++;
          else if (op.outcome === 'refused') c.refused++;
          else if (op.outcome === 'failed') c.failed++;
        }
      }
      return c;
    },

    /** Up to `limit` stale or failed operations of `phases`, described, for messages. */
    problems(phases?: string[], limit = 8): string[] {
      const found: string[] = [];
      const byKind = new Map<string, number>();
      for (const op of ops) {
        if (phases && !phases.includes(op.phase)) continue;
        const bad =
          op.kind === 'read'
            ? op.outcome === 'stale' || op.outcome === 'failed'
            : op.outcome === 'failed';
        if (!bad) continue;
        const kind = `${op.kind} ${op.outcome} via ${op.via}${op.kind === 'read' ? ` from ${op.source ?? '?'}` : ''}`;
        byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
        if (found.length < limit) {
          found.push(
            `${op.phase}: ${kind} ${op.key} (${op.detail ?? ''}) at ${Math.round(op.start)} ms`,
          );
        }
      }
      return [...[...byKind].map(([kind, n]) => `${n} × ${kind}`), ...found];
    },
  };
}

export type History = ReturnType<typeof createHistory>;

export interface Workload {
  /** Stops starting operations and waits for those in flight. */
  stop(): Promise<void>;
}

/**
 * Continuous uploads and reads: `writers` loops, each uploading the keys it owns (key i belongs
 * to loop i mod writers) in turn, each through one of `uploadVia()` at random, and `readers` loops reading a
 * random key (each region alike; its first key three times as often as its second) through one of
 * `readVia()`, one read in five through POST /api/key. The lists are asked before each operation,
 * so a test can change where traffic goes while it runs.
 */
export function startWorkload(
  history: History,
  options: {
    keys: string[];
    uploadVia: () => Via[];
    readVia: () => Via[];
    writers?: number;
    readers?: number;
    /** Pause after each upload, ms. */
    uploadPauseMs?: number;
    random?: () => number;
  },
): Workload {
  const { keys, writers = 4, readers = 8, uploadPauseMs = 10, random = Math.random } = options;
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)] as T;
  let running = true;
  const writer = async (w: number) => {
    const own = keys.filter((_, i) => i % writers === w);
    // Round robin from a random start: a key is uploaded again only after the loop's other keys.
    let next = Math.floor(random() * own.length);
    while (running) {
      const via = options.uploadVia();
      if (via.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      await history.upload(pick(via), own[next++ % own.length] as string);
      await new Promise((resolve) => setTimeout(resolve, uploadPauseMs));
    }
  };
  const perRegion = keys.length / 16;
  const reader = async () => {
    while (running) {
      const via = options.readVia();
      if (via.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      const region = Math.floor(random() * 16);
      const slot = perRegion >= 2 && random() < 0.25 ? 1 : 0;
      const key = keys[region * perRegion + slot] as string;
      await history.read(pick(via), key, random() < 0.2);
    }
  };
  const loops = [
    ...Array.from({ length: writers }, (_, w) => writer(w)),
    ...Array.from({ length: readers }, reader),
  ];
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
