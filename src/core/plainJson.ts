/**
 * Shape checks for values parsed from JSON, for the places that skip a schema's parse when a value
 * is plainly one the schema accepts and returns as it is (the SDK's JSON-RPC and tool-result
 * schemas): anything these do not recognise goes to the schema.
 */

/** Whether `value` is an object literal (or one without a prototype), as `JSON.parse` makes them. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A JSON-RPC id or progress token as the SDK's schemas accept it: a string or a safe integer. */
export function isJsonRpcId(value: unknown): value is string | number {
  return typeof value === 'string' || Number.isSafeInteger(value);
}

/** Whether `block` is a `{ type: 'text', text }` content block with nothing else. */
export function isBareTextBlock(block: unknown): boolean {
  if (!isPlainObject(block) || block.type !== 'text' || typeof block.text !== 'string') return false;
  for (const key in block) if (key !== 'type' && key !== 'text') return false;
  return true;
}
