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
import sharp from 'sharp';
import { formatBytes } from '../../src/frontend/pages/format.ts';
import {
  decodedImageSize,
  launchBrowser,
  screenshotPath,
  solidPng,
  until,
} from '../helpers/browser.ts';
import { startFrontend, upload } from '../helpers/frontend.ts';

// `?`, `#`, `%` and a non-ASCII character are all valid in a key and all break a URL that is not
// percent-encoded, so this key checks every link the pages build.
const KEY = `sunny☀?#%-${process.pid}.png`;
const png = solidPng(320, 200, [79, 70, 229]);
const BMP_KEY = `bitmap-${process.pid}`;

/** The gallery thumbnail of `key`, as a browser-side expression. */
const thumbOf = (key: string) =>
  `[...document.querySelectorAll('[data-testid=keys] li')].find((li) => li.textContent.includes(${JSON.stringify(key)}))?.querySelector('img')`;

/** A valid 24-bit BMP, which browsers show and libvips cannot read (no thumbnail). */
function bmp(width: number, height: number): Buffer {
  const row = Math.ceil((width * 3) / 4) * 4;
  const file = Buffer.alloc(54 + row * height, 0x80);
  file.write('BM', 0, 'latin1');
  file.writeUInt32LE(file.length, 2);
  file.writeUInt32LE(54, 10);
  file.writeUInt32LE(40, 14);
  file.writeInt32LE(width, 18);
  file.writeInt32LE(height, 22);
  file.writeUInt16LE(1, 26);
  file.writeUInt16LE(24, 28);
  file.writeUInt32LE(0, 30);
  return file;
}

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

  it('the key list is a gallery of lazy thumbnails, made as variants by the pool', async () => {
    // An image the transformer cannot read (a BMP) is listed too, with a placeholder.
    const stored = await upload(frontend.url, BMP_KEY, bmp(4, 4), 'file');
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
    const thumbAnswer = page.waitForResponse(
      (r) => r.url().includes('/images/sunny') && r.url().includes('w='),
    );
    await open('/keys');
    const thumb = page
      .locator('[data-testid=keys] li', { hasText: KEY })
      .locator('img[data-thumb]');
    assert.equal(await thumb.getAttribute('loading'), 'lazy');
    assert.equal(
      await thumb.getAttribute('src'),
      `/images/${encodeURIComponent(KEY)}?w=256&h=256&format=auto`,
      'the smallest allowed size of at least 160 px, square, in the best format',
    );
    // The earlier visit cached it, so Chromium may revalidate (304): ask again with its Accept.
    const answer = await thumbAnswer;
    assert.ok([200, 304].includes(answer.status()), String(answer.status()));
    const again = await fetch(answer.url(), {
      headers: { accept: (await answer.request().allHeaders()).accept ?? '' },
    });
    assert.equal(again.headers.get('content-type'), 'image/avif', 'Chromium takes AVIF');
    assert.match(again.headers.get('vary') ?? '', /Accept/i);
    // Cover never enlarges: a 320 × 200 original gives a 256 × 200 crop, shown square by CSS.
    const [width, height] = await decodedImageSize(
      page,
      `[data-testid=keys] li:has-text("${KEY}") img`,
    );
    assert.deepEqual([width, height], [256, 200]);
    await until(page, `${thumbOf(BMP_KEY)}?.parentElement.classList.contains('no-preview')`);
    assert.equal(
      await page.evaluate<string>(
        `getComputedStyle((${thumbOf(BMP_KEY)}).parentElement, '::after').content`,
      ),
      '"No preview"',
    );
    await shoot('gallery');

    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
    });
    const mobile = await phone.newPage();
    await mobile.goto(`${frontend.url}/keys`);
    const lefts = await mobile.evaluate<number[]>(
      "[...document.querySelectorAll('[data-testid=keys] li')].map((li) => Math.round(li.getBoundingClientRect().left))",
    );
    assert.equal(new Set(lefts).size, 2, `two columns on a phone: ${lefts}`);
    const overflow = await mobile.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    assert.equal(overflow, 0, 'the gallery scrolls sideways on a phone');
    // 2× screen: the 2× source (320 px square) is the one loaded.
    const img = thumbOf(KEY);
    await until(
      mobile,
      `(${img})?.complete && (${img}).naturalWidth > 0 && (${img}).currentSrc.includes('w=320')`,
    );
    await mobile.screenshot({ path: screenshotPath('gallery-phone'), fullPage: true });
    await phone.close();
  });

  it('the image page offers sizes and formats as copyable URLs, and builds any other', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: frontend.url });
    await open(`/image/${encodeURIComponent(KEY)}`);
    const section = page.locator('[data-variants]');
    const first = section.locator('[data-variant-url]').first();
    const url = await first.inputValue();
    assert.equal(url, `${frontend.url}/images/${encodeURIComponent(KEY)}?w=256&h=256&format=auto`);
    await section.locator('[data-copy]').first().click();
    assert.equal(await page.evaluate<string>('navigator.clipboard.readText()'), url);
    assert.equal(await section.locator('[data-copy]').first().innerText(), 'Copied');

    const builder = section.locator('[data-variant-builder]');
    assert.equal(
      await builder.locator('select[name=fit]').isDisabled(),
      true,
      'fit needs both sizes',
    );
    await builder.locator('select[name=w]').selectOption('128');
    await builder.locator('select[name=format]').selectOption('webp');
    const built = await builder.locator('[data-built]').inputValue();
    assert.equal(built, `${frontend.url}/images/${encodeURIComponent(KEY)}?w=128&format=webp`);
    const response = await fetch(built);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/webp');
    const made = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
    assert.deepEqual([made.format, made.width], ['webp', 128]);
    await builder.locator('select[name=h]').selectOption('128');
    assert.equal(await builder.locator('select[name=fit]').isDisabled(), false);
    assert.equal(
      await builder.locator('[data-built]').inputValue(),
      `${frontend.url}/images/${encodeURIComponent(KEY)}?w=128&h=128&fit=cover&format=webp`,
    );
    await shoot('image-variants');
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
