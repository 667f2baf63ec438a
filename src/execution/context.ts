/**
 * The `ctx` a handler receives: its cancellation, progress, logging (server-side and to the client),
 * sampling, and nested calls through the same executor. Everything costly is built on first use.
 */
import type {
  CallToolResult,
  CreateMessageRequest,
  CreateMessageResult,
  ServerContext,
} from '@modelcontextprotocol/server';
import type { CallOrigin, ClientLog, ToolContext } from '../catalog/tools.js';
import { McpKitError } from '../core/errors.js';
import type { CallerIdentity, Logger } from '../types.js';
import type { Call } from './events.js';
import type { ExecuteOptions, ToolRunner } from './options.js';
import type { CallScope } from './scope.js';
import type { CancelSignal } from './signal.js';

const NOOP_LOG: ClientLog = {
  debug: async () => {},
  info: async () => {},
  warning: async () => {},
  error: async () => {},
};

/** What every call of one executor shares: the executor for nested calls, and the server's logger. */
export interface CallRuntime {
  readonly executor: ToolRunner;
  readonly logger: Logger;
}

/** The handler's `ctx`: everything costly is built on first use. */
export class CallContext implements ToolContext {
  readonly #call: Call;
  readonly #scope: CallScope;
  readonly #runtime: CallRuntime;
  #toolLogger: Logger | undefined;

  constructor(call: Call, scope: CallScope, runtime: CallRuntime) {
    this.#call = call;
    this.#scope = scope;
    this.#runtime = runtime;
  }

  get signal(): AbortSignal {
    return this.#scope.signal;
  }
  /**
   * The call's cancellation without an `AbortController` (see `CallScope.cancellation`). Not part
   * of `ToolContext`: mcpkit's gateway passes it to the upstream request instead of {@link signal}.
   */
  get cancellation(): CancelSignal {
    return this.#scope.cancellation;
  }
  get toolName(): string {
    return this.#call.tool.name;
  }
  get requestId(): string | number | undefined {
    return this.#call.options.requestId;
  }
  get sessionId(): string | undefined {
    return this.#call.options.sessionId;
  }
  get caller(): CallerIdentity | undefined {
    return this.#call.options.caller;
  }
  get origin(): CallOrigin {
    return this.#call.options.origin ?? 'internal';
  }
  get logger(): Logger {
    const requestId = this.#call.options.requestId;
    this.#toolLogger ??= this.#runtime.logger.child({
      tool: this.#call.tool.name,
      ...(requestId !== undefined && { requestId: String(requestId) }),
    });
    return this.#toolLogger;
  }
  get log(): ClientLog {
    return this.#call.options.log ?? NOOP_LOG;
  }
  get mcp(): ServerContext | undefined {
    return this.#call.options.mcp;
  }

  /**
   * Whether the call came with an MCP request context ({@link mcp}), told without building one: a
   * door may hand it as a getter that builds it on first use (an MCP session does), which counts as
   * one; a plain property counts when it holds a value. Not part of `ToolContext`: mcpkit's gateway
   * reads it on every forwarded call, and reaches for `mcp` itself only when an upstream logs.
   */
  get hasMcp(): boolean {
    const options = this.#call.options;
    if (!('mcp' in options)) return false;
    if (Object.hasOwn(options, 'mcp')) return options.mcp != null;
    for (
      let at: object | null = Object.getPrototypeOf(options);
      at !== null;
      at = Object.getPrototypeOf(at)
    ) {
      const found = Object.getOwnPropertyDescriptor(at, 'mcp');
      if (found) return found.get !== undefined || found.value != null;
    }
    return false;
  }

  /**
   * Whether {@link progress} reaches anyone (the caller asked for progress). Not part of
   * `ToolContext`: mcpkit's gateway reads it to ask an upstream for progress only when it is taken.
   */
  get takesProgress(): boolean {
    return this.#call.options.onProgress !== undefined;
  }

  progress(progress: number, total?: number, message?: string): Promise<void> {
    const onProgress = this.#call.options.onProgress;
    return onProgress ? onProgress(progress, total, message).catch(() => {}) : Promise.resolve();
  }

  async sample(params: CreateMessageRequest['params']): Promise<CreateMessageResult> {
    const options = this.#call.options;
    const mcp = options.mcp;
    if (!mcp) throw new McpKitError('UNAVAILABLE', 'Sampling needs a call that came over MCP');
    // Push-style sampling exists only on 2025-era sessions, for clients that declared it.
    const offered = options.clientCapabilities?.()?.sampling;
    if (!offered) throw new McpKitError('UNAVAILABLE', 'The client does not offer sampling');
    return (await mcp.mcpReq.requestSampling(params, { signal: this.signal })) as CreateMessageResult;
  }

  callTool(name: string, args?: Record<string, unknown>): Promise<CallToolResult> {
    const options = this.#call.options;
    const nested: ExecuteOptions = {
      signal: this.#scope.signal,
      origin: 'internal',
      via: options.via ?? options.origin ?? 'internal',
      depth: this.#call.depth + 1,
    };
    if (options.caller) nested.caller = options.caller;
    if (options.sessionId !== undefined) nested.sessionId = options.sessionId;
    if (options.requestId !== undefined) nested.requestId = options.requestId;
    if (options.httpRequestId !== undefined) nested.httpRequestId = options.httpRequestId;
    if (options.clientAddress !== undefined) nested.clientAddress = options.clientAddress;
    // A tool that acts as its caller (every declarative tool does) has each nested call checked and
    // paid for as the caller's own; a tool written in code is trusted with what it calls.
    if (this.#call.tool.definition.callToolAs === 'caller') nested.delegated = true;
    return this.#runtime.executor.execute(name, args ?? {}, nested);
  }
}
