/**
 * HTML templating that escapes by default: `html` is a tagged template whose every interpolated
 * value is escaped unless it is itself the output of `html` (a `SafeHtml`).
 *
 * Why not a helper called by hand: a forgotten call is an injection; here forgetting is safe and
 * opting out takes `raw()`, which is easy to grep for. Limits: it escapes for text and for quoted
 * attribute values only; never interpolate into a `<script>`, a `<style>`, an unquoted attribute,
 * or a URL attribute whose scheme comes from input (build URLs with `encodeURIComponent`).
 */

export class SafeHtml {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

/** What may be interpolated: `false`, null and undefined render nothing so `cond && html``…`` works. */
export type HtmlValue =
  | SafeHtml
  | string
  | number
  | false
  | null
  | undefined
  | readonly HtmlValue[];

const entities: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => entities[c] ?? c);
}

function render(value: HtmlValue): string {
  if (value === false || value === null || value === undefined) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** Trusted markup, e.g. a constant SVG. Never pass anything derived from a request. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
