/**
 * The image page: one key's image with its facts (type, size, version, upload time), what to
 * do next (re-upload, open the raw image, open another key), and its variants: a few ready URLs
 * and a builder (variants.js) for any allowed size, fit and format, each URL copyable.
 *
 * The <img> asks for `/images/<key>?v=<version>`: the version changes on every upload, so a
 * browser that cached the old bytes cannot show them after a re-upload.
 */

import { html, type SafeHtml } from '../../http/web/html.ts';
import { allowedSize } from '../variants/spec.ts';
import { formatBytes, formatCount, formatUtc, imageUrl, uploadUrl, variantUrl } from './format.ts';
import { layout, openKeyForm } from './layout.ts';

export interface ImageInfo {
  key: string;
  contentType: string;
  size: number;
  version: number;
  updatedAt: Date;
}

/** Ready-made variants: what people most often want from an image. */
function examples(key: string, sizes: readonly number[]) {
  const at = (px: number) => allowedSize(px, sizes);
  return [
    {
      label: `Square thumbnail, ${at(256)} px, best format for the browser`,
      url: variantUrl(key, { w: at(256), h: at(256), format: 'auto' }),
    },
    { label: `${at(640)} px wide, WebP`, url: variantUrl(key, { w: at(640), format: 'webp' }) },
    { label: `${at(1280)} px wide, AVIF`, url: variantUrl(key, { w: at(1280), format: 'avif' }) },
    {
      label: `${at(800)} px wide, JPEG at quality 80`,
      url: variantUrl(key, { w: at(800), format: 'jpeg', q: 80 }),
    },
  ];
}

const option = (value: string, label: string) => html`<option value="${value}">${label}</option>`;

function variantsSection(key: string, sizes: readonly number[]): SafeHtml {
  const sizeOptions = [option('', 'original'), ...sizes.map((s) => option(String(s), `${s} px`))];
  return html`<section class="card variants" data-variants data-key="${key}">
  <h2>Sizes and formats</h2>
  <p class="muted">Every URL below serves this image resized or converted. Each variant is cached in
    the pool beside the original, and a re-upload replaces them all. Sizes round up to the allowed
    ones (${sizes.join(', ')} px); images are never enlarged.</p>
  <ul class="variant-list">
    ${examples(key, sizes).map(
      (example) => html`<li><span>${example.label}</span>
      <span class="input-row"><input class="url" type="text" readonly value="${example.url}" data-variant-url
        aria-label="URL: ${example.label}"><button class="button" type="button" data-copy>Copy</button>
      <a class="button" href="${example.url}">Open</a></span></li>`,
    )}
  </ul>
  <form class="variant-builder" data-variant-builder>
    <h3>Build your own</h3>
    <div class="builder-fields">
      <label>Width <select name="w">${sizeOptions}</select></label>
      <label>Height <select name="h">${sizeOptions}</select></label>
      <label>Fit <select name="fit">${option('cover', 'cover (crop to fill)')}${option('contain', 'contain (letterbox)')}${option('inside', 'inside (fit within)')}</select></label>
      <label>Format <select name="format">${option('', 'as uploaded')}${option('auto', 'auto (from Accept)')}${option('webp', 'WebP')}${option('avif', 'AVIF')}${option('jpeg', 'JPEG')}${option('png', 'PNG')}</select></label>
    </div>
    <div class="input-row"><input class="url" type="text" readonly value="${imageUrl(key)}" data-variant-url
      data-built aria-label="The URL of the variant you built"><button class="button" type="button" data-copy>Copy</button>
      <a class="button" href="${imageUrl(key)}" data-built-link>Open</a></div>
    <p class="muted" data-copied aria-live="polite"></p>
  </form>
</section>`;
}

export function imagePage(image: ImageInfo, sizes: readonly number[]): SafeHtml {
  const { key } = image;
  return layout({
    title: key,
    scripts: ['variants.js'],
    body: html`
<div class="image-layout">
  <section class="card image-card">
    <div class="image-frame checkerboard" data-image-frame>
      <img src="${imageUrl(key)}?v=${image.version}" alt="The image stored under ${key}"
        data-image>
      <p class="image-fallback" hidden>The image could not be displayed.
        <a href="${imageUrl(key)}">Open the raw image</a> to see what the server says.</p>
    </div>
  </section>
  <section class="card details-card">
    <p class="eyebrow">Image key</p>
    <h1 class="key-title" data-testid="key">${key}</h1>
    <dl class="facts">
      <div><dt>Type</dt><dd data-testid="type">${image.contentType}</dd></div>
      <div><dt>Size</dt><dd data-testid="size">${formatBytes(image.size)}
        ${image.size >= 1024 && html`<span class="muted">(${formatCount(image.size)} bytes)</span>`}</dd></div>
      <div><dt>Dimensions</dt><dd data-dimensions>—</dd></div>
      <div><dt>Uploaded</dt><dd><time datetime="${image.updatedAt.toISOString()}" data-local>${formatUtc(image.updatedAt)}</time></dd></div>
      <div><dt>Version</dt><dd data-testid="version">${image.version}</dd></div>
    </dl>
    <div class="actions">
      <a class="button primary" href="${uploadUrl(key)}">Re-upload</a>
      <a class="button" href="${imageUrl(key)}">Raw image</a>
    </div>
  </section>
</div>
${variantsSection(key, sizes)}
<section class="card">
  ${openKeyForm({ id: 'image-open', label: 'Open another image' })}
</section>`,
  });
}
