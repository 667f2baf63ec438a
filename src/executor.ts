import {
  type CallToolResult,
  type ContentBlock,
  isCallToolResult,
  isInputRequiredResult,
  ProtocolError,
  type ServerContext,
} from '@modelcontextprotocol/server';
import EventEmitter from 'eventemitter3';
import type { CallOrigin, ClientLog, RegisteredTool, ToolCatalog, ToolContext } from './catalog/tools.js';
import { McpKitError, type McpKitErrorCode, publicErrorMessage, scrubPaths } from './errors.js';
import { formatIssues } from './schema.js';
import type { CallerIdentity, Logger } from './types.js';

/** The `_meta` key under which mcpkit reports why a call failed: `{ code, errorId? }`. */
export const ERROR_META_KEY = 'io.mcpkit/error';

/** Per-call options for {@link ToolExecutor.execute}. */
export interface ExecuteOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Overrides the tool's and the executor's timeout for this call. `0` disables it. */
  timeoutMs?: number;
  requestId?: string | number;
  sessionId?: string;
  caller?: CallerIdentity;
  origin?: CallOrigin;
  /** Where `ctx.progress` goes; absent when the caller asked for no progress. */
  onProgress?: (progress: number, total?: number, message?: string) => Promise<void>;
  /** MCP logging to the calling client. */
  log?: ClientLog;
  /** The SDK request context, when the call came over MCP. */
  mcp?: ServerContext;
  /** @internal nesting depth of `ctx.callTool`. */
  depth?: number;
}

/** Options for {@link ToolExecutor}. */
export interface ToolExecutorOptions {
  /** Default timeout per call in milliseconds; `0` disables. Default 60 000. */
  defaultTimeoutMs?: number;
  /** How deep `ctx.callTool` may nest before failing. Default 16. */
  maxDepth?: number;
  logger: Logger;
}

/** Payload of every executor event. */
export interface ToolCallEvent {
  tool: string;
  caller?: CallerIdentity;
  origin: CallOrigin;
  sessionId?: string;
  requestId?: string | number;
  /** Milliseconds since the call started (0 on `start`). */
  durationMs: number;
  /** The failure's code on `error`, `timeout` and `cancel`. */
  code?: McpKitErrorCode;
  errorId?: string;
}

/** Events the executor emits: the hook metrics and audit use. */
export interface ToolExecutorEvents {
  start: (event: ToolCallEvent) => void;
  success: (event: ToolCallEvent) => void;
  error: (event: ToolCallEvent) => void;
  timeout: (event: ToolCallEvent) => void;
  cancel: (event: ToolCallEvent) => void;
}

const CONTENT_TYPES = new Set(['text', 'image', 'audio', 'resource_link', 'resource']);
const NOOP_LOG: ClientLog = {
  debug: async () => {},
  info: async () => {},
  warning: async () => {},
  error: async () => {},
};
const MAX_MESSAGE = 2000;

