/**
 * The upload page: a key, an image with a preview, and a clear result. upload.js sends the form
 * with fetch to POST /api/upload and shows the API's answer; without JavaScript the form still
 * posts (the answer is then the raw JSON envelope).
 */

import { html, type SafeHtml } from '../../http/web/html.ts';
import { formatBytes, formatUtc, imagePageUrl } from './format.ts';
import { keyRuleText, layout } from './layout.ts';

export interface UploadPageData {
  key: string;
  /** Why the prefilled key is invalid, shown before the user types anything. */
  keyProblem?: string | undefined;
  /** The image the prefilled key holds now, which an upload replaces. */
  existing?: { size: number; contentType: string; version: number; updatedAt: Date } | undefined;
  maxUploadMb: number;
}

export function uploadPage(data: UploadPageData): SafeHtml {
  const { key, keyProblem, existing, maxUploadMb } = data;
  const replaces =
    existing &&
    html`<p class="notice" data-testid="replaces">This key already holds an image
      (<a href="${imagePageUrl(key)}">${existing.contentType}, ${formatBytes(existing.size)}</a>,
      version ${existing.version}, uploaded ${formatUtc(existing.updatedAt)}).
      Uploading replaces it.</p>`;
  return layout({
    title: 'Upload',
    nav: 'upload',
    scripts: ['upload.js'],
    body: html`
<section class="card narrow">
  <h1>Upload an image</h1>
  <p class="muted">Choose a key and an image. Uploading to a key that exists replaces its image.</p>
  ${replaces}
  <form class="upload-form" action="/api/upload" method="post" enctype="multipart/form-data"
    novalidate data-upload data-max-bytes="${maxUploadMb * 1024 * 1024}">
    <div class="field">
      <label for="key">Key</label>
      <input id="key" name="key" type="text" value="${key}" required autocomplete="off"
        autocapitalize="off" spellcheck="false" placeholder="e.g. beach-2025.png"
        data-key-field aria-describedby="key-hint key-error"${keyProblem ? html` aria-invalid="true"` : ''}>
      <p id="key-hint" class="hint">${keyRuleText}</p>
      <p id="key-error" class="field-error" aria-live="polite"${keyProblem ? '' : html` hidden`}>${keyProblem ?? ''}</p>
    </div>
    <div class="field">
      <span class="label" id="file-label">Image</span>
      <label class="dropzone" for="file">
        <input id="file" name="file" type="file" accept="image/*" required
          aria-labelledby="file-label" aria-describedby="file-hint file-error">
        <span class="dropzone-text"><strong>Choose an image</strong> or drop it here</span>
        <span id="file-hint" class="hint">PNG, JPEG, GIF, WebP, BMP or SVG, up to ${maxUploadMb} MB</span>
      </label>
      <p id="file-error" class="field-error" aria-live="polite" hidden></p>
      <figure class="preview" hidden>
        <div class="preview-frame checkerboard">
          <img alt="Preview of the chosen image">
          <span class="preview-none" hidden>No preview</span>
        </div>
        <figcaption>
          <span class="preview-name"></span>
          <span class="preview-meta muted"></span>
        </figcaption>
      </figure>
    </div>
    <div class="form-actions">
      <button class="button primary" type="submit">Upload</button>
    </div>
    <div class="status" role="status" aria-live="polite" hidden></div>
  </form>
</section>`,
  });
}
