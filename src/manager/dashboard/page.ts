/**
 * The dashboard's HTML: a static shell. Every number on it comes from the manager's JSON API,
 * fetched and rendered by dashboard.js in the browser (every 5 s), so the page itself needs no
 * data and can be served without the admin token.
 *
 * The Content-Security-Policy forbids inline script and style attributes: nothing here may use
 * `style="…"` or `on…=`. Chart.js is a classic script (it defines `window.Chart`); `defer` runs it
 * before the module scripts, which are deferred too and run in document order.
 */
import { logo } from '../../http/web/brand.ts';
import { html, type SafeHtml } from '../../http/web/html.ts';
import { dashboardAssets } from './assets.ts';

export interface DashboardPageOptions {
  /** Shown in the header and the tab title, e.g. the deployment's name. */
  title: string;
}

/** The six pool-wide series, in the order they are drawn. */
export const CHARTS = [
  { id: 'number_of_nodes', title: 'Nodes', unit: 'nodes in the pool' },
  { id: 'miss_rate', title: 'Miss rate', unit: '% of GETs' },
  { id: 'hit_rate', title: 'Hit rate', unit: '% of GETs' },
  { id: 'number_of_items_in_cache', title: 'Items in cache', unit: 'items' },
  { id: 'total_size_of_items_in_cache', title: 'Cache size', unit: 'MB' },
  { id: 'number_of_requests_served_per_minute', title: 'Requests', unit: 'per minute' },
] as const;

function chartCard(chart: (typeof CHARTS)[number]): SafeHtml {
  return html`<figure class="chart-card" data-chart="${chart.id}">
  <figcaption class="chart-head">
    <span class="chart-title">${chart.title}</span>
    <span class="chart-latest" data-latest aria-live="off">—</span>
  </figcaption>
  <p class="chart-unit">${chart.unit}</p>
  <div class="chart-box">
    <canvas role="img" aria-label="${chart.title}, last 30 minutes"></canvas>
    <p class="chart-empty" data-empty hidden></p>
  </div>
</figure>`;
}

export function dashboardPage(options: DashboardPageOptions): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${options.title}</title>
<link rel="icon" href="${dashboardAssets.url('icon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${dashboardAssets.url('app.css')}">
<link rel="stylesheet" href="${dashboardAssets.url('dashboard.css')}">
<script defer src="${dashboardAssets.url('chart.umd.min.js')}"></script>
<script type="module" src="${dashboardAssets.url('dashboard.js')}"></script>
</head>
<body class="dashboard">
<a class="skip-link" href="#main">Skip to content</a>
<header class="site-header">
  <div class="container dash-container header-inner">
    <a class="brand" href="/">${logo}<span>${options.title}</span></a>
    <div class="header-tools">
      <p class="refresh-state" data-testid="refresh-state" aria-live="polite">
        <span class="dot" data-refresh-dot></span><span data-refresh-text>Loading…</span>
      </p>
      <button class="button small" type="button" data-refresh>Refresh</button>
      <button class="button small" type="button" data-forget-token hidden>Forget token</button>
    </div>
  </div>
</header>
<main id="main" class="container dash-container">
<noscript><p class="notice">The dashboard needs JavaScript: it reads the manager’s API and
  draws the pool live. The API itself is at <code>/api/manager/dashboard</code>.</p></noscript>

<p class="banner error" data-testid="global-error" role="alert" hidden></p>

<section class="card narrow token-card" data-testid="token-card" aria-labelledby="token-title" hidden>
  <h2 id="token-title">Admin token needed</h2>
  <p class="muted" data-token-reason>This manager is not on loopback, so its API needs the admin
    token. It is kept in this tab only (sessionStorage) and sent with every request.</p>
  <form data-token-form novalidate>
    <label for="token">Admin token</label>
    <div class="input-row">
      <input id="token" name="token" type="password" autocomplete="current-password" required
        spellcheck="false" aria-describedby="token-error">
      <button class="button primary" type="submit">Use token</button>
    </div>
    <p id="token-error" class="field-error" aria-live="polite" hidden></p>
  </form>
</section>

