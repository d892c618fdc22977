/**
 * The manager dashboard: reads GET /api/manager/dashboard and /aggregate_stats every 5 s (every
 * 1.5 s while a resize runs, so its progress shows) and renders the pool, nodes, charts and log;
 * wires the controls to the POST/DELETE endpoints.
 *
 * Rules: every API error is shown next to the control that caused it (or in the banner for the
 * refresh), with the server's own message; a 401 pauses everything and asks for the admin token;
 * a form the user is editing is never overwritten by a refresh; text from the server goes in
 * through textContent only.
 */
import { ApiError, api, getToken, setToken } from './api.js';
import { Charts } from './charts.js';
import {
  ago,
  clockSeconds,
  el,
  formatBytes,
  formatCount,
  formatFraction,
  fullTime,
  plural,
  regionRanges,
} from './format.js';

const REFRESH_MS = 5000;
const RESIZING_REFRESH_MS = 1500;

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const ui = {
  dashboard: $('[data-dashboard]'),
  globalError: $('[data-testid=global-error]'),
  refreshDot: $('[data-refresh-dot]'),
  refreshText: $('[data-refresh-text]'),
  refreshButton: $('[data-refresh]'),
  forgetToken: $('[data-forget-token]'),
  tokenCard: $('[data-testid=token-card]'),
  tokenForm: $('[data-token-form]'),
  tokenReason: $('[data-token-reason]'),
  poolSize: $('[data-pool-size]'),
  poolOf: $('[data-pool-of]'),
  poolMode: $('[data-pool-mode]'),
  resizing: $('[data-resizing]'),
  resizeProgress: $('[data-resize-progress]'),
  resizeHint: $('[data-resize-hint]'),
  grow: $('[data-testid=grow]'),
  shrink: $('[data-testid=shrink]'),
  poolChanged: $('[data-testid=pool-changed]'),
  poolChangedText: $('[data-pool-changed-text]'),
  nodeRows: $('[data-node-rows]'),
  nodeSummary: $('[data-node-summary]'),
  noNodes: $('[data-no-nodes]'),
  modeRadios: $$('[data-mode-selector] input[name=mode]'),
  modeHint: $('[data-mode-hint]'),
  autoscalerForm: $('[data-autoscaler-form]'),
  autoscalerSubmit: $('[data-testid=autoscaler-submit]'),
  configForm: $('[data-config-form]'),
  clearCache: $('[data-clear-cache]'),
  deleteAll: $('[data-delete-all]'),
  deleteDialog: $('[data-testid=delete-dialog]'),
  deleteForm: $('[data-delete-form]'),
  deleteInput: $('[data-testid=delete-confirm-input]'),
  deleteConfirm: $('[data-testid=delete-confirm]'),
  log: $('[data-log]'),
  logEmpty: $('[data-log-empty]'),
};

const state = {
  /** The last good `dashboard` answer. */
  data: undefined,
  stats: undefined,
  charts: undefined,
  lastSize: undefined,
  /** target_size from our last resize request, while that resize is still under way. */
  target: undefined,
  seenLog: undefined,
  /** Pool size before the changes the pool-changed notice reports. */
  changedFrom: undefined,
  lastUpdate: undefined,
  /** Actions in flight, by name: their controls stay disabled. */
  busy: new Set(),
  needsToken: false,
  timer: undefined,
  refreshing: false,
  again: false,
};

// ---------------------------------------------------------------------------------------------
// Status boxes (one per control) and the banner

const statusBox = (name) => $(`[data-status="${name}"]`);

/**
 * Fills a status box: kind is 'success', 'error' or 'info'; detail is a string or a list of
 * nodes (per-node results).
 */
function showStatus(name, kind, title, detail) {
  const box = statusBox(name);
  box.className = `status ${kind}`;
  box.replaceChildren(el('p', 'status-title', title));
  if (typeof detail === 'string' && detail) box.append(el('p', 'status-detail', detail));
  else if (detail instanceof Node) box.append(detail);
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.hidden = false;
}

function hideStatus(name) {
  const box = statusBox(name);
  box.hidden = true;
  box.replaceChildren();
}

