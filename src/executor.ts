import {
  type CallToolResult,
  type ClientCapabilities,
  type ContentBlock,
  type CreateMessageRequest,
  type CreateMessageResult,
  isCallToolResult,
  isInputRequiredResult,
  ProtocolError,
  type ServerContext,
} from '@modelcontextprotocol/server';
import EventEmitter from 'eventemitter3';
import pLimit, { type LimitFunction } from 'p-limit';
import pRetry, { AbortError } from 'p-retry';
import type { CallOrigin, ClientLog, RegisteredTool, ToolCatalog, ToolContext } from './catalog/tools.js';
import { isAbortError, McpKitError, type McpKitErrorCode, publicErrorMessage } from './core/errors.js';
import { redactText } from './core/redaction.js';
import {
  formatIssues,
  isValidationError,
  SchemaCompileError,
  thrownIssues,
  type ValidationOutcome,
} from './schema.js';
import { isTaskContinuation } from './tasks/continuation.js';
import {
  globalTracing,
  markError,
  type SpanAttributes,
  type SpanLike,
  type Tracing,
} from './telemetry/tracing.js';
import type { CallerIdentity, Logger } from './types.js';

/** The `_meta` key under which mcpkit reports why a call failed: `{ code, errorId? }`. */
export const ERROR_META_KEY = 'io.mcpkit/error';

/**
 * What a call needs of its caller's cancellation: an `AbortSignal` is one, and so is anything with
 * its `aborted`, `reason` and `abort` listeners (mcpkit's Node doors pass the client's departure
 * without building a signal for every request).
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const pending = server.executor.execute('slow', {}, { signal: controller.signal });
 * controller.abort(); // the call ends with CANCELLED
 * ```
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Per-call options for {@link ToolExecutor.execute}. */
export interface ExecuteOptions {
  /** Cancels the call: an `AbortSignal`, or any {@link CancelSignal}. */
  signal?: CancelSignal;
  /** Overrides the tool's and the executor's timeout for this call. `0` disables it. */
  timeoutMs?: number;
  requestId?: string | number;
  /** The id of the HTTP request that carried the call (`X-Request-Id`), when it came over HTTP. */
  httpRequestId?: string;
  /** The client's network address, when known. */
  clientAddress?: string;
  sessionId?: string;
  caller?: CallerIdentity;
  origin?: CallOrigin;
  /** Where `ctx.progress` goes; absent when the caller asked for no progress. */
  onProgress?: (progress: number, total?: number, message?: string) => Promise<void>;
  /** MCP logging to the calling client. */
  log?: ClientLog;
  /** The SDK request context, when the call came over MCP. */
  mcp?: ServerContext;
  /** The capabilities the client declared at initialisation (2025 era), for `ctx.sample`. */
  clientCapabilities?: () => ClientCapabilities | undefined;
  /**
   * A span that already stands for this execution, such as the `tools/call {tool}` server span of
   * an MCP request: the executor records the outcome on it instead of starting an
   * `execute_tool {tool}` span of its own (the OpenTelemetry MCP conventions ask for one span).
   */
  span?: SpanLike;
  /**
   * The call is work done on `caller`'s behalf (a batch, a chain, a model's tool call, a step of a
   * tool that calls others as its caller): it is checked as if the caller had asked for it and pays
   * one of the caller's `execute` rate-limit tokens. `parallel` and `chain` set it for their calls.
   */
  delegated?: boolean;
  /**
   * Tokens the request that asked for this work already paid (a REST batch is admitted on one): a
   * delegated call uses one of them, when there is one left, instead of a new token. Shared by the
   * calls of one request.
   */
  meter?: { credit: number };
  /**
   * Called once the tool's handler has really finished: with the result normally, but later when the
   * call ended first (timed out or cancelled) and the handler did not stop with its signal; at once
   * when the handler never ran (refused, invalid arguments, busy).
   */
  onSettled?: () => void;
  /** @internal Where `onSettled` learns of the handler's own promise. */
  handlerOf?: { handler?: PromiseLike<unknown> };
  /** @internal The door the root call came through (nested calls keep it for rate limits). */
  via?: CallOrigin;
  /**
   * @internal The door's admission already checked this call for its caller (a `tools/call` through
   * the MCP gate, a REST execute route): the executor does not check it twice.
   */
  admitted?: boolean;
  /** @internal nesting depth of `ctx.callTool`. */
  depth?: number;
  /**
   * @internal The caller can run a `runAsTask` continuation as a task: the executor returns it as it
   * is instead of running its work inline.
   */
  acceptTaskContinuation?: boolean;
}

