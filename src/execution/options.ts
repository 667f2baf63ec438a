/** The options of the executor and of each call it runs. */
import type { CallToolResult, ClientCapabilities, ServerContext } from '@modelcontextprotocol/server';
import type { CallOrigin, ClientLog } from '../catalog/tools.js';
import type { McpKitErrorCode } from '../core/errors.js';
import type { SpanLike, Tracing } from '../telemetry/tracing.js';
import type { CallerIdentity, Logger } from '../types.js';
import type { RetryPolicy } from './retry.js';
import type { CancelSignal } from './signal.js';

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

/** What chains, batches and nested calls need of the executor: a way to run a tool by name. */
export interface ToolRunner {
  execute(name: string, args: unknown, options?: ExecuteOptions): Promise<CallToolResult>;
}