/** An action failed: a 401 asks for the token, anything else is shown where it happened. */
function actionFailed(name, title, error) {
  if (error instanceof ApiError && error.status === 401) {
    hideStatus(name);
    askForToken(error.message);
    return;
  }
  showStatus(name, 'error', title, error?.message ?? String(error));
}

/** Per-node results of POST /config or DELETE /cache/clear: one line per node. */
function nodeResults(nodes, verb) {
  const list = el('ul', 'node-results');
  for (const node of Array.isArray(nodes) ? nodes : []) {
    const item = el(
      'li',
      node.ok ? 'ok' : 'failed',
      el('span', 'mark', node.ok ? '✓' : '✕'),
      el('code', '', node.id),
      el('span', '', node.ok ? verb : (node.error ?? 'failed, without a reason')),
    );
    item.dataset.node = node.id;
    list.append(item);
  }
  return list;
}

function setBusy(name, busy) {
  if (busy) state.busy.add(name);
  else state.busy.delete(name);
  if (state.data) renderControls(state.data);
}

// ---------------------------------------------------------------------------------------------
// Refresh loop

function schedule() {
  clearTimeout(state.timer);
  if (state.needsToken) return;
  const resizing = state.data?.pool?.resizing || state.data?.pool?.queued > 0;
  state.timer = setTimeout(refresh, resizing ? RESIZING_REFRESH_MS : REFRESH_MS);
}

async function refresh() {
  clearTimeout(state.timer);
  if (state.refreshing) {
    state.again = true;
    return;
  }
  state.refreshing = true;
  if (!state.lastUpdate) setRefreshState('busy', 'Loading…');
  const [dashboard, stats] = await Promise.allSettled([
    api('GET', '/api/manager/dashboard'),
    api('GET', '/api/manager/aggregate_stats'),
  ]);
  state.refreshing = false;

  const unauthorized = [dashboard, stats].find(
    (r) => r.status === 'rejected' && r.reason instanceof ApiError && r.reason.status === 401,
  );
  if (unauthorized) {
    askForToken(unauthorized.reason.message);
    return;
  }

  try {
    show(dashboard, stats);
  } catch (error) {
    // A bug or an answer of an unexpected shape: say so, and keep refreshing.
    ui.globalError.textContent = `The dashboard could not show the manager’s answer: ${error?.message ?? error}`;
    ui.globalError.hidden = false;
    setRefreshState('error', 'Display error');
  }

  if (state.again) {
    state.again = false;
    refresh();
    return;
  }
  schedule();
}

/** Renders one round of answers: the pool (or the banner saying why not) and the charts. */
function show(dashboard, stats) {
  if (dashboard.status === 'fulfilled') {
    state.lastUpdate = new Date();
    ui.globalError.hidden = true;
    render(dashboard.value);
    setRefreshState('ok', `Updated ${clockSeconds(state.lastUpdate)}`);
  } else {
    const when = state.lastUpdate ? ` What you see is from ${clockSeconds(state.lastUpdate)}.` : '';
    ui.globalError.textContent = `Could not refresh the pool: ${dashboard.reason.message}${when} Retrying every ${REFRESH_MS / 1000} s.`;
    ui.globalError.hidden = false;
    setRefreshState(
      'error',
      state.lastUpdate ? `Offline since ${clockSeconds(state.lastUpdate)}` : 'Offline',
    );
  }

  if (stats.status === 'fulfilled') {
    state.stats = stats.value;
    hideStatus('stats');
    drawCharts();
  } else if (!ui.dashboard.hidden) {
    showStatus('stats', 'error', 'Could not load the statistics', stats.reason.message);
  }
}

function setRefreshState(kind, text) {
  ui.refreshDot.className = `dot ${kind === 'ok' ? 'ok' : kind === 'error' ? 'bad' : 'warn'}`;
  ui.refreshText.textContent = text;
}

