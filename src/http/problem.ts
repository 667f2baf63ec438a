import { ABANDONED_BODY, ABANDONED_BODY_HEADERS } from '../core/bodyLimit.js';
import {
  ERROR_CODES,
  McpKitError,
  type McpKitErrorCode,
  publicErrorMessage,
  toMcpKitError,
} from '../core/errors.js';
import { textResponse } from './bodyText.js';

/** The `type` URI of a problem with this code (RFC 9457 §3.1.1). */
export function problemType(code: McpKitErrorCode): string {
  return `urn:mcpkit:error:${code.toLowerCase().replaceAll('_', '-')}`;
}

/** What a problem carries beside its code and detail: the request's id, and optional overrides. */
export interface ProblemExtra {
  requestId: string;
  status?: number;
  headers?: Record<string, string>;
  fields?: Record<string, unknown>;
}

/** An `application/problem+json` response (RFC 9457). */
export function problem(code: McpKitErrorCode, detail: string, extra: ProblemExtra): Response {
  const { requestId } = extra;
  const info = ERROR_CODES[code];
  const status = extra.status ?? info.status;
  const body = {
    type: problemType(code),
    title: info.title,
    status,
    detail,
    code,
    requestId,
    ...extra.fields,
  };
  return textResponse(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', ...extra.headers },
  });
}

/** A problem response for anything thrown: exposed messages of mcpkit errors, a generic one otherwise. */
export function problemFromError(error: unknown, requestId: string): Response {
  const e = toMcpKitError(error);
  const fields =
    e instanceof McpKitError && e.expose && e.details !== undefined ? { details: e.details } : undefined;
  // A retryable refusal that says when (a shared store out of reach) carries it as Retry-After.
  const retry = (e.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  const headers =
    e.code === 'UNAVAILABLE' && Number.isInteger(retry) && (retry as number) > 0
      ? { 'retry-after': String(retry) }
      : e.cause === ABANDONED_BODY
        ? ABANDONED_BODY_HEADERS
        : undefined;
  return problem(e.code, publicErrorMessage(e), {
    requestId,
    ...(fields && { fields }),
    ...(headers && { headers }),
  });
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return textResponse(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}
