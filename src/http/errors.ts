/**
 * One error handler per service: every failure leaves in the originals' envelope with HTTP
 * status = error.code, and a message a person can act on. Fastify's own 4xx (bad JSON, body too
 * large, unknown content type) are reworded; a 5xx is logged in full and answered generically.
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