/** Options for {@link ToolExecutor}. */
export interface ToolExecutorOptions {
  /** Default timeout per call in milliseconds; `0` disables. Default 60 000. */
  defaultTimeoutMs?: number;
  /** How deep `ctx.callTool` may nest before failing. Default 16. */
  maxDepth?: number;
  /** Calls running at once across all tools. Default: unlimited. */
  concurrency?: number;
  /**
   * Calls waiting for a slot (globally, and per tool) before new ones fail fast with `BUSY` instead
   * of growing memory. Default 1000.
   */
  maxQueue?: number;
  /** Retry policy for tools marked idempotent. Default `{ retries: 2, minTimeoutMs: 100, maxTimeoutMs: 2000 }`. */
  retry?: RetryPolicy;
  logger: Logger;
  /** Where tool spans go. Default: the global OpenTelemetry registration, if any. */
  tracing?: Tracing;
  /**
   * Decides whether `caller` may run `tool` (the policy layer sets it): a refusal (`FORBIDDEN`,
   * `RATE_LIMITED`, …) or `undefined`, or a promise of either when the rate store is asynchronous.
   * Consulted for every call that carries a caller and is either a top-level call or `delegated`; a
   * tool written in code calling another through `ctx.callTool` acts with the trust it was given
   * (unless it declares `callToolAs: 'caller'`).
   */
  authorize?: (
    tool: string,
    caller: CallerIdentity,
    options: ExecuteOptions,
  ) => CallRefusal | undefined | Promise<CallRefusal | undefined>;
}

/** Why the `authorize` hook refused a call: an error code and a message safe to show the caller. */
export interface CallRefusal {
  readonly code: McpKitErrorCode;
  readonly message: string;
}

/**
 * How failed calls of idempotent tools are retried (exponential backoff with jitter). Only failures
 * that may pass on their own are: never one the caller's input caused (docs/tools.md, "Retries").
 */
export interface RetryPolicy {
  /** Further attempts after the first. */
  retries?: number;
  minTimeoutMs?: number;
  maxTimeoutMs?: number;
  factor?: number;
}

/** The `_meta` key under which a result reports how many attempts it took, when more than one. */
export const ATTEMPTS_META_KEY = 'io.mcpkit/attempts';

/** Payload of every executor event. */
export interface ToolCallEvent {
  tool: string;
  caller?: CallerIdentity;
  origin: CallOrigin;
  sessionId?: string;
  requestId?: string | number;
  /** The HTTP request's id, when the call came over HTTP. */
  httpRequestId?: string;
  /** The client's network address, when known. */
  clientAddress?: string;
  /** Milliseconds since the call started (0 on `start`). */
  durationMs: number;
  /** The failure's code on `error`, `timeout` and `cancel`. */
  code?: McpKitErrorCode;
  errorId?: string;
  /** The arguments as the caller sent them (before validation). */
  args?: unknown;
}

