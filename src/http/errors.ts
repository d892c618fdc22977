/**
 * One error handler per service: every failure leaves in the originals' envelope with HTTP
 * status = error.code, and a message a person can act on. Fastify's own 4xx (bad JSON, body too
 * large, unknown content type) are reworded; a 5xx is logged in full (a PixpoolError's detail
 * and cause included) and answered with its message, or generically when it is not ours.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { failure, PixpoolError } from '../core/errors.ts';

const fastifyMessages: Record<string, (e: FastifyError) => string> = {
  FST_ERR_CTP_INVALID_JSON: () => 'The request body is not valid JSON.',
  FST_ERR_CTP_EMPTY_JSON_BODY: () => 'The request says it carries JSON but its body is empty.',
  FST_ERR_CTP_BODY_TOO_LARGE: () => 'The request body is larger than this endpoint accepts.',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (e) => {
    const type = e.message.replace(/^Unsupported Media Type:?\s*/i, '');
    return `This endpoint does not accept that Content-Type${type ? ` (${type})` : ''}.`;
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    'The Content-Length header does not match the body that was sent.',
};

export function installErrorHandling(
  app: FastifyInstance,
  /** Answers a browser (Accept: text/html) that asked for an unknown path, with a page. */
  notFoundPage?: (request: FastifyRequest, reply: FastifyReply) => FastifyReply,
): void {
  app.setErrorHandler((error: FastifyError | PixpoolError, request, reply) => {
    if (error instanceof PixpoolError) {
      // The answer names nothing of the server; the log keeps where and why (detail, cause).
      // A 503 is a condition the service expects to pass (a backend away), hence a warning.
      if (error.status >= 500) {
        const level = error.status === 503 ? 'warn' : 'error';
        request.log[level]({ err: error }, error.detail ?? error.message);
      }
      return reply.code(error.status).send(failure(error.status, error.message));
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const reword = fastifyMessages[error.code];
      const message = reword ? reword(error) : error.message;
      return reply.code(status).send(failure(status, message));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send(failure(500, 'Internal server error; the details are logged.'));
  });
  app.setNotFoundHandler((request, reply) => {
    if (notFoundPage && request.headers.accept?.includes('text/html')) {
      return notFoundPage(request, reply);
    }
    const path = request.url.split('?')[0];
    return reply.code(404).send(failure(404, `There is no endpoint ${request.method} ${path}.`));
  });
}
