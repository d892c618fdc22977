/**
 * The pages in a real browser (Chromium via playwright-core) against a real frontend with
 * embedded storage and a real cache node: what a person does, click by click, and what they see.
 * Screenshots of every page land in test-results/screenshots/ for a human to look at.
 *
 * The steps share one store and run in order (the upload comes before the list and search).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { formatBytes } from '../../src/frontend/pages/format.ts';
import { decodedImageSize, launchBrowser, screenshotPath, solidPng } from '../helpers/browser.ts';
import { startFrontend } from '../helpers/frontend.ts';

// `?`, `#`, `%` and a non-ASCII character are all valid in a key and all break a URL that is not
// percent-encoded, so this key checks every link the pages build.
const KEY = `sunny☀?#%-${process.pid}.png`;
const png = solidPng(320, 200, [79, 70, 229]);

describe('pages in a real browser', () => {
  let frontend: Awaited<ReturnType<typeof startFrontend>>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let dir: string;
  let pngPath: string;
  // Content-Security-Policy violations and script errors show up here; any is a failure.
  const pageErrors: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pixpool-pages-'));
    pngPath = join(dir, 'sunny.png');
    await writeFile(pngPath, png);
    frontend = await startFrontend();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
    });
  });

  after(async () => {
    await browser?.close();
    await frontend?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const open = async (path: string) => {
    const response = await page.goto(frontend.url + path);
    assert.ok(response, `no response for ${path}`);
    return response;
  };
  const text = (selector: string) => page.locator(selector).first().innerText();
  const shoot = (name: string) => page.screenshot({ path: screenshotPath(name), fullPage: true });

  it('home says what pixpool is, shows the image count and links to upload and keys', async () => {
    const response = await open('/');
    assert.equal(response.status(), 200);
    assert.match(await text('h1'), /Store images by key/);
    assert.equal(await text('[data-testid=image-count]'), 'No images stored yet');
    assert.equal(await page.locator('a.button', { hasText: 'Upload an image' }).count(), 1);
    assert.equal(await page.getAttribute('nav a[aria-current=page]', 'href'), '/');
    await shoot('home');
  });

  it('the key list starts with an empty state that offers an upload', async () => {
    await open('/keys');
    assert.match(await text('.empty'), /No images yet — upload one/);
    await shoot('keys-empty');
  });

  it('uploads a PNG: preview with size and type, an uploading state, then a link to it', async () => {
    await open('/');
    await page.getByRole('link', { name: 'Upload an image' }).click();
    await page.waitForURL('**/upload');
    await page.fill('#key', KEY);
    await page.setInputFiles('#file', pngPath);

    assert.deepEqual(await decodedImageSize(page, '.preview img'), [320, 200]);
    assert.equal(await text('.preview-name'), 'sunny.png');
    assert.equal(await text('.preview-meta'), `image/png · ${formatBytes(png.length)}`);

    // Hold the request a moment so the in-between state can be seen.
    await page.route('**/api/upload', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      await route.continue();
    });
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.locator('.status.busy .progress').waitFor();
    assert.equal(await text('button[type=submit]'), 'Uploading…');
    assert.equal(await page.locator('button[type=submit]').isDisabled(), true);

    await page.locator('.status.success').waitFor();
    await page.unroute('**/api/upload');
    assert.equal(await text('.status-title'), 'Image uploaded');
    assert.match(await text('.status-detail'), /now holds sunny\.png/);
    await shoot('upload-success');

    await page.getByRole('link', { name: 'View the image →' }).click();
    await page.waitForURL(`**/image/${encodeURIComponent(KEY)}`);
  });

  it('the image page shows the image rendered, its key, size, type and re-upload link', async () => {
    assert.deepEqual(await decodedImageSize(page, 'img[data-image]'), [320, 200]);
    assert.equal(await text('[data-testid=key]'), KEY);
    assert.equal(await text('[data-testid=type]'), 'image/png');
    assert.match(await text('[data-testid=size]'), new RegExp(`^${formatBytes(png.length)} \\(`));
    assert.equal(await text('[data-testid=version]'), '1');
    assert.equal(await text('[data-dimensions]'), '320 × 200 px');
    assert.equal(
      await page.getAttribute('a:text-is("Re-upload")', 'href'),
      `/upload?key=${encodeURIComponent(KEY)}`,
    );
    assert.equal(
      await page.getAttribute('a:text-is("Raw image")', 'href'),
      `/images/${encodeURIComponent(KEY)}`,
    );
    await shoot('image');
  });

  it('re-upload prefills the key and says the upload replaces the current image', async () => {
    await page.click('a:text-is("Re-upload")');
    await page.waitForURL('**/upload?key=*');
    assert.equal(await page.inputValue('#key'), KEY);
    assert.match(await text('[data-testid=replaces]'), /already holds an image.*version 1/s);
  });

  it('shows the server’s own message when it refuses an upload', async () => {
    await open('/upload');
    await page.fill('#key', `not-an-image-${process.pid}`);
    await page.setInputFiles('#file', {
      name: 'notes.png',
      mimeType: 'image/png',
      buffer: Buffer.from('these are words, not pixels'),
    });
    const answer = page.waitForResponse('**/api/upload');
    await page.getByRole('button', { name: 'Upload' }).click();
    const response = await answer;
    assert.ok(response.status() >= 400 && response.status() < 500);
    const body = (await response.json()) as { error: { message: string } };
    await page.locator('.status.error').waitFor();
    assert.equal(await text('.status-title'), 'Upload failed');
    assert.equal(await text('.status-detail'), body.error.message);
    await shoot('upload-error');
  });

  it('the key list links the uploaded key and the search finds it', async () => {
    await page.goto(`${frontend.url}/`);
    await page.locator('.site-nav').getByRole('link', { name: 'Keys' }).click();
    await page.waitForURL('**/keys');
    const link = page.locator('[data-testid=keys] a', { hasText: KEY });
    assert.equal(await link.getAttribute('href'), `/image/${encodeURIComponent(KEY)}`);
    assert.equal(await text('[data-testid=total]'), '1 image stored');
    await shoot('keys');

    await page.fill('#q', 'sunny☀?#');
    await page.press('#q', 'Enter');
    await page.waitForURL('**/keys?q=*');
    assert.equal(await page.locator('[data-testid=keys] li').count(), 1);
    assert.equal(await text('[data-testid=total]'), '1 key contains “sunny☀?#”');

    await page.fill('#q', 'no-such-thing');
    await page.press('#q', 'Enter');
    await page.waitForURL('**/keys?q=no-such-thing');
    assert.match(await text('.empty'), /No keys contain “no-such-thing”/);
  });

  it('an unknown key gets a friendly 404 that offers to upload under it', async () => {
    const unknown = `missing-${process.pid}`;
    await open('/');
    await page.fill('#home-open-key', unknown);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith(`/image/${unknown}`)),
      page.click('form[data-open-key] button'),
    ]);
    assert.equal(response.status(), 404);
    assert.equal(await text('h1'), 'No image under this key yet');
    await shoot('not-found');
    await page.getByRole('link', { name: 'Upload an image under this key' }).click();
    await page.waitForURL('**/upload?key=*');
    assert.equal(await page.inputValue('#key'), unknown);
  });

  it('an invalid key is refused in the upload form before anything is sent', async () => {
    const uploads: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/upload')) uploads.push(r.url());
    });
    await open('/upload');
    await page.setInputFiles('#file', pngPath);
    await page.fill('#key', 'two words');
    assert.equal(
      await text('#key-error'),
      'A key cannot contain whitespace or an invisible control character.',
    );
    await page.fill('#key', 'a/b');
    assert.equal(await text('#key-error'), 'A key cannot contain a slash (/).');
    await page.fill('#key', 'x'.repeat(129));
    assert.match(await text('#key-error'), /at most 128 characters; this one has 129/);
    assert.equal(await page.getAttribute('#key', 'aria-invalid'), 'true');
    await page.getByRole('button', { name: 'Upload' }).click();
    await shoot('upload-invalid-key');
    assert.deepEqual(uploads, []);
    assert.equal(await page.locator('.status').isVisible(), false);

    const response = await open('/image/a%2Fb');
    assert.equal(response.status(), 400);
    assert.equal(await text('h1'), 'That is not a valid key');
    assert.match(await text('main'), /cannot contain a slash/);
    await shoot('invalid-key');
  });

  it('every page answers with the security headers, and assets with type and caching', async () => {
    for (const path of [
      '/',
      '/upload',
      `/image/${encodeURIComponent(KEY)}`,
      '/keys',
      '/image/x y',
    ]) {
      const response = await fetch(frontend.url + path);
      const csp = response.headers.get('content-security-policy') ?? '';
      for (const directive of [
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
      ]) {
        assert.ok(csp.includes(directive), `${path}: CSP lacks ${directive}: ${csp}`);
      }
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer', path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/, path);
    }
    for (const [name, type] of [
      ['app.css', /^text\/css/],
      ['upload.js', /^text\/javascript/],
    ] as const) {
      const response = await fetch(`${frontend.url}/assets/${name}`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', type);
      assert.match(response.headers.get('cache-control') ?? '', /max-age=\d+/);
      const again = await fetch(`${frontend.url}/assets/${name}`, {
        headers: { 'if-none-match': response.headers.get('etag') ?? '' },
      });
      assert.equal(again.status, 304);
    }
  });

  it('the upload page fits a phone screen, and the pages have a dark theme', async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const mobile = await phone.newPage();
    await mobile.goto(`${frontend.url}/upload`);
    await mobile.setInputFiles('#file', pngPath);
    await mobile.locator('.preview').waitFor();
    await mobile.fill('#key', 'phone.png');
    const overflow = await mobile.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    assert.equal(overflow, 0, 'the upload page scrolls sideways on a phone');
    await mobile.screenshot({ path: screenshotPath('upload-phone'), fullPage: true });
    await phone.close();

    const dark = await browser.newContext({
      viewport: { width: 1280, height: 860 },
      colorScheme: 'dark',
    });
    const night = await dark.newPage();
    await night.goto(`${frontend.url}/image/${encodeURIComponent(KEY)}`);
    const background = await night.evaluate<string>(
      'getComputedStyle(document.body).backgroundColor',
    );
    assert.notEqual(background, 'rgb(245, 246, 248)', 'the dark theme did not apply');
    await decodedImageSize(night, 'img[data-image]');
    await night.screenshot({ path: screenshotPath('image-dark'), fullPage: true });
    await dark.close();
  });

  it('no page broke its Content-Security-Policy or threw a script error', () => {
    // The deliberate 4xx answers (404, 400, a refused upload) log "Failed to load resource"; nothing else may.
    const unexpected = pageErrors.filter((e) => !/Failed to load resource.*\b4\d\d\b/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
