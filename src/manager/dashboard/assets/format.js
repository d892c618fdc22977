/**
 * Small helpers for the dashboard: building DOM nodes (text always through textContent, never
 * innerHTML: node addresses, log messages and server errors are data) and formatting numbers,
 * sizes, rates, times and region lists.
 */

/** `el('p', 'hint', 'text')`; children may be nodes or strings (appended as text). */
export function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const isNumber = (value) => typeof value === 'number' && Number.isFinite(value);

export function formatCount(value) {
  return isNumber(value) ? value.toLocaleString('en-US') : '—';
}

/** 1536 → "1.5 KB"; binary multiples, as the capacity in MB is. */
export function formatBytes(bytes) {
  if (!isNumber(bytes)) return '—';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0).replace(/\.0$/, '')} ${units[unit]}`;
}

/** A value in MB (the stats' unit): "0.42 MB", "12.3 MB", "1,024 MB". */
export function formatMb(mb) {
  if (!isNumber(mb)) return '—';
  const digits = mb === 0 ? 0 : mb < 1 ? 2 : mb < 100 ? 1 : 0;
  return `${mb.toLocaleString('en-US', { maximumFractionDigits: digits })} MB`;
}

/** A fraction 0..1 → "83.4%". */
export function formatFraction(value) {
  return isNumber(value) ? formatPercent(value * 100) : '—';
}

/** A percentage 0..100 → "83.4%". */
export function formatPercent(value) {
  if (!isNumber(value)) return '—';
  const digits = value === 0 || value === 100 ? 0 : 1;
  return `${value.toFixed(digits)}%`;
}

const hhmm = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
});
const hhmmss = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

const toDate = (value) => (value instanceof Date ? value : new Date(value));
const valid = (date) => !Number.isNaN(date.getTime());

/** Wall-clock "14:05" in the reader's zone. */
export function clockMinutes(value) {
  const date = toDate(value);
  return valid(date) ? hhmm.format(date) : '—';
}

/** Wall-clock "14:05:09" in the reader's zone. */
export function clockSeconds(value) {
  const date = toDate(value);
  return valid(date) ? hhmmss.format(date) : '—';
}

/** "21 Nov 2025, 14:05:09": for title attributes. */
export function fullTime(value) {
  const date = toDate(value);
  return valid(date) ? full.format(date) : String(value);
}

/** "2 minutes ago" style, for entries in the last day; the clock time otherwise. */
export function ago(value, now = Date.now()) {
  const date = toDate(value);
  if (!valid(date)) return '';
  const seconds = Math.round((now - date.getTime()) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return fullTime(date);
}

/** [0,1,2,3,7,9,10] → "0–3, 7, 9–10". */
export function regionRanges(regions) {
  if (!Array.isArray(regions) || regions.length === 0) return '—';
  const sorted = [...new Set(regions.filter(isNumber))].sort((a, b) => a - b);
  const parts = [];
  let start = sorted[0];
  let previous = start;
  for (const region of sorted.slice(1).concat(Number.NaN)) {
    if (region === previous + 1) {
      previous = region;
      continue;
    }
    parts.push(start === previous ? `${start}` : `${start}–${previous}`);
    start = region;
    previous = region;
  }
  return parts.join(', ');
}

/** "1 node", "3 nodes". */
export function plural(count, one, many = `${one}s`) {
  return `${formatCount(count)} ${count === 1 ? one : many}`;
}