/** Events the executor emits: the hook metrics and audit use. */
export interface ToolExecutorEvents {
  start: (event: ToolCallEvent) => void;
  success: (event: ToolCallEvent) => void;
  error: (event: ToolCallEvent) => void;
  timeout: (event: ToolCallEvent) => void;
  cancel: (event: ToolCallEvent) => void;
  /** A failed attempt of an idempotent tool that will be tried again; `code` is the failure's. */
  retry: (event: ToolCallEvent & { attempt: number }) => void;
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

/**
 * Marks `span` failed when `result` is a tool error, as the OpenTelemetry MCP conventions ask:
 * `error.type` is `tool_error`, and mcpkit's own code goes in `mcpkit.error.code`.
 */
function recordOutcome(span: SpanLike, result: CallToolResult): CallToolResult {
  if (result.isError) {
    const code = errorCodeOf(result) ?? 'UPSTREAM_ERROR';
    span.setAttribute('mcpkit.error.code', code);
    markError(span, 'tool_error', code);
  }
  return result;
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

/**
 * What a caller sees of a handler's failure: an mcpkit error's public message, or the first line of
 * anything else's, redacted (credentials, given secrets, file paths) and cut to `MAX_MESSAGE`.
 */
function handlerFailureMessage(error: unknown): string {
  if (error instanceof McpKitError) return redactText(publicErrorMessage(error), { maxLength: MAX_MESSAGE });
  const raw = error instanceof Error ? error.message : typeof error === 'string' ? error : 'Tool failed';
  const end = raw.indexOf('\n');
  const firstLine = end < 0 ? raw : raw.slice(0, end);
  return redactText(firstLine, { maxLength: MAX_MESSAGE }) || 'Tool failed';
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
  readonly #global: LimitFunction | undefined;
  readonly #perTool = new Map<string, LimitFunction>();
  readonly #maxQueue: number;
  readonly #retry: Required<RetryPolicy>;
  readonly #tracing: Tracing;
  readonly #authorize: ToolExecutorOptions['authorize'];

  /** @internal Built by `createMcpServer`; reach it as `server.executor`. */
  constructor(tools: ToolCatalog, options: ToolExecutorOptions) {
    super();
    this.#tools = tools;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
    this.#maxDepth = options.maxDepth ?? 16;
    this.#logger = options.logger;
    const concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
    if (!(concurrency >= 1)) throw new TypeError('concurrency must be at least 1');
    this.#global = Number.isFinite(concurrency) ? pLimit(concurrency) : undefined;
    this.#maxQueue = options.maxQueue ?? 1000;
    if (!(this.#maxQueue >= 0)) throw new TypeError('maxQueue must be a non-negative number');
    this.#retry = { retries: 2, minTimeoutMs: 100, maxTimeoutMs: 2000, factor: 2, ...options.retry };
    this.#tracing = options.tracing ?? globalTracing;
    this.#authorize = options.authorize;
  }

  /** Calls running and waiting, globally (for metrics and tests). */
  get load(): { active: number; queued: number } {
    return { active: this.#global?.activeCount ?? 0, queued: this.#global?.pendingCount ?? 0 };
  }

  #toolLimit(tool: RegisteredTool): LimitFunction | undefined {
    const concurrency = tool.definition.concurrency;
    if (concurrency === undefined) return undefined;
    let limit = this.#perTool.get(tool.name);
    if (!limit || limit.concurrency !== concurrency) {
      limit = pLimit(concurrency);
      this.#perTool.set(tool.name, limit);
    }
    return limit;
  }

  /**
   * Runs the tool `name`. Throws `NOT_FOUND` for an unknown or disabled tool (MCP answers that with
   * a JSON-RPC error); every other failure is an `isError` result.
   */
  async execute(name: string, args: unknown, options: ExecuteOptions = {}): Promise<CallToolResult> {
    const tool = this.#tools.require(name);
    return this.executeTool(tool, args, options);
  }

  /**
   * Runs an already-resolved tool: in an `execute_tool <name>` span when tracing is on, or recording
   * onto `options.span` when the caller has one for it.
   */
  executeTool(tool: RegisteredTool, args: unknown, options: ExecuteOptions = {}): Promise<CallToolResult> {
    if (options.onSettled) return this.#settling(tool, args, options, options.onSettled);
    const given = options.span;
    if (given) return this.#executeTool(tool, args, options).then((result) => recordOutcome(given, result));
    if (!this.#tracing.enabled) return this.#executeTool(tool, args, options);
    return this.#tracing.span(
      `execute_tool ${tool.name}`,
      async (span) => {
        const result = await this.#executeTool(tool, args, options);
        return span ? recordOutcome(span, result) : result;
      },
      {
        attributes: () => {
          const attributes: SpanAttributes = {
            'gen_ai.operation.name': 'execute_tool',
            'gen_ai.tool.name': tool.name,
            'mcpkit.origin': options.origin ?? 'internal',
          };
          if (options.caller) attributes['mcpkit.caller.id'] = options.caller.id;
          return attributes;
        },
      },
    );
  }

  /** Runs the call, then calls `onSettled` once its handler (if it ran) has finished too. */
  #settling(
    tool: RegisteredTool,
    args: unknown,
    options: ExecuteOptions,
    onSettled: () => void,
  ): Promise<CallToolResult> {
    const handlerOf: { handler?: PromiseLike<unknown> } = {};
    const settle = () => {
      const handler = handlerOf.handler;
      if (handler) handler.then(onSettled, onSettled);
      else onSettled();
    };
    const running = this.executeTool(tool, args, { ...options, onSettled: undefined, handlerOf });
    running.then(settle, settle);
    return running;
  }

  /** {@link ToolExecutor.#check}, with anything it throws turned into a rejection, as an `async` function would. */
  #executeTool(tool: RegisteredTool, args: unknown, options: ExecuteOptions = {}): Promise<CallToolResult> {
    try {
      return this.#check(tool, args, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Checks and schedules a call. Not `async`: with a synchronous schema (zod) and no error, the only
   * promise on the way to the handler is the one `#run` returns.
   */
  #check(tool: RegisteredTool, args: unknown, options: ExecuteOptions): Promise<CallToolResult> {
    const started = performance.now();
    const origin = options.origin ?? 'internal';
    // Built field by field (not with conditional spreads): two of these per call on the hot path.
    const event = (extra?: Partial<ToolCallEvent>): ToolCallEvent => {
      const built: ToolCallEvent = { tool: tool.name, origin, durationMs: performance.now() - started };
      if (options.caller) built.caller = options.caller;
      if (options.sessionId !== undefined) built.sessionId = options.sessionId;
      if (options.requestId !== undefined) built.requestId = options.requestId;
      if (options.httpRequestId !== undefined) built.httpRequestId = options.httpRequestId;
      if (options.clientAddress !== undefined) built.clientAddress = options.clientAddress;
      if (args !== undefined) built.args = args;
      return extra ? Object.assign(built, extra) : built;
    };
    this.#emit('start', event, START_EXTRA);

    const depth = options.depth ?? 0;
    const caller = options.caller;
    if (caller && this.#authorize && ((depth === 0 && !options.admitted) || options.delegated)) {
      const refused = this.#authorize(tool.name, caller, options);
      if (refused !== undefined) {
        if (!isPromiseLike(refused)) return Promise.resolve(this.#refused(refused, event));
        return refused.then((r) =>
          r === undefined ? this.#validate(tool, args, options, depth, event) : this.#refused(r, event),
        );
      }
    }
    return this.#validate(tool, args, options, depth, event);
  }

  /** A call the `authorize` hook refused: an error result, never the handler. */
  #refused(refusal: CallRefusal, event: (extra?: Partial<ToolCallEvent>) => ToolCallEvent): CallToolResult {
    this.#emit('error', event, { code: refusal.code });
    return errorResult(refusal.code, refusal.message);
  }

  /** Checks the nesting depth and the arguments, then schedules the call. */
  #validate(
    tool: RegisteredTool,
    args: unknown,
    options: ExecuteOptions,
    depth: number,
    event: (extra?: Partial<ToolCallEvent>) => ToolCallEvent,
  ): Promise<CallToolResult> {
    if (depth > this.#maxDepth) {
      this.#emit('error', event, { code: 'INVALID_REQUEST' });
      return Promise.resolve(
        errorResult('INVALID_REQUEST', `Tool calls nested deeper than ${this.#maxDepth}`),
      );
    }

    let outcome: ValidationOutcome | Promise<ValidationOutcome>;
    try {
      outcome = tool.input.validate(args ?? {});
    } catch (error) {
      return Promise.resolve(this.#schemaFailed(tool, error, event));
    }
    if (isPromiseLike(outcome)) {
      return outcome.then(
        (validated) => this.#schedule(tool, validated, options, depth, event),
        (error: unknown) => this.#schemaFailed(tool, error, event),
      );
    }
    return this.#schedule(tool, outcome, options, depth, event);
  }

  /** The tool's own schema could not be compiled: the server's bug, reported to the caller plainly. */
  #schemaFailed(
    tool: RegisteredTool,
    error: unknown,
    event: (extra?: Partial<ToolCallEvent>) => ToolCallEvent,
  ): CallToolResult {
    this.#logger.error({ tool: tool.name, err: error }, 'tool input schema is invalid');
    this.#emit('error', event, { code: 'INTERNAL' });
    // Our compiler's verdict names the schema's fault; anything else thrown from a validator (a
    // refinement, a getter in a shape) is the server's code, whose message stays in the log.
    const reason =
      error instanceof SchemaCompileError
        ? error.message
        : 'its input schema failed while checking the arguments';
    return errorResult('INTERNAL', `Tool ${tool.name} cannot run: ${reason}`);
  }

  /** A checked call: refused for its arguments, or run under the concurrency limits. */
  #schedule(
    tool: RegisteredTool,
    validated: ValidationOutcome,
    options: ExecuteOptions,
    depth: number,
    event: (extra?: Partial<ToolCallEvent>) => ToolCallEvent,
  ): Promise<CallToolResult> {
    if (!validated.ok) {
      this.#emit('error', event, { code: 'INVALID_ARGUMENT' });
      const invalid = errorResult(
        'INVALID_ARGUMENT',
        `Input validation error: Invalid arguments for tool ${tool.name}: ${formatIssues(validated.issues)}`,
      );
      // The fields, machine-readable, for REST's 400 problem.
      (invalid._meta![ERROR_META_KEY] as Record<string, unknown>).issues = validated.issues;
      return Promise.resolve(invalid);
    }

    // Nested calls (ctx.callTool) run inside their root call's slots: taking another slot from a
    // limiter the root may already hold would deadlock.
    const toolLimit = depth === 0 ? this.#toolLimit(tool) : undefined;
    const global = depth === 0 ? this.#global : undefined;
    if (!toolLimit && !global) return this.#run(tool, validated.value, options, depth, event);
    for (const limit of [global, toolLimit]) {
      if (limit && limit.activeCount >= limit.concurrency && limit.pendingCount >= this.#maxQueue) {
        this.#emit('error', event, { code: 'BUSY' });
        return Promise.resolve(
          errorResult(
            'BUSY',
            `Server busy: too many calls waiting for ${limit === global ? 'a slot' : tool.name}`,
          ),
        );
      }
    }
    const run = () => this.#run(tool, validated.value, options, depth, event);
    const scheduled = toolLimit ? () => toolLimit(run) : run;
    return global ? global(scheduled) : scheduled();
  }

  async #run(
    tool: RegisteredTool,
    args: unknown,
    options: ExecuteOptions,
    depth: number,
    event: (extra?: Partial<ToolCallEvent>) => ToolCallEvent,
  ): Promise<CallToolResult> {
    const timeoutMs = options.timeoutMs ?? tool.definition.timeoutMs ?? this.#defaultTimeoutMs;
    const retries = retriesFor(tool, this.#retry.retries);
    // Under a concurrency limit (or with retries) a cancel must end the call at once to free its
    // slot; otherwise the caller's signal is only joined when the handler asks for `ctx.signal`,
    // which spares every call an event listener on the hot path.
    const eager = retries > 0 || this.#global !== undefined || tool.definition.concurrency !== undefined;
    const scope = new CallScope(options.signal, timeoutMs, tool.name, eager);
    const ctx = new CallContext(this, this.#logger, tool, scope, options, depth);
    let attempts = 0;
    try {
      let raw: unknown;
      if (retries === 0) {
        attempts = 1;
        const out = scope.run(() => tool.definition.handler(args as never, ctx));
        raw = isPromiseLike(out) ? await out : out;
      } else {
        raw = await pRetry(
          async () => {
            attempts++;
            try {
              return await scope.run(() => tool.definition.handler(args as never, ctx));
            } catch (error) {
              // Only a failure that may pass on its own is tried again: never a cancelled or
              // timed-out call, nor one the caller's input caused (docs/tools.md, "Retries").
              if (scope.ended || !isRetryable(error)) throw new AbortError(error as Error);
              throw error;
            }
          },
          {
            retries,
            minTimeout: this.#retry.minTimeoutMs,
            maxTimeout: this.#retry.maxTimeoutMs,
            factor: this.#retry.factor,
            randomize: true,
            signal: scope.signal,
            // Asked only when another attempt follows (p-retry itself never retries a TypeError
            // other than a network failure), which is when a `retry` event is due.
            shouldRetry: ({ error, attemptNumber }) => {
              if (this.listenerCount('retry') > 0) {
                this.emit('retry', { ...event({ code: failureCode(error) }), attempt: attemptNumber });
              }
              return true;
            },
          },
        );
      }
      if (isTaskContinuation(raw)) {
        // A `runAsTask` continuation: the MCP session turns it into a task; anyone else runs it here.
        if (options.acceptTaskContinuation) {
          this.#emit('success', event);
          return raw as unknown as CallToolResult;
        }
        const work = raw.work;
        raw = await scope.run(() => work(args, ctx));
      }
      // A multi-round-trip `input_required` answer goes back to the client as it is.
      if (isInputRequiredResult(raw)) {
        this.#emit('success', event);
        return raw as unknown as CallToolResult;
      }
      const result = toCallToolResult(raw);
      if (tool.output && !result.isError) {
        const problem = await this.#checkOutput(tool, result);
        if (problem) {
          const errorId = newErrorId();
          this.#logger.error({ tool: tool.name, errorId, problem }, 'tool output failed validation');
          this.#emit('error', event, { code: 'INTERNAL', errorId });
          return errorResult('INTERNAL', `${problem} (error id ${errorId})`, errorId);
        }
      }
      if (result.isError) this.#emit('error', event, { code: 'UPSTREAM_ERROR' });
      else this.#emit('success', event);
      if (attempts > 1) result._meta = { ...result._meta, [ATTEMPTS_META_KEY]: attempts };
      return result;
    } catch (error) {
      if (scope.timedOut) {
        this.#emit('timeout', event, { code: 'TIMEOUT' });
        return errorResult('TIMEOUT', `Tool ${tool.name} timed out after ${timeoutMs} ms`);
      }
      if (scope.ended) {
        this.#emit('cancel', event, { code: 'CANCELLED' });
        return errorResult('CANCELLED', `Tool ${tool.name} was cancelled`);
      }
      // A handler that throws a protocol error asks for a JSON-RPC error, not a tool error.
      if (error instanceof ProtocolError) {
        this.#emit('error', event, { code: 'INVALID_REQUEST' });
        throw error;
      }
      const errorId = newErrorId();
      const code = failureCode(error);
      this.#logger.error(
        {
          tool: tool.name,
          errorId,
          ...(options.requestId !== undefined && { requestId: String(options.requestId) }),
          err: error,
        },
        'tool handler failed',
      );
      this.#emit('error', event, { code, errorId });
      // A validation failure the handler threw names the fields, as invalid arguments do.
      const issues = error instanceof McpKitError ? undefined : thrownIssues(error);
      const message = issues
        ? redactText(`Invalid input for tool ${tool.name}: ${formatIssues(issues)}`, {
            maxLength: MAX_MESSAGE,
          })
        : handlerFailureMessage(error);
      const failed = errorResult(code, `${message} (error id ${errorId})`, errorId);
      if (issues) (failed._meta![ERROR_META_KEY] as Record<string, unknown>).issues = issues;
      if (attempts > 1) failed._meta = { ...failed._meta, [ATTEMPTS_META_KEY]: attempts };
      return failed;
    } finally {
      scope.dispose();
      if (options.handlerOf) options.handlerOf.handler = scope.handler;
    }
  }

  /** Emits `name` only when someone listens: building the event is the cost. */
  #emit(
    name: 'start' | 'success' | 'error' | 'timeout' | 'cancel',
    event: (extra?: Partial<ToolCallEvent>) => ToolCallEvent,
    extra?: Partial<ToolCallEvent>,
  ): void {
    if (this.listenerCount(name) > 0) this.emit(name, event(extra));
  }

