/**
 * The image page: one key's image with its facts (type, size, version, upload time) and what to
 * do next (re-upload, open the raw image, open another key).
 *
 * The <img> asks for `/images/<key>?v=<version>`: the version changes on every upload, so a
 * browser that cached the old bytes cannot show them after a re-upload.
 */

import { html, type SafeHtml } from '../../http/web/html.ts';
import { formatBytes, formatCount, formatUtc, imageUrl, uploadUrl } from './format.ts';
import { layout, openKeyForm } from './layout.ts';

export interface ImageInfo {
  key: string;
  contentType: string;
  size: number;
  version: number;
  updatedAt: Date;
}

export function imagePage(image: ImageInfo): SafeHtml {
  const { key } = image;
  return layout({
    title: key,
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
<section class="card">
  ${openKeyForm({ id: 'image-open', label: 'Open another image' })}
</section>`,
  });
}
