/**
 * A refusal: why the admission pipeline turned a request (or one operation in it) away, described
 * once. Each door answers it in its own form (`src/http/answers.ts` for HTTP: a problem, a JSON-RPC
 * error with the matching status, a refused upgrade; {@link jsonRpcErrorOf} for a message on a
 * connection), so no door builds a refusal of its own and one code means one thing everywhere.
 */
import { ERROR_CODES, type McpKitErrorCode } from './errors.js';

/** What a refusal can be. */
export type RefusalCode = Extract<
  McpKitErrorCode,
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'BUSY'
  | 'UNAVAILABLE'
  | 'INVALID_ARGUMENT'
  | 'INVALID_REQUEST'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
>;

/** Why the pipeline refused: one description for every door. */
export interface Refusal {
  readonly code: RefusalCode;
  /** Safe to show the caller; never longer than a short prefix of anything the caller sent. */
  readonly message: string;
  /** The HTTP status, when it is not the code's own (`ERROR_CODES`). */
  readonly status?: number;
  /** Headers an HTTP answer carries: `WWW-Authenticate`, `Retry-After`, `RateLimit`, `Allow`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Machine-readable details: `retryAfterSeconds`, `limit`, `windowSeconds`. */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** Builds a refusal. */
export function refuse(
  code: RefusalCode,
  message: string,
  extra: Omit<Refusal, 'code' | 'message'> = {},
): Refusal {
  return { code, message, ...extra };
}

/** The HTTP status of a refusal. */
export function statusOf(refusal: Refusal): number {
  return refusal.status ?? ERROR_CODES[refusal.code].status;
}

/** The JSON-RPC `error` member of a refusal. */
export function jsonRpcErrorOf(refusal: Refusal): { code: number; message: string; data?: unknown } {
  const error: { code: number; message: string; data?: unknown } = {
    code: ERROR_CODES[refusal.code].jsonRpc,
    message: refusal.message,
  };
  if (refusal.data !== undefined) error.data = refusal.data;
  return error;
}
