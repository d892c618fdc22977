/**
 * The manager's dashboard: `GET /` serves a static page whose scripts read the manager's JSON API
 * (`/api/manager/…`) and render the pool, its nodes, six live charts, the controls and the log in
 * the browser, refreshing every 5 s. Static files are under `/dashboard/assets/*`.
 *
 * Both routes are public (`config: { public: true }`): they hold no data. The API they call is
 * what the admin token protects; the page asks for the token when the API answers 401 and keeps
 * it in the tab's sessionStorage. Every answer carries the security headers every pixpool UI
 * shares (src/http/web/security.ts: same-origin scripts and styles only, no inline ones,
 * nosniff, no-referrer, no framing).
 */
import type { FastifyInstance } from 'fastify';
import { sendPage } from '../../http/web/security.ts';
import { dashboardAssets } from './assets.ts';
import { dashboardPage } from './page.ts';

export interface DashboardOptions {
  /** Header and tab title; "pixpool manager" unless given. */
  title?: string;
}

export function registerDashboard(app: FastifyInstance, options: DashboardOptions): void {
  // Rendered once: the page depends on nothing but the title and the assets' hashes. Loading the
  // assets now also makes a missing file (or chart.js) fail at start, not on the first visit.
  dashboardAssets.load();
  const page = dashboardPage({ title: options.title ?? 'pixpool manager' });

  app.get('/', { config: { public: true } }, (_request, reply) => sendPage(reply, 200, page));
  dashboardAssets.register(app);
}
