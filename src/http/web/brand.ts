/**
 * pixpool's mark, for the header of every pixpool UI (the frontend's pages, the manager's
 * dashboard), so they read as one product. Inline SVG rather than an <img> so its colours come
 * from app.css (the logo-a/b/c classes) and follow the light and dark themes; assets/icon.svg is
 * the same shape with fixed colours, for the browser tab.
 */
import { raw } from './html.ts';

// A 2×2 "pool" of pixels; constant markup, so raw() is safe.
export const logo = raw(
  '<svg class="logo" viewBox="0 0 32 32" aria-hidden="true" focusable="false">' +
    '<rect x="2" y="2" width="13" height="13" rx="3.5" class="logo-a"/>' +
    '<rect x="17" y="2" width="13" height="13" rx="3.5" class="logo-b"/>' +
    '<rect x="2" y="17" width="13" height="13" rx="3.5" class="logo-b"/>' +
    '<rect x="17" y="17" width="13" height="13" rx="3.5" class="logo-c"/></svg>',
);
