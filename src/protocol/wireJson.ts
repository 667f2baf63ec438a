/**
 * The JSON text of outgoing JSON-RPC messages, with the item arrays of list answers (`tools/list`,
 * `resources/list`, `resources/templates/list`, `prompts/list`) serialised once per catalog change
 * instead of once per request.
 *
 * A catalog's listed array is the same array until the catalog changes, and nobody mutates it: the
 * list handlers mark it (and each page cut from it) with {@link markStable}, and the transports mcpkit
 * writes itself (2025-era sessions over HTTP, WebSocket) serialise with {@link messageJson}, which
 * splices the kept text in. A change builds a new array, so the old text is never served again and
 * goes with its array.
 */

/** The list keys a result may carry, in the order they are looked for. */
const LIST_KEYS = ['tools', 'resources', 'resourceTemplates', 'prompts'] as const;

/** A stable array's JSON, as text and (once asked for) as UTF-8 bytes. */
interface Kept {
  text: string;
  bytes?: Uint8Array;
}

/** Stable arrays and, once serialised, their JSON. */
const stable = new WeakMap<readonly unknown[], Kept | null>();

const encoder = new TextEncoder();

/** Marks `items` as never changing again: its JSON text is kept once built. Returns `items`. */
export function markStable<T extends readonly unknown[]>(items: T): T {
  if (!stable.has(items)) stable.set(items, null);
  return items;
}

/** Whether `items` was marked with {@link markStable}. */
export function isStable(items: readonly unknown[]): boolean {
  return stable.has(items);
}

/** The list array a result answers with, when it is a stable one. */
function stableList(result: Record<string, unknown>): { key: string; items: readonly unknown[] } | undefined {
  for (const key of LIST_KEYS) {
    const items = result[key];
    if (items === undefined) continue;
    return Array.isArray(items) && stable.has(items) ? { key, items } : undefined;
  }
  return undefined;
}

/**
 * A message's JSON as parts: the text before a stable list's items, their kept UTF-8 bytes, the text
 * after. `undefined` when the message carries no stable list.
 */
function listParts(message: unknown): [string, Kept, string] | undefined {
  const result = (message as { result?: unknown } | null)?.result;
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return undefined;
  const list = stableList(result as Record<string, unknown>);
  if (!list) return undefined;
  let kept = stable.get(list.items);
  if (!kept) {
    kept = { text: JSON.stringify(list.items) };
    stable.set(list.items, kept);
  }
  const { [list.key]: _items, ...others } = result as Record<string, unknown>;
  const othersJson = JSON.stringify(others);
  const after = othersJson === '{}' ? '}}' : `,${othersJson.slice(1)}}`;
  const { result: _result, ...envelope } = message as Record<string, unknown>;
  const envelopeJson = JSON.stringify(envelope);
  const before = `${envelopeJson === '{}' ? '{' : `${envelopeJson.slice(0, -1)},`}"result":{"${list.key}":`;
  return [before, kept, after];
}

/**
 * `JSON.stringify(message)`, except that a list answer's stable item array is serialised only the
 * first time: the same text, built from parts.
 *
 * @example
 * ```ts
 * const tools = markStable(catalog.list());
 * messageJson({ jsonrpc: '2.0', id: 1, result: { tools } }); // builds the array's text once
 * ```
 */
export function messageJson(message: unknown): string {
  const parts = listParts(message);
  return parts ? parts[0] + parts[1].text + parts[2] : JSON.stringify(message);
}

/**
 * The message's JSON for a body written whole: its text, or for a list answer the text around the
 * items' UTF-8 bytes, which are encoded once per catalog change (never copied or modified after).
 */
export function messageBody(message: unknown): string | readonly (string | Uint8Array)[] {
  const parts = listParts(message);
  if (!parts) return JSON.stringify(message);
  const kept = parts[1];
  kept.bytes ??= encoder.encode(kept.text);
  return [parts[0], kept.bytes, parts[2]];
}
