/**
 * Reads an upstream's answer for a declarative HTTP tool, in a worker thread or a child process
 * (`declarativeTools.isolation`): the parse of its JSON, the costly and untrusted part, happens here,
 * under the worker's heap limit and hard timeout, never on the server's event loop. Plain JavaScript,
 * like the runner, so the same file runs from `src/` and from `dist/`.
 *
 * It reads as the server's thread does (src/declarative.ts, `upstreamErrorMessage` in
 * src/net/outbound.ts): a 2xx JSON object comes back as it is (the main thread removes pollution
 * keys from whatever a worker returns), JSON nesting deeper than `maxDepth` is taken as text, and a
 * failed answer gives only its own message, cut short.
 */

/** The longest message of a failed answer sent back (the main thread cuts it to 200 characters). */
const MESSAGE_LENGTH = 4096;

/** Whether JSON text nests deeper than `maxDepth`, in one pass over the text, before any parse. */
function nestsDeeper(text, maxDepth) {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function parse(text, maxDepth) {
  if (text.length > maxDepth * 2 && nestsDeeper(text, maxDepth)) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorMessage(text) {
  if (text.length > 1024 * 1024) return undefined;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const message =
    typeof parsed?.error === 'object' && parsed.error !== null
      ? parsed.error.message
      : typeof parsed?.error === 'string'
        ? parsed.error
        : parsed?.message;
  return typeof message === 'string' ? message.slice(0, MESSAGE_LENGTH) : undefined;
}

/** The reading of one answer: `{ value }` for a JSON object, `{ message }` for a failure's own words. */
export default function readUpstreamAnswer({ text, ok, json, maxDepth }) {
  if (typeof text !== 'string') return {};
  if (!ok) {
    const message = errorMessage(text);
    return message === undefined ? {} : { message };
  }
  if (!json) return {};
  const value = parse(text, maxDepth);
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? { value } : {};
}