<div data-dashboard hidden>
<section class="card pool-card" aria-labelledby="pool-title" data-testid="pool">
  <div class="pool-main">
    <div>
      <h2 id="pool-title" class="eyebrow">Cache pool</h2>
      <p class="pool-size"><strong data-testid="pool-size" data-pool-size>–</strong>
        <span class="muted" data-pool-of></span></p>
      <p class="pool-badges">
        <span class="badge" data-testid="pool-mode" data-pool-mode></span>
        <span class="badge busy" data-testid="resizing" data-resizing hidden>Resizing…</span>
      </p>
    </div>
    <div class="resize" role="group" aria-label="Resize the pool by hand">
      <button class="button round" type="button" data-testid="shrink" data-change="decrease"
        aria-label="Remove one node" title="Remove one node">−</button>
      <button class="button round primary" type="button" data-testid="grow" data-change="increase"
        aria-label="Add one node" title="Add one node">+</button>
    </div>
  </div>
  <p class="hint resize-hint" data-resize-hint></p>
  <dl class="pool-facts">
    <div><dt>Healthy nodes</dt><dd data-fact="healthy">–</dd></div>
    <div><dt>Map version</dt><dd data-fact="map_version">–</dd></div>
    <div><dt>Assignment</dt><dd data-fact="assignment">–</dd></div>
    <div><dt>Pending resizes</dt><dd data-fact="queued">–</dd></div>
  </dl>
  <div class="progress" data-resize-progress hidden></div>
  <div class="notice pool-changed" data-testid="pool-changed" role="status" hidden>
    <span data-pool-changed-text></span>
    <button class="link-button" type="button" data-dismiss-pool-changed>Dismiss</button>
  </div>
  <p class="status error" data-status="resize" role="alert" hidden></p>
</section>

<section class="card" aria-labelledby="nodes-title">
  <div class="card-head"><h2 id="nodes-title">Nodes</h2>
    <span class="muted" data-node-summary></span></div>
  <div class="table-wrap">
    <table class="nodes" data-testid="nodes">
      <thead><tr><th scope="col">Node</th><th scope="col">Address</th><th scope="col">State</th>
        <th scope="col" class="num">Items</th><th scope="col">Size</th>
        <th scope="col" class="num">Hit rate</th><th scope="col">Regions</th></tr></thead>
      <tbody data-node-rows></tbody>
    </table>
  </div>
  <p class="empty" data-no-nodes hidden>No nodes in the pool.</p>
</section>

<section class="card" aria-labelledby="charts-title">
  <div class="card-head"><h2 id="charts-title">Last 30 minutes</h2>
    <span class="muted">pool-wide, one point a minute</span></div>
  <p class="status error" data-status="stats" role="alert" hidden></p>
  <div class="charts" data-testid="charts">
    ${CHARTS.map(chartCard)}
  </div>
</section>

<div class="columns">
<section class="card" aria-labelledby="mode-title" data-testid="mode-card">
  <h2 id="mode-title">Resizing mode</h2>
  <fieldset class="segmented" data-mode-selector>
    <legend class="visually-hidden">Resizing mode</legend>
    <label><input type="radio" name="mode" value="manual" data-testid="mode-manual">
      <span>Manual</span></label>
    <label><input type="radio" name="mode" value="automatic" data-testid="mode-automatic">
      <span>Automatic</span></label>
  </fieldset>
  <p class="hint" data-mode-hint></p>
  <p class="status error" data-status="mode" role="alert" hidden></p>
  <form class="autoscaler" data-autoscaler-form novalidate>
    <h3>Autoscaler</h3>
    <p class="hint">Every minute: above the maximum miss rate the pool grows by the expand
      ratio, below the minimum it shrinks by the shrink ratio, always within 1–8 nodes.</p>
    <div class="field-grid">
      <div class="field">
        <label for="max_miss_rate_threshold">Max miss rate</label>
        <input id="max_miss_rate_threshold" name="max_miss_rate_threshold" type="number"
          inputmode="decimal" step="0.01" min="0" max="1" required
          aria-describedby="max_miss_rate_threshold-hint max_miss_rate_threshold-error">
        <p class="hint" id="max_miss_rate_threshold-hint">0–1; grow above it</p>
        <p class="field-error" id="max_miss_rate_threshold-error" hidden></p>
      </div>
      <div class="field">
        <label for="min_miss_rate_threshold">Min miss rate</label>
        <input id="min_miss_rate_threshold" name="min_miss_rate_threshold" type="number"
          inputmode="decimal" step="0.01" min="0" max="1" required
          aria-describedby="min_miss_rate_threshold-hint min_miss_rate_threshold-error">
        <p class="hint" id="min_miss_rate_threshold-hint">0–1; shrink below it</p>
        <p class="field-error" id="min_miss_rate_threshold-error" hidden></p>
      </div>
      <div class="field">
        <label for="expand_ratio">Expand ratio</label>
        <input id="expand_ratio" name="expand_ratio" type="number" inputmode="decimal"
          step="0.1" min="1" required aria-describedby="expand_ratio-hint expand_ratio-error">
        <p class="hint" id="expand_ratio-hint">&gt; 1, e.g. 2 doubles</p>
        <p class="field-error" id="expand_ratio-error" hidden></p>
      </div>
      <div class="field">
        <label for="shrink_ratio">Shrink ratio</label>
        <input id="shrink_ratio" name="shrink_ratio" type="number" inputmode="decimal"
          step="0.05" min="0" max="1" required aria-describedby="shrink_ratio-hint shrink_ratio-error">
        <p class="hint" id="shrink_ratio-hint">between 0 and 1, e.g. 0.5 halves</p>
        <p class="field-error" id="shrink_ratio-error" hidden></p>
      </div>
    </div>
    <div class="form-actions">
      <button class="button primary" type="submit" data-testid="autoscaler-submit">Save</button>
      <button class="button" type="button" data-revert hidden>Discard changes</button>
    </div>
    <div class="status" data-status="autoscaler" role="status" hidden></div>
  </form>
