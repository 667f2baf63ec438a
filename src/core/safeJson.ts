/**
 * JSON from the wire without prototype-pollution gadgets. `JSON.parse` itself never touches
 * `Object.prototype`: it defines a key named `__proto__` as an own property. The danger is later code
 * that copies such an object with assignment (`Object.assign`, a hand-written deep merge, a spread
 * into a setter): the copy's prototype, or `Object.prototype` itself, is then replaced. So every door
 * (REST, `/mcp`, WebSocket, stdio) removes, at any depth:
 *
 * - every own `__proto__` key;
 * - every `constructor` key whose value is an object with a `prototype` key
 *   (`{"constructor": {"prototype": {…}}}`, the other path to a prototype).
 */

/** Text that may name a dangerous key; `\u` escapes can spell one without its letters. */
function mayPollute(text: string): boolean {
  return text.includes('__proto__') || text.includes('constructor') || text.includes('\\u');
}

function isPrototypeCarrier(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype');
}

function reviver(key: string, value: unknown): unknown {
  if (key === '__proto__') return undefined;
  if (key === 'constructor' && isPrototypeCarrier(value)) return undefined;
  return value;
}

/** How deep a JSON document from the wire may nest (arrays and objects), by default. */
export const MAX_JSON_DEPTH = 64;

/** The error for a JSON document that nests deeper than allowed: the caller's fault, not a parse error. */
export class JsonDepthError extends RangeError {
  override readonly name = 'JsonDepthError';
  constructor(readonly maxDepth: number) {
    super(`the JSON nests deeper than ${maxDepth} levels`);
  }
}

/**
 * Whether JSON text nests deeper than `maxDepth` arrays and objects, found in one pass over the text
 * (brackets inside strings do not count) before anything is parsed: a document nested a million
 * deep is refused without building it.
 */
function nestsDeeper(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Whether `text` opens at most `limit` arrays and objects in all: its `[` and `{` counted, in strings
 * or not, which bounds how deep it can nest. Native `indexOf` scans, so a typical body (a handful of
 * brackets) is ruled out in a tenth of the time {@link nestsDeeper} takes to walk it.
 */
function fewOpeners(text: string, limit: number): boolean {
  let count = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > limit) return false;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > limit) return false;
  return true;
}

/**
 * How deep `value` nests (arrays and plain objects), counted without recursion, stopping once past
 * `limit`: for values that did not come through {@link parseJsonSafe} (specs registered in code or
 * loaded from storage).
 */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/**
 * `JSON.parse` without pollution keys (see the module comment), for a document nesting at most
 * `maxDepth` levels (64 by default; deeper throws a {@link JsonDepthError}). Text that cannot name a
 * pollution key takes the plain `JSON.parse` path, at its full speed; other text is parsed with a
 * reviver that drops them. Throws what `JSON.parse` throws for text that is not JSON.
 *
 * @example
 * ```ts
 * const args = parseJsonSafe('{"__proto__": {"isAdmin": true}, "a": 1}'); // { a: 1 }
 * ```
 */
export function parseJsonSafe(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  // Cheap to rule out: a document under that many bytes, or with no more brackets than that, cannot
  // nest that deep.
  if (text.length > maxDepth * 2 && !fewOpeners(text, maxDepth) && nestsDeeper(text, maxDepth)) {
    throw new JsonDepthError(maxDepth);
  }
  if (!mayPollute(text)) return JSON.parse(text);
  try {
    return JSON.parse(text, reviver);
  } catch (error) {
    // The reviver walk is recursive in V8: a very deep document overflows the stack where the plain
    // parse does not. Parse it plainly and clean it with the iterative walk instead.
    if (!(error instanceof RangeError)) throw error;
    return stripPollution(JSON.parse(text));
  }
}

/** One decoder for every body: `decode` without `stream` keeps no state between calls. */
const UTF8 = new TextDecoder();

/**
 * {@link parseJsonSafe} of UTF-8 bytes (a request body), decoded as `TextDecoder` decodes them: a
 * leading byte-order mark dropped, invalid sequences replaced.
 */
export function parseJsonBytes(bytes: Uint8Array, maxDepth?: number): unknown {
  return parseJsonSafe(UTF8.decode(bytes), maxDepth);
}

/**
 * Removes pollution keys (see the module comment) from an already parsed value, in place, at any
 * depth, and returns it: for messages parsed by code mcpkit does not own (the SDK's stdio reader).
 * The walk is depth-first over an explicit stack (no recursion, so no depth overflows it), descends
 * only into arrays and plain objects (prototype `Object.prototype` or `null`), and visits each
 * object once, so shared or cyclic references end it.
 *
 * @example
 * ```ts
 * transport.onmessage = (message) => handle(stripPollution(message));
 * ```
 */
export function stripPollution<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  const seen = new Set<object>();
  const stack: object[] = [value];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const item of node) if (typeof item === 'object' && item !== null) stack.push(item);
      continue;
    }
    const proto = Object.getPrototypeOf(node);
    if (proto !== Object.prototype && proto !== null) continue;
    const record = node as Record<string, unknown>;
    if (Object.hasOwn(record, '__proto__')) Reflect.deleteProperty(record, '__proto__');
    if (Object.hasOwn(record, 'constructor') && isPrototypeCarrier(record.constructor)) {
      Reflect.deleteProperty(record, 'constructor');
    }
    for (const key of Object.keys(record)) {
      const child = record[key];
      if (typeof child === 'object' && child !== null) stack.push(child);
    }
  }
  return value;
}
