/**
 * The two JSON-RPC messages that make up nearly all of a gateway's traffic from an upstream, a
 * result response and a notification, recognised by their shape, for the places where the SDK
 * would otherwise run its zod schemas over each one: the stdio reader (`node/upstreamLines.ts`) and
 * the upstream client's classification of what arrives (`UpstreamLink`). A message is recognised
 * only when the SDK's schema would, beyond doubt, accept it and hand it on unchanged (no `_meta`,
 * whose server-info entry the schema may rewrite; no key the schema does not know); anything else
 * takes the SDK's own path.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import { isJsonRpcId } from '../core/plainJson.js';

/** Whether `value` is a non-null object that is not an array. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own enumerable keys of `value`, counted (a parsed JSON object has no others). */
function keyCount(value: Record<string, unknown>): number {
  let count = 0;
  for (const key in value) if (Object.hasOwn(value, key)) count += 1;
  return count;
}

/**
 * `value` as a JSON-RPC message when it is, beyond doubt, one the SDK's `JSONRPCMessageSchema`
 * accepts and would hand on unchanged: a result response (`jsonrpc`, an id that is a string or a
 * safe integer, an object `result` without `_meta`, nothing else) or a notification (`jsonrpc`, a
 * string `method`, optional object `params` without `_meta`, nothing else). `undefined` for
 * anything else, which the caller then gives to the SDK's parse.
 */
export function quickMessage(value: unknown): JSONRPCMessage | undefined {
  if (!isRecord(value) || value.jsonrpc !== '2.0') return undefined;
  if ('result' in value) return isPlainResult(value) ? (value as unknown as JSONRPCMessage) : undefined;
  const keys = keyCount(value);
  if (typeof value.method === 'string' && !('id' in value)) {
    if (!('params' in value)) return keys === 2 ? (value as unknown as JSONRPCMessage) : undefined;
    const { params } = value;
    if (keys !== 3 || !isRecord(params) || '_meta' in params) return undefined;
    return value as unknown as JSONRPCMessage;
  }
  return undefined;
}

/**
 * Whether `value` is a result response the SDK's `isJSONRPCResultResponse` accepts, beyond doubt:
 * `jsonrpc: "2.0"`, an id that is a string or a safe integer, an object `result` without `_meta`,
 * and nothing else.
 */
export function isPlainResult(value: unknown): boolean {
  if (!isRecord(value) || value.jsonrpc !== '2.0' || !('id' in value) || !('result' in value)) return false;
  const { id, result } = value;
  if (!isJsonRpcId(id)) return false;
  return isRecord(result) && !('_meta' in result) && keyCount(value) === 3;
}
