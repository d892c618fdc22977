/**
 * Tested on real hosts (issue 17): every service in its own network namespace on one bridge
 * (test/helpers/netns.ts): the manager, two frontends and five cache nodes (the static provider
 * activates them; the pool never holds more than four, so one is always spare), with PostgreSQL
 * and the object store (s3rver) reached at the bridge's address, and no loopback anywhere between
 * services. Under continuous uploads and reads through the frontends (test/helpers/history.ts),
 * links are cut with blackhole routes, healed, and every answer is checked against the last
 * acknowledged upload, scenario by scenario:
 *
 * 1. the pool resized 1 → 4 → 2 across hosts;
 * 2. a cache node cut off from the manager between resizes (the manager replaces it);
 * 3. a cache node cut off from the manager during a resize (a grow 2 → 3);
 * 4. a frontend cut off from the manager while the pool shrinks 3 → 2;
 * 5. a cache node and a frontend cut off from the manager together, still reaching each other,
 *    while the manager replaces the node and uploads go through the other frontend;
 *
 * each ending with its cuts healed and the pool converged (the manager not resizing, every node of
 * the map and both frontends at the manager's map version, every node healthy), then a little more
 * load. A scenario must end with 0 stale and 0 failed operations; a 503 with the error envelope is
 * a refusal by design, counted apart. The counts are printed per scenario, cut and healed.
 *
 * Needs root (namespaces) and PostgreSQL on 127.0.0.1:5432 (DATABASE_URL), like the storage tests.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
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
} from '../helpers/history.ts';
import { createLab, type Host, type HostProcess, type Lab } from '../helpers/netns.ts';
import { cliEnv, sleep, waitFor } from '../helpers/processes.ts';
import {
  databaseUrl,
  dropSchema,
  randomSchema,
  requirePostgres,
  S3_CREDENTIALS,
  spawnS3rver,
  tempDir,
} from '../helpers/storage.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * The manager's view lease (the pool view each node holds expires unless the manager renews it).
 * Passed only once `pixpool manager` has the flag; until then the scenarios run without it.
 */
const VIEW_LEASE_FLAGS = ['--view-lease-ms', '1500'];
const HAS_VIEW_LEASE = readFileSync(new URL('../../src/cli.ts', import.meta.url), 'utf8').includes(
  `'${VIEW_LEASE_FLAGS[0]}`,
);
const MANAGER_FLAGS = HAS_VIEW_LEASE ? VIEW_LEASE_FLAGS : [];

const NODE_PORT = 5001;
const FRONTEND_PORT = 5000;
const MANAGER_PORT = 5002;
const NODE_HOSTS = 5;
const SECRET = `netns-secret-${Math.random().toString(36).slice(2)}`;
const ADMIN_TOKEN = `netns-admin-${Math.random().toString(36).slice(2)}`;
const KEYS = keysOverRegions('mh', 2);
/** ECHO_HOSTS=1 passes every process's output through, prefixed with its host. */
const ECHO = process.env.ECHO_HOSTS === '1';
/** NETNS_LOGS=<dir> keeps every process's output in <dir>/<host>.log (and the history there). */
const LOGS = process.env.NETNS_LOGS;

interface PoolView {
  map: { version: number; nodes: string[]; owner: string[]; assignment: string };
  addresses: Record<string, string>;
  previous?: string[];
}

