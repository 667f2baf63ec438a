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

/**
 * `JSON.parse` without pollution keys (see the module comment). Text that cannot name such a key
 * takes the plain `JSON.parse` path, at its full speed; other text is parsed with a reviver that drops
 * them. Throws what `JSON.parse` throws for text that is not JSON.
 *
 * @example
 * ```ts
 * const args = parseJsonSafe('{"__proto__": {"isAdmin": true}, "a": 1}'); // { a: 1 }
 * ```
 */
export function parseJsonSafe(text: string): unknown {
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
