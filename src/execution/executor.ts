/**
 * The ToolExecutor: the coordinator every tool call passes through, in stages that each hand the call
 * on (and answer with an `isError` result when they stop it): check (the `authorize` hook) →
 * validate (nesting depth, arguments: `validation.ts`) → schedule (concurrency slots: `limits.ts`) →
 * run (timeout and cancellation: `scope.ts`; retries: `retry.ts`; the handler's `ctx`: `context.ts`)
 * → answer (`results.ts`, output schema) or fail. Events (`events.ts`) mark the start and the end,
 * spans (`spans.ts`) wrap it all; chains and batches (`chain.ts`, `parallel.ts`) run over `execute`.
 * No stage is `async` unless it must wait: a synchronous handler with a synchronous schema is
 * answered with one promise.
 */
import { type CallToolResult, isInputRequiredResult, ProtocolError } from '@modelcontextprotocol/server';
import { EventEmitter } from 'eventemitter3';
import type { RegisteredTool, ToolCatalog } from '../catalog/tools.js';
import type { ValidationOutcome } from '../schema.js';
import { isTaskContinuation } from '../tasks/continuation.js';
import { globalTracing, type Tracing } from '../telemetry/tracing.js';
import type { Logger } from '../types.js';
import { type ChainOptions, type ChainResult, type ChainStep, runChain } from './chain.js';
import { CallContext, type CallRuntime } from './context.js';
import {
  Call,
  type CallEventName,
  type HandlerOf,
  START_EXTRA,
  type ToolCallEvent,
  type ToolExecutorEvents,
} from './events.js';
import { CallLimits } from './limits.js';
import type { CallRefusal, ExecuteOptions, ToolExecutorOptions } from './options.js';
import { type ParallelCall, type ParallelOptions, runParallel } from './parallel.js';
import { errorResult, failureCode, newErrorId, toCallToolResult, withAttempts } from './results.js';
import { type Attempts, DEFAULT_RETRY, type RetryPolicy, retriesFor, withRetries } from './retry.js';
import { CallScope, isPromiseLike } from './scope.js';
import { inToolSpan, recordOutcome } from './spans.js';
import { brokenSchema, checkOutput, handlerFailure, invalidArguments } from './validation.js';

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
  readonly #limits: CallLimits;
  readonly #retry: Required<RetryPolicy>;
  readonly #tracing: Tracing;
  readonly #authorize: ToolExecutorOptions['authorize'];
  readonly #runtime: CallRuntime;

  /** @internal Built by `createMcpServer`; reach it as `server.executor`. */
  constructor(tools: ToolCatalog, options: ToolExecutorOptions) {
    super();
    this.#tools = tools;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
    this.#maxDepth = options.maxDepth ?? 16;
    this.#logger = options.logger;
    this.#limits = new CallLimits(options);
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#tracing = options.tracing ?? globalTracing;
    this.#authorize = options.authorize;
    this.#runtime = { executor: this, logger: options.logger };
  }

  /** Calls running and waiting, globally (for metrics and tests). */
  get load(): { active: number; queued: number } {
    return this.#limits.load;
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
    const call = new Call(tool, args, options);
    if (options.onSettled) return this.#settling(call, options.onSettled);
    return this.#traced(call);
  }

  /** The call in its span (the caller's, or one of its own when tracing is on). */
  #traced(call: Call): Promise<CallToolResult> {
    const given = call.options.span;
    if (given) return this.#started(call).then((result) => recordOutcome(given, result));
    if (!this.#tracing.enabled) return this.#started(call);
    return inToolSpan(this.#tracing, { tool: call.tool, options: call.options }, () => this.#started(call));
  }

  /**
   * Runs the call, then calls `onSettled` once its handler (if it ran) has finished too. The options
   * go on as they are: a copy would lose what a class instance keeps on its prototype (an MCP call's
   * client log, its request context, its client's capabilities).
   */
  #settling(call: Call, onSettled: () => void): Promise<CallToolResult> {
    const handlerOf: HandlerOf = {};
    call.handlerOf = handlerOf;
    const settle = () => {
      const handler = handlerOf.handler;
      if (handler) handler.then(onSettled, onSettled);
      else onSettled();
    };
    const running = this.#traced(call);
    running.then(settle, settle);
    return running;
  }

  /** {@link ToolExecutor.#check}, with anything it throws turned into a rejection, as an `async` function would. */
  #started(call: Call): Promise<CallToolResult> {
    try {
      return this.#check(call);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Emits `start` and asks the `authorize` hook about a call with a caller: a top-level call the
   * door has not admitted already, or one done on the caller's behalf (`delegated`).
   */
  #check(call: Call): Promise<CallToolResult> {
    this.#emit('start', call, START_EXTRA);
    const options = call.options;
    const caller = options.caller;
    if (caller && this.#authorize && ((call.depth === 0 && !options.admitted) || options.delegated)) {
      const refused = this.#authorize(call.tool.name, caller, options);
      if (refused !== undefined) {
        if (!isPromiseLike(refused)) return Promise.resolve(this.#refused(call, refused));
        return refused.then((r) => (r === undefined ? this.#validate(call) : this.#refused(call, r)));
      }
    }
    return this.#validate(call);
  }

  /** A call the `authorize` hook refused: an error result, never the handler. */
  #refused(call: Call, refusal: CallRefusal): CallToolResult {
    this.#emit('error', call, { code: refusal.code });
    return errorResult(refusal.code, refusal.message);
  }

  /** Checks the nesting depth and the arguments (synchronously when the schema is), then schedules. */
  #validate(call: Call): Promise<CallToolResult> {
    if (call.depth > this.#maxDepth) {
      this.#emit('error', call, { code: 'INVALID_REQUEST' });
      return Promise.resolve(
        errorResult('INVALID_REQUEST', `Tool calls nested deeper than ${this.#maxDepth}`),
      );
    }
    let outcome: ValidationOutcome | Promise<ValidationOutcome>;
    try {
      outcome = call.tool.input.validate(call.args ?? {});
    } catch (error) {
      return Promise.resolve(this.#schemaFailed(call, error));
    }
    if (isPromiseLike(outcome)) {
      return outcome.then(
        (validated) => this.#schedule(call, validated),
        (error: unknown) => this.#schemaFailed(call, error),
      );
    }
    return this.#schedule(call, outcome);
  }

  /** The tool's own input schema failed: logged, and reported to the caller plainly. */
  #schemaFailed(call: Call, error: unknown): CallToolResult {
    this.#logger.error({ tool: call.tool.name, err: error }, 'tool input schema is invalid');
    this.#emit('error', call, { code: 'INTERNAL' });
    return brokenSchema(call.tool, error);
  }

  /** A checked call: refused for its arguments, run at once, or run once it has a slot. */
  #schedule(call: Call, validated: ValidationOutcome): Promise<CallToolResult> {
    if (!validated.ok) {
      this.#emit('error', call, { code: 'INVALID_ARGUMENT' });
      return Promise.resolve(invalidArguments(call.tool, validated.issues));
    }
    const args = validated.value;
    // Nested calls (ctx.callTool) run inside their root call's slots.
    if (call.depth > 0 || !this.#limits.bounds(call.tool)) return this.#run(call, args);
    const scheduled = this.#limits.schedule(call.tool, () => this.#run(call, args));
    if (typeof scheduled !== 'string') return scheduled;
    this.#emit('error', call, { code: 'BUSY' });
    return Promise.resolve(errorResult('BUSY', scheduled));
  }

  /** Runs the handler with validated `args` in the call's scope (and its retries), then answers. */
  async #run(call: Call, args: unknown): Promise<CallToolResult> {
    const { tool, options } = call;
    const timeoutMs = options.timeoutMs ?? tool.definition.timeoutMs ?? this.#defaultTimeoutMs;
    const retries = retriesFor(tool, this.#retry.retries);
    // Under a concurrency limit (or with retries) a cancel must end the call at once to free its
    // slot; otherwise the caller's signal is only joined when the handler asks for `ctx.signal`,
    // which spares every call an event listener on the hot path.
    const scope = new CallScope(call, timeoutMs, retries > 0 || this.#limits.bounds(tool));
    const ctx = new CallContext(call, scope, this.#runtime);
    const handler = () => tool.definition.handler(args as never, ctx);
    let tries: Attempts | undefined;
    try {
      let raw: unknown;
      if (retries === 0) {
        const out = scope.run(handler);
        raw = isPromiseLike(out) ? await out : out;
      } else {
        tries = this.#attempts(call, scope, retries);
        raw = await withRetries(handler, tries);
      }
      if (isTaskContinuation(raw)) {
        // A `runAsTask` continuation: the MCP session turns it into a task; anyone else runs it here.
        if (options.acceptTaskContinuation) {
          this.#emit('success', call);
          return raw as unknown as CallToolResult;
        }
        const work = raw.work;
        raw = await scope.run(() => work(args, ctx));
      }
      // A multi-round-trip `input_required` answer goes back to the client as it is.
      if (isInputRequiredResult(raw)) {
        this.#emit('success', call);
        return raw as unknown as CallToolResult;
      }
      const result = toCallToolResult(raw);
      const attempts = tries?.count ?? 1;
      if (!tool.output || result.isError) return this.#answered(call, result, attempts);
      return await this.#checked(call, result, attempts);
    } catch (error) {
      return this.#failed(call, error, { scope, attempts: tries?.count ?? 1 });
    } finally {
      scope.dispose();
      if (call.handlerOf) call.handlerOf.handler = scope.handler;
    }
  }

  /** The attempts of a call that may be retried; each retry is announced to `retry` listeners. */
  #attempts(call: Call, scope: CallScope, retries: number): Attempts {
    return {
      retries,
      policy: this.#retry,
      scope,
      count: 0,
      onRetry: (error, attempt) => {
        if (this.listenerCount('retry') > 0) {
          this.emit('retry', { ...call.event({ code: failureCode(error) }), attempt });
        }
      },
    };
  }

  /** A result of a tool with an output schema: its structured content checked, then reported. */
  #checked(call: Call, result: CallToolResult, attempts: number): Promise<CallToolResult> {
    return checkOutput(call.tool, result).then((problem) => {
      if (!problem) return this.#answered(call, result, attempts);
      const errorId = newErrorId();
      this.#logger.error({ tool: call.tool.name, errorId, problem }, 'tool output failed validation');
      this.#emit('error', call, { code: 'INTERNAL', errorId });
      return errorResult('INTERNAL', `${problem} (error id ${errorId})`, errorId);
    });
  }

  /** A handler's answer, reported to listeners; with the attempts it took when there were retries. */
  #answered(call: Call, result: CallToolResult, attempts: number): CallToolResult {
    if (result.isError) this.#emit('error', call, { code: 'UPSTREAM_ERROR' });
    else this.#emit('success', call);
    return withAttempts(result, attempts);
  }

  /**
   * A call that ended without an answer: timed out, cancelled, or its handler threw. A handler that
   * throws a protocol error asks for a JSON-RPC error, not a tool error: that is thrown on.
   */
  #failed(call: Call, error: unknown, run: { scope: CallScope; attempts: number }): CallToolResult {
    const { tool, options } = call;
    if (run.scope.timedOut) {
      this.#emit('timeout', call, { code: 'TIMEOUT' });
      return errorResult('TIMEOUT', `Tool ${tool.name} timed out after ${run.scope.timeoutMs} ms`);
    }
    if (run.scope.ended) {
      this.#emit('cancel', call, { code: 'CANCELLED' });
      return errorResult('CANCELLED', `Tool ${tool.name} was cancelled`);
    }
    if (error instanceof ProtocolError) {
      this.#emit('error', call, { code: 'INVALID_REQUEST' });
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
    this.#emit('error', call, { code, errorId });
    return withAttempts(handlerFailure(tool, error, errorId), run.attempts);
  }

  /** Emits `name` only when someone listens: building the event is the cost. */
  #emit(name: CallEventName, call: Call, extra?: Partial<ToolCallEvent>): void {
    if (this.listenerCount(name) > 0) this.emit(name, call.event(extra));
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
  chain(steps: ChainStep[], input: unknown = {}, options: ChainOptions = {}): Promise<ChainResult> {
    return runChain(this, { steps, input, options });
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
  parallel(calls: ParallelCall[], options: ParallelOptions = {}): Promise<CallToolResult[]> {
    return runParallel(this, calls, options);
  }
}