  /**
   * Runs tools one after another; each step builds its arguments from the chain's input and earlier
   * results, by function or declaratively with `{ "$ref": "steps.0.structuredContent.id" }` (or
   * `input.x`, or a step's `name` instead of its index). Stops at the first failed step unless
   * `continueOnError` is set.
   *
   * @example
   * ```ts
   * const out = await server.executor.chain(
   *   [
   *     { name: 'user', tool: 'find_user', args: { email: { $ref: 'input.email' } } },
   *     { tool: 'list_orders', args: { userId: { $ref: 'steps.user.structuredContent.id' } } },
   *   ],
   *   { email: 'ada@example.com' },
   * );
   * ```
   */
  async chain(steps: ChainStep[], input: unknown = {}, options: ChainOptions = {}): Promise<ChainResult> {
    if (!Array.isArray(steps) || steps.length === 0) throw new TypeError('steps must be a non-empty array');
    steps.forEach((step, i) => {
      if (typeof step?.tool !== 'string') throw new TypeError(`steps[${i}].tool must be a tool name`);
    });
    const started = performance.now();
    const results: ChainStepResult[] = [];
    const named: Record<string, CallToolResult> = {};
    let ok = true;
    for (const step of steps) {
      if (options.signal?.aborted) {
        ok = false;
        break;
      }
      const stepStarted = performance.now();
      let result: CallToolResult;
      try {
        // References read step results as MCP results: steps.<index|name>.structuredContent…
        const context = {
          input,
          steps: Object.assign(
            results.map((r) => r.result),
            named,
          ),
        };
        const args =
          typeof step.args === 'function' ? step.args(input, results) : resolveRefs(step.args ?? {}, context);
        result = await this.execute(step.tool, args, {
          ...options,
          origin: options.origin ?? 'chain',
          delegated: true,
        });
      } catch (error) {
        const e = error instanceof McpKitError ? error : undefined;
        result = errorResult(
          e?.code ?? 'INVALID_REQUEST',
          e ? publicErrorMessage(e) : handlerFailureMessage(error),
        );
      }
      const entry: ChainStepResult = {
        tool: step.tool,
        ...(step.name !== undefined && { name: step.name }),
        ok: !result.isError,
        result,
        durationMs: performance.now() - stepStarted,
      };
      results.push(entry);
      if (step.name !== undefined) named[step.name] = result;
      if (result.isError) {
        ok = false;
        if (!options.continueOnError) break;
      }
    }
    return {
      ok,
      steps: results,
      ...(results.length > 0 && { result: results[results.length - 1]!.result }),
      durationMs: performance.now() - started,
    };
  }

