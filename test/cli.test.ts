/**
 * The `pixpool` command refuses a bad value of every numeric or enumerated flag, given on the
 * command line or through the environment variable the flag mirrors: the process exits 1 at
 * once with one line naming the flag and what it accepts, and starts nothing (prints no
 * "listening", makes no data directory). So are bad TLS files (a missing or unreadable one, a
 * certificate without its key, a key that is not its certificate's, a CA file without
 * certificates), and, with TLS configured, a plain-http peer off this host in the flags that
 * name one. Good values start services in test/up.test.ts and
 * test/cachenode/cli.test.ts; the parsers' edge cases are in src/process/flags.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeCertificates, type TestCertificates } from './helpers/certs.ts';
import { runPixpool } from './helpers/processes.ts';

/** A refusal takes one start of Node; past this the command is taken to have started something. */
const EXIT_DEADLINE_MS = 15_000;

/** Runs `pixpool <args>` to its exit, killing it at the deadline. */
const run = (args: string[], env: Record<string, string> = {}) =>
  // The in-place restart with tuned V8 flags (bin/pixpool.js) is not what this tests.
  runPixpool(
    args,
    { PIXPOOL_NODE_TUNED: '1', PIXPOOL_FRONTEND_TUNED: '1', ...env },
    EXIT_DEADLINE_MS,
  );

const PORT = /Expected a port from 0 to 65535/;
const MB_ABOVE_0 = /Expected a number of MB above 0\./;
const MB_0_OR_MORE = /Expected a number of MB, 0 or more\./;
const S_ABOVE_0 = /Expected a number of seconds above 0\./;
const S_0_OR_MORE = /Expected a number of seconds, 0 or more\./;
const WINDOW = /Expected a number of seconds above 0 and at most 3600\./;
const WORKERS = /Expected a whole number from 1 to 8\./;
const LOG_LEVEL = /Allowed choices are fatal, error, warn, info, debug, trace, silent\./;

