import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import sharp from 'sharp';
import { imageBytes } from './helpers/images.ts';
import { cliEnv, processAlive, slowUpload, waitFor } from './helpers/processes.ts';

const bin = new URL('../bin/pixpool.js', import.meta.url).pathname;

/** `pixpool up` with these flags, its stdout and stderr gathered into one text. */
function spawnUp(args: string[]) {
  const child = spawn(process.execPath, [bin, 'up', ...args], {
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, as a shell gives a command: Ctrl-C signals the whole group.
    detached: true,
  });
  let text = '';
  const gather = (chunk: Buffer) => {
    text += chunk;
  };
  child.stdout.on('data', gather);
  child.stderr.on('data', gather);
  return { child, output: () => text };
}

it('pixpool up runs the whole system on embedded defaults, prints where to open it, and stops cleanly', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pixpool-up-'));
  const { child, output } = spawnUp([
    '--port',
    '0',
    '--manager-port',
    '0',
    '--autoscaler-port',
    '0',
    '--data-dir',
    dataDir,
    '--log-level',
    'warn',
    '--variant-sizes',
    '100,200',
  ]);
  let nodePid: number | undefined;
  try {
    for (let i = 0; i < 600 && !/Stop with Ctrl-C/.test(output()); i++) {
      assert.equal(child.exitCode, null, output());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const url = /pixpool is up: open (http:\/\/\S+)/.exec(output())?.[1];
    const managerUrl = /manager +(http:\/\/\S+)/.exec(output())?.[1];
    const autoscalerUrl = /autoscaler +(http:\/\/\S+)/.exec(output())?.[1];
    const nodeUrl = /cache nodes +(http:\/\/[\d.:]+)/.exec(output())?.[1];
    const secret = /Bearer ([\w-]+)/.exec(output())?.[1];
    assert.ok(url && managerUrl && autoscalerUrl && nodeUrl && secret, output());
    assert.equal((await fetch(`${managerUrl}/`)).status, 200, 'the dashboard');
    const size = await (await fetch(`${managerUrl}/api/manager/poolsize`)).json();
    assert.deepEqual(size, { success: 'true', content: { size: 1 } });
    // The autoscaler's loop reaches the manager and reads its mode (manual until switched).
    type Status = {
      running: boolean;
      mode: string;
      last_tick_at: string | null;
      consecutive_failures: number;
    };
    let status: Status = {
      running: false,
      mode: 'unknown',
      last_tick_at: null,
      consecutive_failures: -1,
    };
    for (let i = 0; i < 50 && !status.last_tick_at; i++) {
      status = (await (await fetch(`${autoscalerUrl}/status`)).json()) as Status;
      if (!status.last_tick_at) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(
      [status.running, status.mode, status.consecutive_failures],
      [true, 'manual', 0],
      JSON.stringify(status),
    );

    // bin/pixpool.js restarted `up` in place with the frontend's heap floor, and the cache node
    // it started still took its own memory-lean settings (the marker `up` set is not the node's).
    const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline(child.pid as number).includes('--initial-heap-size=128'));
    const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    nodePid = children.find((pid) => cmdline(pid).includes('cache-node'));
    assert.ok(nodePid, 'a cache node among the children');
    const node = cmdline(nodePid);
    assert.ok(node.includes('--optimize-for-size'), JSON.stringify(node));
    const environ = readFileSync(`/proc/${nodePid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('MALLOC_MMAP_THRESHOLD_=69632'), 'values get their own mappings');
    assert.ok(!node.includes('--initial-heap-size=128'), 'the frontend flags stay in the frontend');

    assert.equal((await fetch(`${url}/`)).status, 200, 'the home page');
    const form = new FormData();
    form.append('key', 'first');
    form.append('file', new Blob([new Uint8Array(imageBytes('png', 500))]), 'a.png');
    const uploaded = await fetch(`${url}/api/upload`, { method: 'POST', body: form });
    assert.deepEqual(await uploaded.json(), { success: 'true', key: 'first' });
    const image = await fetch(`${url}/images/first`);
    assert.ok(Buffer.from(await image.arrayBuffer()).equals(imageBytes('png', 500)));
    // The course's clients call the manager's test API on the frontend's port; on loopback
    // without an admin token, as the manager's own, it is open.
    const numNodes = await fetch(`${url}/api/getNumNodes`, { method: 'POST' });
    assert.equal(await numNodes.text(), '{"success":"true","numNodes":1}');
    // A variant, made with the frontend's size allowlist and kept on the cache node process.
    const photo = await sharp({
      create: { width: 300, height: 150, channels: 3, background: '#48c' },
    })
      .png()
      .toBuffer();
    const second = new FormData();
    second.append('key', 'second');
    second.append('file', new Blob([new Uint8Array(photo)]), 'b.png');
    assert.equal((await fetch(`${url}/api/upload`, { method: 'POST', body: second })).status, 200);
    const variant = await fetch(`${url}/images/second?w=150&format=webp`);
    const made = await sharp(Buffer.from(await variant.arrayBuffer())).metadata();
    assert.deepEqual([made.format, made.width, made.height], ['webp', 200, 100]);
    const tooWide = await fetch(`${url}/images/second?w=300`);
    assert.equal(tooWide.status, 400);
    assert.match(await tooWide.text(), /w \(width\) must be 1 to 200 pixels; got 300/);

    assert.equal((await fetch(`${nodeUrl}/keys`)).status, 401, 'the node needs the secret');
    const keys = await fetch(`${nodeUrl}/api/cache/statistics`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(keys.status, 200, 'and the printed secret opens it');
  } finally {
    if (child.exitCode === null) {
      // An upload in flight holds the stop up for a while, as a busy system's would.
      const url = /pixpool is up: open (http:\/\/\S+)/.exec(output())?.[1] as string;
      const held = slowUpload(url, 'held', imageBytes('png', 20_000));
      await held.sendPart(0.5);
      await held.received();
      const exited = once(child, 'exit');
      // Ctrl-C in a terminal: SIGINT to every process of the group. It reaches `up`, which
      // stops its cache node itself: the node does not exit on its own first and look dead.
      process.kill(-(child.pid as number), 'SIGINT');
      await waitFor('up to start stopping', () => /SIGINT: finishing/.test(output()));
      if (nodePid !== undefined) {
        const died = await waitFor(
          'the cache node to exit',
          () => !processAlive(nodePid as number),
          {
            timeoutMs: 2000,
          },
        ).then(
          () => true,
          () => false,
        );
        assert.equal(died, false, 'the terminal’s SIGINT stopped the cache node before up did');
      }
      held.destroy();
      const [code] = await exited;
      assert.equal(code, 0, output());
      assert.doesNotMatch(output(), /starting it again|died and was restarted/, 'no node restart');
    }
    await rm(dataDir, { recursive: true, force: true });
  }
  const nodeUrl = /cache nodes +(http:\/\/[\d.:]+)/.exec(output())?.[1] as string;
  const stopped = nodePid as number; // found above, or the test failed there
  await waitFor('the cache node to exit with pixpool up', () => !processAlive(stopped), {
    timeoutMs: 10_000,
  });
  await assert.rejects(fetch(`${nodeUrl}/health`), 'the cache node stopped with it');
});

it('pixpool up takes the same frontend options as pixpool frontend (upload limit, near cache, orphan sweeps)', () => {
  const help = (command: string) =>
    execFileSync(process.execPath, [bin, command, '--help'], { env: cliEnv(), encoding: 'utf8' });
  // One line per option: help text wraps descriptions onto indented continuation lines.
  const optionLine = (text: string, flag: string) =>
    text
      .replace(/\n\s+(?=[^\s-])/g, ' ')
      .split('\n')
      .find((line) => line.trimStart().startsWith(flag))
      ?.replace(/\s+/g, ' ')
      .trim();
  const up = help('up');
  const frontend = help('frontend');
  for (const flag of [
    '--max-upload-mb',
    '--near-cache-mb',
    '--gc-interval-s',
    '--gc-grace-s',
    '--open-course-api',
    '--variant-sizes',
    '--variant-max-pixels',
    '--variant-concurrency',
  ]) {
    const line = optionLine(up, flag);
    assert.ok(line, `up has no ${flag}`);
    assert.equal(line, optionLine(frontend, flag), flag);
  }
  assert.match(optionLine(up, '--gc-interval-s') ?? '', /default: 600/);
  assert.match(optionLine(up, '--gc-grace-s') ?? '', /default: 3600/);
});

for (const flag of ['--manager-port', '--port', '--autoscaler-port']) {
  it(`pixpool up that cannot start a part (${flag} taken) stops what it had started, cache node included`, async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const dataDir = await mkdtemp(join(tmpdir(), 'pixpool-up-'));
    try {
      // The manager starts its cache node before it listens; the frontend and the autoscaler
      // start after the manager.
      const ports = { '--port': '0', '--manager-port': '0', '--autoscaler-port': '0' };
      const { child, output } = spawnUp([
        '--data-dir',
        dataDir,
        ...Object.entries({ ...ports, [flag]: String(port) }).flat(),
      ]);
      const [code] = await once(child, 'exit');
      assert.equal(code, 1, output());
      assert.match(output(), new RegExp(`EADDRINUSE.*${port}`));
      const nodeUrl = /cache node \S+ listening on (http:\/\/[\d.:]+)/.exec(output())?.[1];
      assert.ok(nodeUrl, output());
      await assert.rejects(fetch(`${nodeUrl}/health`), 'the cache node was stopped');
    } finally {
      taken.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}
