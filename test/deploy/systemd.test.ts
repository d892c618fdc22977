/**
 * The systemd units (deploy/systemd), checked by systemd's own `systemd-analyze verify`, which
 * must print nothing at all (it prints warnings and still exits 0, so any output fails). Each
 * unit is verified from a temporary copy whose paths point at this checkout and this Node (the
 * tool checks that ExecStart's program exists), with its drop-ins beside it. The command lines
 * they run, and the variables their environment files set, must be ones the real command takes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { commandHelp, commandLineProblems, pixpoolArgs, REPO } from './cli-help.ts';

const UNITS_DIR = join(REPO, 'deploy', 'systemd');
const run = promisify(execFile);

/** Runs systemd-analyze verify; fails with what to install when the tool is missing. */
async function verify(unit: string): Promise<string> {
  try {
    const { stdout, stderr } = await run('systemd-analyze', ['verify', unit], {
      env: { ...process.env, SYSTEMD_LOG_COLOR: '0' },
    });
    return stdout + stderr;
  } catch (error) {
    const { code, stdout, stderr } = error as { code: unknown; stdout?: string; stderr?: string };
    if (code === 'ENOENT') {
      throw new Error(
        'systemd-analyze is not installed: these tests need it. Install the systemd package (apt-get install systemd); .ci/run does.',
      );
    }
    return `${stdout ?? ''}${stderr ?? ''}(exit ${code})`;
  }
}

/** The ExecStart lines of a unit or drop-in (the empty reset lines left out). */
const execStarts = (text: string) =>
  [...text.matchAll(/^ExecStart=(.+)$/gm)].map((m) => m[1] as string);

describe('the systemd units', () => {
  let units: string[];
  let work: string;
  before(async () => {
    units = (await readdir(UNITS_DIR)).filter((name) => name.endsWith('.service')).sort();
    work = await mkdtemp(join(tmpdir(), 'pixpool-units-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  /** A copy of the unit (and its drop-ins) whose paths exist on this host. */
  async function hostCopy(unit: string): Promise<string> {
    const dir = await mkdtemp(join(work, 'u-'));
    await cp(join(UNITS_DIR, `${unit}.d`), join(dir, `${unit}.d`), { recursive: true }).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      },
    );
    const rewrite = (text: string) =>
      text.replaceAll('/usr/local/bin/node', process.execPath).replaceAll('/opt/pixpool', REPO);
    await writeFile(join(dir, unit), rewrite(await readFile(join(UNITS_DIR, unit), 'utf8')));
    for (const dropIn of await readdir(join(dir, `${unit}.d`)).catch(() => [])) {
      const path = join(dir, `${unit}.d`, dropIn);
      await writeFile(path, rewrite(await readFile(path, 'utf8')));
    }
    return join(dir, unit);
  }

  it('there is one unit per long-running service', () => {
    assert.deepEqual(units, [
      'pixpool-autoscaler.service',
      'pixpool-cache-node.service',
      'pixpool-frontend.service',
      'pixpool-manager.service',
    ]);
  });

  it('systemd-analyze verify passes every unit, drop-ins included, without a single warning', async () => {
    for (const unit of units) {
      assert.equal(await verify(await hostCopy(unit)), '', unit);
    }
  });

  it('the check catches a unit with a bad option or a program that does not exist', async () => {
    const unit = await hostCopy('pixpool-frontend.service');
    const text = await readFile(unit, 'utf8');
    await writeFile(unit, text.replace('UMask=0077', 'UMask=0077\nProtectSystem=stricter'));
    assert.match(await verify(unit), /protect system value/);
    await writeFile(unit, text.replace(process.execPath, '/nonexistent/node'));
    assert.match(await verify(unit), /is not executable/);
  });

  it('each unit runs its own service with secrets from an environment file, as an unprivileged user', async () => {
    for (const unit of units) {
      const text = await readFile(join(UNITS_DIR, unit), 'utf8');
      const service = unit.replace(/^pixpool-|\.service$/g, '');
      const [start] = execStarts(text);
      assert.deepEqual(pixpoolArgs(start ?? ''), [service], unit);
      assert.match(text, /^User=pixpool$/m);
      assert.match(text, /^EnvironmentFile=\/etc\/pixpool\/pixpool\.env$/m);
      assert.match(text, /^NoNewPrivileges=yes$/m);
      assert.match(text, /^CapabilityBoundingSet=$/m);
      assert.doesNotMatch(
        text,
        /PIXPOOL_SECRET|PIXPOOL_ADMIN_TOKEN|DATABASE_URL/,
        'no secret inline',
      );
    }
  });

  it('every command line the units and drop-ins run is one the real command accepts', async () => {
    const problems: string[] = [];
    const files = [
      ...units.map((u) => join(UNITS_DIR, u)),
      ...(await readdir(UNITS_DIR, { recursive: true }))
        .filter((f) => f.endsWith('.conf'))
        .map((f) => join(UNITS_DIR, f)),
    ];
    assert.ok(files.length > units.length, 'the drop-ins too');
    for (const file of files) {
      for (const start of execStarts(await readFile(file, 'utf8'))) {
        const args = pixpoolArgs(start);
        assert.ok(args, `${file}: ${start} runs pixpool`);
        for (const problem of await commandLineProblems(args)) problems.push(`${file}: ${problem}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('every variable the example environment files set is one a pixpool service reads', async () => {
    const read = new Set<string>();
    for (const command of ['manager', 'frontend', 'cache-node', 'autoscaler']) {
      for (const name of (await commandHelp(command)).env) read.add(name);
    }
    // Read by the AWS SDK's credential chain, not by pixpool's flags.
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) read.add(name);
    const examples = (await readdir(UNITS_DIR)).filter((f) => f.endsWith('.env.example'));
    assert.ok(examples.includes('pixpool.env.example'));
    for (const example of examples) {
      const text = await readFile(join(UNITS_DIR, example), 'utf8');
      for (const [, name] of text.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)) {
        assert.ok(read.has(name as string), `${example}: ${name} is read by no service`);
      }
    }
  });
});
