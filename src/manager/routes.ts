/**
 * The manager's API: the originals' endpoints (with `content` envelopes, as theirs had), the
 * later course test API (getNumNodes, getRate, configure_cache, delete_all), what the dashboard
 * reads, and the internal endpoints nodes and frontends call.
 *
 * Operator endpoints are `admin` (the admin token when one is set); internal ones need the pool's
 * shared secret.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseCapacityMb, parsePolicy } from '../core/cache-config.ts';
import { badRequest, conflict, forbidden, unavailable } from '../core/errors.ts';
import { serviceOrigin } from '../core/node-address.ts';
import { MAX_NODES, MIN_NODES } from '../core/pool-map.ts';
import type { Sample } from '../core/stats.ts';
import type { Tls } from '../http/tls.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { PoolStore } from '../storage/pool-store.ts';
import type { SampleSink } from './cloudwatch.ts';
import type { Pool } from './pool/pool.ts';
import { ClaimRefused, type NodeProvider } from './providers/provider.ts';
import {
  type AutoscalerParams,
  DEFAULT_AUTOSCALER,
  fraction,
  parseAutoscalerParams,
  parseMode,
} from './settings.ts';
import { lastMinutes, MINUTE, toSeries } from './stats.ts';

export interface ManagerRouteDeps {
  pool: Pool;
  store: PoolStore;
  metadata: MetadataStore;
  objects: ObjectStore;
  /** Largest capacity a config may ask of a node, MB. */
  maxCapacityMb: number;
  /** Checks the claims of nodes an engine started (providers/provider.ts). */
  provider: Pick<NodeProvider, 'name' | 'register'>;
  /** What an announced node's URL must use (https with TLS, off loopback). */
  tls?: Pick<Tls, 'guard'> | undefined;
  /** Also gets each sample once stored; it never waits on its destination (cloudwatch.ts). */
  sampleSink?: SampleSink | undefined;
}

type Fields = Record<string, unknown>;
const ok = (content: unknown) => ({ success: 'true', content });
const admin = { config: { admin: true } };
const internal = { config: { secret: true } };

function fields(request: FastifyRequest): Fields {
  const body = request.body;
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
    throw badRequest('Send a JSON object.');
  }
  return { ...(request.query as Fields), ...(body as Fields | undefined) };
}

const COUNTERS = ['gets', 'hits', 'misses', 'puts', 'evictions', 'imports', 'items', 'bytes'];

function parseSamples(body: Fields): { nodeId: string; samples: Sample[] } {
  const nodeId = body.node_id;
  if (typeof nodeId !== 'string' || nodeId === '' || nodeId.length > 200) {
    throw badRequest('node_id must be a non-empty string.');
  }
  if (!Array.isArray(body.samples) || body.samples.length > 1000) {
    throw badRequest('samples must be a list of at most 1000 samples.');
  }
  const samples = body.samples.map((s: Record<string, unknown>) => {
    for (const name of [...COUNTERS, 'at', 'intervalMs']) {
      const v = s?.[name];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
        throw badRequest(`Every sample needs ${name} as a whole number ≥ 0.`);
      }
    }
    return s as unknown as Sample;
  });
  return { nodeId, samples };
}

