import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { MB } from '../../src/core/cache-config.ts';
import { cliEnv } from '../helpers/processes.ts';
import { byLane, exchange } from '../helpers/raw-http.ts';

const bin = new URL('../../bin/pixpool.js', import.meta.url).pathname;

/** Runs `pixpool <args>` as a real process and resolves with its URL once it listens. */
function startProcess(args: string[], env: Record<string, string | undefined> = {}) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/[\d.:]+)/.exec(output);
      if (match) resolve(match[1] as string);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
  });
  return { child, listening, output: () => output };
}

it('pixpool cache-node runs as a process, serves, and exits cleanly on SIGTERM', async () => {
  const { child, listening } = startProcess(
    [
      'cache-node',
      '--port',
      '0',
      '--capacity',
      '8',
      '--policy',
      'rr',
      '--max-body-mb',
      '0.5',
      '--log-level',
      'info',
    ],
    { PIXPOOL_SECRET: 's3cret' },
  );
  const url = await listening;
  const auth = { authorization: 'Bearer s3cret' };
  const put = await fetch(`${url}/v1/entries/cat`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'image/png' },
    body: Buffer.from('image bytes'),
  });
  assert.equal(put.status, 204);
  const tooLarge = await fetch(`${url}/v1/entries/dog`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'image/png' },
    body: Buffer.alloc(MB / 2 + 1),
  });
  assert.equal(tooLarge.status, 413, 'a body over --max-body-mb');
  const config = (await (await fetch(`${url}/api/cache/config`, { headers: auth })).json()) as {
    content: { replacement_policy: string; capacity: number };
  };
  assert.equal(config.content.replacement_policy, 'RR');
  assert.equal(config.content.capacity, 8);
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

it('pixpool cache-node keeps its modules in Node’s compile cache: a second start strips no types', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pixpool-compile-cache-'));
  try {
    // Node says what its compile cache does on stderr with this debug switch.
    const env = {
      PIXPOOL_SECRET: 's3cret',
      NODE_COMPILE_CACHE: dir,
      NODE_DEBUG_NATIVE: 'COMPILE_CACHE',
    };
    const logs: string[] = [];
    for (let start = 0; start < 2; start++) {
      const node = startProcess(['cache-node', '--port', '0'], env);
      await node.listening;
      node.child.kill('SIGTERM');
      assert.deepEqual(await once(node.child, 'exit'), [0, null], node.output().slice(-3000));
      logs.push(node.output());
    }
    const [first = '', second = ''] = logs;
    const stripped = /no transpile cache for StrippedTypeScript \S+/g;
    assert.ok((first.match(stripped) ?? []).length > 10, 'the first start stripped its modules');
    assert.deepEqual(second.match(stripped) ?? [], [], 'the second start stripped these');
    assert.match(
      second,
      /retrieving transpile cache for StrippedTypeScript \S+\/src\/cachenode\/app\.ts\.\.\.success/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('pixpool cache-node refuses to listen beyond loopback without a secret', async () => {
  const { child, listening } = startProcess(['cache-node', '--host', '0.0.0.0', '--port', '0'], {
    PIXPOOL_SECRET: '',
  });
  await assert.rejects(listening, /without a shared secret/);
  assert.equal(child.exitCode, 1);
});

it('--socket-lanes off (or PIXPOOL_SOCKET_LANES=off) makes a cache node answer its reads through node:http', async () => {
  // Who answered: the lane writes its header names in lower case (test/helpers/raw-http.ts).
  const answeredBy = async (setting: string | undefined, args: string[] = []) => {
    const node = startProcess(['cache-node', '--port', '0', ...args], {
      PIXPOOL_SECRET: 's3cret',
      PIXPOOL_SOCKET_LANES: setting,
    });
    try {
      const [answer] = await exchange(await node.listening, [
        'GET /v1/entries/absent HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer s3cret\r\n' +
          'Connection: close\r\n\r\n',
      ]);
      assert.equal(answer?.status, 404);
      return answer && byLane(answer) ? 'lane' : 'node:http';
    } finally {
      node.child.kill('SIGTERM');
      await once(node.child, 'exit');
    }
  };
  assert.equal(await answeredBy('on'), 'lane');
  assert.equal(await answeredBy('off'), 'node:http');
  assert.equal(await answeredBy(undefined), 'lane', 'on by default');
  assert.equal(await answeredBy(undefined, ['--socket-lanes', 'off']), 'node:http');
});

it('pixpool cache-node and frontend refuse a PIXPOOL_SOCKET_LANES that is neither on nor off', async () => {
  for (const command of ['cache-node', 'frontend']) {
    const { listening } = startProcess([command, '--port', '0'], { PIXPOOL_SOCKET_LANES: 'no' });
    await assert.rejects(
      listening,
      /value 'no' from env 'PIXPOOL_SOCKET_LANES' is invalid\. Expected on or off\./,
      command,
    );
  }
});