type Case = { flag: string; value: string; accepts: RegExp };
// Where a flag takes 0 the bad value is below it; elsewhere it is 0 or past a bound, so each
// case also shows the flag has its own parser, not just any number's.
const frontendTuning: Case[] = [
  { flag: '--max-upload-mb', value: '0', accepts: MB_ABOVE_0 },
  { flag: '--near-cache-mb', value: '-1', accepts: MB_0_OR_MORE },
  { flag: '--gc-interval-s', value: '-1', accepts: S_0_OR_MORE },
  { flag: '--gc-grace-s', value: 'an hour', accepts: S_0_OR_MORE },
  { flag: '--open-course-api', value: 'yes', accepts: /Expected on or off\./ },
  { flag: '--variant-sizes', value: '64,huge', accepts: /variant sizes must be whole numbers/ },
  { flag: '--variant-max-pixels', value: '0', accepts: /a whole number from 1 to 1000000000/ },
  { flag: '--variant-concurrency', value: '1.5', accepts: /a whole number from 1 to 256/ },
];
const commands: Record<string, Case[]> = {
  'cache-node': [
    { flag: '--port', value: '65536', accepts: PORT },
    { flag: '--capacity', value: '0', accepts: /Capacity must be more than 0 MB/ },
    { flag: '--capacity', value: 'lots', accepts: /Capacity must be a number of MB/ },
    { flag: '--capacity', value: '99999999', accepts: /more than this node allows \(\d+ MB\)/ },
    { flag: '--policy', value: 'fifo', accepts: /use LRU .*, RR .* or SIEVE/ },
    { flag: '--socket-lanes', value: 'no', accepts: /Expected on or off\./ },
    { flag: '--max-body-mb', value: 'abc', accepts: MB_ABOVE_0 },
    { flag: '--max-body-mb', value: '0', accepts: MB_ABOVE_0 },
    { flag: '--stats-interval-s', value: '0', accepts: S_ABOVE_0 },
    { flag: '--lease-ms', value: '5000', accepts: /from 0 \(no leases\) to 500/ },
    { flag: '--lease-ms', value: 'long', accepts: /from 0 \(no leases\) to 500/ },
    { flag: '--log-level', value: 'loud', accepts: LOG_LEVEL },
  ],
  frontend: [
    { flag: '--port', value: 'http', accepts: PORT },
    { flag: '--socket-lanes', value: 'true', accepts: /Expected on or off\./ },
    ...frontendTuning,
    { flag: '--log-level', value: 'INFO', accepts: LOG_LEVEL },
  ],
  gc: [{ flag: '--grace-s', value: '-1', accepts: S_0_OR_MORE }],
  manager: [
    { flag: '--port', value: '-1', accepts: PORT },
    {
      flag: '--provider',
      value: 'cloud',
      accepts: /Allowed choices are local, static, ec2, kubernetes\./,
    },
    { flag: '--assignment', value: 'random', accepts: /Allowed choices are modulo, balanced\./ },
    { flag: '--history-days', value: '0', accepts: /Expected a number of days above 0\./ },
    { flag: '--log-level', value: 'verbose', accepts: LOG_LEVEL },
  ],
  autoscaler: [
    { flag: '--port', value: '1.5', accepts: PORT },
    { flag: '--interval-s', value: '0', accepts: S_ABOVE_0 },
    { flag: '--window-s', value: '3601', accepts: WINDOW },
    { flag: '--log-level', value: '', accepts: LOG_LEVEL },
  ],
  up: [
    { flag: '--port', value: '99999', accepts: PORT },
    { flag: '--manager-port', value: 'x', accepts: PORT },
    { flag: '--autoscaler-port', value: '', accepts: PORT },
    { flag: '--workers', value: '0', accepts: WORKERS },
    { flag: '--workers', value: '9', accepts: WORKERS },
    { flag: '--workers', value: 'x', accepts: WORKERS },
    { flag: '--autoscale-window-s', value: '3601', accepts: WINDOW },
    { flag: '--socket-lanes', value: 'OFF', accepts: /Expected on or off\./ },
    { flag: '--history-days', value: 'a week', accepts: /Expected a number of days above 0\./ },
    ...frontendTuning,
    { flag: '--log-level', value: 'quiet', accepts: LOG_LEVEL },
  ],
};
/** Commands that open storage, so that a start would make their data directory. */
const STORAGE_COMMANDS = new Set(['frontend', 'gc', 'manager', 'up']);

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('pixpool refuses a bad flag value with one line naming the flag, starting nothing', {
  concurrency: 2,
}, () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pixpool-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Runs the command with one bad value, from the flag or from `env`, and checks the refusal. */
  const refused = async (command: string, c: Case, env?: string) => {
    const dataDir = join(dir, `${command}${c.flag}-${Math.random().toString(36).slice(2)}`);
    const args = [command, ...(env ? [] : [c.flag, c.value])];
    if (STORAGE_COMMANDS.has(command)) args.push('--data-dir', dataDir);
    const result = await run(args, env ? { [env]: c.value } : {});
    assert.equal(result.signal, null, `still running after ${EXIT_DEADLINE_MS} ms`);
    assert.equal(result.code, 1, result.stderr);
    const source = env
      ? `value '${literal(c.value)}' from env '${env}'`
      : `argument '${literal(c.value)}'`;
    assert.match(
      result.stderr,
      // <value>, or [value] for a flag whose value is optional (--open-course-api).
      new RegExp(
        `^error: option '${c.flag} [<[][a-z|]+[>\\]]' ${source} is invalid\\. [^\\n]+\\n$`,
      ),
    );
    assert.match(result.stderr, c.accepts);
    assert.equal(result.stdout, '', 'nothing started');
    assert.ok(!existsSync(dataDir), 'no storage opened');
  };

  for (const [command, cases] of Object.entries(commands)) {
    for (const c of cases) {
      it(`${command} ${c.flag} ${JSON.stringify(c.value)}`, () => refused(command, c));
    }
  }

  for (const [command, c, env] of [
    [
      'cache-node',
      { flag: '--max-body-mb', value: 'abc', accepts: MB_ABOVE_0 },
      'PIXPOOL_MAX_BODY_MB',
    ],
    ['cache-node', { flag: '--policy', value: 'mru', accepts: /use LRU/ }, 'PIXPOOL_POLICY'],
    [
      'manager',
      { flag: '--provider', value: 'cloud', accepts: /local, static/ },
      'PIXPOOL_PROVIDER',
    ],
    ['up', { flag: '--max-upload-mb', value: 'ten', accepts: MB_ABOVE_0 }, 'MAX_UPLOAD_MB'],
    ['up', { flag: '--workers', value: 'all', accepts: WORKERS }, 'PIXPOOL_WORKERS'],
    // Set but not on or off is a mistake, not "on": it opens the course API to anyone.
    [
      'frontend',
      { flag: '--open-course-api', value: 'false', accepts: /Expected on or off\./ },
      'PIXPOOL_OPEN_COURSE_API',
    ],
    ['autoscaler', { flag: '--window-s', value: '0', accepts: WINDOW }, 'AUTOSCALE_WINDOW_S'],
  ] as const) {
    it(`${command} with ${env}=${JSON.stringify(c.value)}`, () => refused(command, c, env));
  }
});

