/**
 * What a cache node sends to other nodes and to its manager, over node:http when they listen on
 * plain http: hand-over batches (importBatch) and view-lease renewals (a fetch for them).
 *
 * The node serves with node:http, so it is loaded already and its parser is native. The other
 * ways, undici (the node client's library) and Node's fetch (built on its own copy of undici),
 * cost a node's first hand-over or first renewal a module load and the compile of undici's
 * WebAssembly HTTP parser: tens to hundreds of ms of CPU, paid by every old owner and by the new
 * node inside a resize's window, on the CPU the hand-over needs. https peers keep the node client
 * and the process's fetch, which verify certificates against its CA (http/tls.ts).
 */
import { Agent, type IncomingMessage, request } from 'node:http';
import type { Readable } from 'node:stream';
import { BATCH_CONTENT_TYPE, type BatchBody, batchBodyBytes } from '../core/entry-batch.ts';
import { nodeMessage } from '../core/node-protocol.ts';

/** Sends hand-over batches (hand-over.ts): what it needs of the node client. */
export interface BatchSender {
  importBatch(
    nodeUrl: string,
    batch: BatchBody,
    length?: number,
  ): Promise<{ accepted: number; refused: number }>;
  close(): Promise<void>;
}

/**
 * Bytes a request may hold in its socket's buffer before the sender waits for it to drain. The
 * parts are the cached values themselves (references, not copies), so this bounds nothing but
 * how many loop turns a batch takes: waiting at the socket's own 16 KB mark meant a wait per
 * value.
 */
const WRITE_AHEAD_BYTES = 1024 * 1024;

/** An idle kept-alive connection is closed after this long, ms. */
const IDLE_MS = 30_000;

interface PlainHttpOptions {
  secret?: string | undefined;
  timeoutMs: number;
  /** Throws when the secret must not go to `origin` in the clear (http/tls.ts guard). */
  guard: (origin: string) => void;
  /** The sender for https nodes, made on first use. */
  https: () => Promise<BatchSender>;
}

/** Hand-over batches to plain-http nodes over node:http; https ones through `https()`. */
export function createBatchSender(options: PlainHttpOptions): BatchSender {
  const { secret, timeoutMs } = options;
  // Kept-alive connections: a hand-over's batches, two at a time, reuse the same two. An idle
  // one is closed well before the peer's keep-alive timeout (65 s), so none is reused just as
  // the peer closes it.
  const agent = new Agent({ keepAlive: true, timeout: IDLE_MS });
  let secure: Promise<BatchSender> | undefined;

  async function importBatch(nodeUrl: string, batch: BatchBody, length?: number) {
    const url = new URL('/v1/import', nodeUrl);
    if (url.protocol !== 'http:') {
      secure ??= options.https();
      return (await secure).importBatch(nodeUrl, batch, length);
    }
    try {
      options.guard(url.origin);
    } catch (error) {
      throw new Error(`cache node ${nodeUrl}: ${(error as Error).message}`);
    }
    const bytes = batchBodyBytes(batch, length);
    const headers: Record<string, string> = {
      'content-type': BATCH_CONTENT_TYPE,
      ...(bytes !== undefined && { 'content-length': String(bytes) }),
      ...(secret && { authorization: `Bearer ${secret}` }),
    };
    const parts: Iterable<Buffer> | AsyncIterable<Buffer> = Buffer.isBuffer(batch)
      ? [batch]
      : (batch as Iterable<Buffer> | Readable);
    const { status, text } = await send(nodeUrl, url, headers, parts);
    if (status !== 200) throw new Error(`cache node ${nodeUrl}: ${status} ${nodeMessage(text)}`);
    const { accepted, refused } = JSON.parse(text) as { accepted: number; refused: number };
    return { accepted, refused };
  }

  function send(
    nodeUrl: string,
    url: URL,
    headers: Record<string, string>,
    parts: Iterable<Buffer> | AsyncIterable<Buffer>,
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(new Error(`cache node ${nodeUrl}: ${error.message}`));
      };
      const req = request(url, { method: 'POST', headers, agent }, (response) => {
        readAll(response).then((text) => {
          settled = true;
          // Answered before the whole batch was sent (a refusal): the connection is not reused.
          if (!req.writableFinished) req.destroy();
          resolve({ status: response.statusCode ?? 0, text });
        }, fail);
      });
      req.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', fail);
      const drained = () =>
        new Promise<void>((done) => {
          const go = () => {
            req.off('drain', go);
            req.off('close', go);
            done();
          };
          req.once('drain', go);
          req.once('close', go);
        });
      (async () => {
        for await (const part of parts) {
          if (settled || req.destroyed) return;
          req.write(part);
          if (req.writableLength >= WRITE_AHEAD_BYTES) await drained();
        }
        if (!settled && !req.destroyed) req.end();
      })().catch(fail);
    });
  }

  return {
    importBatch,
    async close() {
      agent.destroy();
      if (secure) await (await secure).close();
    },
  };
}

/**
 * A fetch for the node's view renewals (view-renewal.ts): plain-http URLs over node:http, the
 * rest through `fallback`. Only what a renewal uses: method, headers, a string body, a signal;
 * the answer's ok, status and json().
 */
export function plainFetch(fallback: typeof fetch): typeof fetch {
  const agent = new Agent({ keepAlive: true, timeout: IDLE_MS });
  return ((input: string | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    if (url.protocol !== 'http:') return fallback(input, init);
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method: init.method ?? 'GET',
        headers: init.headers as Record<string, string>,
        agent,
        ...(init.signal && { signal: init.signal }),
      });
      req.on('error', reject);
      req.on('response', (response) => {
        readAll(response).then((text) => {
          const status = response.statusCode ?? 0;
          resolve({
            ok: status >= 200 && status < 300,
            status,
            json: async () => JSON.parse(text),
            text: async () => text,
          } as Response);
        }, reject);
      });
      req.end(typeof init.body === 'string' ? init.body : undefined);
    });
  }) as typeof fetch;
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.once('error', reject);
    response.once('aborted', () => reject(new Error('the answer was cut off')));
  });
}