  /**
   * Runs calls in parallel under a concurrency cap and returns their results in input order. By
   * default every call settles; with `failFast`, the first failure cancels the calls still running
   * or waiting.
   *
   * @example
   * ```ts
   * const results = await server.executor.parallel(
   *   cities.map((city) => ({ tool: 'forecast', args: { city } })),
   *   { concurrency: 8 },
   * );
   * ```
   */
  async parallel(calls: ParallelCall[], options: ParallelOptions = {}): Promise<CallToolResult[]> {
    if (!Array.isArray(calls)) throw new TypeError('calls must be an array');
    const concurrency = options.concurrency ?? 8;
    if (!(Number.isInteger(concurrency) && concurrency >= 1))
      throw new TypeError('concurrency must be a positive integer');
    const controller = new AbortController();
    const parent = options.signal;
    const onAbort = () => controller.abort(parent?.reason);
    parent?.addEventListener('abort', onAbort, { once: true });
    if (parent?.aborted) controller.abort(parent.reason);
    const limit = pLimit(concurrency);
    const { failFast, concurrency: _c, signal: _s, ...rest } = options;
    try {
      return await Promise.all(
        calls.map((call, index) =>
          limit(async () => {
            if (controller.signal.aborted)
              return errorResult('CANCELLED', `Call ${index} (${call.tool}) was cancelled`);
            let result: CallToolResult;
            try {
              result = await this.execute(call.tool, call.args ?? {}, {
                ...rest,
                origin: rest.origin ?? 'internal',
                signal: controller.signal,
                delegated: true,
              });
            } catch (error) {
              const e = error instanceof McpKitError ? error : undefined;
              result = errorResult(
                e?.code ?? 'INVALID_REQUEST',
                e ? publicErrorMessage(e) : handlerFailureMessage(error),
              );
            }
            if (result.isError && failFast)
              controller.abort(new McpKitError('CANCELLED', 'Another call failed'));
            return result;
          }),
        ),
      );
    } finally {
      parent?.removeEventListener('abort', onAbort);
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
}

/**
 * The life of one call: its timeout, its caller's signal, and an `AbortSignal` for the handler that
 * is only built when the handler asks for it (building one costs more than the rest of a call).
 *
 * The timeout's timer is armed only once the handler has returned a promise (or thrown, since
 * retries may follow), for what is left of the timeout by then: a handler that answers
 * synchronously is done before any timer could fire, so it costs no timer at all.
 */
class CallScope {
  ended = false;
  timedOut = false;
  /** The handler's own promise, when it answered with one (the last attempt's). */
  handler: PromiseLike<unknown> | undefined;
  #reason: unknown;
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #started: number;
  readonly #timeoutMs: number;
  readonly #toolName: string;
  readonly #parent: CancelSignal | undefined;
  #onParentAbort: (() => void) | undefined;
  #reject: ((reason: unknown) => void) | undefined;

  constructor(parent: CancelSignal | undefined, timeoutMs: number, toolName: string, eager: boolean) {
    this.#started = performance.now();
    this.#timeoutMs = timeoutMs;
    this.#toolName = toolName;
    this.#parent = parent;
    if (parent?.aborted) this.#end(parent.reason, false);
    else if (eager) this.#joinParent();
  }

  /** Starts the timeout's clock, once, for the time the call has left. */
  #arm(): void {
    if (this.#timer !== undefined || !(this.#timeoutMs > 0) || this.ended) return;
    const left = this.#timeoutMs - (performance.now() - this.#started);
    this.#timer = setTimeout(
      () =>
        this.#end(
          new McpKitError('TIMEOUT', `Tool ${this.#toolName} timed out after ${this.#timeoutMs} ms`),
          true,
        ),
      Math.max(0, left),
    );
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.ended) this.#controller.abort(this.#reason);
      else this.#joinParent();
    }
    return this.#controller.signal;
  }

  /** Ends this call when the caller's signal aborts (once). */
  #joinParent(): void {
    const parent = this.#parent;
    if (!parent || this.#onParentAbort) return;
    if (parent.aborted) {
      this.#end(parent.reason, false);
      return;
    }
    this.#onParentAbort = () => this.#end(parent.reason, false);
    parent.addEventListener('abort', this.#onParentAbort, { once: true });
  }

  /**
   * Runs `fn`. A synchronous answer comes back as it is (no promise to await); a promise loses to a
   * timeout or an abort. Throws when the call has already ended, or when `fn` throws.
   */
  run<T>(fn: () => T | Promise<T>): T | Promise<T> {
    if (this.ended) throw this.#reason;
    let value: T | Promise<T>;
    try {
      value = fn();
    } catch (error) {
      this.#arm();
      throw error;
    }
    if (!isPromiseLike(value)) return value;
    this.handler = value;
    this.#arm();
    if (this.#timer === undefined && this.#onParentAbort === undefined) return value;
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      value.then(resolve, reject);
    });
  }

  #end(reason: unknown, timedOut: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.timedOut = timedOut;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(reason);
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#onParentAbort) this.#parent?.removeEventListener('abort', this.#onParentAbort);
    this.#reject = undefined;
  }
}