function drawCharts() {
  if (ui.dashboard.hidden || !state.stats) return;
  state.charts ??= new Charts($('[data-testid=charts]'));
  if (state.charts.available) {
    state.charts.update(state.stats);
  } else {
    showStatus(
      'stats',
      'error',
      'The charts could not be drawn',
      'Chart.js did not load (/dashboard/assets/chart.umd.min.js); reload the page.',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function render(data) {
  state.data = data;
  ui.dashboard.hidden = false;
  ui.tokenCard.hidden = true;
  ui.forgetToken.hidden = !getToken();
  renderPool(data.pool ?? {});
  renderNodes(Array.isArray(data.nodes) ? data.nodes : []);
  renderControls(data);
  fillForms(data);
  renderLog(Array.isArray(data.log) ? data.log : []);
}

const modeName = (mode) => (mode === 'automatic' ? 'Automatic' : 'Manual');

function renderPool(pool) {
  const size = pool.size ?? 0;
  ui.poolSize.textContent = formatCount(size);
  ui.poolOf.textContent = `of ${formatCount(pool.max ?? 8)} ${pool.max === 1 ? 'node' : 'nodes'}`;
  ui.poolMode.textContent = `${modeName(pool.mode)} mode`;
  ui.poolMode.className = `badge ${pool.mode === 'automatic' ? 'auto' : 'manual'}`;

  const underWay = Boolean(pool.resizing) || pool.queued > 0;
  if (!underWay) {
    state.target = undefined;
    // "Resize queued: …" is done with; the pool-changed notice tells the outcome.
    if (statusBox('resize').classList.contains('info')) hideStatus('resize');
  }
  ui.resizing.hidden = !underWay;
  ui.resizing.textContent =
    pool.queued > 1 ? `Resizing… ${formatCount(pool.queued)} pending` : 'Resizing…';
  ui.resizeProgress.hidden = !underWay;

  $('[data-fact=map_version]').textContent = formatCount(pool.map_version);
  const assignment = pool.assignment;
  $('[data-fact=assignment]').textContent =
    assignment === undefined || assignment === null
      ? '—'
      : typeof assignment === 'object'
        ? JSON.stringify(assignment)
        : String(assignment);
  $('[data-fact=queued]').textContent = formatCount(pool.queued ?? 0);

  if (state.lastSize !== undefined && size !== state.lastSize) {
    // Counted from the size before the first change the user has not dismissed yet.
    if (ui.poolChanged.hidden) state.changedFrom = state.lastSize;
    const from = state.changedFrom ?? state.lastSize;
    const at = clockSeconds(new Date());
    ui.poolChangedText.textContent =
      size === from
        ? `The pool changed and is back at ${plural(size, 'node')} (${at}).`
        : `The pool ${size > from ? 'grew' : 'shrank'} from ${plural(from, 'node')} to ${plural(size, 'node')} (last change ${at}).`;
    ui.poolChanged.hidden = false;
    ui.poolSize.classList.remove('flash');
    // Reflow, so the animation restarts on a second change.
    void ui.poolSize.offsetWidth;
    ui.poolSize.classList.add('flash');
  }
  state.lastSize = size;
}

function healthClass(node) {
  if (node.state === 'stopped') return 'off';
  if (node.state === 'failed' || !node.healthy) return 'bad';
  if (node.state === 'active') return 'ok';
  return 'warn';
}

function cell(label, className, ...children) {
  const td = el('td', className, ...children);
  td.dataset.label = label;
  return td;
}

function renderNodes(nodes) {
  const rows = nodes.map((node) => {
    const health = healthClass(node);
    const stateText = `${node.state ?? 'unknown'}${node.healthy || node.state === 'stopped' ? '' : ' · unhealthy'}`;
    const usage = el('div', 'usage');
    usage.append(
      el(
        'span',
        '',
        node.capacity_bytes
          ? `${formatBytes(node.bytes)} of ${formatBytes(node.capacity_bytes)}`
          : formatBytes(node.bytes),
      ),
    );
    if (typeof node.bytes === 'number' && node.capacity_bytes > 0) {
      const bar = el('span', 'bar');
      const fill = el('span', 'bar-fill');
      // CSSOM, not a style attribute: the Content-Security-Policy allows it.
      fill.style.width = `${Math.min(100, (node.bytes / node.capacity_bytes) * 100).toFixed(1)}%`;
      bar.append(fill);
      usage.append(bar);
    }
    const regions = Array.isArray(node.regions) ? node.regions : [];
    const regionCell = cell(
      'Regions',
      'regions',
      el(
        'span',
        '',
        regionRanges(regions),
        regions.length ? el('span', 'muted', ` (${regions.length})`) : '',
      ),
    );
    const row = el(
      'tr',
      `node-${health}`,
      cell('Node', 'node-id', el('code', '', node.id)),
      cell('Address', 'address', node.address ?? '—'),
      cell('State', 'state', el('span', 'with-dot', el('span', `dot ${health}`), stateText)),
      cell('Items', 'num', formatCount(node.items)),
      cell('Size', '', usage),
      cell('Hit rate', 'num', formatFraction(node.hit_rate)),
      regionCell,
    );
    row.dataset.node = node.id;
    row.dataset.state = node.state;
    return row;
  });
  ui.nodeRows.replaceChildren(...rows);
  ui.noNodes.hidden = nodes.length > 0;
  const healthy = nodes.filter((n) => n.healthy).length;
  $('[data-fact=healthy]').textContent = `${formatCount(healthy)} of ${formatCount(nodes.length)}`;
  ui.nodeSummary.textContent = nodes.length
    ? `${plural(nodes.length, 'node')} · ${formatCount(healthy)} healthy`
    : '';
}

/** Enables, disables and labels the controls from the pool's state and the actions in flight. */
function renderControls(data) {
  const pool = data.pool ?? {};
  const automatic = pool.mode === 'automatic';
  const min = pool.min ?? 1;
  const max = pool.max ?? 8;
  const underWay = Boolean(pool.resizing) || pool.queued > 0;
  const size = underWay && state.target !== undefined ? state.target : (pool.size ?? 0);
  const resizeBusy = state.busy.has('resize');
  ui.grow.disabled = automatic || resizeBusy || size >= max;
  ui.shrink.disabled = automatic || resizeBusy || size <= min;
  ui.resizeHint.textContent = automatic
    ? 'Automatic mode: the autoscaler sizes the pool. Switch to manual to resize by hand.'
    : underWay
      ? `Resizing${state.target !== undefined ? ` to ${plural(state.target, 'node')}` : ''}; resizes run one at a time.`
      : size >= max
        ? `At the maximum of ${plural(max, 'node')}.`
        : size <= min
          ? `At the minimum of ${plural(min, 'node')}.`
          : 'Each press adds or removes one node; resizes run one at a time.';

  const modeBusy = state.busy.has('mode');
  for (const radio of ui.modeRadios) {
    radio.disabled = modeBusy;
    if (!modeBusy) radio.checked = radio.value === (automatic ? 'automatic' : 'manual');
  }
  ui.modeHint.textContent = automatic
    ? 'The autoscaler checks the miss rate every minute and resizes the pool on its own.'
    : 'You resize the pool with + and −; the autoscaler is off.';
  ui.autoscalerSubmit.disabled = state.busy.has('autoscaler');
  ui.autoscalerSubmit.textContent = state.busy.has('autoscaler')
    ? 'Saving…'
    : automatic
      ? 'Save parameters'
      : 'Save and switch to automatic';
  const configSubmit = $('[data-testid=config-submit]');
  configSubmit.disabled = state.busy.has('config');
  configSubmit.textContent = state.busy.has('config') ? 'Applying…' : 'Apply to all nodes';
  ui.clearCache.disabled = state.busy.has('clear');
  ui.clearCache.textContent = state.busy.has('clear') ? 'Clearing…' : 'Clear cache';
  ui.deleteAll.disabled = state.busy.has('delete');
  ui.deleteAll.textContent = state.busy.has('delete') ? 'Deleting…' : 'Delete all data…';
}

/** Puts the server's values into a form unless the user is editing it. */
function fillForm(form, values) {
  const active = document.activeElement;
  const typing = form.contains(active) && active.matches('input, select');
  if (form.dataset.dirty === 'true' || typing) return;
  for (const [name, value] of Object.entries(values)) {
    const field = form.elements.namedItem(name);
    if (field && value !== undefined && value !== null) field.value = String(value);
  }
}

function fillForms(data) {
  if (data.autoscaler) fillForm(ui.autoscalerForm, data.autoscaler);
  if (data.config) fillForm(ui.configForm, data.config);
}

function renderLog(entries) {
  const first = state.seenLog === undefined;
  const seen = state.seenLog ?? new Set();
  const items = entries.map((entry) => {
    const time = el('time', 'log-time', clockSeconds(entry.at));
    time.dateTime = entry.at;
    time.title = `${fullTime(entry.at)} (${ago(entry.at)})`;
    const item = el(
      'li',
      first || seen.has(entry.id) ? '' : 'fresh',
      time,
      el('span', `kind kind-${entry.kind}`, entry.kind),
      el('span', 'log-message', entry.message),
    );
    item.dataset.kind = entry.kind;
    return item;
  });
  ui.log.replaceChildren(...items);
  ui.logEmpty.hidden = entries.length > 0;
  state.seenLog = new Set(entries.map((e) => e.id));
}

// ---------------------------------------------------------------------------------------------
// The admin token

function askForToken(message) {
  state.needsToken = true;
  clearTimeout(state.timer);
  const hadToken = Boolean(getToken());
  ui.dashboard.hidden = true;
  ui.globalError.hidden = true;
  ui.tokenCard.hidden = false;
  ui.forgetToken.hidden = !hadToken;
  ui.tokenReason.textContent = hadToken
    ? `The manager refused the token: ${message}`
    : 'This manager is not on loopback, so its API needs the admin token. It is kept in this tab only (sessionStorage) and sent with every request.';
  setRefreshState('error', 'Token needed');
  $('#token').focus();
}

ui.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('#token');
  const error = $('#token-error');
  const token = input.value.trim();
  if (!token) {
    error.textContent = 'Paste the admin token (printed by the manager when it starts).';
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    return;
  }
  error.hidden = true;
  input.removeAttribute('aria-invalid');
  input.value = '';
  setToken(token);
  state.needsToken = false;
  ui.tokenCard.hidden = true;
  setRefreshState('busy', 'Checking the token…');
  refresh();
});

ui.forgetToken.addEventListener('click', () => {
  setToken(undefined);
  ui.forgetToken.hidden = true;
  state.needsToken = false;
  refresh();
});

ui.refreshButton.addEventListener('click', () => {
  state.needsToken = false;
  refresh();
});

// ---------------------------------------------------------------------------------------------
// Resizing by hand, and the mode

for (const button of [ui.grow, ui.shrink]) {
  button.addEventListener('click', async () => {
    const change = button.dataset.change;
    setBusy('resize', true);
    hideStatus('resize');
    try {
      const result = await api('POST', '/api/manager/poolsize/manual', { change });
      if (typeof result?.target_size === 'number') state.target = result.target_size;
      showStatus(
        'resize',
        'info',
        result?.message ??
          `${change === 'increase' ? 'Growing' : 'Shrinking'} to ${plural(result?.target_size, 'node')}.`,
      );
    } catch (error) {
      actionFailed(
        'resize',
        change === 'increase' ? 'Could not add a node' : 'Could not remove a node',
        error,
      );
    } finally {
      setBusy('resize', false);
    }
    refresh();
  });
}

$('[data-dismiss-pool-changed]').addEventListener('click', () => {
  ui.poolChanged.hidden = true;
});

for (const radio of ui.modeRadios) {
  radio.addEventListener('change', async () => {
    if (!radio.checked) return;
    const mode = radio.value;
    setBusy('mode', true);
    hideStatus('mode');
    try {
      await api('POST', '/api/manager/mode', { mode });
      hideStatus('resize');
      if (state.data?.pool) state.data.pool.mode = mode;
    } catch (error) {
      actionFailed('mode', `Could not switch to ${mode} mode`, error);
    } finally {
      setBusy('mode', false);
    }
    refresh();
  });
}

// ---------------------------------------------------------------------------------------------
// Forms: field errors

function fieldError(form, name, message) {
  const input = form.elements.namedItem(name);
  const error = $(`#${name}-error`);
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    error.textContent = message;
    error.hidden = false;
  } else {
    input.removeAttribute('aria-invalid');
    error.textContent = '';
    error.hidden = true;
  }
}

