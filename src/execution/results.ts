/**
 * What a call answers: a handler's return value normalised into a `CallToolResult`, and failures as
 * `isError` results that carry mcpkit's error code (and error id) in `_meta`, with a message safe to
 * show the caller.
 */
import { type CallToolResult, type ContentBlock, isCallToolResult } from '@modelcontextprotocol/server';
import { McpKitError, type McpKitErrorCode, publicErrorMessage } from '../core/errors.js';
import { isBareTextBlock } from '../core/plainJson.js';
import { redactText } from '../core/redaction.js';
import { isValidationError } from '../schema.js';

/** The `_meta` key under which mcpkit reports why a call failed: `{ code, errorId? }`. */
export const ERROR_META_KEY = 'io.mcpkit/error';

/** The `_meta` key under which a result reports how many attempts it took, when more than one. */
export const ATTEMPTS_META_KEY = 'io.mcpkit/attempts';

/** The longest failure message a caller sees. */
export const MAX_MESSAGE = 2000;

const CONTENT_TYPES = new Set(['text', 'image', 'audio', 'resource_link', 'resource']);

function isContentBlock(value: unknown): value is ContentBlock {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    CONTENT_TYPES.has((value as { type: string }).type)
  );
}

/**
 * Whether `value` is a result the SDK's `isCallToolResult` (a zod parse of the whole result) accepts
 * beyond doubt, told without it: an object whose `content` is an array of bare text blocks, whose
 * `isError` is absent or a boolean and whose `_meta` is absent or an object. The common answer (a
 * forwarded upstream's, most handlers') is recognised here; anything else is left to the SDK.
 */
function isPlainCallToolResult(value: object): boolean {
  const v = value as { content?: unknown; isError?: unknown; _meta?: unknown };
  if (!Array.isArray(v.content) || !v.content.every(isBareTextBlock)) return false;
  if (v.isError !== undefined && typeof v.isError !== 'boolean') return false;
  return (
    v._meta === undefined || (typeof v._meta === 'object' && v._meta !== null && !Array.isArray(v._meta))
  );
}

/** Normalises whatever a handler returned into a `CallToolResult`. */
export function toCallToolResult(value: unknown): CallToolResult {
  if (value === undefined || value === null) return { content: [] };
  if (typeof value === 'string') return { content: [{ type: 'text', text: value }] };
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return { content: [{ type: 'text', text: String(value) }] };
  }
  if (Array.isArray(value) && value.every(isContentBlock)) return { content: value };
  if (isPlainCallToolResult(value) || isCallToolResult(value)) return value as CallToolResult;
  if (isContentBlock(value)) return { content: [value] };
  if (typeof value === 'object' && !Array.isArray(value)) {
    return {
      content: [{ type: 'text', text: JSON.stringify(value) }],
      structuredContent: value as Record<string, unknown>,
    };
  }
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: { result: value } };
}

/** An `isError` result carrying mcpkit's error code (and error id) in `_meta`. */
export function errorResult(code: McpKitErrorCode, message: string, errorId?: string): CallToolResult {
  return {
    content: [{ type: 'text', text: message }],
    isError: true,
    _meta: { [ERROR_META_KEY]: { code, ...(errorId && { errorId }) } },
  };
}

/** The error code an `isError` result carries, if it came from mcpkit. */
export function errorCodeOf(result: CallToolResult): McpKitErrorCode | undefined {
  const meta = result._meta?.[ERROR_META_KEY] as { code?: McpKitErrorCode } | undefined;
  return meta?.code;
}

/** Adds `fields` to the error entry of `_meta` of a result built by {@link errorResult}. */
export function addErrorMeta(result: CallToolResult, fields: Record<string, unknown>): void {
  Object.assign(result._meta![ERROR_META_KEY] as Record<string, unknown>, fields);
}

/** Records in `_meta` that `result` took `attempts` attempts, when it took more than one. */
export function withAttempts(result: CallToolResult, attempts: number): CallToolResult {
  if (attempts > 1) result._meta = { ...result._meta, [ATTEMPTS_META_KEY]: attempts };
  return result;
}

/** A short id that ties a failure the caller sees to its entry in the log. */
export function newErrorId(): string {
  return globalThis.crypto.randomUUID().slice(0, 8);
}

/**
 * What a caller sees of a handler's failure: an mcpkit error's public message, or the first line of
 * anything else's, redacted (credentials, given secrets, file paths) and cut to `MAX_MESSAGE`.
 */
export function handlerFailureMessage(error: unknown): string {
  if (error instanceof McpKitError) return redactText(publicErrorMessage(error), { maxLength: MAX_MESSAGE });
  const raw = error instanceof Error ? error.message : typeof error === 'string' ? error : 'Tool failed';
  const end = raw.indexOf('\n');
  const firstLine = end < 0 ? raw : raw.slice(0, end);
  return redactText(firstLine, { maxLength: MAX_MESSAGE }) || 'Tool failed';
}

/**
 * A call that threw instead of answering (an unknown tool in a chain or a batch), as the result that
 * stands for it: the error's own code, else `INVALID_REQUEST`.
 */
export function thrownResult(error: unknown): CallToolResult {
  const e = error instanceof McpKitError ? error : undefined;
  return errorResult(e?.code ?? 'INVALID_REQUEST', e ? publicErrorMessage(e) : handlerFailureMessage(error));
}

/** The code a handler's failure is answered with: its own, `INVALID_ARGUMENT`, or `INTERNAL`. */
export function failureCode(error: unknown): McpKitErrorCode {
  if (error instanceof McpKitError) return error.code;
  return isValidationError(error) ? 'INVALID_ARGUMENT' : 'INTERNAL';
}
