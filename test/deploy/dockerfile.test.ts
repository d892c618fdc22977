/**
 * The Dockerfile, checked offline: no Docker engine runs here. It is parsed (dockerfile-ast) and
 * held to what the image promises (two stages on Node 24's slim image, production dependencies
 * only, a user that is not root, a build context that carries what the image copies), then its
 * ENTRYPOINT + CMD and its HEALTHCHECK are run on this host, with the image's /app mapped to the
 * repository and /data to a temporary folder, under the image's ENV: the service starts, the
 * health check passes while it runs and fails once it stopped.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Dockerfile, DockerfileParser } from 'dockerfile-ast';
import { cliEnv, waitFor } from '../helpers/processes.ts';
import { deadPort } from '../helpers/storage.ts';
import { REPO } from './cli-help.ts';

let dockerfile: Dockerfile;
let dirs: { app: string; data: string };

/** An image path as this host has it: /app is the repository, /data a temporary folder. */
const onHost = (value: string) =>
  value.replace(/^\/app(?=\/|$)/, REPO).replace(/^\/data(?=\/|$)/, dirs.data);
/** An exec-form command of the image, runnable here (`node` is the project's Node 24). */
const hostCommand = (args: string[]): [string, string[]] => {
  const [program, ...rest] = args.map(onHost);
  return [program === 'node' ? process.execPath : (program as string), rest];
};

/** The final stage's ENV, as the container's processes see it. */
function imageEnv(): Record<string, string> {
  const finalFrom = dockerfile.getFROMs().at(-1)?.getRange().start.line ?? 0;
  const env: Record<string, string> = {};
  for (const instruction of dockerfile.getENVs()) {
    if (instruction.getRange().start.line < finalFrom) continue;
    for (const property of instruction.getProperties()) {
      env[property.getName()] = onHost(property.getValue() ?? '');
    }
  }
  return env;
}
const execForm = (instruction: { getJSONStrings(): { getJSONValue(): string }[] } | undefined) =>
  (instruction?.getJSONStrings() ?? []).map((s) => s.getJSONValue());
const entrypointAndCmd = () => [
  ...execForm(dockerfile.getENTRYPOINTs().at(-1)),
  ...execForm(dockerfile.getCMDs().at(-1)),
];
function healthcheckCommand(): string[] {
  const [healthcheck] = dockerfile.getHEALTHCHECKs();
  const words = healthcheck?.getArguments().map((a) => a.getValue()) ?? [];
  assert.equal(words[0], 'CMD', 'HEALTHCHECK CMD […]');
  return JSON.parse(words.slice(1).join(' ')) as string[];
}

/**
 * Runs the image's HEALTHCHECK against process `pid`, in the container's environment (as Docker
 * runs it); its exit code and what it said.
 */
async function healthcheck(
  pid: number,
  containerEnv: Record<string, string> = {},
): Promise<{ code: number; said: string }> {
  const [program, args] = hostCommand(healthcheckCommand());
  const env = { ...cliEnv(), ...imageEnv(), ...containerEnv, PIXPOOL_HEALTH_PID: String(pid) };
  return promisify(execFile)(program, args, {
    env: env as NodeJS.ProcessEnv,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, said: stdout + stderr }),
    (error: { code: number; stderr: string }) => ({ code: error.code, said: error.stderr }),
  );
}

