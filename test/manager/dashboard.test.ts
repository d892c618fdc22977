/**
 * The manager's dashboard in a real browser (Chromium via playwright-core) against a real manager
 * with embedded storage and real cache node processes: what an operator does, click by click,
 * and what they see. Screenshots land in test-results/screenshots/ for a human to look at.
 *
 * The steps share one manager and run in order (the pool grows before the config reaches two
 * nodes, and so on). A second manager with an admin token checks the token form.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, screenshotPath, until } from '../helpers/browser.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import { call, dataUrl, png } from '../helpers/nodes.ts';

const SLOW = { timeout: 30_000 };

/** Browser-side helpers, as strings: the project compiles without the DOM lib. */
const CANVAS_INK = `[...document.querySelectorAll('[data-chart] canvas')].map((canvas) => {
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let ink = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++;
  return { id: canvas.closest('[data-chart]').dataset.chart, ink, chart: Boolean(window.Chart?.getChart(canvas)) };
})`;
const chartData = (id: string) =>
  `(() => { const chart = window.Chart.getChart(document.querySelector('[data-chart="${id}"] canvas'));
    return { labels: chart.data.labels, values: chart.data.datasets[0].data }; })()`;

function collectErrors(page: Page, into: string[]): void {
  page.on('pageerror', (error) => into.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') into.push(`console: ${message.text()}`);
  });
}