/** A number from a field, or undefined when it is empty or not a number. */
function numberIn(form, name) {
  const text = form.elements.namedItem(name).value.trim();
  if (text === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** Whether the user has changed a form since it last showed the server's values. */
function setDirty(form, dirty) {
  form.dataset.dirty = String(dirty);
  $('[data-revert]', form).hidden = !dirty;
}

for (const form of [ui.autoscalerForm, ui.configForm]) {
  form.addEventListener('input', () => {
    setDirty(form, true);
    if (form.dataset.checked === 'true') validate(form);
  });
  form.addEventListener('change', () => setDirty(form, true));
  // Back to the saved values; refreshes fill the form again from then on.
  $('[data-revert]', form).addEventListener('click', () => {
    setDirty(form, false);
    form.dataset.checked = 'false';
    for (const field of form.querySelectorAll('[aria-invalid]')) fieldError(form, field.name);
    if (state.data) fillForms(state.data);
  });
}

function validate(form) {
  return form === ui.autoscalerForm ? validateAutoscaler() : validateConfig();
}

/** Thresholds in 0–1 with min < max, expand > 1, shrink strictly between 0 and 1. */
function validateAutoscaler() {
  const form = ui.autoscalerForm;
  const values = {};
  const errors = {};
  for (const name of [
    'max_miss_rate_threshold',
    'min_miss_rate_threshold',
    'expand_ratio',
    'shrink_ratio',
  ]) {
    values[name] = numberIn(form, name);
    if (values[name] === undefined) errors[name] = 'Enter a number.';
  }
  const { max_miss_rate_threshold: max, min_miss_rate_threshold: min } = values;
  if (max !== undefined && (max < 0 || max > 1)) {
    errors.max_miss_rate_threshold = 'A miss rate between 0 and 1, e.g. 0.8 for 80%.';
  }
  if (min !== undefined && (min < 0 || min > 1)) {
    errors.min_miss_rate_threshold = 'A miss rate between 0 and 1, e.g. 0.2 for 20%.';
  }
  if (!errors.max_miss_rate_threshold && !errors.min_miss_rate_threshold && min >= max) {
    errors.min_miss_rate_threshold = `Must be below the max miss rate (${max}).`;
  }
  if (values.expand_ratio !== undefined && !(values.expand_ratio > 1)) {
    errors.expand_ratio = 'Must be greater than 1 (2 doubles the pool).';
  }
  if (values.shrink_ratio !== undefined && !(values.shrink_ratio > 0 && values.shrink_ratio < 1)) {
    errors.shrink_ratio = 'Must be between 0 and 1, both excluded (0.5 halves the pool).';
  }
  for (const name of Object.keys(values)) fieldError(form, name, errors[name]);
  return Object.keys(errors).length ? undefined : values;
}

function validateConfig() {
  const form = ui.configForm;
  const capacity = numberIn(form, 'capacity');
  let error;
  if (capacity === undefined) error = 'Enter the capacity in MB.';
  else if (!Number.isInteger(capacity) || capacity < 1) error = 'A whole number of MB, at least 1.';
  fieldError(form, 'capacity', error);
  if (error) return undefined;
  return { capacity, replacement_policy: form.elements.namedItem('replacement_policy').value };
}

function focusFirstInvalid(form) {
  form.querySelector('[aria-invalid=true]')?.focus();
}

ui.autoscalerForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = ui.autoscalerForm;
  form.dataset.checked = 'true';
  const values = validateAutoscaler();
  if (!values) {
    focusFirstInvalid(form);
    return;
  }
  const wasManual = state.data?.pool?.mode !== 'automatic';
  setBusy('autoscaler', true);
  hideStatus('autoscaler');
  try {
    await api('POST', '/api/manager/poolsize/automatic', values);
    setDirty(form, false);
    form.dataset.checked = 'false';
    if (state.data?.pool) state.data.pool.mode = 'automatic';
    showStatus(
      'autoscaler',
      'success',
      wasManual ? 'Saved; the pool is now in automatic mode.' : 'Autoscaler parameters saved.',
    );
  } catch (error) {
    actionFailed('autoscaler', 'The autoscaler parameters were not saved', error);
  } finally {
    setBusy('autoscaler', false);
  }
  refresh();
});

