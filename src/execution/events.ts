/**
 * The executor's events (the hook metrics and audit use) and the record of one call they are built
 * from. An event is built only when someone listens to it.
 */
import type { CallOrigin, RegisteredTool } from '../catalog/tools.js';
import type { McpKitErrorCode } from '../core/errors.js';
import type { CallerIdentity } from '../types.js';
import type { ExecuteOptions } from './options.js';

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

/** Where a call's handler promise is put once the handler ran (for `onSettled`). */
export interface HandlerOf {
  handler?: PromiseLike<unknown>;
}

/** The events that end (or start) a call, as opposed to `retry`. */
export type CallEventName = 'start' | 'success' | 'error' | 'timeout' | 'cancel';

/** The `extra` of every `start` event. */
export const START_EXTRA: Partial<ToolCallEvent> = Object.freeze({ durationMs: 0 });

/**
 * One call on its way through the executor: the tool, the arguments as sent, the options and when it
 * started, which every stage reads and every event is built from. One allocation per call.
 */
export class Call {
  readonly tool: RegisteredTool;
  /** The arguments as the caller sent them. */
  readonly args: unknown;
  readonly options: ExecuteOptions;
  readonly started: number;
  /** Nesting depth of `ctx.callTool`: 0 for a call from outside. */
  readonly depth: number;
  /** Where the executor's `onSettled` learns of the handler's own promise, for a call that has one. */
  handlerOf: HandlerOf | undefined = undefined;

  constructor(tool: RegisteredTool, args: unknown, options: ExecuteOptions) {
    this.started = performance.now();
    this.tool = tool;
    this.args = args;
    this.options = options;
    this.depth = options.depth ?? 0;
  }

  /** The payload of an event about this call, with `extra` (a code, an error id) on top. */
  event(extra?: Partial<ToolCallEvent>): ToolCallEvent {
    const options = this.options;
    // Built field by field (not with conditional spreads): two of these per call on the hot path.
    const built: ToolCallEvent = {
      tool: this.tool.name,
      origin: options.origin ?? 'internal',
      durationMs: performance.now() - this.started,
    };
    if (options.caller) built.caller = options.caller;
    if (options.sessionId !== undefined) built.sessionId = options.sessionId;
    if (options.requestId !== undefined) built.requestId = options.requestId;
    if (options.httpRequestId !== undefined) built.httpRequestId = options.httpRequestId;
    if (options.clientAddress !== undefined) built.clientAddress = options.clientAddress;
    if (this.args !== undefined) built.args = this.args;
    return extra ? Object.assign(built, extra) : built;
  }
}
