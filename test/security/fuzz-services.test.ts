/**
 * Property-based fuzzing of every route of every service (issue 8), on real sockets: for each
 * route the services themselves list (routeInventory), hostile paths (traversal, encodings,
 * unicode), query strings, bodies (JSON of wrong types, broken JSON, forms, bytes, broken
 * multipart) and headers, mostly with the right credentials so the handlers are reached.
 *
 * After every case: the answer holds the invariant (fuzz-kit.ts problemWith: < 500, a 4xx is the
 * failure envelope, pages and images carry their security headers), a request without the right
 * credentials to a protected route is refused, and the service still answers /health. After each
 * service's run: the stored data (services.ts snapshot) is exactly what it was.
 *
 * Reproduce a failure with the seed it prints: FUZZ_SEED=<seed> npx node --import tsx --test …
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { routeInventory } from '../../src/http/service.ts';
import {
  authHeader,
  type Credentials,
  hostileBody,
  hostileHeaders,
  hostilePath,
  problemWith,
  sendRaw,
} from './fuzz-kit.ts';
import { AUTHORISED_FUZZ_EXCLUDED } from './routes.ts';
import {
  ADMIN_TOKEN,
  SECRET,
  type ServiceName,
  type System,
  startSystem,
  WRONG_SECRET,
} from './services.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_121);
const RUNS: Record<ServiceName, number> = {
  frontend: 500,
  'cache-node': 700,
  manager: 450,
  autoscaler: 80,
};
const tokens = { secret: SECRET, admin: ADMIN_TOKEN, wrong: WRONG_SECRET };

describe('fuzzing every route of every service', { timeout: 240_000 }, () => {
  let system: System;
  let before_: string;
  let total = 0;
  before(async () => {
    system = await startSystem();
    before_ = await system.snapshot();
  });
  after(() => system?.close());

  for (const name of Object.keys(RUNS) as ServiceName[]) {
    it(`${name}: hostile requests get a 4xx envelope or a safe answer, and change nothing`, async (t) => {
      const { app, url } = system.services[name];
      const routes = [...routeInventory(app)];
      const hostileCase = fc.constantFrom(...routes).chain((route) =>
        fc.record({
          route: fc.constant(route),
          path: hostilePath(route.url),
          body: hostileBody,
          headers: hostileHeaders,
          credentials: fc.oneof(
            { weight: 8, arbitrary: fc.constant<Credentials>('right') },
            { weight: 1, arbitrary: fc.constantFrom<Credentials>('none', 'wrong', 'other-token') },
          ),
        }),
      );
      let cases = 0;
      const statuses = new Map<number, number>();
      t.diagnostic(`seed ${SEED}, ${RUNS[name]} runs over ${routes.length} routes`);
      await fc.assert(
        fc.asyncProperty(hostileCase, async ({ route, path, body, headers, credentials }) => {
          const excluded = `${name} ${route.method} ${route.url}` in AUTHORISED_FUZZ_EXCLUDED;
          const creds = excluded && credentials === 'right' ? 'none' : credentials;
          const request = {
            method: route.method,
            path,
            headers: {
              ...headers,
              ...authHeader(route.access, creds, tokens),
              ...(body.contentType !== undefined && { 'content-type': body.contentType }),
            },
            body: body.body,
          };
          const answer = await sendRaw(url, request);
          cases++;
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          const problem = problemWith(request, answer);
          assert.equal(problem, undefined, problem);
          if (route.access !== 'public' && creds !== 'right') {
            assert.ok(
              answer.status >= 400,
              `${route.method} ${path} without the right credentials answered ${answer.status}`,
            );
          }
          const health = await sendRaw(url, { method: 'GET', path: '/health', headers: {} });
          assert.equal(health.status, 200, `${name} stopped answering /health`);
        }),
        { numRuns: RUNS[name], seed: SEED, endOnFailure: true },
      );
      total += cases;
      const histogram = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
      t.diagnostic(`${name}: ${cases} cases, answers ${histogram.join(' ')}`);
      assert.equal(await system.snapshot(), before_, 'stored data changed');
    });
  }

  it('reports the number of cases run', (t) => {
    t.diagnostic(`fuzz cases run: ${total}`);
    assert.ok(total >= Object.values(RUNS).reduce((a, b) => a + b, 0));
  });
});
