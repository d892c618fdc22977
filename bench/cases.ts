/**
 * The benchmark cases, in the order `npm run bench` runs them. A case is an id, a title and
 * run(ctx) → CaseResult (see lib/case.ts); "server vs server under wrk" cases are built with
 * compareHttp (lib/compare.ts). Add later cases (frontend GET vs nginx, memory, hit ratio …) here.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startCacheNode } from './lib/cachenode.ts';
import type { BenchCase, BenchContext } from './lib/case.ts';
import { compareHttp, type HttpTarget } from './lib/compare.ts';
import { formatProfile, summarizeProfile } from './lib/cpuprofile.ts';
import { startNginx } from './lib/nginx.ts';

const KB = 1024;

/** Node flags for a Node peer: --cpu-prof into the run's profile folder when asked. */
function profileFlags(ctx: BenchContext, name: string): string[] {
  const dir = ctx.settings.cpuProfDir;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

/** Summaries of the profiles a case's Node peers wrote (empty without --cpu-prof). */
function profileNotes(ctx: BenchContext, prefix: string) {
  const dir = ctx.settings.cpuProfDir;
  if (!dir) return { notes: [] as string[], summaries: [] as unknown[] };
  const files = readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.cpuprofile'));
  const summaries = files.map((f) => summarizeProfile(join(dir, f)));
  return {
    notes: [
      'These figures were taken with the cache node under --cpu-prof, which slows it down: use them for where the time goes, not for the ratio.',
      ...summaries.flatMap(formatProfile),
    ],
    summaries,
  };
}

/** Cache node GET of one 100 KB value vs nginx sending the same bytes as a static file. */
const nodeGetVsNginx: BenchCase = {
  id: 'node-get-100k',
  title: 'Cache node GET of a 100 KB value vs nginx static file (same bytes, same wrk load)',
  run: (ctx) => runNodeGetVsNginx(ctx, nodeGetVsNginx),
};

async function runNodeGetVsNginx(ctx: BenchContext, self: BenchCase) {
  const body = randomBytes(100 * KB); // random, so incompressible
  const secret = randomBytes(24).toString('base64url');
  const key = 'bench-100k';
  const path = `/v1/entries/${key}`;
  const headers = { Authorization: `Bearer ${secret}` };
  const contentType = 'image/jpeg';
  const www = join(ctx.tmp, 'www');
  // nginx serves the identical bytes at the identical path.
  mkdirSync(dirname(join(www, path)), { recursive: true });
  writeFileSync(join(www, path), body);
  const profileName = `${self.id}-cache-node`;

  const result = await compareHttp(ctx, {
    id: self.id,
    title: self.title,
    body,
    minRatio: 0.6,
    redact: [secret],
    subject: {
      label: 'cache node',
      async start(): Promise<HttpTarget> {
        const node = await startCacheNode(ctx.procs, {
          root: ctx.root,
          secret,
          capacityMb: 256,
          policy: 'LRU',
          cpus: ctx.cpus.server,
          nodeFlags: profileFlags(ctx, profileName),
          logFile: join(ctx.tmp, 'cache-node.log'),
        });
        await node.put(key, body, contentType, 1);
        return {
          url: `${node.baseUrl}${path}`,
          headers,
          pid: node.child.pid,
          command: node.command,
          stop: async () => {
            await node.stop();
          },
        };
      },
    },
    baseline: {
      label: 'nginx',
      async start(): Promise<HttpTarget> {
        const nginx = await startNginx(ctx.procs, {
          nginx: ctx.tools.nginx,
          prefix: join(ctx.tmp, 'nginx'),
          root: www,
          readyPath: path,
          defaultType: contentType,
          cpus: ctx.cpus.server,
          workers: 1,
        });
        return {
          url: `${nginx.baseUrl}${path}`,
          headers,
          pid: nginx.child.pid,
          command: `${nginx.version}: nginx -p <tmp>/nginx -c <tmp>/nginx/nginx.conf (worker_processes 1, sendfile on, keepalive, access_log off)`,
          stop: nginx.stop,
        };
      },
    },
    fairness: [
      'The cache node is one single-threaded Node process, so nginx runs one worker (worker_processes 1) — with sendfile on, tcp_nopush/tcp_nodelay, keep-alive without a per-connection request limit, access_log off, its own prefix for pid, logs and temp dirs.',
      `Both serve the same ${body.length.toLocaleString('en-US')} random (incompressible) bytes at the same path with Content-Type ${contentType}, no compression; the same Authorization header goes to both (nginx ignores it, the node checks it).`,
      `The cache node runs on this runner's Node (${process.version}): src/cli.ts cache-node --capacity 256 --policy LRU --log-level warn, via tsx.`,
    ],
  });
  const profile = profileNotes(ctx, profileName);
  result.notes.push(...profile.notes);
  if (profile.summaries.length > 0) {
    result.figures = { ...(result.figures as object), profiles: profile.summaries };
  }
  return result;
}

export const cases: BenchCase[] = [nodeGetVsNginx];