ui.configForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = ui.configForm;
  form.dataset.checked = 'true';
  const values = validateConfig();
  if (!values) {
    focusFirstInvalid(form);
    return;
  }
  setBusy('config', true);
  hideStatus('config');
  try {
    const result = await api('POST', '/api/manager/config', values);
    setDirty(form, false);
    form.dataset.checked = 'false';
    const nodes = Array.isArray(result?.nodes) ? result.nodes : [];
    const ok = nodes.filter((n) => n.ok).length;
    const saved = `${formatCount(result?.capacity ?? values.capacity)} MB, ${result?.replacement_policy ?? values.replacement_policy}`;
    showStatus(
      'config',
      ok === nodes.length ? 'success' : 'error',
      nodes.length
        ? `Saved ${saved}; applied to ${formatCount(ok)} of ${plural(nodes.length, 'node')}.`
        : `Saved ${saved}; there are no nodes to apply it to yet.`,
      nodes.length ? nodeResults(nodes, 'applied') : undefined,
    );
  } catch (error) {
    actionFailed('config', 'The configuration was not applied', error);
  } finally {
    setBusy('config', false);
  }
  refresh();
});

// ---------------------------------------------------------------------------------------------
// Clear cache, delete all data

ui.clearCache.addEventListener('click', async () => {
  setBusy('clear', true);
  hideStatus('clear');
  try {
    const result = await api('DELETE', '/api/manager/cache/clear');
    const nodes = Array.isArray(result?.nodes) ? result.nodes : [];
    const ok = nodes.filter((n) => n.ok).length;
    showStatus(
      'clear',
      ok === nodes.length ? 'success' : 'error',
      nodes.length
        ? `Cleared ${formatCount(ok)} of ${plural(nodes.length, 'node')}.`
        : 'There are no nodes to clear.',
      nodes.length ? nodeResults(nodes, 'cleared') : undefined,
    );
  } catch (error) {
    actionFailed('clear', 'The cache was not cleared', error);
  } finally {
    setBusy('clear', false);
  }
  refresh();
});

