/**
 * Shared-secret auth between pixpool services: `Authorization: Bearer <secret>`. Internal
 * services (cache nodes) require it on every route but those marked `config: { public: true }`;
 * public services (the frontend) only on routes marked `config: { secret: true }`.
 *
 * Both sides are hashed before a constant-time compare, so neither the secret's length nor its
 * prefix leaks through timing. With no secret configured the hook is not installed at all; the
 * main.ts files only allow that on loopback.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { forbidden, unauthorized } from '../core/errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without the shared secret. */
    public?: boolean;
    /** Needs the shared secret even on a public service. */
    secret?: boolean;
    /** An operator's endpoint: needs the admin token (PIXPOOL_ADMIN_TOKEN) when one is set. */
    admin?: boolean;
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A checker for `Authorization` headers; the secret's digest is computed once, not per request. */
export function bearerCheck(secret: string): (header: string | undefined) => boolean {
  const expected = digest(`Bearer ${secret}`);
  return (header) => timingSafeEqual(digest(header ?? ''), expected);
}

/**
 * A checker for a connection's `Authorization` headers that remembers, per connection, the
 * header it last accepted there: a kept-alive connection (frontends keep a few to each node)
 * pays for the two digests once, not on every request. A request on that connection with the
 * very same header is accepted without hashing; any other header is checked in full. The plain
 * comparison is only ever against what this same connection already proved it knows, so it
 * tells a prober on another connection nothing.
 */
export function connectionCheck(
  secret: string,
): (socket: Socket, header: string | undefined) => boolean {
  const matches = bearerCheck(secret);
  const accepted = new WeakMap<Socket, string>();
  return (socket, header) => {
    if (header !== undefined && accepted.get(socket) === header) return true;
    if (!matches(header)) return false;
    accepted.set(socket, header as string);
    return true;
  };
}

export function installSharedSecret(
  app: FastifyInstance,
  secret: string | undefined,
  byDefault = true,
): void {
  if (!secret) return;
  const admitted = connectionCheck(secret);
  // A callback hook, not an async one: it runs on every request (image reads included), and
  // this form costs no promise and no extra microtask turn.
  app.addHook('onRequest', (request, _reply, done) => {
    const config = request.routeOptions.config;
    if (config?.public || !(config?.secret || byDefault)) return done();
    if (!admitted(request.raw.socket, request.headers.authorization)) {
      return done(
        unauthorized(
          request.headers.authorization
            ? 'The shared secret does not match this pool’s (Authorization: Bearer …).'
            : 'This endpoint needs the pool’s shared secret: send Authorization: Bearer <PIXPOOL_SECRET>.',
        ),
      );
    }
    done();
  });
}

/**
 * Operator endpoints (`config: { admin: true }`) need `Authorization: Bearer <admin token>`.
 * Without a token they are open, which main.ts allows only on loopback; a service that may still
 * listen beyond it without a token (the frontend, for its relayed course API) passes `closed`,
 * the message its operator endpoints are then refused with (403).
 */
export function installAdminToken(
  app: FastifyInstance,
  token: string | undefined,
  closed?: string,
): void {
  if (!token) {
    if (closed) {
      app.addHook('onRequest', (request, _reply, done) =>
        done(request.routeOptions.config?.admin ? forbidden(closed) : undefined),
      );
    }
    return;
  }
  const matches = bearerCheck(token);
  app.addHook('onRequest', (request, _reply, done) => {
    if (!request.routeOptions.config?.admin) return done();
    if (!matches(request.headers.authorization)) {
      return done(
        unauthorized(
          'This is an operator endpoint: send Authorization: Bearer <PIXPOOL_ADMIN_TOKEN>.',
        ),
      );
    }
    done();
  });
}