</section>

<section class="card" aria-labelledby="config-title" data-testid="config-card">
  <h2 id="config-title">Cache configuration</h2>
  <p class="hint">Applied to every node; a node keeps the entries that still fit.</p>
  <form class="config" data-config-form novalidate>
    <div class="field-grid">
      <div class="field">
        <label for="capacity">Capacity per node (MB)</label>
        <input id="capacity" name="capacity" type="number" inputmode="numeric" min="1" step="1"
          required aria-describedby="capacity-error">
        <p class="field-error" id="capacity-error" hidden></p>
      </div>
      <div class="field">
        <label for="replacement_policy">Replacement policy</label>
        <select id="replacement_policy" name="replacement_policy">
          <option value="LRU">LRU — least recently used</option>
          <option value="RR">RR — random replacement</option>
          <option value="SIEVE">SIEVE — keeps re-read images, drops one-time reads first</option>
        </select>
      </div>
    </div>
    <div class="form-actions">
      <button class="button primary" type="submit" data-testid="config-submit">Apply to all nodes</button>
      <button class="button" type="button" data-revert hidden>Discard changes</button>
    </div>
    <div class="status" data-status="config" data-testid="config-result" role="status" hidden></div>
  </form>
</section>

<section class="card" aria-labelledby="maintenance-title">
  <h2 id="maintenance-title">Maintenance</h2>
  <div class="maintenance-row">
    <div>
      <h3>Clear cache</h3>
      <p class="hint">Empties every node. Images stay stored; they are cached again on use.</p>
    </div>
    <button class="button" type="button" data-testid="clear-cache" data-clear-cache>Clear cache</button>
  </div>
  <div class="status" data-status="clear" data-testid="clear-result" role="status" hidden></div>
  <div class="maintenance-row danger">
    <div>
      <h3>Delete all data</h3>
      <p class="hint">Removes every image: the key table, every stored object and every node’s
        content. This cannot be undone.</p>
    </div>
    <button class="button danger" type="button" data-testid="delete-all" data-delete-all>Delete all data…</button>
  </div>
  <div class="status" data-status="delete" data-testid="delete-result" role="status" hidden></div>
</section>

<section class="card" aria-labelledby="log-title">
  <div class="card-head"><h2 id="log-title">Log</h2>
    <span class="muted">resizes, decisions and changes, newest first</span></div>
  <ol class="log" data-testid="log" data-log></ol>
  <p class="empty" data-log-empty hidden>Nothing has happened yet.</p>
</section>
</div>
</div>

<dialog class="confirm" data-testid="delete-dialog" aria-labelledby="delete-title">
  <form method="dialog" data-delete-form novalidate>
    <h2 id="delete-title">Delete all data?</h2>
    <p>This deletes <strong>every image</strong>: all key rows, all stored objects and the
      content of every cache node. It cannot be undone.</p>
    <label for="delete-confirm">Type <code>DELETE</code> to confirm</label>
    <input id="delete-confirm" name="confirm" type="text" autocomplete="off" spellcheck="false"
      autocapitalize="characters" data-testid="delete-confirm-input">
    <div class="form-actions">
      <button class="button" type="button" value="cancel" data-testid="delete-cancel" data-cancel>Cancel</button>
      <button class="button danger" type="submit" value="delete" data-testid="delete-confirm" disabled>Delete everything</button>
    </div>
  </form>
</dialog>
</main>
<footer class="site-footer">
  <div class="container dash-container">pixpool manager · refreshes every 5 seconds</div>
</footer>
</body>
</html>
`;
}
