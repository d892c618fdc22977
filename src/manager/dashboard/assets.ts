/**
 * The dashboard's static files, served from /dashboard/assets/<name>: its own folder (./assets/:
 * the page script modules and stylesheet), the look every pixpool UI shares (app.css, icon.svg,
 * from src/http/web/assets/) and Chart.js's UMD build from node_modules (no CDN: the pool may run
 * with no internet). Loading, content hashing, caching and ETags are the shared asset set's
 * (src/http/web/asset-set.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createAssetSet } from '../../http/web/asset-set.ts';

/** chart.js's exports map hides dist/*.umd*, so find the package through its CommonJS entry. */
function chartJs(): Buffer {
  const entry = createRequire(import.meta.url).resolve('chart.js'); // …/chart.js/dist/chart.cjs
  const source = readFileSync(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
  // The trailing source-map comment would only make devtools ask for a file we do not serve.
  return Buffer.from(source.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '\n'));
}

export const dashboardAssets = createAssetSet(
  new URL('./assets/', import.meta.url),
  '/dashboard/assets/',
  { extra: () => ({ 'chart.umd.min.js': chartJs() }) },
);