/** Starts the image's ENTRYPOINT with `cmd` (the image's CMD by default) under its ENV. */
function startContainer(extraEnv: Record<string, string | undefined>, cmd?: string[]) {
  const command = cmd
    ? [...execForm(dockerfile.getENTRYPOINTs().at(-1)), ...cmd]
    : entrypointAndCmd();
  const [program, args] = hostCommand(command);
  const child = spawn(program, args, {
    env: { ...cliEnv(), ...imageEnv(), ...extraEnv } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

/** Every file under `path` (itself when it is a file), relative to the repository. */
async function filesUnder(path: string): Promise<string[]> {
  const full = join(REPO, path);
  if (!(await stat(full)).isDirectory()) return [path];
  const entries = await readdir(full, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(REPO, join(e.parentPath, e.name)));
}

/** A .dockerignore pattern as a regular expression (`**` any path, `*` and `?` within a name). */
function dockerPattern(pattern: string): RegExp {
  const source = pattern
    .split(/(\*\*\/?|\*|\?)/)
    .map((part) =>
      part.startsWith('**')
        ? '.*'
        : part === '*'
          ? '[^/]*'
          : part === '?'
            ? '[^/]'
            : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${source}$`);
}

/** Whether .dockerignore keeps `file` out of the build context (last matching rule wins). */
function ignored(rules: string[], file: string): boolean {
  const parts = file.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let out = false;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = dockerPattern((negated ? rule.slice(1) : rule).replace(/\/$/, ''));
    if (candidates.some((c) => pattern.test(c))) out = !negated;
  }
  return out;
}

describe('the Dockerfile', () => {
  before(async () => {
    dockerfile = DockerfileParser.parse(await readFile(join(REPO, 'Dockerfile'), 'utf8'));
    dirs = { app: REPO, data: await mkdtemp(join(tmpdir(), 'pixpool-image-data-')) };
  });
  after(async () => {
    await rm(dirs.data, { recursive: true, force: true });
  });

  it('builds in two stages on the slim Node image of the Node the project runs on', async () => {
    const froms = dockerfile.getFROMs();
    assert.ok(froms.length >= 2, 'a dependencies stage and a runtime stage');
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8'));
    const major = /\d+/.exec(pkg.devDependencies.node)?.[0];
    for (const from of froms) assert.equal(from.getImage(), `node:${major}-bookworm-slim`);
    const deps = froms[0]?.getBuildStage();
    const runs = dockerfile.getInstructions().filter((i) => i.getKeyword() === 'RUN');
    assert.ok(
      runs.some((r) => /npm ci\b.*--omit=dev/.test(r.getArgumentsContent() ?? '')),
      'production dependencies from the lock file',
    );
    const copiedDeps = dockerfile
      .getCOPYs()
      .filter((c) => c.getFlags().some((f) => f.getName() === 'from' && f.getValue() === deps));
    assert.deepEqual(
      copiedDeps.map((c) => c.getArguments()[0]?.getValue()),
      ['/app/node_modules'],
    );
  });

  it('runs as a user that is not root', () => {
    const users = dockerfile.getInstructions().filter((i) => i.getKeyword() === 'USER');
    const user = users.at(-1)?.getArguments()[0]?.getValue() ?? 'root';
    const [name] = user.split(':');
    assert.ok(!['root', '0'].includes(name as string), `USER ${user}`);
  });

  it('copies only what the build context carries, and the context leaves the rest out', async () => {
    const rules = (await readFile(join(REPO, '.dockerignore'), 'utf8'))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const sources = dockerfile
      .getCOPYs()
      .filter((c) => c.getFlags().length === 0)
      .flatMap((c) =>
        c
          .getArguments()
          .slice(0, -1)
          .map((a) => a.getValue()),
      );
    assert.ok(sources.includes('src') && sources.includes('bin'));
    for (const source of sources) {
      const files = await filesUnder(source);
      const kept = files.filter((f) => !f.endsWith('.test.ts'));
      assert.ok(kept.length > 0, `${source} has files`);
      for (const file of kept) assert.ok(!ignored(rules, file), `${file} is in the context`);
    }
    for (const file of [
      'test/cli.test.ts',
      'README.md',
      '.git/HEAD',
      'node_modules/.package-lock.json',
      'src/core/keys.test.ts',
    ]) {
      assert.ok(ignored(rules, file), `${file} stays out of the context`);
    }
  });

  it('ENTRYPOINT + CMD start the frontend, and HEALTHCHECK passes while it runs, fails after', async () => {
    const port = await deadPort();
    const env = { PIXPOOL_SECRET: 'image-test-secret', PIXPOOL_FRONTEND_PORT: String(port) };
    const container = startContainer(env);
    try {
      assert.equal(entrypointAndCmd().at(-1), 'frontend');
      const pid = container.child.pid as number;
      const passes = async () => (await healthcheck(pid, env)).code === 0;
      await waitFor('the health check to pass', passes, {
        timeoutMs: 60_000,
        everyMs: 250,
      });
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as {
        service: string;
      };
      assert.equal(health.service, 'frontend');
      // The image's ENV applies: embedded data in /data (and 0.0.0.0: the test below).
      assert.ok(container.output().includes(`embedded SQLite in ${dirs.data}/pixpool.db`));
      container.child.kill('SIGTERM');
      assert.equal(await container.exited, 0, container.output());
      const down = await healthcheck(pid, env);
      assert.equal(down.code, 1);
      assert.match(down.said, /^healthcheck: /);
    } finally {
      container.child.kill('SIGKILL');
    }
  });

  it('the same entry point runs a cache node, as the Kubernetes manifests run it', async () => {
    const port = await deadPort();
    const env = { PIXPOOL_SECRET: 'image-test-secret', PIXPOOL_NODE_PORT: String(port) };
    const container = startContainer(env, ['cache-node']);
    try {
      const pid = container.child.pid as number;
      const passes = async () => (await healthcheck(pid, env)).code === 0;
      await waitFor('the health check to pass', passes, {
        timeoutMs: 30_000,
        everyMs: 250,
      });
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      assert.equal(ready.status, 200, 'a stand-alone node is ready');
      container.child.kill('SIGTERM');
      assert.equal(await container.exited, 0, container.output());
    } finally {
      container.child.kill('SIGKILL');
    }
  });

  it('the image refuses to serve on its open address without the secret', async () => {
    const container = startContainer({ PIXPOOL_FRONTEND_PORT: String(await deadPort()) });
    assert.notEqual(await container.exited, 0);
    assert.match(container.output(), /Refusing to listen on 0\.0\.0\.0 without a shared secret/);
  });

  it('HEALTHCHECK fails on a process that runs no pixpool service', async () => {
    const answer = await healthcheck(process.pid);
    assert.equal(answer.code, 1);
    assert.match(answer.said, /runs no pixpool service/);
  });
});