describe('manager dashboard in a real browser', () => {
  let manager: TestManager;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  // Content-Security-Policy violations and script errors show up here; any is a failure.
  const pageErrors: string[] = [];
  const dataClearRequests: string[] = [];

  before(async () => {
    manager = await startManager();
    // Traffic on the first node, so the charts have rates to draw: 3 puts, 3 hits, 2 misses.
    const { body } = await managerCall(manager.url, 'GET', '/api/manager/dashboard');
    const nodeUrl: string = body.content.nodes[0].address;
    for (const key of ['a.png', 'b.png', 'c.png']) {
      await call(nodeUrl, 'POST', '/api/cache/content', { key, value: dataUrl(png(2048)) });
      await call(nodeUrl, 'POST', '/api/cache/key', { key });
    }
    await call(nodeUrl, 'POST', '/api/cache/key', { key: 'missing-1.png' });
    await call(nodeUrl, 'POST', '/api/cache/key', { key: 'missing-2.png' });
    // Something for "delete all data" to delete.
    await manager.objects.put('seeded-object', png(64), 'image/png');

    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    collectErrors(page, pageErrors);
    page.on('request', (request) => {
      if (request.url().endsWith('/api/manager/data/clear'))
        dataClearRequests.push(request.method());
    });
  });

  after(async () => {
    await browser?.close();
    await manager?.close();
  });

  const text = (selector: string) => page.locator(selector).first().innerText();
  const waitForText = (selector: string, pattern: RegExp) =>
    page.locator(selector).filter({ hasText: pattern }).first().waitFor(SLOW);

  it('shows the pool of one node, its node, and six drawn charts', async () => {
    const response = await page.goto(`${manager.url}/`);
    assert.equal(response?.status(), 200);
    await page.locator('[data-dashboard]').waitFor(SLOW);
    assert.equal(await page.title(), 'pixpool manager');
    assert.equal(await text('[data-testid=pool-size]'), '1');
    assert.match(await text('[data-pool-of]'), /of 8 nodes/);
    assert.equal(await text('[data-testid=pool-mode]'), 'Manual mode');
    assert.equal(await page.locator('[data-testid=resizing]').isVisible(), false);

    const rows = page.locator('[data-testid=nodes] tbody tr');
    assert.equal(await rows.count(), 1);
    const row = await rows.first().innerText();
    assert.match(row, /node-\w+/);
    assert.match(row, /http:\/\/127\.0\.0\.1:\d+/);
    assert.match(row, /active/);
    assert.doesNotMatch(row, /unhealthy/);
    assert.match(row, /0–15 \(16\)/, 'one node owns all 16 regions');
    assert.equal(
      await rows.first().locator('.dot.ok').count(),
      1,
      'a healthy node has a green dot',
    );

    // Six charts, each a Chart.js chart that has put ink on its canvas.
    const canvases = await page.evaluate<{ id: string; ink: number; chart: boolean }[]>(CANVAS_INK);
    assert.deepEqual(
      canvases.map((c) => c.id),
      [
        'number_of_nodes',
        'miss_rate',
        'hit_rate',
        'number_of_items_in_cache',
        'total_size_of_items_in_cache',
        'number_of_requests_served_per_minute',
      ],
    );
    for (const canvas of canvases) {
      assert.ok(canvas.chart, `${canvas.id}: no Chart.js chart`);
      assert.ok(canvas.ink > 500, `${canvas.id}: nothing drawn (${canvas.ink} pixels)`);
    }

    // 30 one-minute points labelled HH:MM. Once the node has published its sample (every 5 s),
    // the minute of the traffic has a hit rate, while the minutes before it, with no requests,
    // stay gaps (null), not 0.
    const nodes = await page.evaluate<{ labels: string[] }>(chartData('number_of_nodes'));
    assert.equal(nodes.labels.length, 30);
    for (const label of nodes.labels) assert.match(label, /^\d\d:\d\d$/);
    await until(page, `${chartData('hit_rate')}.values.some((v) => typeof v === 'number')`);
    const hit = await page.evaluate<{ values: (number | null)[] }>(chartData('hit_rate'));
    const miss = await page.evaluate<{ values: (number | null)[] }>(chartData('miss_rate'));
    assert.equal(hit.values[0], null, 'a minute without requests is a gap, not 0');
    const at = hit.values.findIndex((v) => v !== null);
    const rate = hit.values[at] as number;
    assert.ok(rate > 0 && rate <= 100, `hit rate ${rate}`);
    assert.equal(miss.values[at], Math.round((100 - rate) * 100) / 100, 'miss = 100 − hit');
    await waitForText('[data-chart=hit_rate] [data-latest]', /%$/);
    await page.screenshot({ path: screenshotPath('manager-dashboard-start'), fullPage: true });
  });

  it('+ grows the pool to two nodes: a resizing state, a notice and a log entry', async () => {
    // The "resizing" badge may show only briefly: record whether it ever became visible.
    await page.evaluate(`(() => {
      const badge = document.querySelector('[data-testid=resizing]');
      window.sawResizing = false;
      new MutationObserver(() => { if (!badge.hidden) window.sawResizing = true; })
        .observe(badge, { attributes: true });
    })()`);
    await page.click('[data-testid=grow]');
    await waitForText('[data-testid=pool-size]', /^2$/);
    assert.equal(await page.evaluate<boolean>('window.sawResizing'), true, 'no resizing state');
    await waitForText('[data-testid=pool-changed]', /grew from 1 node to 2 nodes/);
    await waitForText('[data-testid=log] li', /Grew to 2 nodes/);
    assert.equal(await page.locator('[data-testid=nodes] tbody tr').count(), 2);
    assert.equal(
      await page.locator('[data-testid=log] li').first().getAttribute('data-kind'),
      'resize',
    );
    // A resize publishes two maps: the transitional one (old owners still serve) and the final.
    assert.match(await text('[data-fact=map_version]'), /^3$/);
    assert.equal(await page.locator('[data-testid=shrink]').isDisabled(), false);
    assert.equal(await page.locator('[data-testid=grow]').isDisabled(), false);
  });

  it('applies a cache config and shows the result on every node', async () => {
    // An edit stops the refresh from overwriting the form; "Discard changes" brings it back.
    const saved = (await managerCall(manager.url, 'GET', '/api/manager/dashboard')).body.content
      .config.capacity;
    const revert = page.locator('[data-config-form] [data-revert]');
    assert.equal(await revert.isVisible(), false);
    await page.fill('#capacity', '7');
    await revert.click();
    assert.equal(await page.inputValue('#capacity'), String(saved));
    assert.equal(await revert.isVisible(), false);

    await page.fill('#capacity', '0');
    await page.click('[data-testid=config-submit]');
    assert.match(await text('#capacity-error'), /at least 1/);
    await page.fill('#capacity', '48');
    await page.selectOption('#replacement_policy', 'RR');
    await page.click('[data-testid=config-submit]');
    await waitForText('[data-testid=config-result]', /applied to 2 of 2 nodes/);
    assert.match(await text('[data-testid=config-result]'), /48 MB, RR/);
    assert.equal(await page.locator('[data-testid=config-result] li.ok').count(), 2);
    await waitForText('[data-testid=nodes] tbody tr', /of 48 MB/);
    const { body } = await managerCall(manager.url, 'GET', '/api/manager/dashboard');
    assert.deepEqual(body.content.config, { capacity: 48, replacement_policy: 'RR' });
  });

  it('clears the cache of every node', async () => {
    await page.click('[data-testid=clear-cache]');
    await waitForText('[data-testid=clear-result]', /Cleared 2 of 2 nodes/);
    assert.equal(await page.locator('[data-testid=clear-result] li.ok').count(), 2);
    await waitForText('[data-testid=log] li', /Cleared every node/);
  });

  it('deletes all data only after typing DELETE: cancel once, confirm once', async () => {
    const dialog = page.locator('[data-testid=delete-dialog]');
    const confirm = page.locator('[data-testid=delete-confirm]');
    await page.click('[data-testid=delete-all]');
    await dialog.waitFor();
    assert.equal(await confirm.isDisabled(), true, 'confirm is disabled until DELETE is typed');
    await page.fill('[data-testid=delete-confirm-input]', 'delete');
    assert.equal(await confirm.isDisabled(), true, 'the word is case-sensitive');
    await page.click('[data-testid=delete-cancel]');
    await dialog.waitFor({ state: 'hidden' });
    assert.match(await text('[data-testid=delete-result]'), /Nothing was deleted/);
    assert.deepEqual(dataClearRequests, [], 'cancel sent a request');

    await page.click('[data-testid=delete-all]');
    await dialog.waitFor();
    assert.equal(await page.inputValue('[data-testid=delete-confirm-input]'), '', 'starts empty');
    await page.fill('[data-testid=delete-confirm-input]', 'DELETE');
    await confirm.click();
    await dialog.waitFor({ state: 'hidden' });
    await waitForText('[data-testid=delete-result]', /Deleted 0 key rows and 1 stored object/);
    assert.deepEqual(dataClearRequests, ['DELETE']);
    assert.equal(await manager.objects.get('seeded-object'), undefined);
  });

  it('switches to automatic with checked parameters, and + / − are then disabled', async () => {
    await page.fill('#max_miss_rate_threshold', '0.5');
    await page.fill('#min_miss_rate_threshold', '0.7');
    await page.fill('#expand_ratio', '1');
    await page.fill('#shrink_ratio', '1.5');
    await page.click('[data-testid=autoscaler-submit]');
    assert.match(await text('#min_miss_rate_threshold-error'), /below the max miss rate/);
    assert.match(await text('#expand_ratio-error'), /greater than 1/);
    assert.match(await text('#shrink_ratio-error'), /between 0 and 1/);
    assert.equal(await page.locator('[data-status=autoscaler]').isVisible(), false);
    assert.equal(
      (await managerCall(manager.url, 'GET', '/api/manager/dashboard')).body.content.pool.mode,
      'manual',
      'invalid parameters reached the server',
    );

    await page.fill('#max_miss_rate_threshold', '0.75');
    await page.fill('#min_miss_rate_threshold', '0.25');
    await page.fill('#expand_ratio', '2');
    await page.fill('#shrink_ratio', '0.5');
    assert.equal(await text('[data-testid=autoscaler-submit]'), 'Save and switch to automatic');
    await page.click('[data-testid=autoscaler-submit]');
    await waitForText('[data-status=autoscaler]', /now in automatic mode/);
    await waitForText('[data-testid=pool-mode]', /Automatic mode/);
    assert.equal(await page.isChecked('[data-testid=mode-automatic]'), true);
    assert.equal(await page.locator('[data-testid=grow]').isDisabled(), true);
    assert.equal(await page.locator('[data-testid=shrink]').isDisabled(), true);
    assert.match(await text('[data-resize-hint]'), /Automatic mode/);
    await waitForText('[data-testid=log] li', /automatic/);
    const { body } = await managerCall(manager.url, 'GET', '/api/manager/dashboard');
    assert.deepEqual(body.content.autoscaler, {
      max_miss_rate_threshold: 0.75,
      min_miss_rate_threshold: 0.25,
      expand_ratio: 2,
      shrink_ratio: 0.5,
    });
    await page.screenshot({ path: screenshotPath('manager-dashboard'), fullPage: true });

    // The mode selector takes the pool back to manual; the buttons come back.
    await page.click('label:has([data-testid=mode-manual])');
    await waitForText('[data-testid=pool-mode]', /Manual mode/);
    await until(page, `!document.querySelector('[data-testid=grow]').disabled`);
  });

  it('fits a phone screen and has a dark theme', async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const mobile = await phone.newPage();
    collectErrors(mobile, pageErrors);
    await mobile.goto(`${manager.url}/`);
    await mobile.locator('[data-dashboard]').waitFor(SLOW);
    await mobile.locator('[data-testid=nodes] tbody tr').nth(1).waitFor();
    const overflow = await mobile.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    assert.equal(overflow, 0, 'the dashboard scrolls sideways on a phone');
    await mobile.screenshot({ path: screenshotPath('manager-dashboard-phone'), fullPage: true });
    await phone.close();

    const dark = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      colorScheme: 'dark',
    });
    const night = await dark.newPage();
    collectErrors(night, pageErrors);
    await night.goto(`${manager.url}/`);
    await night.locator('[data-dashboard]').waitFor(SLOW);
    const background = await night.evaluate<string>(
      'getComputedStyle(document.body).backgroundColor',
    );
    assert.notEqual(background, 'rgb(245, 246, 248)', 'the dark theme did not apply');
    await night.screenshot({ path: screenshotPath('manager-dashboard-dark'), fullPage: true });
    await dark.close();
  });

  it('answers with the security headers, serves its assets itself, and inlines nothing', async () => {
    const response = await fetch(`${manager.url}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
    const csp = response.headers.get('content-security-policy') ?? '';
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ]) {
      assert.ok(csp.includes(directive), `CSP lacks ${directive}: ${csp}`);
    }
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer');

    const html = await response.text();
    const scripts = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 2, 'chart.js and dashboard.js');
    for (const [tag, body] of scripts) {
      assert.match(tag, /src="\/dashboard\/assets\/[\w.]+\?v=[0-9a-f]{12}"/);
      assert.equal(body, '', 'an inline script');
    }
    assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=|<style/i, 'inline style or handler');
    assert.doesNotMatch(html, /https?:\/\//, 'a link to another origin (a CDN?)');

    for (const [name, type] of [
      ['chart.umd.min.js', /^text\/javascript/],
      ['dashboard.js', /^text\/javascript/],
      ['dashboard.css', /^text\/css/],
      ['app.css', /^text\/css/],
    ] as const) {
      const asset = await fetch(`${manager.url}/dashboard/assets/${name}`);
      assert.equal(asset.status, 200, name);
      assert.match(asset.headers.get('content-type') ?? '', type, name);
      assert.match(asset.headers.get('cache-control') ?? '', /max-age=\d+/, name);
      assert.equal(asset.headers.get('x-content-type-options'), 'nosniff', name);
      const again = await fetch(`${manager.url}/dashboard/assets/${name}`, {
        headers: { 'if-none-match': asset.headers.get('etag') ?? '' },
      });
      assert.equal(again.status, 304, name);
    }
    assert.equal((await fetch(`${manager.url}/dashboard/assets/nope.js`)).status, 404);
  });

  it('broke no Content-Security-Policy rule and threw no script error', () => {
    assert.deepEqual(pageErrors, []);
  });
});

describe('manager dashboard behind an admin token', () => {
  const TOKEN = 'dashboard-admin-token';
  let manager: TestManager;
  let browser: Browser;

  before(async () => {
    manager = await startManager({ adminToken: TOKEN });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await manager?.close();
  });

  it('asks for the token on a 401, keeps it for the tab, and sends it on every call', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    collectErrors(page, errors);
    const authorizations = new Set<string>();
    page.on('request', (request) => {
      if (request.url().includes('/api/manager/')) {
        authorizations.add(request.headers().authorization ?? '(none)');
      }
    });

    // The page itself is public; the API is not.
    await page.goto(`${manager.url}/`);
    const card = page.locator('[data-testid=token-card]');
    await card.waitFor(SLOW);
    assert.equal(await page.locator('[data-dashboard]').isVisible(), false);

    await page.fill('#token', 'not-the-token');
    await page.press('#token', 'Enter');
    await page
      .locator('[data-token-reason]')
      .filter({ hasText: /refused the token/ })
      .waitFor(SLOW);
    assert.equal(await card.isVisible(), true);

    await page.fill('#token', TOKEN);
    await page.press('#token', 'Enter');
    await page.locator('[data-dashboard]').waitFor(SLOW);
    assert.equal(await card.isVisible(), false);
    assert.equal(await page.locator('[data-testid=pool-size]').innerText(), '1');
    assert.equal(
      await page.evaluate<string | null>(`sessionStorage.getItem('pixpool.manager.token')`),
      TOKEN,
    );

    // A reload keeps the token (same tab), so no form this time.
    await page.reload();
    await page.locator('[data-dashboard]').waitFor(SLOW);
    assert.equal(await card.isVisible(), false);
    assert.ok(authorizations.has(`Bearer ${TOKEN}`));

    // "Forget token" drops it, and the API asks again.
    await page.click('[data-forget-token]');
    await card.waitFor(SLOW);
    assert.equal(
      await page.evaluate<string | null>(`sessionStorage.getItem('pixpool.manager.token')`),
      null,
    );

    // The only console errors are the browser's own lines for the deliberate 401s.
    assert.deepEqual(
      errors.filter((e) => !/Failed to load resource.*\b401\b/.test(e)),
      [],
    );
    await context.close();
  });
});
