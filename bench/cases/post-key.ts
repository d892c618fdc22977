/**
 * Bench case `frontend-post-key-100k` (issue 7): the originals' JSON read, POST /api/key/:key of a
 * cached 100 KB image — `{"success":"true","key":…,"content":"data:image/jpeg;base64,…"}`, about
 * 137 KB — vs nginx sending the raw 100 KB as a static file, under the same wrk load (pixpool's
 * side POSTs through a one-line wrk Lua script; nginx answers a GET, it does not POST to files).
 * Target: ≥ 0.3× nginx's req/s.
 *
 * Also exports the helpers the other frontend cases share: profile flags/notes for --cpu-prof,
 * and writing a wrk script.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchCase, BenchContext } from '../lib/case.ts';
import { compareHttp, type HttpTarget } from '../lib/compare.ts';
import { addProfile, profileNotes } from '../lib/cpuprofile.ts';
import { benchImage } from '../lib/multipart.ts';
import { nginxBaseline, staticRoot } from '../lib/nginx.ts';
import { startCaseUp } from '../lib/pixpool.ts';

const KB = 1024;

/** Writes a wrk Lua script into the run's temp folder; returns its path. */
export function writeWrkScript(ctx: BenchContext, name: string, lua: string): string {
  const file = join(ctx.tmp, `${name}.lua`);
  writeFileSync(file, lua);
  return file;
}

/**
 * A wrk script that GETs `/images/<prefix><n>` for a uniformly random n in 0..count-1 per
 * request. Each wrk thread seeds its own generator (thread:set before init), so threads differ.
 */
export function randomKeyScript(
  ctx: BenchContext,
  name: string,
  prefix: string,
  count: number,
): string {
  return writeWrkScript(
    ctx,
    name,
    `local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args) math.randomseed(os.time() * 1000 + id * 7919) end
function request()
  return wrk.format("GET", "/images/${prefix}" .. math.random(0, ${count - 1}))
end
`,
  );
}

export const postKey: BenchCase = {
  id: 'frontend-post-key-100k',
  title:
    'Frontend POST /api/key/:key (JSON data URL) of a cached 100 KB image vs nginx static file of the 100 KB',
  run: (ctx) => runPostKey(ctx, postKey),
};

async function runPostKey(ctx: BenchContext, self: BenchCase) {
  const body = benchImage(100 * KB);
  const secret = randomBytes(24).toString('base64url');
  const key = 'bench-100k';
  const path = `/api/key/${key}`;
  const contentType = 'image/jpeg';
  const expected = JSON.stringify({
    success: 'true',
    key,
    content: `data:${contentType};base64,${body.toString('base64')}`,
  });
  const www = staticRoot(ctx, 'www-post-key', path, body);
  const profileName = `${self.id}-frontend`;
  const script = writeWrkScript(ctx, self.id, 'wrk.method = "POST"\n');

  const result = await compareHttp(ctx, {
    id: self.id,
    title: self.title,
    body,
    minRatio: 0.3,
    redact: [secret],
    subject: {
      label: 'pixpool up',
      async start(): Promise<HttpTarget> {
        const up = await startCaseUp(ctx, self.id, secret, profileName);
        await up.upload(key, body);
        await up.waitForCacheHit(key, body);
        const url = `${up.baseUrl}${path}`;
        return {
          url,
          headers: {},
          wrkScript: script,
          bodyBytes: expected.length,
          async verify() {
            const response = await fetch(url, { method: 'POST' });
            const text = await response.text();
            if (response.status !== 200 || text !== expected) {
              throw new Error(
                `pixpool up: POST ${url} answered ${response.status} with ${text.length} bytes, not the expected JSON.`,
              );
            }
          },
          pid: up.child.pid,
          command: up.command.replace(ctx.tmp, '<tmp>'),
          stop: async () => {
            await up.stop();
          },
        };
      },
    },
    baseline: nginxBaseline(ctx, {
      prefix: 'nginx-post-key',
      root: www,
      path,
      contentType,
      headers: {},
    }),
    fairness: [
      'The server under test is the whole `pixpool up` tree (frontend and manager in one process, cache node and autoscaler children), pinned to the server CPU like nginx (worker_processes 1).',
      `pixpool answers POST ${path} with the originals' JSON: the ${body.length.toLocaleString('en-US')} bytes as a base64 data URL, ${expected.length.toLocaleString('en-US')} bytes of JSON (checked byte for byte before measuring); wrk POSTs via a Lua script (wrk.method = "POST"). nginx answers GET of the same path with the raw ${body.length.toLocaleString('en-US')} bytes from a static file — the "same 100 KB image" reference, with ~27 % fewer bytes to send.`,
      "Every pixpool request is a cache hit from the frontend's near cache, answered on the socket (the frontend's socket lane) within the cache node's read lease (100 ms) and revalidated with the node (304, a new lease) when the lease runs out; the near cache keeps the encoded JSON with its version, so a hot key is base64-encoded once.",
    ],
  });
  const profile = profileNotes(ctx, profileName, 'the frontend (its process only)');
  addProfile(result, profile);
  return result;
}
