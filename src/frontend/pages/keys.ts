/**
 * The gallery: one page of keys (in the store's order) as thumbnails linking to their image
 * pages, a substring search, the total, and a cursor link to the next page. There is no
 * "previous" link: the store pages forward by cursor only, so the way back is "first page".
 *
 * Thumbnails are variants (square crops, in the best format the browser takes), loaded lazily,
 * so a page of 50 keys costs only the thumbnails in view; app.js puts a placeholder in place of
 * one that cannot be made (an image the transformer refuses stays openable on its page).
 */

import { html, type SafeHtml } from '../../http/web/html.ts';
import { allowedSize } from '../variants/spec.ts';
import { formatCount, imagePageUrl, keysUrl, variantUrl } from './format.ts';
import { layout } from './layout.ts';

/** The thumbnails' edge in CSS pixels, and the allowed sizes for 1× and 2× screens. */
const THUMB_PX = 160;

export interface KeysPageData {
  /** The variant sizes the frontend allows (--variant-sizes), ascending. */
  sizes: readonly number[];
  keys: readonly string[];
  /** Keys matching the search (all keys without one). */
  total: number;
  q: string;
  after: string | undefined;
  next: string | undefined;
}

function thumbnail(key: string, sizes: readonly number[]): SafeHtml {
  const url = (px: number) => {
    const size = allowedSize(px, sizes);
    return variantUrl(key, { w: size, h: size, format: 'auto' });
  };
  return html`<li><a href="${imagePageUrl(key)}">
      <span class="thumb checkerboard"><img src="${url(THUMB_PX)}" srcset="${url(THUMB_PX)} 1x, ${url(2 * THUMB_PX)} 2x"
        loading="lazy" decoding="async" width="${THUMB_PX}" height="${THUMB_PX}" alt="" data-thumb></span>
      <span class="caption">${key}</span></a></li>`;
}

function summary(data: KeysPageData): string {
  const { total, q } = data;
  if (!q && total === 0) return 'No images stored yet';
  if (!q) return `${formatCount(total)} ${total === 1 ? 'image' : 'images'} stored`;
  if (total === 0) return `No keys contain “${q}”`;
  return `${formatCount(total)} ${total === 1 ? 'key contains' : 'keys contain'} “${q}”`;
}

function emptyState(data: KeysPageData): SafeHtml {
  if (data.q) {
    return html`<div class="empty"><p><strong>No keys contain “${data.q}”.</strong></p>
      <p class="muted">Search matches any part of a key, case-sensitively.</p>
      <a class="button" href="/keys">Show all keys</a></div>`;
  }
  if (data.after) {
    return html`<div class="empty"><p><strong>No more keys.</strong></p>
      <a class="button" href="/keys">Back to the first page</a></div>`;
  }
  return html`<div class="empty"><p><strong>No images yet — upload one.</strong></p>
    <p class="muted">Images you upload appear here under their keys.</p>
    <a class="button primary" href="/upload">Upload an image</a></div>`;
}

export function keysPage(data: KeysPageData): SafeHtml {
  const { keys, q } = data;
  return layout({
    title: q ? `Keys containing “${q}”` : 'Keys',
    nav: 'keys',
    body: html`
<section class="card">
  <div class="card-head">
    <div>
      <h1>Keys</h1>
      <p class="muted" data-testid="total">${summary(data)}</p>
    </div>
    <a class="button primary" href="/upload">Upload</a>
  </div>
  <form class="search" action="/keys" method="get" role="search">
    <label class="visually-hidden" for="q">Search keys</label>
    <div class="input-row">
      <input id="q" name="q" type="search" value="${q}" placeholder="Search keys (any part of a key)"
        autocomplete="off" autocapitalize="off" spellcheck="false">
      <button class="button" type="submit">Search</button>
    </div>
  </form>
  ${
    keys.length === 0
      ? emptyState(data)
      : html`<ul class="gallery" data-testid="keys">
    ${keys.map((key) => thumbnail(key, data.sizes))}
  </ul>`
  }
  ${
    (data.after || data.next) &&
    html`<nav class="pager" aria-label="Pages">
    ${data.after ? html`<a class="button" href="${keysUrl({ q })}">← First page</a>` : html`<span></span>`}
    ${data.next && html`<a class="button" href="${keysUrl({ q, after: data.next })}" rel="next">Next page →</a>`}
  </nav>`
  }
</section>`,
  });
}