function isContentBlock(value: unknown): value is ContentBlock {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    CONTENT_TYPES.has((value as { type: string }).type)
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
  if (isCallToolResult(value)) return value as CallToolResult;
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

function newErrorId(): string {
  return globalThis.crypto.randomUUID().slice(0, 8);
}

function handlerFailureMessage(error: unknown): string {
  if (error instanceof McpKitError) return publicErrorMessage(error);
  const raw = error instanceof Error ? error.message : typeof error === 'string' ? error : 'Tool failed';
  const firstLine = raw.split('\n')[0] ?? '';
  const message = scrubPaths(firstLine).slice(0, MAX_MESSAGE);
  return message || 'Tool failed';
}

/**
 * Runs every tool call, whoever makes it: MCP sessions on any transport, REST, chains and models.
 * Validates arguments against the compiled schema, applies the timeout, wires cancellation and
 * progress into the handler's context, normalises results, validates output, and turns handler
 * failures into `isError` results that carry a sanitized message and an error id (the stack goes to
 * the log).
 *
 * @example
 * ```ts
 * const result = await server.executor.execute('add', { a: 1, b: 2 });
 * server.executor.on('error', (e) => console.warn(e.tool, e.code, e.errorId));
 * ```
 */
export class ToolExecutor extends EventEmitter<ToolExecutorEvents> {
  readonly #tools: ToolCatalog;
  readonly #defaultTimeoutMs: number;
  readonly #maxDepth: number;
  readonly #logger: Logger;

  /** @internal Built by `createMcpServer`; reach it as `server.executor`. */
  constructor(tools: ToolCatalog, options: ToolExecutorOptions) {
    super();
    this.#tools = tools;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
    this.#maxDepth = options.maxDepth ?? 16;
    this.#logger = options.logger;
  }

  /**
   * Runs the tool `name`. Throws `NOT_FOUND` for an unknown or disabled tool (MCP answers that with
   * a JSON-RPC error); every other failure is an `isError` result.
   */
  async execute(name: string, args: unknown, options: ExecuteOptions = {}): Promise<CallToolResult> {
    const tool = this.#tools.require(name);
    return this.executeTool(tool, args, options);
  }

  /** Runs an already-resolved tool. */
  async executeTool(
    tool: RegisteredTool,
    args: unknown,
    options: ExecuteOptions = {},
  ): Promise<CallToolResult> {
    const started = performance.now();
    const origin = options.origin ?? 'internal';
    const event = (extra?: Partial<ToolCallEvent>): ToolCallEvent => ({
      tool: tool.name,
      origin,
      ...(options.caller && { caller: options.caller }),
      ...(options.sessionId !== undefined && { sessionId: options.sessionId }),
      ...(options.requestId !== undefined && { requestId: options.requestId }),
      durationMs: performance.now() - started,
      ...extra,
    });
    if (this.listenerCount('start') > 0) this.emit('start', event({ durationMs: 0 }));

    const depth = options.depth ?? 0;
    if (depth > this.#maxDepth) {
      this.emit('error', event({ code: 'INVALID_REQUEST' }));
      return errorResult('INVALID_REQUEST', `Tool calls nested deeper than ${this.#maxDepth}`);
    }

    const validated = await tool.input.validate(args ?? {});
    if (!validated.ok) {
      this.emit('error', event({ code: 'INVALID_ARGUMENT' }));
      return errorResult(
        'INVALID_ARGUMENT',
        `Input validation error: Invalid arguments for tool ${tool.name}: ${formatIssues(validated.issues)}`,
      );
    }

    const timeoutMs = options.timeoutMs ?? tool.definition.timeoutMs ?? this.#defaultTimeoutMs;
    const controller = new AbortController();
    const parent = options.signal;
    const onParentAbort = () => controller.abort(parent?.reason);
    if (parent) {
      if (parent.aborted) controller.abort(parent.reason);
      else parent.addEventListener('abort', onParentAbort, { once: true });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    let rejectAbort: (reason: unknown) => void = () => {};
    const aborted = new Promise<never>((_, reject) => {
      rejectAbort = reject;
    });
    aborted.catch(() => {});
    const onAbort = () => rejectAbort(controller.signal.reason);
    controller.signal.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new McpKitError('TIMEOUT', `Tool ${tool.name} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    }

    const ctx = this.#context(tool, controller.signal, options, depth);
    try {
      if (controller.signal.aborted) throw controller.signal.reason;
      const raw = await Promise.race([invoke(tool, validated.value, ctx), aborted]);
      // A multi-round-trip `input_required` answer goes back to the client as it is.
      if (isInputRequiredResult(raw)) {
        this.emit('success', event());
        return raw as unknown as CallToolResult;
      }
      const result = toCallToolResult(raw);
      if (tool.output && !result.isError) {
        const problem = await this.#checkOutput(tool, result);
        if (problem) {
          const errorId = newErrorId();
          this.#logger.error({ tool: tool.name, errorId, problem }, 'tool output failed validation');
          this.emit('error', event({ code: 'INTERNAL', errorId }));
          return errorResult('INTERNAL', `${problem} (error id ${errorId})`, errorId);
        }
      }
      this.emit(
        result.isError ? 'error' : 'success',
        event(result.isError ? { code: 'UPSTREAM_ERROR' } : {}),
      );
      return result;
    } catch (error) {
      if (timedOut) {
        this.emit('timeout', event({ code: 'TIMEOUT' }));
        return errorResult('TIMEOUT', `Tool ${tool.name} timed out after ${timeoutMs} ms`);
      }
      if (controller.signal.aborted) {
        this.emit('cancel', event({ code: 'CANCELLED' }));
        return errorResult('CANCELLED', `Tool ${tool.name} was cancelled`);
      }
      // A handler that throws a protocol error asks for a JSON-RPC error, not a tool error.
      if (error instanceof ProtocolError) {
        this.emit('error', event({ code: 'INVALID_REQUEST' }));
        throw error;
      }
      const errorId = newErrorId();
      const code = error instanceof McpKitError ? error.code : 'INTERNAL';
      this.#logger.error({ tool: tool.name, errorId, err: error }, 'tool handler failed');
      this.emit('error', event({ code, errorId }));
      return errorResult(code, `${handlerFailureMessage(error)} (error id ${errorId})`, errorId);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      controller.signal.removeEventListener('abort', onAbort);
      parent?.removeEventListener('abort', onParentAbort);
    }
  }

  async #checkOutput(tool: RegisteredTool, result: CallToolResult): Promise<string | undefined> {
    if (result.structuredContent === undefined) {
      return `Output validation error: tool ${tool.name} has an output schema but returned no structured content`;
    }
    const outcome = await tool.output!.validate(result.structuredContent);
    if (outcome.ok) return undefined;
    return `Output validation error: invalid structured content for tool ${tool.name}: ${formatIssues(outcome.issues)}`;
  }

  #context(tool: RegisteredTool, signal: AbortSignal, options: ExecuteOptions, depth: number): ToolContext {
    const onProgress = options.onProgress;
    const logger = this.#logger;
    return {
      signal,
      toolName: tool.name,
      ...(options.requestId !== undefined && { requestId: options.requestId }),
      ...(options.sessionId !== undefined && { sessionId: options.sessionId }),
      ...(options.caller && { caller: options.caller }),
      origin: options.origin ?? 'internal',
      get logger() {
        return logger.child({ tool: tool.name });
      },
      log: options.log ?? NOOP_LOG,
      ...(options.mcp && { mcp: options.mcp }),
      progress: onProgress
        ? (progress, total, message) => onProgress(progress, total, message).catch(() => {})
        : async () => {},
      callTool: (name, args) =>
        this.execute(name, args ?? {}, {
          signal,
          ...(options.caller && { caller: options.caller }),
          ...(options.sessionId !== undefined && { sessionId: options.sessionId }),
          origin: 'internal',
          depth: depth + 1,
        }),
    };
  }
}

function invoke(tool: RegisteredTool, args: unknown, ctx: ToolContext): Promise<unknown> {
  try {
    return Promise.resolve(tool.definition.handler(args as never, ctx));
  } catch (error) {
    return Promise.reject(error);
  }
}
