import { textResponse } from './bodyText.js';

/** JSON-RPC error responses for the `/mcp` endpoint: always JSON, never an HTML page or a stack. */

export const JSONRPC_PARSE_ERROR = -32700;
export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_SERVER_ERROR = -32000;
export const JSONRPC_SESSION_NOT_FOUND = -32001;
export const JSONRPC_INTERNAL_ERROR = -32603;
/** No or a bad credential (the HTTP status, 401, says the rest). */
export const JSONRPC_UNAUTHORIZED = -32001;

/** A JSON-RPC error response with `id: null` and the given HTTP status. */
export function jsonRpcError(
  status: number,
  { code, message }: { code: number; message: string },
  headers: Record<string, string> = {},
): Response {
  return textResponse(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}
