/**
 * The ceiling under node-get-100k: a bare node:http server sending the same 100 KB Buffer vs
 * nginx, in the same conditions. Node's HTTP stack and the kernel copy of a Buffer are most of a
 * cache node's hit, and how they compare with nginx's sendfile varies from machine to machine; this
 * says how much of the cache node's ratio is the machine's and how much is pixpool's.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BenchCase, BenchContext } from '../lib/case.ts';
import { compareHttp, type HttpTarget } from '../lib/compare.ts';
import { nginxBaseline, staticRoot } from '../lib/nginx.ts';
import { freePort, waitForHttp } from '../lib/processes.ts';

/** The cache node's target in node-get-100k, which this case says is reachable here or not. */
const NODE_TARGET = 0.8;

export const nodeCeiling: BenchCase = {
  id: 'node-ceiling-100k',
  title: 'Ceiling: a bare node:http server sending a 100 KB Buffer vs nginx static file',
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
      `Not pixpool: a reference point, without a target of its own. It says whether a Node server could reach node-get-100k's ≥ ${NODE_TARGET}× on this machine at all.`,
    ],
  });
  // A reference point, not a target of pixpool's: a sentence instead of a check.
  const { ratio } = result.figures as { ratio: number };
  result.notes.unshift(
    `Ceiling: bare node:http ÷ nginx = ${ratio.toFixed(2)} on this machine, so node-get-100k's ≥ ${NODE_TARGET}× is ${ratio >= NODE_TARGET ? 'within reach of a Node server here' : 'out of reach of any Node server here'}; compare the cache node's ratio with ${ratio.toFixed(2)}, not with 1.`,
  );
  return result;
}
