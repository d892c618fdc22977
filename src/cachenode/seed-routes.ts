/**
 * The seed-compatible endpoints (the original cache node's): JSON or form bodies, values as data
 * URLs or base64, success as {"success":"true","content":…}. Differences from the original node, on
 * purpose: a miss is HTTP 404 (it sent every failure as 400), a config change is validated before
 * any of it applies, and move_keys is done by the node itself with the versions kept.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, notFound, PixpoolError } from '../core/errors.ts';
import { REGION_COUNT } from '../core/regions.ts';
import { rate } from '../core/stats.ts';
import { checkKey, parseVersion, VIEW_EXPIRED } from './binary-routes.ts';
import { handOver, parseOrders } from './hand-over.ts';
import type { Leases } from './leases.ts';
import type { NodeCache } from './node-cache.ts';
import type { BatchSender } from './plain-http.ts';
import { parseValue, toDataUrl } from './values.ts';
import type { NodeView } from './view.ts';

type Fields = Record<string, unknown>;

/** The body as fields (JSON object or form), merged over the query string. */
function fields(request: FastifyRequest): Fields {
  const body = request.body;
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
    throw badRequest('Send a JSON object or form fields.');
  }
  return { ...(request.query as Fields), ...(body as Fields | undefined) };
}

const ok = (content: unknown = '') => ({ success: 'true', content });

export function seedRoutes(
  app: FastifyInstance,
  deps: {
    cache: NodeCache;
    /** Sends hand-overs to other nodes. */
    client: BatchSender;
    nodeId: string;
    view: NodeView;
    leases: Leases;
  },
): void {
  const { cache, client, nodeId, view, leases } = deps;

  // Reads and writes of values need the view's lease, as on the binary path (view.ts).
  const leased = (reply: FastifyReply): boolean => {
    if (view.serving()) return true;
    reply.code(503).send(VIEW_EXPIRED);
    return false;
  };

  app.post('/api/cache/key', async (request, reply) => {
    const key = checkKey(fields(request).key);
    if (!leased(reply)) return reply;
    const entry = cache.get(key);
    if (!entry) throw notFound(`Unknown key: ${JSON.stringify(key)} is not in this cache.`);
    return { ...ok(toDataUrl(entry.contentType, entry.value)), key, version: entry.version };
  });

  app.delete('/api/cache/key', async (request, reply) => {
    const key = checkKey(fields(request).key);
    cache.invalidate(key);
    await leases.settle(key);
    // Taken, but not vouched for without a view lease (binary-routes.ts, DELETE).
    if (!leased(reply)) return reply;
    return ok();
  });

  app.post('/api/cache/content', async (request, reply) => {
    const f = fields(request);
    const key = checkKey(f.key);
    if (!leased(reply)) return reply;
    const { bytes, contentType } = parseValue(f.value);
    const version = parseVersion(f.version);
    const outcome = cache.put(
      key,
      { value: bytes, contentType, version: version ?? 0 },
      version !== undefined,
    );
    if (outcome === 'stale') {
      throw new PixpoolError('CONFLICT', `A newer version of ${JSON.stringify(key)} is cached.`);
    }
    return ok();
  });

  app.get('/api/cache/config', async () => ok(configView()));

  app.post('/api/cache/config', async (request) => {
    const f = fields(request);
    if (f.capacity === undefined && f.replacement_policy === undefined && f.policy === undefined) {
      throw badRequest(
        'Nothing to change: send capacity (MB) and/or replacement_policy (LRU, RR or SIEVE).',
      );
    }
    const { evicted } = cache.configure({
      capacityMb: f.capacity,
      policy: f.replacement_policy ?? f.policy,
    });
    return ok({ ...configView(), evicted });
  });

  // Delete-all clears every node: answered once no frontend trusts a copy of anything.
  app.delete('/api/cache', async () => {
    cache.clear();
    await leases.settleAll();
    return ok();
  });

  app.get('/api/cache/statistics', async () => ok(statistics()));

  app.delete('/api/cache/statistics', async () => {
    cache.stats.reset();
    return ok(statistics());
  });

  app.get('/api/cache/regions', async () => ok(cache.regions()));

  const listKeys = async (request: FastifyRequest) => {
    const region = fields(request).region;
    if (region === undefined) return cache.keys();
    const r = Number(region);
    if (!Number.isInteger(r) || r < 0 || r >= REGION_COUNT) {
      throw badRequest(`region must be a whole number from 0 to ${REGION_COUNT - 1}.`);
    }
    return cache.keys(r);
  };
  app.get('/keys', listKeys);
  app.post('/keys', listKeys);

  app.post('/api/cache/move_keys', async (request, reply) => {
    const f = fields(request);
    const orders = parseOrders(f);
    // Entries go only to nodes of this node's pool view (view.ts), checked for every order
    // before any is carried out, so a refused request sends nothing at all.
    const outsiders = [...new Set(orders.map((o) => o.to).filter((to) => !view.isMember(to)))];
    if (outsiders.length > 0) {
      throw new PixpoolError(
        'CONFLICT',
        `Not handed over: ${outsiders.join(', ')} ${outsiders.length > 1 ? 'are' : 'is'} not a node of this node's pool view (map ${view.version}).`,
      );
    }
    const keep = f.keep === true || f.keep === 'true';
    const results = [];
    for (const order of orders) {
      results.push(await handOver(cache, client, order, { keep }));
    }
    const failed = results.filter((r) => r.error);
    if (failed.length > 0) {
      const message = failed.map((r) => `to ${r.to}: ${r.error}`).join('; ');
      return reply.code(502).send({
        success: 'false',
        error: {
          code: 502,
          message: `Hand-over failed (entries not handed over stay here) ${message}`,
        },
        content: results,
      });
    }
    return ok(results);
  });

  function configView() {
    const { policy, capacityMb } = cache.config;
    return {
      node_id: nodeId,
      capacity: capacityMb,
      replacement_policy: policy,
      capacity_bytes: cache.capacityBytes,
    };
  }

  function statistics() {
    const t = cache.stats.totals;
    return {
      ...configView(),
      items: cache.items,
      bytes: cache.bytes,
      ...t,
      hit_rate: rate(t.hits, t.gets),
      miss_rate: rate(t.misses, t.gets),
      // The names the originals' clients read.
      used_size: cache.bytes,
      num_item_in_cache: cache.items,
      num_request_served: t.gets + t.puts,
      num_GET_request_served: t.gets,
      num_hit: t.hits,
    };
  }
}
