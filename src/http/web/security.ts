/**
 * The security headers every pixpool UI answers with (pages and their static files alike), and
 * the one function that sends a page with them, so no UI can forget them.
 *
 * The policy allows scripts and styles from our own files only: no inline script, no style
 * attributes, no CDN. A page that needs more must say so here, for every UI, on purpose.
 */
import type { FastifyReply } from 'fastify';
import type { SafeHtml } from './html.ts';

// Images may also be data: and blob: URLs, which the frontend's upload preview uses.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

export const securityHeaders: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // frame-ancestors above says the same to browsers that read CSP; this is for those that do not.
  'x-frame-options': 'DENY',
};

/**
 * An HTML page with the security headers. `no-cache`: a page names its assets by content hash,
 * so a stale copy would keep loading the previous deploy's files.
 */
export function sendPage(reply: FastifyReply, status: number, page: SafeHtml): FastifyReply {
  return reply
    .code(status)
    .headers(securityHeaders)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-cache')
    .send(page.value);
}
