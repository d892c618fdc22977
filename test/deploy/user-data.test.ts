/**
 * The EC2 user-data script (deploy/ec2/user-data.sh), checked offline: bash parses it, the
 * `pixpool` command line it starts the node with is one the real command accepts, and it starts
 * that node through the cache-node unit of deploy/systemd (whose own checks are systemd.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { commandLineProblems, pixpoolArgs, REPO } from './cli-help.ts';

const SCRIPT = join(REPO, 'deploy', 'ec2', 'user-data.sh');

describe('the EC2 user-data script', () => {
  it('is a bash script bash parses', async () => {
    const text = await readFile(SCRIPT, 'utf8');
    assert.ok(text.startsWith('#!/bin/bash\n'));
    await promisify(execFile)('bash', ['-n', SCRIPT]);
  });

  it('bash -n refuses a broken script (the check can fail)', async () => {
    await assert.rejects(
      promisify(execFile)('bash', ['-n', '-c', 'if true; then echo']),
      /syntax error/,
    );
  });

  it('starts the node with a pixpool command line the real command accepts', async () => {
    const text = await readFile(SCRIPT, 'utf8');
    const starts = [...text.matchAll(/^ExecStart=(.+pixpool\.js.+)$/gm)].map((m) => m[1] as string);
    assert.equal(starts.length, 1, 'one command line for the node');
    // The script's own variables stand for values here; flags and their arity are what count.
    const line = (starts[0] as string).replace(/\$\{?[A-Za-z_]+\}?/g, '1');
    const args = pixpoolArgs(line) as string[];
    assert.deepEqual(args.slice(0, 3), ['cache-node', '--announce', 'ec2']);
    assert.deepEqual(await commandLineProblems(args), []);
  });

  it('runs that command through the repository’s cache-node unit, enabled at boot', async () => {
    const text = await readFile(SCRIPT, 'utf8');
    assert.match(
      text,
      /install -m 0644 \/opt\/pixpool\/deploy\/systemd\/pixpool-cache-node\.service /,
    );
    assert.match(text, /pixpool-cache-node\.service\.d\/ec2\.conf/);
    assert.match(text, /^systemctl enable --now pixpool-cache-node\.service$/m);
    assert.match(
      text,
      /ln -sf \/opt\/node\/bin\/node \/usr\/local\/bin\/node/,
      'the node the unit runs',
    );
    assert.match(text, /latest-v\$\{NODE_MAJOR\}\.x/);
    assert.match(text, /^NODE_MAJOR=24$/m);
  });
});
