/**
 * The six live charts (Chart.js, loaded by the page as `window.Chart`): one line each for the
 * last 30 minutes at one point a minute, labelled with the reader's wall-clock HH:MM.
 *
 * A null rate means no GET reached the pool that minute: it is drawn as a gap, not as 0, and a
 * point standing alone between two gaps gets a dot so it does not vanish. Colours come from CSS
 * custom properties (dashboard.css), so they follow the light or dark theme, live.
 */
import { clockMinutes, formatCount, formatMb, formatPercent, plural } from './format.js';

const SPECS = {
  number_of_nodes: {
    color: '--chart-1',
    integer: true,
    suggestedMax: 4,
    tick: (v) => formatCount(v),
    latest: (v) => plural(v, 'node'),
  },
  miss_rate: {
    color: '--chart-2',
    percent: true,
    tick: (v) => `${v}%`,
    latest: formatPercent,
    empty: 'No GET requests in the last 30 minutes: no rate to show.',
  },
  hit_rate: {
    color: '--chart-3',
    percent: true,
    tick: (v) => `${v}%`,
    latest: formatPercent,
    empty: 'No GET requests in the last 30 minutes: no rate to show.',
  },
  number_of_items_in_cache: {
    color: '--chart-4',
    integer: true,
    tick: (v) => compact(v),
    latest: (v) => formatCount(v),
  },
  total_size_of_items_in_cache: {
    color: '--chart-5',
    // Small pools hold fractions of a MB: 0.25, not a column of zeros.
    tick: (v) =>
      Math.abs(v) < 10
        ? v.toLocaleString('en-US', { maximumFractionDigits: Math.abs(v) < 0.1 ? 3 : 2 })
        : compact(v),
    latest: formatMb,
  },
  number_of_requests_served_per_minute: {
    color: '--chart-6',
    integer: true,
    tick: (v) => compact(v),
    latest: (v) => `${formatCount(v)} /min`,
  },
};

const compactFormat = new Intl.NumberFormat('en-US', {
  notation: 'compact',
  maximumFractionDigits: 1,
});
const compact = (v) => compactFormat.format(v);

function themeColors() {
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  return {
    text: read('--muted'),
    grid: read('--border'),
    surface: read('--surface'),
    series: (name) => read(name),
  };
}

/** A translucent version of a `#rrggbb` colour, for the area under the line. */
function soft(color) {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!match) return 'transparent';
  const [r, g, b] = match.slice(1).map((hex) => Number.parseInt(hex, 16));
  return `rgba(${r}, ${g}, ${b}, 0.14)`;
}

function isolated(data, index) {
  const here = data[index];
  if (here === null || here === undefined) return false;
  const before = index === 0 ? null : data[index - 1];
  const after = index === data.length - 1 ? null : data[index + 1];
  return (before === null || before === undefined) && (after === null || after === undefined);
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

export class Charts {
  /** @param root the element holding the `[data-chart]` figures */
  constructor(root) {
    this.root = root;
    this.charts = new Map();
    this.available = typeof window.Chart === 'function';
    if (!this.available) return;
    const Chart = window.Chart;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 11;
    const colors = themeColors();
    for (const figure of root.querySelectorAll('[data-chart]')) {
      const id = figure.dataset.chart;
      const spec = SPECS[id];
      if (!spec) continue;
      const canvas = figure.querySelector('canvas');
      const chart = new Chart(canvas, this.config(spec, colors));
      this.charts.set(id, { chart, spec, figure });
    }
    const scheme = matchMedia('(prefers-color-scheme: dark)');
    scheme.addEventListener('change', () => this.retheme());
  }

  config(spec, colors) {
    const line = colors.series(spec.color);
    return {
      type: 'line',
      data: {
        labels: [],
        datasets: [
          {
            data: [],
            borderColor: line,
            backgroundColor: soft(line),
            pointBackgroundColor: line,
            borderWidth: 2,
            fill: 'origin',
            // Monotone: a smooth line that never overshoots below 0 or above 100%.
            cubicInterpolationMode: 'monotone',
            spanGaps: false,
            pointRadius: (ctx) =>
              isolated(ctx.dataset.data, ctx.dataIndex) ||
              ctx.dataIndex === ctx.dataset.data.length - 1
                ? 3
                : 0,
            pointHoverRadius: 4,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: {
            displayColors: false,
            callbacks: { label: (ctx) => spec.latest(ctx.parsed.y) },
          },
        },
        scales: {
          x: {
            grid: { display: false },
            border: { color: colors.grid },
            ticks: { color: colors.text, maxRotation: 0, autoSkip: true, maxTicksLimit: 6 },
          },
          y: {
            beginAtZero: true,
            ...(spec.percent && { min: 0, max: 100 }),
            ...(spec.suggestedMax && { suggestedMax: spec.suggestedMax }),
            grid: { color: colors.grid },
            border: { display: false },
            ticks: {
              color: colors.text,
              maxTicksLimit: 5,
              ...(spec.integer && { precision: 0 }),
              callback: (value) => spec.tick(value),
            },
          },
        },
      },
    };
  }

  /** Draws a new `aggregate_stats` answer. */
  update(stats) {
    const minutes = Array.isArray(stats?.minutes) ? stats.minutes : [];
    const labels = minutes.map(clockMinutes);
    for (const [id, { chart, spec, figure }] of this.charts) {
      const raw = Array.isArray(stats?.[id]) ? stats[id] : [];
      const values = raw.map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : null));
      chart.data.labels = labels;
      chart.data.datasets[0].data = values;
      chart.update('none');
      const latest = lastValue(values);
      figure.querySelector('[data-latest]').textContent =
        latest === undefined ? '—' : spec.latest(latest);
      const empty = figure.querySelector('[data-empty]');
      const message =
        minutes.length === 0
          ? 'No statistics yet: the first point appears after a minute.'
          : latest === undefined
            ? (spec.empty ?? 'No data in the last 30 minutes.')
            : '';
      empty.textContent = message;
      empty.hidden = !message;
    }
  }

  retheme() {
    const colors = themeColors();
    for (const { chart, spec } of this.charts.values()) {
      const line = colors.series(spec.color);
      const dataset = chart.data.datasets[0];
      dataset.borderColor = line;
      dataset.pointBackgroundColor = line;
      dataset.backgroundColor = soft(line);
      chart.options.scales.x.ticks.color = colors.text;
      chart.options.scales.x.border.color = colors.grid;
      chart.options.scales.y.ticks.color = colors.text;
      chart.options.scales.y.grid.color = colors.grid;
      chart.update('none');
    }
  }
}
