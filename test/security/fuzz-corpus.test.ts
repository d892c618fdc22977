/**
 * The hand-written corpus (corpus.ts) against the real services, with the same invariants as the
 * property-based fuzzer, plus what only a browser can tell: an SVG with script, opened directly
 * from the frontend's origin in real Chromium, does not run.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { launchBrowser } from '../helpers/browser.ts';
import { CORPUS, SCRIPTED_SVG } from './corpus.ts';
import { problemWith, sendRaw } from './fuzz-kit.ts';
import { ADMIN_TOKEN, SECRET, type System, startSystem } from './services.ts';

describe('the corpus of nasty requests', { timeout: 180_000 }, () => {
  let system: System;
  let before_: string;
  before(async () => {
    system = await startSystem();
    before_ = await system.snapshot();
  });
  after(() => system?.close());

  it('every corpus case gets its answer, within the invariants, and the service stays up', async (t) => {
    for (const c of CORPUS) {
      const { url } = system.services[c.service];
      const body =
        c.body === undefined
          ? undefined
          : Buffer.isBuffer(c.body)
            ? c.body
            : Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body));
      const contentType =
        c.contentType ??
        (c.body !== undefined && !Buffer.isBuffer(c.body) ? 'application/json' : undefined);
      const request = {
        method: c.method,
        path: c.path,
        headers: {
          ...c.headers,
          ...(c.auth && { authorization: `Bearer ${c.auth === 'admin' ? ADMIN_TOKEN : SECRET}` }),
          ...(contentType && { 'content-type': contentType }),
        },
        body,
      };
      const answer = await sendRaw(url, request);
      assert.ok(
        c.expect.includes(answer.status),
        `${c.name}: ${answer.status} ${answer.text.slice(0, 300)}`,
      );
      assert.equal(problemWith(request, answer), undefined, c.name);
      await c.check?.(answer, system);
      const health = await sendRaw(url, { method: 'GET', path: '/health', headers: {} });
      assert.equal(health.status, 200, `${c.service} answers /health after: ${c.name}`);
    }
    assert.equal(await system.snapshot(), before_, 'stored data changed');
    const regressions = CORPUS.filter((c) => c.regression).length;
    t.diagnostic(
      `corpus cases run: ${CORPUS.length} (${regressions} regression cases of bugs found)`,
    );
  });

  it('an SVG with script, opened from the frontend, does not run (Chromium); elsewhere it would', async () => {
    const { url } = system.services.frontend;
    const form = new FormData();
    form.append('key', 'corpus-svg-browser');
    form.append('file', new Blob([new Uint8Array(SCRIPTED_SVG)]), 'x.svg');
    assert.equal((await fetch(`${url}/api/upload`, { method: 'POST', body: form })).status, 200);
    // First, so that a missing Chromium fails the test without leaving a server open.
    const browser = await launchBrowser();
    // The control: the same bytes from a server without the sandbox, where the script does run.
    const bare = createServer((_request, response) => {
      response.setHeader('content-type', 'image/svg+xml');
      response.end(SCRIPTED_SVG);
    });
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/x.svg`;
    try {
      const page = await browser.newPage();
      const ran = () =>
        page.evaluate('document.documentElement.getAttribute("data-ran")') as Promise<
          string | null
        >;
      await page.goto(bareUrl);
      assert.notEqual(await ran(), null, 'the control: without the sandbox the script runs');
      const response = await page.goto(`${url}/images/corpus-svg-browser`);
      assert.equal(response?.status(), 200);
      assert.equal(response?.headers()['content-type'], 'image/svg+xml');
      assert.equal(await ran(), null, 'the SVG script ran in the frontend’s origin');
      // The image page shows it through <img>, where SVG script never runs either.
      await page.goto(`${url}/image/corpus-svg-browser`);
      assert.equal(await ran(), null);
    } finally {
      await browser.close();
      await new Promise((resolve) => bare.close(resolve));
    }
  });
});