/** The `extra` of every `start` event. */
const START_EXTRA: Partial<ToolCallEvent> = Object.freeze({ durationMs: 0 });

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** The handler's `ctx`: everything costly is built on first use. */
class CallContext implements ToolContext {
  readonly #executor: ToolExecutor;
  readonly #tool: RegisteredTool;
  readonly #scope: CallScope;
  readonly #options: ExecuteOptions;
  readonly #depth: number;
  readonly #logger: Logger;
  #toolLogger: Logger | undefined;

  constructor(
    executor: ToolExecutor,
    logger: Logger,
    tool: RegisteredTool,
    scope: CallScope,
    options: ExecuteOptions,
    depth: number,
  ) {
    this.#executor = executor;
    this.#logger = logger;
    this.#tool = tool;
    this.#scope = scope;
    this.#options = options;
    this.#depth = depth;
  }

  get signal(): AbortSignal {
    return this.#scope.signal;
  }
  get toolName(): string {
    return this.#tool.name;
  }
  get requestId(): string | number | undefined {
    return this.#options.requestId;
  }
  get sessionId(): string | undefined {
    return this.#options.sessionId;
  }
  get caller(): CallerIdentity | undefined {
    return this.#options.caller;
  }
  get origin(): CallOrigin {
    return this.#options.origin ?? 'internal';
  }
  get logger(): Logger {
    const requestId = this.#options.requestId;
    this.#toolLogger ??= this.#logger.child({
      tool: this.#tool.name,
      ...(requestId !== undefined && { requestId: String(requestId) }),
    });
    return this.#toolLogger;
  }
  get log(): ClientLog {
    return this.#options.log ?? NOOP_LOG;
  }
  get mcp(): ServerContext | undefined {
    return this.#options.mcp;
  }

  progress(progress: number, total?: number, message?: string): Promise<void> {
    const onProgress = this.#options.onProgress;
    return onProgress ? onProgress(progress, total, message).catch(() => {}) : Promise.resolve();
  }

  async sample(params: CreateMessageRequest['params']): Promise<CreateMessageResult> {
    const mcp = this.#options.mcp;
    if (!mcp) throw new McpKitError('UNAVAILABLE', 'Sampling needs a call that came over MCP');
    // Push-style sampling exists only on 2025-era sessions, for clients that declared it.
    const offered = this.#options.clientCapabilities?.()?.sampling;
    if (!offered) throw new McpKitError('UNAVAILABLE', 'The client does not offer sampling');
    return (await mcp.mcpReq.requestSampling(params, { signal: this.signal })) as CreateMessageResult;
  }

  callTool(name: string, args?: Record<string, unknown>): Promise<CallToolResult> {
    const options = this.#options;
    const nested: ExecuteOptions = {
      signal: this.#scope.signal,
      origin: 'internal',
      via: options.via ?? options.origin ?? 'internal',
      depth: this.#depth + 1,
    };
    if (options.caller) nested.caller = options.caller;
    if (options.sessionId !== undefined) nested.sessionId = options.sessionId;
    if (options.requestId !== undefined) nested.requestId = options.requestId;
    if (options.httpRequestId !== undefined) nested.httpRequestId = options.httpRequestId;
    if (options.clientAddress !== undefined) nested.clientAddress = options.clientAddress;
    // A tool that acts as its caller (every declarative tool does) has each nested call checked and
    // paid for as the caller's own; a tool written in code is trusted with what it calls.
    if (this.#tool.definition.callToolAs === 'caller') nested.delegated = true;
    return this.#executor.execute(name, args ?? {}, nested);
  }
}

