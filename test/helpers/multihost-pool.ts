/**
 * A pool on real hosts for the multi-host tests (issue 17): a lab of network namespaces
 * (netns.ts) with PostgreSQL (a proxy to the local server, in a schema of this run) and the
 * object store (s3rver) at the bridge's address, a manager host, two frontend hosts and node
 * hosts; the history of a workload through both frontends (history.ts); and what every such test
 * asks of the pool: its view, whether it converged, scenarios run under load with their counts
 * checked, and the table of those counts printed at the end.
 *
 * A test starts the manager and the nodes its own way (`start`), on the hosts made here, then
 * the frontends and the seed uploads; `close` prints the table and removes everything.
 *
 * Needs root (namespaces) and PostgreSQL on 127.0.0.1:5432 (DATABASE_URL), like the storage tests.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { createSeededRandom } from '../../src/core/seeded-random.ts';
import {
  type Counts,
  createHistory,
  keysOverRegions,
  startWorkload,
  type Via,
  type Workload,
} from './history.ts';
import { createLab, type Host, type HostProcess, type Lab } from './netns.ts';
import { cliEnv, sleep, waitFor } from './processes.ts';
import {
  databaseUrl,
  dropSchema,
  randomSchema,
  requirePostgres,
  S3_CREDENTIALS,
  spawnS3rver,
  tempDir,
} from './storage.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/**
 * The manager's view lease (the pool view each node holds expires unless the manager renews it).
 * Passed only once `pixpool manager` has the flag; until then the scenarios run without it.
 */
const VIEW_LEASE_FLAGS = ['--view-lease-ms', '1500'];
const HAS_VIEW_LEASE = readFileSync(new URL('../../src/cli.ts', import.meta.url), 'utf8').includes(
  `'${VIEW_LEASE_FLAGS[0]}`,
);
const MANAGER_FLAGS = HAS_VIEW_LEASE ? VIEW_LEASE_FLAGS : [];

export const NODE_PORT = 5001;
const FRONTEND_PORT = 5000;
const MANAGER_PORT = 5002;
const KEYS = keysOverRegions('mh', 2);
/** ECHO_HOSTS=1 passes every process's output through, prefixed with its host. */
const ECHO = process.env.ECHO_HOSTS === '1';
/** NETNS_LOGS=<dir> keeps every process's output in <dir>/<host>.log (and the history there). */
const LOGS = process.env.NETNS_LOGS;

export interface PoolView {
  map: { version: number; nodes: string[]; owner: string[]; assignment: string };
  addresses: Record<string, string>;
  previous?: string[];
}

export type Frontend = Via & { host: Host };

export interface ScenarioResult {
  scenario: string;
  cut: Counts;
  healed: Counts;
  notes: string[];
}

export interface MultihostPoolOptions {
  /** Node hosts to make, node1…node<n>. */
  nodeHosts: number;
  /** Heads the table of counts (default "multi-host scenarios"). */
  title?: string;
}

export type MultihostPool = Awaited<ReturnType<typeof createMultihostPool>>;

