/**
 * The EC2 user-data script (deploy/ec2/user-data.sh), checked offline: bash parses it, the
 * `pixpool` command line it starts the node with is one the real command accepts, and it starts
 * that node through the cache-node unit of deploy/systemd (whose own checks are systemd.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

describe("the user-data script's secret", () => {
  /**
   * Runs the script's own imds() and read_secret() (cut out of it, not copied) with `aws` and
   * `curl` replaced by scripts that log their arguments: the SSM parameter's value (the fake
   * `aws` prints it), or PIXPOOL_SECRET.
   */
  async function readSecret(settings: Record<string, string>, awsExit = 0) {
    const text = await readFile(SCRIPT, 'utf8');
    const fn = (name: string) => {
      const match = new RegExp(`^${name}\\(\\) \\{\\n[\\s\\S]*?^\\}$`, 'm').exec(text);
      assert.ok(match, `${name}() in the script`);
      return match[0];
    };
    const bin = await mkdtemp(join(tmpdir(), 'pixpool-user-data-'));
    const calls = join(bin, 'calls');
    await writeFile(
      join(bin, 'aws'),
      `#!/bin/sh\necho "aws $*" >> ${calls}\n[ ${awsExit} -eq 0 ] && printf 'from-ssm'\nexit ${awsExit}\n`,
      { mode: 0o755 },
    );
    await writeFile(
      join(bin, 'curl'),
      `#!/bin/sh\necho "curl $*" >> ${calls}\ncase "$*" in *placement/region*) printf eu-west-1 ;; *) printf token ;; esac\n`,
      { mode: 0o755 },
    );
    const program = `${fn('imds')}\n${fn('read_secret')}\nread_secret`;
    try {
      const result = await promisify(execFile)('bash', ['-c', program], {
        env: { PATH: `${bin}:/usr/bin:/bin`, ...settings },
      }).then(
        ({ stdout }) => ({ ok: true, stdout, stderr: '' }),
        (error: { stdout: string; stderr: string }) => ({ ok: false, ...error }),
      );
      const log = await readFile(calls, 'utf8').catch(() => '');
      return { ...result, log };
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  }

  it('is read from SSM, decrypted, in the instance’s region, when a parameter is named', async () => {
    const result = await readSecret({
      PIXPOOL_SECRET_PARAMETER: '/pixpool/secret',
      PIXPOOL_SECRET: 'ignored',
    });
    assert.deepEqual([result.ok, result.stdout], [true, 'from-ssm']);
    assert.match(
      result.log,
      /^aws ssm get-parameter --region eu-west-1 --name \/pixpool\/secret --with-decryption --query Parameter.Value --output text$/m,
    );
  });

  it('is PIXPOOL_SECRET when no parameter is named, and nothing asks AWS', async () => {
    const result = await readSecret({ PIXPOOL_SECRET_PARAMETER: '', PIXPOOL_SECRET: 's3cr3t' });
    assert.deepEqual([result.ok, result.stdout, result.log], [true, 's3cr3t', '']);
  });

  it('stops the script when SSM refuses or no secret is set, saying why', async () => {
    const refused = await readSecret({ PIXPOOL_SECRET_PARAMETER: '/x', PIXPOOL_SECRET: '' }, 254);
    assert.equal(refused.ok, false);
    assert.match(refused.stderr, /cannot read \/x from SSM/);
    const none = await readSecret({ PIXPOOL_SECRET_PARAMETER: '', PIXPOOL_SECRET: '' });
    assert.equal(none.ok, false);
    assert.match(none.stderr, /no secret: set PIXPOOL_SECRET_PARAMETER or PIXPOOL_SECRET/);
  });
});
