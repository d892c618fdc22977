/**
 * The pages for when something is not there or not right: an unknown key (404, with an offer to
 * upload under it), an invalid key (400, with the rule), an unknown page (404) and a server
 * failure (500). Each says what happened and offers a way on, never a bare status line.
 */

import { html, type SafeHtml } from '../../http/web/html.ts';
import { uploadUrl } from './format.ts';
import { keyRuleText, layout, openKeyForm } from './layout.ts';

function problem(options: {
  status: number;
  title: string;
  body: SafeHtml;
  open?: { value: string };
}): SafeHtml {
  return layout({
    title: options.title,
    body: html`
<section class="card problem narrow" data-status="${options.status}">
  <p class="status-badge">${options.status}</p>
  <h1>${options.title}</h1>
  ${options.body}
</section>
${options.open && html`<section class="card narrow">${openKeyForm({ id: 'problem-open', label: 'Try another key', value: options.open.value })}</section>`}`,
  });
}

export function unknownKeyPage(key: string): SafeHtml {
  return problem({
    status: 404,
    title: 'No image under this key yet',
    body: html`<p>Nothing is stored under <code class="key">${key}</code>. Keys are
    case-sensitive, so check the spelling, or make it yours.</p>
  <div class="actions">
    <a class="button primary" href="${uploadUrl(key)}">Upload an image under this key</a>
    <a class="button" href="/keys">Browse keys</a>
  </div>`,
    open: { value: '' },
  });
}

export function invalidKeyPage(key: string, why: string): SafeHtml {
  return problem({
    status: 400,
    title: 'That is not a valid key',
    body: html`<p>${why}</p>
  <p class="muted">A key has ${keyRuleText}</p>
  ${key && html`<p class="muted">You asked for <code class="key">${key}</code>.</p>`}`,
    open: { value: key },
  });
}

export function pageNotFoundPage(path: string): SafeHtml {
  return problem({
    status: 404,
    title: 'Page not found',
    body: html`<p>There is no page at <code>${path}</code>.</p>
  <div class="actions"><a class="button primary" href="/">Go home</a>
    <a class="button" href="/keys">Browse keys</a></div>`,
  });
}

export function serverErrorPage(): SafeHtml {
  return problem({
    status: 500,
    title: 'Something went wrong on our side',
    body: html`<p>pixpool could not build this page just now. The details are in the server’s log;
    trying again in a moment usually helps.</p>
  <div class="actions"><a class="button primary" href="/">Go home</a></div>`,
  });
}
