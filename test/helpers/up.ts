/**
 * `pixpool up` as a test runs it: a real process on free ports, its stdout and stderr gathered,
 * resolved once it printed its banner, with the URLs in it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SECRET } from './nodes.ts';
import { cliEnv, waitFor } from './processes.ts';

const bin = new URL('../../bin/pixpool.js', import.meta.url).pathname;

export async function startUp(
  dataDir: string,
  options: { args?: string[]; detached?: boolean } = {},
) {
  const child = spawn(
    process.execPath,
    [
      bin,
      'up',
      ...['--port', '0', '--manager-port', '0', '--autoscaler-port', '0'],
      ...['--data-dir', dataDir, '--log-level', 'warn'],
      ...(options.args ?? []),
    ],
    {
      env: cliEnv({ PIXPOOL_SECRET: SECRET }),
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own, as a shell gives a command.
      detached: options.detached ?? false,
    },
  );
  let text = '';
  child.stdout.on('data', (chunk) => {
    text += chunk;
  });
  child.stderr.on('data', (chunk) => {
    text += chunk;
  });
  await waitFor(
    'pixpool up to print its banner',
    () => {
      if (child.exitCode !== null) throw new Error(`up exited: ${text}`);
      return /Stop with Ctrl-C/.test(text);
    },
    { timeoutMs: 90_000 },
  ).catch((error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}: ${text}`);
  });
  const url = /pixpool is up: open (http:\/\/\S+)/.exec(text)?.[1] as string;
  const managerUrl = /manager +(http:\/\/\S+)/.exec(text)?.[1] as string;
  assert.ok(url && managerUrl, text);
  return { child, url, managerUrl, output: () => text };
}
