/**
 * The page shell every pixpool page shares: document head, header with the product name and nav,
 * main column, footer. Also the small pieces several pages reuse (the "open by key" box, the key
 * rule in words).
 *
 * Scripts are ES modules loaded from /assets (the Content-Security-Policy forbids inline script
 * and inline style attributes), so nothing here may use `style="…"` or `on…=` attributes.
 */
import { MAX_KEY_LENGTH } from '../../core/keys.ts';
import { logo } from '../../http/web/brand.ts';
import { html, raw, type SafeHtml } from '../../http/web/html.ts';
import { pageAssets } from './assets.ts';

export type NavItem = 'home' | 'upload' | 'keys';

export interface PageOptions {
  title: string;
  nav?: NavItem | undefined;
  body: SafeHtml;
  /** Extra module scripts besides app.js, by asset name. */
  scripts?: readonly string[];
}

const navItems: readonly { id: NavItem; href: string; label: string }[] = [
  { id: 'home', href: '/', label: 'Home' },
  { id: 'upload', href: '/upload', label: 'Upload' },
  { id: 'keys', href: '/keys', label: 'Keys' },
];

export function layout(page: PageOptions): SafeHtml {
  const scripts = ['app.js', ...(page.scripts ?? [])];
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${page.title} · pixpool</title>
<link rel="icon" href="${pageAssets.url('icon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${pageAssets.url('app.css')}">
${scripts.map((name) => html`<script type="module" src="${pageAssets.url(name)}"></script>\n`)}
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="site-header">
  <div class="container header-inner">
    <a class="brand" href="/">${logo}<span>pixpool</span></a>
    <nav class="site-nav" aria-label="Main">
      ${navItems.map(
        (item) =>
          html`<a href="${item.href}"${item.id === page.nav ? raw(' aria-current="page"') : ''}>${item.label}</a>`,
      )}
    </nav>
  </div>
</header>
<main id="main" class="container">
${page.body}
</main>
<footer class="site-footer">
  <div class="container">pixpool · an elastic image cache</div>
</footer>
</body>
</html>
`;
}

export const keyRuleText = `1–${MAX_KEY_LENGTH} characters, no spaces or invisible characters, no slash (/). Keys are case-sensitive.`;

/** A GET form to /image?key=…, which redirects to the image page; app.js validates it live. */
export function openKeyForm(options: { id: string; label?: string; value?: string }): SafeHtml {
  const inputId = `${options.id}-key`;
  return html`<form class="open-key" action="/image" method="get" novalidate data-open-key>
  <label for="${inputId}">${options.label ?? 'Open an image by key'}</label>
  <div class="input-row">
    <input id="${inputId}" name="key" type="text" value="${options.value ?? ''}" required
      autocomplete="off" autocapitalize="off" spellcheck="false" placeholder="e.g. cat.png"
      data-key-field aria-describedby="${inputId}-error">
    <button class="button" type="submit">Open</button>
  </div>
  <p id="${inputId}-error" class="field-error" aria-live="polite" hidden></p>
</form>`;
}
