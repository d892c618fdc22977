/**
 * The error catalog: every failure a client can see, with its HTTP status and a stable code.
 *
 * Services throw `PixpoolError`s; one Fastify error handler per service (src/http/errors.ts)
 * renders them in the originals' envelope, `{"success":"false","error":{"code":N,"message":…}}`,
 * with HTTP status = N. Messages are written for a person reading them, not for a log parser,
 * and name nothing of the server (no path, host, bucket or database): what the operator needs
 * goes in `detail` and `cause`, which the handler logs and never sends.
 */

export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNAVAILABLE'
  | 'INTERNAL';

const statusOf: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

export interface PixpoolErrorOptions {
  /** For the log only: where it failed on this server (a folder, a database, a bucket). */
  detail?: string | undefined;
  /** The error behind it, for the log only. */
  cause?: unknown;
}

export class PixpoolError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string | undefined;
  constructor(code: ErrorCode, message: string, options: PixpoolErrorOptions = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.name = 'PixpoolError';
    this.status = statusOf[code];
    this.detail = options.detail;
  }
}

export const badRequest = (message: string) => new PixpoolError('BAD_REQUEST', message);
export const unauthorized = (message: string) => new PixpoolError('UNAUTHORIZED', message);
export const forbidden = (message: string) => new PixpoolError('FORBIDDEN', message);
export const notFound = (message: string) => new PixpoolError('NOT_FOUND', message);
export const conflict = (message: string) => new PixpoolError('CONFLICT', message);
export const tooLarge = (message: string) => new PixpoolError('PAYLOAD_TOO_LARGE', message);
export const unsupportedMediaType = (message: string) =>
  new PixpoolError('UNSUPPORTED_MEDIA_TYPE', message);
export const unavailable = (message: string, options?: PixpoolErrorOptions) =>
  new PixpoolError('UNAVAILABLE', message, options);

export interface FailureEnvelope {
  success: 'false';
  error: { code: number; message: string };
}

export function failure(status: number, message: string): FailureEnvelope {
  return { success: 'false', error: { code: status, message } };
}
