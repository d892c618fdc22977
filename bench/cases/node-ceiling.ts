/**
 * A reference beside node-get-100k: a bare node:http server sending the same 100 KB Buffer vs
 * nginx, in the same conditions. It is what any server answering through node:http gets on the
 * machine (a cache node did, before its socket lane): the cache node, which answers its GETs on
 * the socket below node:http (src/http/socket-lane.ts), should be above it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BenchCase, BenchContext } from '../lib/case.ts';
import { compareHttp, type HttpTarget } from '../lib/compare.ts';
import { nginxBaseline, staticRoot } from '../lib/nginx.ts';
import { freePort, waitForHttp } from '../lib/processes.ts';

export const nodeCeiling: BenchCase = {
  id: 'node-ceiling-100k',
  title: 'Reference: a bare node:http server sending a 100 KB Buffer vs nginx static file',
  run: (ctx) => runNodeCeiling(ctx),
};

async function runNodeCeiling(ctx: BenchContext) {
  const body = randomBytes(100 * 1024);
  const path = '/v1/entries/bench-100k';
  const contentType = 'image/jpeg';
  const www = staticRoot(ctx, 'ceiling-www', path, body);
  const file = join(www, path);
  const result = await compareHttp(ctx, {
    id: nodeCeiling.id,
    title: nodeCeiling.title,
    body,
    subject: {
      label: 'bare node:http',
      async start(): Promise<HttpTarget> {
        const port = await freePort();
        const script = join('bench', 'ceiling-server.ts');
        const child = ctx.procs.spawn(
          'ceiling server',
          process.execPath,
          [script, String(port), file, contentType],
          { cwd: ctx.root, cpus: ctx.cpus.server },
        );
        const url = `http://127.0.0.1:${port}${path}`;
        await waitForHttp(url, child);
        return {
          url,
          headers: {},
          pid: child.pid,
          command: `node ${script} <port> <file> ${contentType}`,
          stop: async () => {
            await child.stop(5000);
          },
        };
      },
    },
    baseline: nginxBaseline(ctx, {
      prefix: 'ceiling-nginx',
      root: www,
      path,
      contentType,
      headers: {},
    }),
    fairness: [
      'nginx as in node-get-100k (one worker, sendfile on, keep-alive, access_log off). The bare server is one Node process like a cache node, on the same Node, answering every request with one Buffer read at start.',
      "Not pixpool: a reference point, without a target of its own. It says what node-get-100k's cache node would get if it answered through node:http.",
    ],
  });
  // A reference point, not a target of pixpool's: a sentence instead of a check.
  const { ratio } = result.figures as { ratio: number };
  result.notes.unshift(
    `Reference: bare node:http ÷ nginx = ${ratio.toFixed(2)} on this machine: what a server answering through node:http gets here. The cache node answers its GETs in a socket lane below node:http (src/http/socket-lane.ts).`,
  );
  return result;
}
