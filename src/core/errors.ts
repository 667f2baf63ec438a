/**
 * One error class for the whole package, with string codes and one table that maps each code to an
 * HTTP status and a JSON-RPC error code. Local failures are normalised into it with
 * {@link toMcpKitError}; what reaches a caller is built by {@link publicErrorMessage}, which never
 * carries a stack, a file path or the message of an unexpected error.
 */

/** Every error code mcpkit produces. */
export type McpKitErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_REQUEST'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'CONFLICT'
  | 'PRECONDITION_FAILED'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_ACCEPTABLE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'BUSY'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'UNAVAILABLE'
  | 'UPSTREAM_ERROR'
  | 'INTERNAL';

interface CodeInfo {
  readonly status: number;
  readonly jsonRpc: number;
  readonly title: string;
}

/**
 * The single table from error code to HTTP status and JSON-RPC error code. Every JSON-RPC code has
 * one meaning: the standard ones where they fit (`-32602` is any invalid parameter, an unknown name
 * included, as MCP asks for unknown tools and resources), and otherwise a code of mcpkit's own in the
 * implementation-defined range (-32000 … -32099) that no other error shares. Codes the SDK and the MCP
 * specification use are left to them: `-32000` (the SDK's generic transport errors), `-32001` (an
 * unknown session), `-32002` (a resource not found, in older servers), `-32020` to `-32022` and
 * `-32042`.
 */
export const ERROR_CODES: Readonly<Record<McpKitErrorCode, CodeInfo>> = Object.freeze({
  INVALID_ARGUMENT: { status: 400, jsonRpc: -32602, title: 'Invalid argument' },
  INVALID_REQUEST: { status: 400, jsonRpc: -32600, title: 'Invalid request' },
  NOT_FOUND: { status: 404, jsonRpc: -32602, title: 'Not found' },
  ALREADY_EXISTS: { status: 409, jsonRpc: -32007, title: 'Already exists' },
  CONFLICT: { status: 409, jsonRpc: -32009, title: 'Conflict' },
  PRECONDITION_FAILED: { status: 412, jsonRpc: -32012, title: 'Precondition failed' },
  METHOD_NOT_ALLOWED: { status: 405, jsonRpc: -32013, title: 'Method not allowed' },
  NOT_ACCEPTABLE: { status: 406, jsonRpc: -32014, title: 'Not acceptable' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, jsonRpc: -32015, title: 'Unsupported media type' },
  PAYLOAD_TOO_LARGE: { status: 413, jsonRpc: -32016, title: 'Payload too large' },
  REQUEST_TIMEOUT: { status: 408, jsonRpc: -32017, title: 'Request timeout' },
  UNAUTHORIZED: { status: 401, jsonRpc: -32011, title: 'Unauthorized' },
  FORBIDDEN: { status: 403, jsonRpc: -32003, title: 'Forbidden' },
  RATE_LIMITED: { status: 429, jsonRpc: -32029, title: 'Too many requests' },
  BUSY: { status: 503, jsonRpc: -32005, title: 'Busy' },
  TIMEOUT: { status: 504, jsonRpc: -32008, title: 'Timed out' },
  CANCELLED: { status: 499, jsonRpc: -32800, title: 'Cancelled' },
  UNAVAILABLE: { status: 503, jsonRpc: -32019, title: 'Service unavailable' },
  UPSTREAM_ERROR: { status: 502, jsonRpc: -32018, title: 'Upstream error' },
  INTERNAL: { status: 500, jsonRpc: -32603, title: 'Internal error' },
});

/** Options for {@link McpKitError}. */
export interface McpKitErrorOptions {
  /** The underlying error, kept for logs; never sent to a caller. */
  cause?: unknown;
  /** Machine-readable details safe to show a caller (for example the fields that failed validation). */
  details?: unknown;
  /** Whether `message` may be shown to a caller. Defaults to `true` for every code but `INTERNAL`. */
  expose?: boolean;
}

/**
 * The error type every mcpkit API throws.
 *
 * @example
 * ```ts
 * import { McpKitError } from 'mcpkit';
 *
 * throw new McpKitError('NOT_FOUND', 'Tool "weather" is not registered');
 * ```
 */
export class McpKitError extends Error {
  override readonly name = 'McpKitError';
  readonly code: McpKitErrorCode;
  readonly details: unknown;
  readonly expose: boolean;

  constructor(code: McpKitErrorCode, message: string, options: McpKitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.expose = options.expose ?? code !== 'INTERNAL';
  }

  /** The HTTP status for this error's code. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** The JSON-RPC error code for this error's code. */
  get jsonRpcCode(): number {
    return ERROR_CODES[this.code].jsonRpc;
  }
}

/**
 * Turns anything thrown into an {@link McpKitError}. Unknown errors become `INTERNAL` with their
 * message hidden from callers (kept as `cause` for logs).
 *
 * @example
 * ```ts
 * try { await run(); } catch (error) { const e = toMcpKitError(error); log(e.code); }
 * ```
 */
export function toMcpKitError(error: unknown): McpKitError {
  if (error instanceof McpKitError) return error;
  if (isAbortError(error))
    return new McpKitError('CANCELLED', 'The operation was cancelled', { cause: error });
  return new McpKitError('INTERNAL', 'Internal error', { cause: error, expose: false });
}

/** Whether `error` is an abort (a `DOMException` or `Error` named `AbortError`). */
export function isAbortError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

/**
 * The message a caller may see for `error`: the message of an exposed {@link McpKitError}, otherwise a
 * generic one. Absolute file paths are scrubbed even from exposed messages.
 */
export function publicErrorMessage(error: unknown): string {
  const e = toMcpKitError(error);
  return e.expose ? scrubPaths(e.message) : ERROR_CODES[e.code].title;
}

const PATH_PATTERN =
  /file:\/\/\S+|(?<![\w:/.])\/(?:[\w.@+-]+\/)+[\w.@+-]+|\b[A-Za-z]:\\(?:[^\\\s]+\\)+[^\\\s]+/g;

/** Replaces absolute file paths in `text` with `<path>`. */
export function scrubPaths(text: string): string {
  return text.replace(PATH_PATTERN, '<path>');
}

const MAX_ECHO = 64;

/**
 * `text` as a string of its own. V8 keeps the whole of a string alive for as long as a slice of it
 * (or a concatenation holding that slice) lives, so 64 characters cut from a caller's megabyte
 * would keep the megabyte: anything kept for later (an error message, a log record, an audit
 * entry) is detached first. Short strings are never slices, and are returned as they are.
 *
 * @example
 * ```ts
 * const kept = detach(huge.slice(0, 100)); // holds 100 characters, not `huge`
 * ```
 */
export function detach(text: string): string {
  return text.length < 13 ? text : ` ${text}`.slice(1);
}

/**
 * How a refusal or error message names something the caller sent: cut to a short prefix, and
 * JSON-quoted when it holds control characters, quotes or backslashes, so a message never carries
 * more than a few dozen characters of attacker-chosen text, nor a line break.
 *
 * @example
 * ```ts
 * `Tool ${quote(name)} not found` // Tool aaaaaaaa… not found
 * ```
 */
export function quote(value: unknown): string {
  const text = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : typeof value;
  const cut = text.length > MAX_ECHO ? detach(`${text.slice(0, MAX_ECHO)}…`) : text;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  return /[\u0000-\u001f\u007f-\u009f"\\\u2028\u2029]/.test(cut) ? JSON.stringify(cut) : cut;
}