export function managerRoutes(app: FastifyInstance, deps: ManagerRouteDeps): void {
  const { pool, store, metadata, objects } = deps;

  const autoscalerParams = async () =>
    (await store.getSetting<AutoscalerParams>('autoscaler')) ?? DEFAULT_AUTOSCALER;

  /** A peer that will get the secret: with TLS on, plain http only on loopback (http/tls.ts). */
  function guardPeer(url: string, credential: string) {
    try {
      deps.tls?.guard(url, credential);
    } catch (error) {
      throw badRequest((error as Error).message);
    }
  }

  async function resize(change: unknown, wait: boolean) {
    if (change !== 'increase' && change !== 'decrease') {
      throw badRequest('change must be "increase" or "decrease".');
    }
    const { target, done } = await pool.resize(change === 'increase' ? 1 : -1);
    if (wait) await done;
    else done.catch(() => {}); // nobody waits: the pool logs and counts a failed resize
    return {
      message: `${change === 'increase' ? 'Growing' : 'Shrinking'} the pool to ${target} node(s)${wait ? ': done' : ': queued'}.`,
      target_size: target,
    };
  }

  async function setConfig(f: Fields) {
    const current = await pool.cacheConfig();
    const config = {
      capacity:
        f.capacity === undefined
          ? current.capacity
          : parseCapacityMb(f.capacity, deps.maxCapacityMb),
      replacement_policy:
        (f.replacement_policy ?? f.policy) === undefined
          ? current.replacement_policy
          : parsePolicy(f.replacement_policy ?? f.policy),
    };
    const results = await pool.configure(config);
    return { ...config, nodes: results };
  }

  async function deleteAll() {
    const rows = await metadata.deleteAll();
    const removed = await objects.deleteAll();
    const cleared = await pool.clearAll(
      'Deleted all data: rows, objects and every node’s cache',
      'delete',
    );
    const failed = [
      ...removed.failed.map((name) => `object ${name}`),
      ...cleared.filter((c) => !c.ok).map((c) => `node ${c.id}: ${c.error}`),
    ];
    return { rows: rows.rows, objects: removed.deleted, failed };
  }

  async function rate(kind: unknown) {
    if (kind !== 'miss' && kind !== 'hit') throw badRequest('rate must be "miss" or "hit".');
    const now = Date.now();
    const totals = await store.windowTotals({ from: new Date(now - MINUTE), to: new Date(now) });
    const part = kind === 'miss' ? totals.misses : totals.hits;
    return totals.gets > 0 ? Math.round((part / totals.gets) * 10_000) / 100 : null;
  }

  // The originals' manager endpoints.
  app.get('/api/manager/pool_node_list', admin, async () => {
    const { map, addresses } = pool.view();
    return ok({ node_id_list: map.nodes, node_ip_list: map.nodes.map((id) => addresses[id]) });
  });
  app.get('/api/manager/poolsize', admin, async () => ok({ size: pool.size }));
  app.get('/api/manager/poolsize/config', admin, async () => {
    const mode = await pool.mode();
    return ok({
      resize_pool_option: mode,
      resize_pool_parameters: mode === 'automatic' ? await autoscalerParams() : {},
    });
  });
  app.get('/api/manager/aggregate_stats', admin, async () =>
    ok(toSeries(await store.aggregate({ ...lastMinutes(Date.now()), bucketMs: MINUTE }))),
  );
  app.post('/api/manager/poolsize/manual', admin, async (request) => {
    const f = fields(request);
    return ok(await resize(f.change, f.wait === true || f.wait === 'true'));
  });
  app.post('/api/manager/poolsize/automatic', admin, async (request) => {
    const params = parseAutoscalerParams(fields(request), await autoscalerParams());
    await store.setSetting('autoscaler', params);
    await pool.setMode('automatic');
    return ok({ mode: 'automatic', ...params });
  });
  app.post('/api/manager/mode', admin, async (request) => {
    const mode = parseMode(fields(request).mode);
    await pool.setMode(mode);
    return ok({ mode });
  });
  app.get('/api/manager/cache/config', admin, async () => ok(await pool.cacheConfig()));
  app.post('/api/manager/config', admin, async (request) => ok(await setConfig(fields(request))));
  app.post('/api/manager/cache/config', admin, async (request) =>
    ok(await setConfig(fields(request))),
  );
  app.delete('/api/manager/cache/clear', admin, async () => ok({ nodes: await pool.clearAll() }));
  app.delete('/api/manager/data/clear', admin, async () => ok(await deleteAll()));
  app.get('/api/manager/events', admin, async (request) => {
    const limit = Number((request.query as Fields).limit ?? 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw badRequest('limit must be a whole number from 1 to 1000.');
    }
    return ok(await store.listEvents({ limit }));
  });

  app.get('/api/manager/dashboard', admin, async () => {
    const [mode, config, autoscaler, nodes, log] = await Promise.all([
      pool.mode(),
      pool.cacheConfig(),
      autoscalerParams(),
      pool.nodeStatuses(),
      store.listEvents({ limit: 50 }),
    ]);
    const { map } = pool.view();
    return ok({
      pool: {
        size: pool.size,
        mode,
        assignment: map.assignment,
        map_version: map.version,
        resizing: pool.resizing,
        queued: pool.queued,
        min: MIN_NODES,
        max: MAX_NODES,
      },
      nodes,
      config,
      autoscaler,
      log: log.map((e) => ({ id: e.id, at: e.at.toISOString(), kind: e.kind, message: e.message })),
    });
  });

  // The later course test API: flat bodies, no `content`.
  app.post('/api/getNumNodes', admin, async () => ({ success: 'true', numNodes: pool.size }));
  app.post('/api/getRate', admin, async (request) => {
    const kind = (request.query as Fields).rate;
    return { success: 'true', rate: kind, value: await rate(kind) };
  });
  app.post('/api/configure_cache', admin, async (request) => {
    const q = request.query as Fields;
    if (q.cacheSize !== undefined || q.policy !== undefined) {
      await setConfig({ capacity: q.cacheSize, replacement_policy: q.policy });
    }
    if (q.mode !== undefined) {
      const mode = parseMode(q.mode);
      if (mode === 'automatic') {
        const params = parseAutoscalerParams(
          {
            ...(q.maxMiss !== undefined && {
              max_miss_rate_threshold: fraction(q.maxMiss, 'maxMiss'),
            }),
            ...(q.minMiss !== undefined && {
              min_miss_rate_threshold: fraction(q.minMiss, 'minMiss'),
            }),
            ...(q.expRatio !== undefined && { expand_ratio: q.expRatio }),
            ...(q.shrinkRatio !== undefined && { shrink_ratio: q.shrinkRatio }),
          },
          await autoscalerParams(),
        );
        await store.setSetting('autoscaler', params);
      }
      await pool.setMode(mode);
    }
    let target = pool.size;
    if (q.numNodes !== undefined) {
      const n = Number(q.numNodes);
      if (!Number.isInteger(n) || n < MIN_NODES || n > MAX_NODES) {
        throw badRequest(`numNodes must be a whole number from ${MIN_NODES} to ${MAX_NODES}.`);
      }
      const steps: Promise<unknown>[] = [];
      for (let size = pool.size; size !== n; size += n > size ? 1 : -1) {
        steps.push((await pool.resize(n > size ? 1 : -1)).done);
      }
      await Promise.all(steps);
      target = n;
    }
    const config = await pool.cacheConfig();
    return {
      success: 'true',
      mode: await pool.mode(),
      numNodes: target,
      cacheSize: config.capacity,
      policy: config.replacement_policy,
    };
  });
  app.post('/api/delete_all', admin, async () => {
    await deleteAll();
    return { success: 'true' };
  });

  // Internal: nodes publish statistics, frontends register and poll the pool view.
  app.post('/api/manager/samples', { ...internal, bodyLimit: 1024 * 1024 }, async (request) => {
    const { nodeId, samples } = parseSamples(fields(request));
    const members = pool.view().map.nodes;
    for (const sample of samples) {
      await store.addSample(nodeId, sample);
      deps.sampleSink?.add(nodeId, sample, members);
    }
    return { success: 'true', stored: samples.length };
  });
  app.post('/api/manager/frontends', internal, async (request) => {
    // The manager will POST pool views to this URL: a bare http(s) origin only (node-address.ts).
    const raw = fields(request).url;
    if (typeof raw !== 'string' || !/^https?:\/\//i.test(raw)) {
      throw badRequest('url must be the frontend’s base URL, e.g. http://10.0.0.5:5000.');
    }
    const url = serviceOrigin(raw, 'frontend URL');
    // Refused here, not only when a view is pushed: a frontend kept but never told is worse.
    guardPeer(url, 'the shared secret (the frontend URL)');
    await store.registerFrontend(url);
    return { success: 'true', ...pool.view() };
  });
  app.get('/api/manager/pool_view', internal, async () => ({ success: 'true', ...pool.view() }));
  // Nodes renew the lease on their pool view (pool/view-leases.ts).
  app.post('/api/manager/nodes/renew', internal, async (request) => {
    const { node_id: id, instance, version } = fields(request);
    if (typeof id !== 'string' || id === '' || id.length > 200) {
      throw badRequest('node_id must be the id the pool gave this node.');
    }
    if (typeof instance !== 'string' || instance === '' || instance.length > 100) {
      throw badRequest('instance must be the node process id its pool-view answers give.');
    }
    if (!Number.isSafeInteger(version) || (version as number) < 1) {
      throw badRequest('version must be the map version the node holds, a whole number ≥ 1.');
    }
    const answer = await pool.renewViewLease(id, instance, version as number);
    if ('refused' in answer) throw conflict(answer.refused);
    return { success: 'true', lease_ms: answer.leaseMs, renew_ms: answer.renewMs };
  });
  // A node an engine started announces itself; the provider checks the claim with the engine.
  app.post('/api/manager/nodes/register', internal, async (request) => {
    const { url: rawUrl, ref } = fields(request);
    if (typeof ref !== 'string' || ref === '' || ref.length > 253 || /\s/.test(ref)) {
      throw badRequest('ref must name the node’s machine: its EC2 instance id or its pod name.');
    }
    const url = serviceOrigin(rawUrl, 'node URL');
    const { provider } = deps;
    if (!provider.register) {
      throw forbidden(
        `This pool's provider (${provider.name}) starts its own nodes: no node may register.`,
      );
    }
    guardPeer(url, 'the shared secret (the node URL)');
    try {
      const node = await provider.register({ url, ref });
      return { success: 'true', node_id: node.id };
    } catch (error) {
      if (error instanceof ClaimRefused) throw forbidden(error.message);
      throw unavailable('The manager could not check this node with its engine; try again.', {
        cause: error,
      });
    }
  });
}
