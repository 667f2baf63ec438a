/**
 * How each HTTP door answers a refusal of the admission pipeline. The refusal says why once
 * (`Refusal`); this module alone turns it into a REST problem, a JSON-RPC error on `/mcp`, or the
 * answer to a refused WebSocket upgrade, so every door refuses the same thing the same way.
 */
import { jsonRpcErrorOf, type Refusal, statusOf } from '../core/refusal.js';
import { type RefusedMessage, refusedMessage } from '../protocol/gate.js';
import { textResponse } from './bodyText.js';
import { problem } from './problem.js';

/** A REST refusal: an RFC 9457 problem with the refusal's status, headers and details. */
export function restRefusal(refusal: Refusal, requestId: string): Response {
  return problem(refusal.code, refusal.message, {
    requestId: requestId,
    status: statusOf(refusal),
    ...(refusal.headers && { headers: { ...refusal.headers } }),
    ...(refusal.data && { fields: { ...refusal.data } }),
  });
}

/**
 * A refusal of a whole `/mcp` request, before any JSON-RPC message in it is served (Host, Origin,
 * credentials, body bounds, session caps): the HTTP status says why, and the body is a JSON-RPC error
 * with the request's id when it had exactly one.
 */
export function mcpRequestRefusal(refusal: Refusal, id: string | number | null = null): Response {
  return textResponse(JSON.stringify({ jsonrpc: '2.0', id, error: jsonRpcErrorOf(refusal) }), {
    status: statusOf(refusal),
    headers: { 'content-type': 'application/json', ...refusal.headers },
  });
}

/**
 * The policy's refusal of JSON-RPC requests on `/mcp`, answered in band: HTTP 200 with a JSON-RPC
 * error per request, exactly as a handler's error is answered, so an MCP client sees `-32003` or
 * `-32029` (with `data.retryAfterSeconds`) instead of a transport failure. The headers of the first
 * refusal that has any (`Retry-After`, `RateLimit`) ride along for HTTP-aware clients and proxies.
 */
export function mcpMessageRefusals(refused: readonly RefusedMessage[], batch: boolean): Response {
  const messages = refused.map(refusedMessage);
  const headers = refused.find((r) => r.refusal.headers)?.refusal.headers;
  return textResponse(JSON.stringify(batch ? messages : messages[0]), {
    status: 200,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** What a refused WebSocket upgrade writes on the raw socket. */
export interface UpgradeAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The answer to a refused WebSocket upgrade: the status, the headers, a JSON-RPC error body. */
export function upgradeRefusal(refusal: Refusal): UpgradeAnswer {
  return {
    status: statusOf(refusal),
    headers: { ...refusal.headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: null, error: jsonRpcErrorOf(refusal) }),
  };
}