describe('pixpool refuses bad TLS files, and plain http off this host with TLS, in one line', {
  concurrency: 2,
}, () => {
  let certs: TestCertificates;
  let other: TestCertificates;
  before(async () => {
    [certs, other] = await Promise.all([makeCertificates(), makeCertificates()]);
  });
  after(async () => {
    await certs?.cleanup();
    await other?.cleanup();
  });

  /** Runs the command, which must exit 1 with `line` as all it prints, opening no storage. */
  const refused = async (
    command: string,
    args: () => string[],
    line: RegExp,
    env: () => Record<string, string> = () => ({}),
  ) => {
    const dataDir = join(certs.dir, `data-${Math.random().toString(36).slice(2)}`);
    const storage = STORAGE_COMMANDS.has(command) ? ['--data-dir', dataDir] : [];
    const result = await run([command, ...args(), ...storage], env());
    assert.equal(result.signal, null, `still running after ${EXIT_DEADLINE_MS} ms`);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`^${line.source}[^\\n]*\\n$`));
    assert.equal(result.stdout, '', 'nothing started');
    assert.ok(!existsSync(dataDir), 'no storage opened');
  };
  const unreadable = /Expected a readable file; /;
  const away = 'http://198.18.0.7';

  it('a missing key file', () =>
    refused(
      'cache-node',
      () => ['--tls-cert', certs.cert, '--tls-key', join(certs.dir, 'missing.key')],
      new RegExp(
        `error: option '--tls-key <file>' argument '.*missing\\.key' is invalid\\. ${unreadable.source}there is no such file\\.`,
      ),
    ));
  it('a file that cannot be read as one (a folder), from the environment', () =>
    refused(
      'manager',
      () => [],
      new RegExp(
        `error: option '--tls-ca <file>' value '.*' from env 'PIXPOOL_TLS_CA' is invalid\\. ${unreadable.source}it is not a regular file\\.`,
      ),
      () => ({ PIXPOOL_TLS_CA: certs.dir }),
    ));
  it('a certificate without its key', () =>
    refused(
      'frontend',
      () => ['--tls-cert', certs.cert],
      /pixpool: --tls-cert and --tls-key go together \(PIXPOOL_TLS_CERT, PIXPOOL_TLS_KEY\): give both to serve HTTPS, or neither; got only --tls-cert\./,
    ));
  it('a key without its certificate, from the environment', () =>
    refused(
      'up',
      () => [],
      /pixpool: --tls-cert and --tls-key go together .* got only --tls-key\./,
      () => ({
        PIXPOOL_TLS_KEY: certs.key,
      }),
    ));
  it("a key that is not the certificate's", () =>
    refused(
      'autoscaler',
      () => ['--tls-cert', certs.cert, '--tls-key', other.key],
      /pixpool: --tls-cert .* and --tls-key .* are not a certificate and its private key \(PEM\): .*key values mismatch/,
    ));
  it('a CA file with no certificate in it', () =>
    refused(
      'cache-node',
      () => ['--tls-ca', certs.key],
      /pixpool: --tls-ca .*\.key: no PEM certificate in it\./,
    ));
  for (const [command, flags, credential] of [
    ['frontend', ['--nodes', `${away}:5001`], 'the shared secret \\(--nodes\\)'],
    ['frontend', ['--manager-url', `${away}:5002`], 'the shared secret \\(--manager-url\\)'],
    ['cache-node', ['--manager-url', `${away}:5002`], 'the shared secret \\(--manager-url\\)'],
    [
      'manager',
      ['--provider', 'static', '--node-urls', `http://127.0.0.1:5001,${away}:5001`],
      'the shared secret \\(--node-urls\\)',
    ],
    ['autoscaler', ['--manager-url', `${away}:5002`], 'the admin token \\(--manager-url\\)'],
  ] as const) {
    it(`${command} ${flags.join(' ')} with a CA`, () =>
      refused(
        command,
        () => ['--tls-ca', certs.ca, ...flags],
        new RegExp(
          `pixpool: Refusing to send ${credential} to http://198\\.18\\.0\\.7:500[12] over plain http: with TLS configured, a peer off this host must be https://\\.`,
        ),
      ));
  }
});