/** One step of {@link ToolExecutor.chain}. */
export interface ChainStep {
  tool: string;
  /** A name later steps can refer to (`steps.<name>…`) besides the step's index. */
  name?: string;
  /**
   * The step's arguments: an object whose values may be `{ "$ref": "input.a.b" }` or
   * `{ "$ref": "steps.<index|name>.structuredContent.x" }` at any depth, or a function.
   */
  args?: Record<string, unknown> | ((input: unknown, steps: ChainStepResult[]) => Record<string, unknown>);
}

/** What one chain step produced. */
export interface ChainStepResult {
  tool: string;
  name?: string;
  ok: boolean;
  result: CallToolResult;
  durationMs: number;
}

/** The outcome of a chain: every step run, and the last result. */
export interface ChainResult {
  ok: boolean;
  steps: ChainStepResult[];
  result?: CallToolResult;
  durationMs: number;
}

/** Options for {@link ToolExecutor.chain}. */
export interface ChainOptions extends Omit<ExecuteOptions, 'depth' | 'onProgress'> {
  /** Run the remaining steps after a failed one. Default `false`. */
  continueOnError?: boolean;
}

/** One call of {@link ToolExecutor.parallel}. */
export interface ParallelCall {
  tool: string;
  args?: Record<string, unknown>;
}