describe('pixpool on real hosts: resizes and partitions under load', { timeout: 240_000 }, () => {
  let lab: Lab;
  let proxy: TcpProxy | undefined;
  let s3: Awaited<ReturnType<typeof spawnS3rver>> | undefined;
  let s3dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let dataDir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let schema: string | undefined;
  let managerHost: Host;
  let managerUrl: string;
  let fe1: Via & { host: Host };
  let fe2: Via & { host: Host };
  const nodeHosts: Host[] = [];
  const processes: HostProcess[] = [];
  const history = createHistory();
  const results: { scenario: string; cut: Counts; healed: Counts; notes: string[] }[] = [];
  const started = performance.now();

  const logFile = (name: string) => (LOGS ? join(LOGS, `${name}.log`) : undefined);
  // Times as the history's: ms of performance.now().
  const log = (line: string) => {
    history.note(line);
    console.log(`[multihost ${(performance.now() / 1000).toFixed(1)} s] ${line}`);
  };

  before(async () => {
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
    const feHosts = [await lab.addHost('fe1'), await lab.addHost('fe2')];
    for (let i = 1; i <= NODE_HOSTS; i++) nodeHosts.push(await lab.addHost(`node${i}`));
    managerUrl = managerHost.url(MANAGER_PORT);
    log(`hosts: ${lab.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}`);

    const env = cliEnv({
      PIXPOOL_SECRET: SECRET,
      PIXPOOL_ADMIN_TOKEN: ADMIN_TOKEN,
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
    const track = (p: HostProcess) => {
      processes.push(p);
      return p;
    };
    await Promise.all(
      nodeHosts.map(async (host) =>
        track(
          await host.pixpool(
            [
              'cache-node',
              '--host',
              '0.0.0.0',
              '--port',
              String(NODE_PORT),
              '--node-id',
              host.name,
              '--manager-url',
              managerUrl,
              '--capacity',
              '64',
            ],
            { env, label: host.name, echo: ECHO, logFile: logFile(host.name) },
          ),
        ),
      ),
    );
    track(
      await managerHost.pixpool(
        [
          'manager',
          '--host',
          '0.0.0.0',
          '--port',
          String(MANAGER_PORT),
          '--provider',
          'static',
          '--node-urls',
          nodeHosts.map((h) => h.url(NODE_PORT)).join(','),
          ...MANAGER_FLAGS,
        ],
        { env, label: 'manager', echo: ECHO, logFile: logFile('manager') },
      ),
    );
    await Promise.all(
      feHosts.map(async (host) =>
        track(
          await host.pixpool(
            [
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
            ],
            { env, label: host.name, echo: ECHO, logFile: logFile(host.name) },
          ),
        ),
      ),
    );
    fe1 = { name: 'fe1', url: feHosts[0]?.url(FRONTEND_PORT) as string, host: feHosts[0] as Host };
    fe2 = { name: 'fe2', url: feHosts[1]?.url(FRONTEND_PORT) as string, host: feHosts[1] as Host };
    log(
      `started ${processes.length} pixpool processes${HAS_VIEW_LEASE ? ` (manager ${MANAGER_FLAGS.join(' ')})` : ' (no --view-lease-ms in this pixpool)'}`,
    );

    // Every key once, through both frontends: reads always have an acknowledged upload to meet.
    history.setPhase('seed');
    for (const [i, key] of KEYS.entries()) {
      const op = await history.upload(i % 2 ? fe2 : fe1, key);
      assert.equal(op.outcome, 'acked', `seed upload of ${key}: ${op.detail}`);
    }
    await converged();
  });

  after(async () => {
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
        `multi-host scenarios (manager ${HAS_VIEW_LEASE ? MANAGER_FLAGS.join(' ') : 'without --view-lease-ms'}), ${((performance.now() - started) / 1000).toFixed(1)} s:\n${lines.join('\n')}`,
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
  });

  // --- talking to the services ------------------------------------------------------------

  async function adminCall(method: string, path: string, body?: unknown) {
    const response = await fetch(managerUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
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
      headers: { authorization: `Bearer ${SECRET}` },
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
      headers: { authorization: `Bearer ${SECRET}`, 'x-pixpool-map-version': '0' },
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
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
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

  let uploadVia: Via[] = [];

  /**
   * Runs `cut` under load (phase `<name>`), then heals every cut, waits until the pool converges
   * and goes on 1.5 s more (phase `<name> healed`); prints and checks the counts.
   */
  async function scenario(
    name: string,
    cut: (note: (text: string) => void) => Promise<void>,
    options: { uploadVia?: Via[] } = {},
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
    uploadVia = options.uploadVia ?? [fe1, fe2];
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
      const cuts = lab.cuts();
      await lab.healAll();
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

  it('resizes the pool 1 → 4 → 2 across hosts', async () => {
    await scenario('resize 1 → 4 → 2', async (note) => {
      assert.equal((await poolView()).map.nodes.length, 1, 'the manager starts with one node');
      for (const change of ['increase', 'increase', 'increase', 'decrease', 'decrease'] as const) {
        const t = performance.now();
        await resize(change);
        note(`${change} ${Math.round(performance.now() - t)} ms`);
        await sleep(400);
      }
      assert.equal((await poolView()).map.nodes.length, 2);
    });
  });

  it('a node cut off from the manager between resizes', async () => {
    await scenario('node ↮ manager, between resizes', async (note) => {
      const view = await poolView();
      const id = view.map.nodes[0] as string;
      const oldUrl = view.addresses[id] as string;
      const victim = hostOf(oldUrl);
      const t = performance.now();
      await lab.cut(victim, managerHost);
      note(`cut ${victim.name} (${id}) from the manager`);
      const now = await replaced(id, oldUrl);
      note(
        `${id} (${victim.name}) replaced by ${hostOf(now).name} after ${Math.round(performance.now() - t)} ms`,
      );
      await sleep(2000);
    });
  });

  it('a node cut off from the manager during a resize', async () => {
    await scenario('node ↮ manager, during a grow 2 → 3', async (note) => {
      const view = await poolView();
      const id = view.map.nodes[0] as string;
      const oldUrl = view.addresses[id] as string;
      const victim = hostOf(oldUrl);
      const t = performance.now();
      const growing = adminCall('POST', '/api/manager/poolsize/manual', {
        change: 'increase',
        wait: true,
      });
      await waitFor(
        'the grow to start',
        async () => (await adminCall('GET', '/api/manager/dashboard')).body.content.pool.resizing,
        { timeoutMs: 5000, everyMs: 5 },
      );
      await lab.cut(victim, managerHost);
      note(`cut ${victim.name} (${id}) ${Math.round(performance.now() - t)} ms into the grow`);
      const grown = await growing;
      note(`grow answered ${grown.status} after ${Math.round(performance.now() - t)} ms`);
      const now = await replaced(id, oldUrl);
      note(`${id} replaced by ${hostOf(now).name} after ${Math.round(performance.now() - t)} ms`);
      await sleep(1500);
      assert.equal(grown.status, 200, `the grow: ${JSON.stringify(grown.body)}`);
    });
  });

  it('a frontend cut off from the manager while the pool shrinks', async () => {
    await scenario('frontend ↮ manager, during a shrink 3 → 2', async (note) => {
      assert.equal((await poolView()).map.nodes.length, 3);
      await lab.cut(fe1.host, managerHost);
      note('cut fe1 from the manager');
      await sleep(1000);
      const t = performance.now();
      await resize('decrease');
      note(`shrank in ${Math.round(performance.now() - t)} ms with fe1 cut off`);
      await sleep(3000);
    });
  });

  it('a node and a frontend cut off from the manager together, the node replaced', async () => {
    await scenario(
      'node + frontend ↮ manager, node replaced',
      async (note) => {
        const view = await poolView();
        const id = view.map.nodes[0] as string;
        const oldUrl = view.addresses[id] as string;
        const victim = hostOf(oldUrl);
        const t = performance.now();
        // Both lose the manager; they still reach each other (and everything else).
        await Promise.all([lab.cut(victim, managerHost), lab.cut(fe1.host, managerHost)]);
        note(`cut ${victim.name} (${id}) and fe1 from the manager`);
        const now = await replaced(id, oldUrl);
        note(
          `${id} (${victim.name}) replaced by ${hostOf(now).name} after ${Math.round(performance.now() - t)} ms`,
        );
        await sleep(3000);
      },
      { uploadVia: [fe2] },
    );
  });
});
