/**
 * `pixpool manager` refuses bad CloudWatch settings before anything starts, in one line: a
 * namespace or region CloudWatch would refuse (from the flag or its variable), a region with no
 * namespace (the sink is off without one), and a namespace with no region anywhere (every call
 * would fail). Nothing is printed on stdout and no storage is opened.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runPixpool } from '../helpers/processes.ts';

/** Runs `pixpool manager <args>` to its exit (killed if it starts instead). */
const manager = (args: string[], env: Record<string, string> = {}) =>
  runPixpool(['manager', ...args], {
    // No region from this machine: cliEnv drops AWS_*, and no config file is read.
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    ...env,
  });

describe('pixpool manager refuses bad CloudWatch settings in one line, starting nothing', {
  concurrency: 2,
}, () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pixpool-cw-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const refused = async (args: string[], env: Record<string, string>, line: RegExp) => {
    const dataDir = join(dir, Math.random().toString(36).slice(2));
    const result = await manager([...args, '--data-dir', dataDir], env);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`^${line.source}[^\\n]*\\n$`));
    assert.equal(result.stdout, '', 'nothing started');
    assert.ok(!existsSync(dataDir), 'no storage opened');
  };
  const NAMESPACE = /Expected a CloudWatch namespace: 1 to 255 letters/;
  const REGION = /Expected an AWS region such as us-east-1/;

  it('a namespace of AWS’s own', () =>
    refused(
      ['--cloudwatch-namespace', 'AWS/EC2'],
      {},
      new RegExp(
        `error: option '--cloudwatch-namespace <namespace>' argument 'AWS/EC2' is invalid\\. ${NAMESPACE.source}`,
      ),
    ));

  it('a namespace with a character CloudWatch refuses, from the environment', () =>
    refused(
      [],
      { PIXPOOL_CLOUDWATCH_NAMESPACE: 'pix;pool' },
      new RegExp(
        `error: option '--cloudwatch-namespace <namespace>' value 'pix;pool' from env 'PIXPOOL_CLOUDWATCH_NAMESPACE' is invalid\\. ${NAMESPACE.source}`,
      ),
    ));

  it('a region that is not one', () =>
    refused(
      ['--cloudwatch-namespace', 'pixpool', '--cloudwatch-region', 'Europe'],
      {},
      new RegExp(
        `error: option '--cloudwatch-region <region>' argument 'Europe' is invalid\\. ${REGION.source}`,
      ),
    ));

  it('a region that is not one, from the environment', () =>
    refused(
      ['--cloudwatch-namespace', 'pixpool'],
      { PIXPOOL_CLOUDWATCH_REGION: 'us-east' },
      /error: option '--cloudwatch-region <region>' value 'us-east' from env/,
    ));

  it('a region without a namespace', () =>
    refused(
      ['--cloudwatch-region', 'eu-west-1'],
      {},
      /pixpool: --cloudwatch-region needs --cloudwatch-namespace, which turns CloudWatch on\./,
    ));

  it('a namespace with no region given nor configured', () =>
    refused(
      ['--cloudwatch-namespace', 'pixpool'],
      {},
      /pixpool: CloudWatch needs a region: set --cloudwatch-region \(PIXPOOL_CLOUDWATCH_REGION\) or AWS_REGION\./,
    ));
});
