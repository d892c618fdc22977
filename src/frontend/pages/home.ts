/** The home page: what pixpool is, how many images it holds, and the ways in (upload, browse, open). */

import { html, type SafeHtml } from '../../http/web/html.ts';
import { formatCount } from './format.ts';
import { layout, openKeyForm } from './layout.ts';

export function homePage(data: { imageCount: number }): SafeHtml {
  const { imageCount } = data;
  const countText =
    imageCount === 0
      ? 'No images stored yet'
      : `${formatCount(imageCount)} ${imageCount === 1 ? 'image' : 'images'} stored`;
  return layout({
    title: 'Home',
    nav: 'home',
    body: html`
<section class="hero card">
  <p class="eyebrow">Elastic image cache</p>
  <h1>Store images by key, get them back fast.</h1>
  <p class="lead">pixpool keeps every image durably and serves it from a pool of in-memory cache
    nodes that grows and shrinks with the load.</p>
  <p class="stat" data-testid="image-count"><strong>${countText}</strong></p>
  <div class="actions">
    <a class="button primary" href="/upload">Upload an image</a>
    <a class="button" href="/keys">Browse keys</a>
  </div>
</section>
<section class="card">
  ${openKeyForm({ id: 'home-open' })}
</section>
<section class="features">
  <div class="feature"><h2>Upload</h2><p>PNG, JPEG, GIF, WebP, BMP or SVG under a key you choose.
    Uploading to a key again replaces its image.</p></div>
  <div class="feature"><h2>Fetch</h2><p>Every image has a stable address,
    <code>/images/&lt;key&gt;</code>, served from cache when it is hot.</p></div>
  <div class="feature"><h2>Browse</h2><p>Search the stored keys by any part of their name.</p></div>
</section>`,
  });
}