/** Makes the lab, storage and hosts; starts no pixpool process. */
export async function createMultihostPool(options: MultihostPoolOptions) {
  const title = options.title ?? 'multi-host scenarios';
  const secret = `netns-secret-${Math.random().toString(36).slice(2)}`;
  const adminToken = `netns-admin-${Math.random().toString(36).slice(2)}`;
  const history = createHistory();
  const results: ScenarioResult[] = [];
  const started = performance.now();
  /** The processes that must not exit: one that does is a divergence, with its output. */
  const processes: HostProcess[] = [];
  let proxy: TcpProxy | undefined;
  let s3: Awaited<ReturnType<typeof spawnS3rver>> | undefined;
  let s3dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let dataDir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let schema: string | undefined;
  let lab: Lab | undefined;

  const logFile = (name: string) => (LOGS ? join(LOGS, `${name}.log`) : undefined);
  // Times as the history's: ms of performance.now().
  const log = (line: string) => {
    history.note(line);
    console.log(`[multihost ${(performance.now() / 1000).toFixed(1)} s] ${line}`);
  };

  async function close(): Promise<void> {
    if (results.length > 0) {
      const row = (name: string, c: Counts) =>
        `${name.padEnd(58)} ${[
          c.requests,
          c.uploads,
          c.uploadsRefused,
          c.stale,
          c.failed,
          c.refused,
        ]
          .map((n) => String(n).padStart(8))
          .join('')}`;
      const lines = [
        `${'scenario'.padEnd(58)}${['requests', 'uploads', 'up-503', 'stale', 'failed', 'refused'].map((h) => h.padStart(8)).join('')}`,
      ];
      for (const r of results) {
        lines.push(row(`${r.scenario} (cut)`, r.cut), row(`${r.scenario} (healed)`, r.healed));
      }
      console.log(
        `${title} (manager ${HAS_VIEW_LEASE ? MANAGER_FLAGS.join(' ') : 'without --view-lease-ms'}), ${((performance.now() - started) / 1000).toFixed(1)} s:\n${lines.join('\n')}`,
      );
    }
    if (LOGS) {
      // Times are performance.now(); timeOrigin + time = the epoch ms in the processes' logs.
      const { timeOrigin } = performance;
      writeFileSync(
        join(LOGS, 'history.json'),
        JSON.stringify({ timeOrigin, notes: history.notes, ops: history.ops }),
      );
    }
    lab?.destroy();
    await proxy?.close();
    await s3?.stop();
    await s3dir?.remove();
    await dataDir?.remove();
    if (schema) await dropSchema(schema);
  }

  let env: Record<string, string | undefined>;
  let managerHost: Host;
  let feHosts: Host[];
  const nodeHosts: Host[] = [];
  try {
    if (LOGS) mkdirSync(LOGS, { recursive: true });
    lab = await createLab({ log });
    await requirePostgres();

    // PostgreSQL at the bridge's address: a proxy to the local server, in a schema of this run.
    const pgTarget = new URL(databaseUrl());
    proxy = await startTcpProxy(
      { host: pgTarget.hostname, port: Number(pgTarget.port || 5432) },
      { host: lab.gateway },
    );
    schema = randomSchema();
    const admin = new pg.Client({ connectionString: databaseUrl() });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    const childDb = new URL(databaseUrl());
    childDb.hostname = lab.gateway;
    childDb.port = String(proxy.port);
    childDb.searchParams.set('options', `-c search_path=${schema}`);

    // The object store at the bridge's address.
    s3dir = await tempDir('netns-s3');
    s3 = await spawnS3rver(s3dir.dir, 0, lab.gateway);
    const s3Endpoint = `http://${lab.gateway}:${s3.port}`;
    const bucket = `pixpool-netns-${lab.id}`;
    const s3client = new S3Client({
      endpoint: s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3_CREDENTIALS,
    });
    await s3client.send(new CreateBucketCommand({ Bucket: bucket }));
    s3client.destroy();
    dataDir = await tempDir('netns-data');

    managerHost = await lab.addHost('manager');
    feHosts = [await lab.addHost('fe1'), await lab.addHost('fe2')];
    for (let i = 1; i <= options.nodeHosts; i++) nodeHosts.push(await lab.addHost(`node${i}`));
    log(`hosts: ${lab.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}`);

    env = cliEnv({
      PIXPOOL_SECRET: secret,
      PIXPOOL_ADMIN_TOKEN: adminToken,
      PIXPOOL_DATA_DIR: dataDir.dir,
      PIXPOOL_LOG_LEVEL: 'warn',
      DATABASE_URL: childDb.toString(),
      S3_BUCKET: bucket,
      S3_ENDPOINT: s3Endpoint,
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: '1',
      AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    });
  } catch (error) {
    await close();
    throw error;
  }
  const theLab = lab;
  const managerUrl = managerHost.url(MANAGER_PORT);
  const [fe1Host, fe2Host] = feHosts as [Host, Host];
  const fe1: Frontend = { name: 'fe1', url: fe1Host.url(FRONTEND_PORT), host: fe1Host };
  const fe2: Frontend = { name: 'fe2', url: fe2Host.url(FRONTEND_PORT), host: fe2Host };

  /**
   * Runs `pixpool <args>` on `host` with the run's environment (plus `extraEnv`), and watches it:
   * until `forget`, its exit is a divergence.
   */
  async function start(
    host: Host,
    args: string[],
    {
      label = host.name,
      extraEnv = {},
    }: { label?: string; extraEnv?: Record<string, string> } = {},
  ): Promise<HostProcess> {
    const p = await host.pixpool(args, {
      env: { ...env, ...extraEnv },
      label,
      echo: ECHO,
      logFile: logFile(label),
    });
    processes.push(p);
    return p;
  }

  /** `pixpool cache-node` on a node host's port 5001, publishing to the manager, and `extra`. */
  const cacheNodeArgs = (...extra: string[]) => [
    'cache-node',
    '--host',
    '0.0.0.0',
    '--port',
    String(NODE_PORT),
    '--manager-url',
    managerUrl,
    '--capacity',
    '64',
    ...extra,
  ];

  /** `pixpool manager` on the manager host with `providerFlags` (and the view lease, if any). */
  const managerArgs = (...providerFlags: string[]) => [
    'manager',
    '--host',
    '0.0.0.0',
    '--port',
    String(MANAGER_PORT),
    ...providerFlags,
    ...MANAGER_FLAGS,
  ];

  /** Stops watching `p`: it is meant to end. */
  function forget(p: HostProcess): void {
    const at = processes.indexOf(p);
    if (at >= 0) processes.splice(at, 1);
  }

  /** The two frontends, then a line saying how many processes run. */
  async function startFrontends(): Promise<void> {
    await Promise.all(
      feHosts.map((host) =>
        start(host, [
          'frontend',
          '--host',
          '0.0.0.0',
          '--port',
          String(FRONTEND_PORT),
          '--manager-url',
          managerUrl,
          '--advertise-url',
          host.url(FRONTEND_PORT),
          '--gc-interval-s',
          '0',
        ]),
      ),
    );
    log(
      `started ${processes.length} pixpool processes${HAS_VIEW_LEASE ? ` (manager ${MANAGER_FLAGS.join(' ')})` : ' (no --view-lease-ms in this pixpool)'}`,
    );
  }

  /** Every key once, through both frontends: reads always have an acknowledged upload to meet. */
  async function seed(): Promise<void> {
    history.setPhase('seed');
    for (const [i, key] of KEYS.entries()) {
      const op = await history.upload(i % 2 ? fe2 : fe1, key);
      assert.equal(op.outcome, 'acked', `seed upload of ${key}: ${op.detail}`);
    }
    await converged();
  }

  // --- talking to the services ------------------------------------------------------------

  async function adminCall(method: string, path: string, body?: unknown) {
    const response = await fetch(managerUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
    // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
    return { status: response.status, body: (await response.json()) as any };
  }

  async function poolView(): Promise<PoolView> {
    const response = await fetch(`${managerUrl}/api/manager/pool_view`, {
      headers: { authorization: `Bearer ${secret}` },
      signal: AbortSignal.timeout(3000),
    });
    if (!response.ok) throw new Error(`pool_view: HTTP ${response.status}`);
    return (await response.json()) as PoolView;
  }

  async function resize(change: 'increase' | 'decrease') {
    const answer = await adminCall('POST', '/api/manager/poolsize/manual', { change, wait: true });
    assert.equal(answer.status, 200, `${change}: ${JSON.stringify(answer.body)}`);
  }

  /**
   * The map version a node is at. No endpoint says it, so this asks for an entry with map version
   * 0: a node that has a view turns it away (421) naming its own version, touching nothing.
   */
  async function nodeVersion(url: string): Promise<number | undefined> {
    const response = await fetch(`${url}/v1/entries/version-probe`, {
      headers: { authorization: `Bearer ${secret}`, 'x-pixpool-map-version': '0' },
      signal: AbortSignal.timeout(2000),
    });
    const text = await response.text();
    const match = /this node is at map (\d+)/.exec(text);
    return response.status === 421 && match ? Number(match[1]) : undefined;
  }

  /**
   * The map version a frontend is at. No endpoint says it either: this pushes it a copy of
   * `view` numbered 1, which a frontend never adopts (its first view came from the manager, so it
   * is at 1 or later, and it adopts only newer ones), and reads the version it answers with.
   */
  async function frontendVersion(url: string, view: PoolView): Promise<number | undefined> {
    const response = await fetch(`${url}/api/notify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ map: { ...view.map, version: 1 }, addresses: view.addresses }),
      signal: AbortSignal.timeout(2000),
    });
    const body = (await response.json()) as { adopted?: boolean; version?: number };
    assert.notEqual(body.adopted, true, 'the version probe must never be adopted');
    return body.version;
  }

  /** Why the pool has not converged yet (or a process died), or undefined when it has. */
  async function divergence(): Promise<string | undefined> {
    const gone = processes.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (gone) return `${gone.label} exited: ${gone.output().slice(-2000)}`;
    const view = await poolView();
    const version = view.map.version;
    if (view.previous) return `map ${version} is transitional (a resize is handing over)`;
    const { body } = await adminCall('GET', '/api/manager/dashboard');
    const pool = body.content.pool as { resizing: boolean; queued: number };
    if (pool.resizing || pool.queued > 0) return 'the manager is resizing';
    const unhealthy = (body.content.nodes as { id: string; healthy: boolean }[]).filter(
      (n) => !n.healthy,
    );
    if (unhealthy.length > 0) return `unhealthy: ${unhealthy.map((n) => n.id).join(', ')}`;
    for (const id of view.map.nodes) {
      const at = await nodeVersion(view.addresses[id] as string).catch(() => undefined);
      if (at !== version) return `node ${id} at map ${at}, the manager at ${version}`;
    }
    for (const fe of [fe1, fe2]) {
      const at = await frontendVersion(fe.url, view).catch(() => undefined);
      if (at !== version) return `${fe.name} at map ${at}, the manager at ${version}`;
    }
    return undefined;
  }

  /** Waits until the pool converges; resolves with how long that took, ms. */
  async function converged(timeoutMs = 20_000): Promise<number> {
    const from = performance.now();
    let last: string | undefined = 'not asked yet';
    try {
      await waitFor(
        'the pool to converge',
        async () => {
          last = await divergence().catch((error: Error) => `no answer: ${error.message}`);
          return last === undefined;
        },
        { timeoutMs, everyMs: 200 },
      );
    } catch {
      throw new Error(`the pool did not converge within ${timeoutMs} ms: ${last}`);
    }
    return Math.round(performance.now() - from);
  }

  /** The node host serving at `url`. */
  const hostOf = (url: string): Host => {
    const host = nodeHosts.find((h) => url === h.url(NODE_PORT));
    assert.ok(host, `no host at ${url}`);
    return host;
  };

  /** Waits until the manager has put another node in the place of `id`, at `oldUrl`. */
  async function replaced(id: string, oldUrl: string, timeoutMs = 30_000): Promise<string> {
    const view = await waitFor(
      `the manager to replace ${id}`,
      async () => {
        const v = await poolView();
        return v.addresses[id] !== oldUrl && v.map.nodes.includes(id) && !v.previous
          ? v
          : undefined;
      },
      { timeoutMs, everyMs: 100 },
    );
    return view.addresses[id] as string;
  }

  // --- scenarios ---------------------------------------------------------------------------

  /** A scenario's cut: the pool grown 1 → 4 and shrunk to 2, a resize at a time. */
  async function growAndShrink(note: (text: string) => void): Promise<void> {
    assert.equal((await poolView()).map.nodes.length, 1, 'the manager starts with one node');
    for (const change of ['increase', 'increase', 'increase', 'decrease', 'decrease'] as const) {
      const t = performance.now();
      await resize(change);
      note(`${change} ${Math.round(performance.now() - t)} ms`);
      await sleep(400);
    }
    assert.equal((await poolView()).map.nodes.length, 2);
  }

  let uploadVia: Via[] = [];

  /**
   * Runs `cut` under load (phase `<name>`), then heals every cut, waits until the pool converges
   * and goes on 1.5 s more (phase `<name> healed`); prints and checks the counts.
   */
  async function scenario(
    name: string,
    cut: (note: (text: string) => void) => Promise<void>,
    scenarioOptions: { uploadVia?: Via[] } = {},
  ): Promise<void> {
    const notes: string[] = [];
    const note = (text: string) => {
      notes.push(text);
      history.note(`${name}: ${text}`);
    };
    // Each scenario starts from empty caches: what an earlier one left stale (a failure there)
    // must not count here.
    const cleared = await adminCall('DELETE', '/api/manager/cache/clear');
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
    uploadVia = scenarioOptions.uploadVia ?? [fe1, fe2];
    history.setPhase(name);
    const random = createSeededRandom(results.length + 1);
    const load: Workload = startWorkload(history, {
      keys: KEYS,
      uploadVia: () => uploadVia,
      readVia: () => [fe1, fe2],
      random,
    });
    const t0 = performance.now();
    try {
      await sleep(500);
      await cut(note);
    } finally {
      const cuts = theLab.cuts();
      await theLab.healAll();
      if (cuts.length > 0)
        note(`healed ${cuts.length / 2} cut(s) after ${Math.round(performance.now() - t0)} ms`);
      history.setPhase(`${name} healed`);
      uploadVia = [fe1, fe2];
    }
    try {
      note(`converged ${await converged()} ms after healing`);
      await sleep(1500);
    } finally {
      await load.stop();
    }
    const result = {
      scenario: name,
      cut: history.counts([name]),
      healed: history.counts([`${name} healed`]),
      notes,
    };
    results.push(result);
    const all = history.counts([name, `${name} healed`]);
    log(
      `${name}: ${JSON.stringify(result.cut)} | healed: ${JSON.stringify(result.healed)} | ${notes.join('; ')}`,
    );
    const problems = history.problems([name, `${name} healed`]);
    assert.ok(all.reads > 100, `enough reads (${all.reads})`);
    assert.ok(all.uploads > 20, `enough acknowledged uploads (${all.uploads})`);
    assert.equal(all.stale, 0, `no stale reads in "${name}":\n${problems.join('\n')}`);
    assert.equal(all.failed, 0, `no failed requests in "${name}":\n${problems.join('\n')}`);
  }

  return {
    lab: theLab,
    managerHost,
    managerUrl,
    nodeHosts,
    fe1,
    fe2,
    secret,
    log,
    start,
    cacheNodeArgs,
    managerArgs,
    forget,
    startFrontends,
    seed,
    adminCall,
    poolView,
    resize,
    divergence,
    converged,
    hostOf,
    replaced,
    growAndShrink,
    scenario,
    close,
  };
}
