/**
 * Issue 8, SIGTERM on `pixpool up` (frontend, manager and autoscaler in one process; cache nodes
 * and frontend workers as its children) with an upload streaming in: the upload is acknowledged and
 * durable (a second `up` on the same data dir serves it), the process exits 0, and no child
 * process is left behind (checked by pid).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { after, before, it } from 'node:test';
import { freePort } from '../../src/http/listen.ts';
import { MAX_WORKERS } from '../../src/up/workers.ts';
import { auth, SECRET } from '../helpers/nodes.ts';
import {
  cliEnv,
  pidsWithArgs,
  processAlive,
  refuses,
  sha256,
  slowUpload,
  waitFor,
} from '../helpers/processes.ts';
import { tempDir } from '../helpers/storage.ts';
import { startUp } from '../helpers/up.ts';
import { bigImage, nodePids } from './process-sigterm-helpers.ts';

const bin = new URL('../../bin/pixpool.js', import.meta.url).pathname;

const up = (dataDir: string) => startUp(dataDir);

let folder: Awaited<ReturnType<typeof tempDir>>;
const running: ReturnType<typeof spawn>[] = [];
before(async () => {
  folder = await tempDir('sigterm-up');
});
after(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  await folder.remove();
});

it('pixpool up: an upload streamed across the SIGTERM is acknowledged and durable; exit 0, no child left', {
  timeout: 300_000,
}, async () => {
  const first = await up(folder.dir);
  running.push(first.child);
  // Its children, told the manager's URL: the cache node(s) and a frontend worker per core but
  // the first (the autoscaler runs inside up).
  const children = pidsWithArgs('--manager-url', first.managerUrl);
  const nodes = nodePids(first.managerUrl);
  assert.ok(nodes.length >= 1, 'a cache node runs');
  const workers = Math.min(availableParallelism(), MAX_WORKERS);
  assert.equal(children.length, nodes.length + workers - 1, `children: ${children}`);

  const image = bigImage(4);
  const upload = slowUpload(first.url, 'across', image);
  await upload.sendPart(0.5);
  await upload.received(); // in flight: the frontend has read the first half
  const exited = once(first.child, 'exit');
  first.child.kill('SIGTERM');
  await waitFor('the frontend to stop listening', () => refuses(first.url));
  const answer = await upload.finish();
  assert.equal(answer.status, 200, answer.body);
  assert.deepEqual(JSON.parse(answer.body), { success: 'true', key: 'across' });
  const [code] = await exited;
  assert.equal(code, 0, first.output());
  for (const pid of children) assert.equal(processAlive(pid), false, `child ${pid} still runs`);
  assert.deepEqual(pidsWithArgs('--manager-url', first.managerUrl), []);

  const second = await up(folder.dir);
  running.push(second.child);
  const read = await fetch(`${second.url}/images/across`, { headers: auth });
  assert.equal(read.status, 200);
  assert.equal(sha256(Buffer.from(await read.arrayBuffer())), sha256(image));
  const stopped = once(second.child, 'exit');
  second.child.kill('SIGTERM');
  assert.equal((await stopped)[0], 0, second.output());
  assert.deepEqual(pidsWithArgs('--manager-url', second.managerUrl), []);
});

it('pixpool up: a SIGTERM during start-up, once the frontend answers, leaves no process behind', {
  timeout: 120_000,
}, async () => {
  const [port, managerPort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  const managerUrl = `http://127.0.0.1:${managerPort}`;
  const args = ['up', '--port', String(port), '--manager-port', String(managerPort)];
  const child = spawn(
    process.execPath,
    [bin, ...args, '--autoscaler-port', '0', '--data-dir', folder.dir, '--log-level', 'warn'],
    { env: cliEnv({ PIXPOOL_SECRET: SECRET }), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.push(child);
  let output = '';
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  // The frontend answers before up has started its workers and the autoscaler: a user who
  // opens the page and changes their mind sends the signal then.
  await waitFor(
    'the frontend to answer',
    async () => {
      const response = await fetch(`http://127.0.0.1:${port}/ready`);
      await response.arrayBuffer();
      return response.status === 200;
    },
    { timeoutMs: 90_000, everyMs: 20 },
  );
  const started = pidsWithArgs('--manager-url', managerUrl);
  assert.ok(started.length >= 1, 'the cache node runs');
  assert.doesNotMatch(output, /Stop with Ctrl-C/, 'the signal is meant to come before the banner');
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, output);
  for (const pid of started) assert.equal(processAlive(pid), false, `child ${pid} still runs`);
  assert.deepEqual(pidsWithArgs('--manager-url', managerUrl), []);
});