/** Options for {@link ToolExecutor.parallel}. */
export interface ParallelOptions extends Omit<ExecuteOptions, 'depth' | 'onProgress'> {
  /** Calls running at once. Default 8. */
  concurrency?: number;
  /** Cancel the rest at the first failure. Default `false`: every call settles. */
  failFast?: boolean;
}

const UNSAFE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Reads a dotted path (`steps.0.structuredContent.id`) out of `root`; unsafe keys read nothing. */
export function readPath(root: unknown, path: string): unknown {
  let current: unknown = root;
  for (const segment of path.split('.')) {
    if (UNSAFE_KEYS.has(segment) || current === null || typeof current !== 'object') return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** Replaces every `{ "$ref": "path" }` in `value` with what `path` names in `context`. */
export function resolveRefs(value: unknown, context: unknown): any {
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, context));
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === '$ref' && typeof record.$ref === 'string')
    return readPath(context, record.$ref);
  const out: Record<string, unknown> = {};
  for (const key of keys) if (!UNSAFE_KEYS.has(key)) out[key] = resolveRefs(record[key], context);
  return out;
}

/** Retries allowed for a tool: only idempotent tools are retried. */
function retriesFor(tool: RegisteredTool, fallback: number): number {
  const { definition } = tool;
  const idempotent = definition.idempotent ?? definition.annotations?.idempotentHint === true;
  if (!idempotent) return 0;
  return definition.retries ?? fallback;
}

/**
 * The codes of a thrown {@link McpKitError} that may pass on their own: an upstream or a resource
 * that is down, busy, limiting or slow to answer, and failures of unknown cause.
 */
const TRANSIENT_CODES: ReadonlySet<McpKitErrorCode> = new Set<McpKitErrorCode>([
  'UNAVAILABLE',
  'UPSTREAM_ERROR',
  'BUSY',
  'RATE_LIMITED',
  'TIMEOUT',
  'INTERNAL',
]);

/**
 * Whether a handler's failure is worth another attempt (of an idempotent tool): an `McpKitError` with
 * a transient code, or an error of unknown cause (a dropped connection, an upstream's 503). Never one
 * the caller's input caused (an `McpKitError` with any other code, such as `INVALID_ARGUMENT`, or a
 * validation failure), an abort, or an SDK `ProtocolError`, which asks for a JSON-RPC error.
 */
function isRetryable(error: unknown): boolean {
  if (error instanceof McpKitError) return TRANSIENT_CODES.has(error.code);
  return !(error instanceof ProtocolError) && !isAbortError(error) && !isValidationError(error);
}

/** The code a handler's failure is answered with: its own, `INVALID_ARGUMENT`, or `INTERNAL`. */
function failureCode(error: unknown): McpKitErrorCode {
  if (error instanceof McpKitError) return error.code;
  return isValidationError(error) ? 'INVALID_ARGUMENT' : 'INTERNAL';
}
