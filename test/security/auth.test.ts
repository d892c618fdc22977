/**
 * Auth on every route of every service (issue 8), from the services' own route inventories:
 * every route is classified in routes.ts (a new one fails the first test until someone decides
 * who may call it), every secret and admin route refuses a missing or wrong credential with a
 * 401 envelope and changes nothing, and opens with the right one. The shared secret does not open
 * admin routes and the admin token does not open internal ones (the secret is between services,
 * the token is the operator's).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { bearerCheck } from '../../src/http/auth.ts';
import { routeInventory } from '../../src/http/service.ts';
import { EXPECTED_ACCESS, routeId } from './routes.ts';
import {
  ADMIN_TOKEN,
  bearer,
  isEnvelope,
  SECRET,
  type ServiceName,
  type System,
  send,
  startSystem,
  WRONG_SECRET,
} from './services.ts';

const services = (system: System) =>
  Object.entries(system.services) as [ServiceName, System['services'][ServiceName]][];

/** A concrete path for a route: parameters filled with a harmless value. */
const concrete = (url: string) => url.replace(/:\w+/g, 'k1');

describe('auth on every route of every service', { timeout: 180_000 }, () => {
  let system: System;
  before(async () => {
    system = await startSystem();
  });
  after(() => system?.close());

  it('every route of every service is classified, as the service declares it', (t) => {
    for (const [name, running] of services(system)) {
      const expected = EXPECTED_ACCESS[name];
      const seen = new Set<string>();
      for (const route of routeInventory(running.app)) {
        const id = routeId(route);
        seen.add(id);
        assert.ok(id in expected, `${name}: ${id} is not classified in test/security/routes.ts`);
        assert.equal(route.access, expected[id], `${name}: ${id} is ${route.access}`);
      }
      assert.deepEqual(
        Object.keys(expected).filter((id) => !seen.has(id)),
        [],
        `${name}: routes.ts lists routes the service does not have`,
      );
      t.diagnostic(
        `${name}: ${seen.size} routes (${routeInventory(running.app).length} with HEAD)`,
      );
    }
  });

  it('every secret and admin route refuses missing or wrong credentials with a 401 envelope, changing nothing', async (t) => {
    const before_ = await system.snapshot();
    let refusals = 0;
    for (const [name, running] of services(system)) {
      for (const route of routeInventory(running.app)) {
        if (route.access === 'public') continue;
        const right = route.access === 'admin' ? ADMIN_TOKEN : SECRET;
        const other = route.access === 'admin' ? SECRET : ADMIN_TOKEN;
        const wrong: Record<string, string>[] = [
          {},
          { authorization: '' },
          { authorization: 'Bearer' },
          { authorization: 'Bearer ' },
          // Same length, one character off (WRONG_SECRET is the secret's own same-length twin).
          bearer(route.access === 'secret' ? WRONG_SECRET : `${right.slice(0, -1)}X`),
          bearer(right.slice(0, -1)),
          { authorization: `Bearer  ${right}` },
          bearer(`${right}${right}`),
          bearer('x'.repeat(4000)),
          { authorization: `Basic ${Buffer.from(`user:${right}`).toString('base64')}` },
          { authorization: `bearer ${right}` },
          { authorization: right },
          { authorization: `Token ${right}` },
          bearer(other),
        ];
        for (const headers of wrong) {
          const answer = await send(running.url, route.method, concrete(route.url), {
            headers: { ...headers, 'content-type': 'application/json' },
            body: route.method === 'GET' || route.method === 'HEAD' ? undefined : '{}',
          });
          const what = `${name} ${route.method} ${route.url} with ${JSON.stringify(headers).slice(0, 80)}`;
          assert.equal(answer.status, 401, what);
          if (route.method !== 'HEAD') assert.ok(isEnvelope(answer), `${what}: ${answer.text}`);
          refusals++;
        }
      }
    }
    assert.equal(await system.snapshot(), before_, 'a refused request changed stored data');
    t.diagnostic(`${refusals} refused requests`);
  });

  it('the right credential opens every secret and admin route', async () => {
    // Destructive routes last, so they run after everything else has been called.
    const destructive = /DELETE \/api\/cache$|data\/clear|cache\/clear|delete_all/;
    const calls: [ServiceName, string, string, string][] = [];
    for (const [name, running] of services(system)) {
      for (const route of routeInventory(running.app)) {
        if (route.access === 'public') continue;
        calls.push([name, running.url, route.method, route.url]);
      }
    }
    calls.sort(
      ([, , m1, u1], [, , m2, u2]) =>
        Number(destructive.test(`${m1} ${u1}`)) - Number(destructive.test(`${m2} ${u2}`)),
    );
    for (const [name, url, method, path] of calls) {
      const access = routeInventory(system.services[name].app).find(
        (r) => r.method === method && r.url === path,
      )?.access;
      const answer = await send(url, method, concrete(path), {
        headers: {
          ...bearer(access === 'admin' ? ADMIN_TOKEN : SECRET),
          'content-type': 'application/json',
        },
        body: method === 'GET' || method === 'HEAD' ? undefined : '{}',
      });
      assert.notEqual(answer.status, 401, `${name} ${method} ${path}: ${answer.text}`);
      assert.ok(answer.status < 500, `${name} ${method} ${path}: ${answer.status} ${answer.text}`);
    }
  });

  it('bearerCheck compares SHA-256 digests with timingSafeEqual: equal lengths, no early exit', () => {
    // Read, not timed: a timing test on a loaded 2-core machine could not tell anything.
    const source = readFileSync(new URL('../../src/http/auth.ts', import.meta.url), 'utf8');
    assert.match(
      source,
      /const digest = \(s: string\) => createHash\('sha256'\)\.update\(s\)\.digest\(\);/,
    );
    const check = /export function bearerCheck[\s\S]*?\n}\n/.exec(source)?.[0] ?? '';
    assert.match(check, /timingSafeEqual\(digest\(header \?\? ''\), expected\)/);
    assert.doesNotMatch(
      check.replace(
        /^export function bearerCheck\(secret: string\): \(header: string \| undefined\) => boolean/,
        '',
      ),
      /===|!==|\.length|startsWith|includes/,
      'no comparison before the constant-time one',
    );
    const matches = bearerCheck('s3cret');
    assert.equal(matches('Bearer s3cret'), true);
    // Any length in, never a throw (timingSafeEqual throws on unequal lengths; digests never are).
    for (const header of [
      undefined,
      '',
      'Bearer s3cre',
      'Bearer s3cret ',
      'x'.repeat(100_000),
      '\u0000',
    ]) {
      assert.equal(matches(header), false);
    }
  });
});
