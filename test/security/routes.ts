/**
 * The security suites' classification of every route of every service: who may call it
 * (public, the pool's shared secret, the operator's admin token), and the few routes the fuzzer
 * sends only unauthenticated requests to, with the reason.
 *
 * The route lists themselves come from the running services (routeInventory in
 * src/http/service.ts), and test/security/auth.test.ts fails when a route is missing here or
 * classified differently than the service declares it: a new endpoint cannot slip past the
 * fuzzer and the auth checks unnoticed. HEAD twins of GET routes share the GET's entry.
 */
import type { RouteRecord } from '../../src/http/service.ts';
import type { ServiceName } from './services.ts';

export type Access = RouteRecord['access'];

export const EXPECTED_ACCESS: Record<ServiceName, Record<string, Access>> = {
  frontend: {
    'GET /health': 'public',
    'GET /ready': 'public',
    'GET /metrics': 'public',
    'POST /api/upload': 'public',
    'POST /api/key/:key': 'public',
    'POST /api/list_keys': 'public',
    'POST /api/notify': 'secret',
    'POST /api/getNumNodes': 'admin',
    'POST /api/getRate': 'admin',
    'POST /api/configure_cache': 'admin',
    'POST /api/delete_all': 'admin',
    'GET /images/:key': 'public',
    'GET /': 'public',
    'GET /upload': 'public',
    'GET /image': 'public',
    'GET /image/:key': 'public',
    'GET /keys': 'public',
    'GET /assets/:name': 'public',
  },
  'cache-node': {
    'GET /health': 'public',
    'GET /ready': 'public',
    'GET /metrics': 'secret',
    'GET /v1/entries/:key': 'secret',
    'PUT /v1/entries/:key': 'secret',
    'DELETE /v1/entries/:key': 'secret',
    'POST /v1/import': 'secret',
    'POST /v1/pool-view': 'secret',
    'POST /api/cache/key': 'secret',
    'DELETE /api/cache/key': 'secret',
    'POST /api/cache/content': 'secret',
    'GET /api/cache/config': 'secret',
    'POST /api/cache/config': 'secret',
    'DELETE /api/cache': 'secret',
    'GET /api/cache/statistics': 'secret',
    'DELETE /api/cache/statistics': 'secret',
    'GET /api/cache/regions': 'secret',
    'GET /keys': 'secret',
    'POST /keys': 'secret',
    'POST /api/cache/move_keys': 'secret',
  },
  manager: {
    'GET /health': 'public',
    'GET /metrics': 'public',
    'GET /api/manager/pool_node_list': 'admin',
    'GET /api/manager/poolsize': 'admin',
    'GET /api/manager/poolsize/config': 'admin',
    'GET /api/manager/aggregate_stats': 'admin',
    'POST /api/manager/poolsize/manual': 'admin',
    'POST /api/manager/poolsize/automatic': 'admin',
    'POST /api/manager/mode': 'admin',
    'GET /api/manager/cache/config': 'admin',
    'POST /api/manager/config': 'admin',
    'POST /api/manager/cache/config': 'admin',
    'DELETE /api/manager/cache/clear': 'admin',
    'DELETE /api/manager/data/clear': 'admin',
    'GET /api/manager/events': 'admin',
    'GET /api/manager/dashboard': 'admin',
    'POST /api/getNumNodes': 'admin',
    'POST /api/getRate': 'admin',
    'POST /api/configure_cache': 'admin',
    'POST /api/delete_all': 'admin',
    'POST /api/manager/samples': 'secret',
    'POST /api/manager/frontends': 'secret',
    'POST /api/manager/nodes/renew': 'secret',
    'POST /api/manager/nodes/register': 'secret',
    'GET /api/manager/pool_view': 'secret',
    'GET /api/manager/autoscaler/state': 'admin',
    'POST /api/manager/autoscaler/decisions': 'admin',
    'GET /api/manager/autoscaler/decisions': 'admin',
    'GET /': 'public',
    'GET /dashboard/assets/:name': 'public',
  },
  autoscaler: {
    'GET /health': 'public',
    'GET /metrics': 'public',
    'GET /status': 'public',
  },
};

/**
 * Routes that do exactly what they say with no input at all, or with every input optional
 * (`{}` is a valid request): an authorised random request would change stored data by design, so
 * the fuzzer sends them only unauthenticated requests (which must change nothing). Their input
 * checks are covered by the corpus.
 */
export const AUTHORISED_FUZZ_EXCLUDED: Record<string, string> = {
  'cache-node DELETE /api/cache': 'empties the node: its whole purpose',
  'manager DELETE /api/manager/cache/clear': 'empties every node: its whole purpose',
  'manager DELETE /api/manager/data/clear': 'deletes every image: its whole purpose',
  'manager POST /api/delete_all': 'deletes every image: its whole purpose',
  'frontend POST /api/delete_all': "the manager's, relayed: deletes every image",
  'manager POST /api/manager/poolsize/automatic':
    'every parameter is optional, so {} switches the pool to automatic mode by design',
};

/** `METHOD url` of a route, HEAD twins folded into their GET. */
export function routeId(route: { method: string; url: string }): string {
  return `${route.method === 'HEAD' ? 'GET' : route.method} ${route.url}`;
}
