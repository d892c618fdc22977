/**
 * A real browser for page tests: playwright-core driving the system's Chromium (Debian's
 * `chromium` package at /usr/bin/chromium), headless, plus where screenshots go and a real PNG
 * encoder so the browser has something it can actually decode.
 *
 * playwright-core ships no browser; CI installs Chromium with apt. A missing binary fails the
 * test with the command that fixes it rather than skipping silently.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-results', 'screenshots');

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_PATH}; browser tests need it: apt-get install -y chromium`,
    );
  }
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-dev-shm-usage',
    ],
  });
}

/** The DOM properties the tests read (the project compiles without the DOM lib). */
interface ImageElement {
  naturalWidth: number;
  naturalHeight: number;
  decode(): Promise<void>;
}

/**
 * Waits until the first <img> matching `selector` has loaded and decoded, and returns its
 * natural size; fails if the browser cannot decode it (a broken image has no size).
 */
export async function decodedImageSize(page: Page, selector: string): Promise<[number, number]> {
  const image = page.locator(selector).first();
  await image.waitFor();
  return image.evaluate(async (element) => {
    const img = element as unknown as ImageElement;
    await img.decode();
    return [img.naturalWidth, img.naturalHeight] as [number, number];
  });
}

/**
 * Waits until a browser-side expression is truthy. Not page.waitForFunction: a string predicate
 * there is eval'd in the page, which pixpool's pages' CSP (rightly) forbids; page.evaluate is not.
 */
export async function until(page: Page, expression: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate<boolean>(`Boolean(${expression})`))) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const screenshotPath = (name: string) => join(SCREENSHOT_DIR, `${name}.png`);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A valid RGB PNG of one colour, with a diagonal stripe so it is not a flat fill. */
export function solidPng(width: number, height: number, rgb: [number, number, number]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  // bytes 10–12: compression, filter and interlace methods, all 0
  const row = 1 + width * 3;
  const pixels = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    pixels[y * row] = 0; // filter type: none
    for (let x = 0; x < width; x++) {
      const stripe = Math.abs(x - y) < Math.max(2, width / 16);
      const at = y * row + 1 + x * 3;
      pixels[at] = stripe ? 255 : rgb[0];
      pixels[at + 1] = stripe ? 255 : rgb[1];
      pixels[at + 2] = stripe ? 255 : rgb[2];
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
