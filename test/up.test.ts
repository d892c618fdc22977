import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { imageBytes } from './helpers/images.ts';

const bin = new URL('../bin/pixpool.js', import.meta.url).pathname;

it('pixpool up runs the system on embedded defaults, prints where to open it, and stops cleanly', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pixpool-up-'));
  const child = spawn(
    process.execPath,
    [bin, 'up', '--port', '0', '--node-port', '0', '--data-dir', dataDir, '--log-level', 'warn'],
    { env: { ...process.env, PIXPOOL_SECRET: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  try {
    for (let i = 0; i < 300 && !/cache node +http\S+/.test(output); i++) {
      assert.equal(child.exitCode, null, output);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const url = /pixpool is up: open (http:\/\/\S+)/.exec(output)?.[1];
    const nodeUrl = /cache node +(http:\/\/\S+)/.exec(output)?.[1];
    const secret = /Bearer ([\w-]+)/.exec(output)?.[1];
    assert.ok(url && nodeUrl && secret, output);

    assert.equal((await fetch(`${url}/`)).status, 200, 'the home page');
    const form = new FormData();
    form.append('key', 'first');
    form.append('file', new Blob([new Uint8Array(imageBytes('png', 500))]), 'a.png');
    const uploaded = await fetch(`${url}/api/upload`, { method: 'POST', body: form });
    assert.deepEqual(await uploaded.json(), { success: 'true', key: 'first' });
    const image = await fetch(`${url}/images/first`);
    assert.ok(Buffer.from(await image.arrayBuffer()).equals(imageBytes('png', 500)));

    assert.equal((await fetch(`${nodeUrl}/keys`)).status, 401, 'the node needs the secret');
    const keys = await fetch(`${nodeUrl}/api/cache/statistics`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(keys.status, 200, 'and the printed secret opens it');
  } finally {
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, output);
    await rm(dataDir, { recursive: true, force: true });
  }
  const nodeUrl = /cache node +(http:\/\/\S+)/.exec(output)?.[1] as string;
  await new Promise((resolve) => setTimeout(resolve, 500));
  await assert.rejects(fetch(`${nodeUrl}/health`), 'the cache node stopped with it');
});