const CONFIRM_WORD = 'DELETE';

ui.deleteAll.addEventListener('click', () => {
  ui.deleteInput.value = '';
  ui.deleteConfirm.disabled = true;
  hideStatus('delete');
  ui.deleteDialog.showModal();
  ui.deleteInput.focus();
});

ui.deleteInput.addEventListener('input', () => {
  ui.deleteConfirm.disabled = ui.deleteInput.value.trim() !== CONFIRM_WORD;
});

function cancelDelete() {
  if (ui.deleteDialog.open) ui.deleteDialog.close('cancel');
  showStatus('delete', 'info', 'Nothing was deleted.');
  ui.deleteAll.focus();
}

$('[data-cancel]', ui.deleteForm).addEventListener('click', cancelDelete);
// Escape closes a modal dialog with a "cancel" event.
ui.deleteDialog.addEventListener('cancel', (event) => {
  event.preventDefault();
  cancelDelete();
});

ui.deleteForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (ui.deleteInput.value.trim() !== CONFIRM_WORD) {
    ui.deleteConfirm.disabled = true;
    return;
  }
  ui.deleteDialog.close('delete');
  setBusy('delete', true);
  hideStatus('delete');
  try {
    const result = await api('DELETE', '/api/manager/data/clear');
    const failed = Array.isArray(result?.failed) ? result.failed : [];
    const done = `Deleted ${plural(result?.rows ?? 0, 'key row')} and ${plural(result?.objects ?? 0, 'stored object')}.`;
    if (failed.length) {
      const list = el('ul', 'node-results');
      for (const what of failed) list.append(el('li', 'failed', el('span', 'mark', '✕'), what));
      showStatus('delete', 'error', `${done} These parts failed and may still hold data:`, list);
    } else {
      showStatus('delete', 'success', `${done} Every node was emptied.`);
    }
  } catch (error) {
    actionFailed('delete', 'Nothing was deleted, or not everything', error);
  } finally {
    setBusy('delete', false);
  }
  refresh();
});

// ---------------------------------------------------------------------------------------------

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && !state.needsToken) refresh();
});

refresh();
