/**
 * The model ↔ tools loop of one job: the model sees the offered tools as functions, each turn's tool
 * calls run through the executor in parallel (as the caller's own: the policy checks each), results
 * (failures included) go back to the model, until it answers or the step limit ends the run.
 */
import type { CallToolResult, Tool } from '@modelcontextprotocol/server';
import { detach, McpKitError, publicErrorMessage, toMcpKitError } from '../core/errors.js';
import { parseJsonSafe } from '../core/safeJson.js';
import { errorResult } from '../execution/results.js';
import type {
  ChatMessage,
  ModelProvider,
  ModelResponse,
  ModelTool,
  ModelToolCall,
  ModelUsage,
} from '../providers/types.js';
import type { ActiveSpan, Tracing } from '../telemetry/tracing.js';
import type { Logger } from '../types.js';
import { cancelledEnd, type Job, type JobTable } from './jobs.js';
import type {
  CompletionEvent,
  CompletionHost,
  CompletionRequest,
  CompletionRunOptions,
  CompletionSnapshot,
  CompletionStep,
  CompletionToolCall,
  ModelConfig,
} from './types.js';

/** Waits for `waiting`, or for `signal` to abort (a cancelled run stops waiting for its reader). */
function settledOrAborted(waiting: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    waiting.then(done, done);
  });
}

/** The longest tool result the model is sent, in characters. */
const MAX_RESULT_CHARS = 100_000;

/** One run: everything the manager decided before the job started, and the job it writes to. */
export interface CompletionRun {
  readonly job: Job;
  readonly provider: ModelProvider;
  readonly config: ModelConfig;
  readonly request: CompletionRequest;
  /** The tools offered: what the caller may run, narrowed by the request's selection. */
  readonly tools: readonly Tool[];
  /** The conversation, which grows with every turn. */
  readonly messages: ChatMessage[];
  readonly maxSteps: number;
  readonly options: CompletionRunOptions;
  /** Delivers the job's events to the run's listener. */
  readonly emit: (event: CompletionEvent) => void;
}

/** A run as the loop works on it: with its signal, the names it may call, and the model's turn settings. */
interface RunState extends CompletionRun {
  readonly signal: AbortSignal;
  readonly allowed: ReadonlySet<string>;
  readonly modelTools: ModelTool[];
  readonly maxTokens: number | undefined;
  readonly temperature: number | undefined;
}

/** What the loop needs of the manager and the server. */
export interface LoopHost {
  readonly executor: CompletionHost['executor'];
  readonly jobs: JobTable;
  readonly tracing: Tracing;
  readonly logger: Logger;
}

function resultText(result: CallToolResult): string {
  const parts: string[] = [];
  for (const block of result.content ?? []) {
    if (block.type === 'text') parts.push(block.text);
    else if (block.type === 'resource_link') parts.push(`[resource ${block.uri}]`);
    else if (block.type === 'resource')
      parts.push('text' in block.resource ? String(block.resource.text) : `[resource ${block.resource.uri}]`);
    else parts.push(`[${block.type} content]`);
  }
  if (parts.length === 0 && result.structuredContent !== undefined)
    parts.push(JSON.stringify(result.structuredContent));
  const text = parts.join('\n');
  return text.length > MAX_RESULT_CHARS ? detach(`${text.slice(0, MAX_RESULT_CHARS)}…`) : text;
}

function addUsage(a: ModelUsage, b: ModelUsage): ModelUsage {
  return { inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens };
}

/** Runs jobs' loops; one per manager. */
export class CompletionLoop {
  readonly #host: LoopHost;

  constructor(host: LoopHost) {
    this.#host = host;
  }

  /** Runs `run` to its end (never rejects) and answers the job's final snapshot. */
  async run(run: CompletionRun): Promise<CompletionSnapshot> {
    const { job, config, request } = run;
    const state: RunState = {
      ...run,
      signal: job.controller.signal,
      allowed: new Set(run.tools.map((t) => t.name)),
      modelTools: run.tools.map((t) => ({
        name: t.name,
        ...(t.description !== undefined && { description: t.description }),
        inputSchema: t.inputSchema as Record<string, unknown>,
      })),
      maxTokens: request.maxTokens ?? config.defaults?.maxTokens,
      temperature: request.temperature ?? config.defaults?.temperature,
    };
    // One span per model turn and the tool calls it asked for.
    let stepSpan: ActiveSpan | undefined;
    try {
      for (let index = 0; index < run.maxSteps; index++) {
        stepSpan = this.#host.tracing.begin('completion step', {
          attributes: () => ({ 'mcpkit.completion.id': job.snapshot.id, 'mcpkit.completion.step': index }),
        });
        if (await this.#step(state, index, stepSpan)) break;
      }
    } catch (error) {
      stepSpan?.end(state.signal.aborted ? 'CANCELLED' : error);
      this.#failed(state, error);
    }
    const final = this.#host.jobs.view(job);
    run.emit({ type: 'done', job: final });
    return final;
  }

  /** One model turn and the tool calls it asks for; `true` when the run has ended. */
  async #step(run: RunState, index: number, span: ActiveSpan): Promise<boolean> {
    const { job, signal } = run;
    const snapshot = job.snapshot;
    const modelStarted = performance.now();
    const response = await this.#ask(run, index, span);
    // A stream that ends quietly after an abort is a cancelled run, not a finished one.
    if (signal.aborted) throw signal.reason;
    const modelMs = performance.now() - modelStarted;
    snapshot.timing.modelMs += modelMs;
    snapshot.usage = addUsage(snapshot.usage, response.usage);
    run.emit({ type: 'usage', step: index, usage: response.usage });
    const step: CompletionStep = {
      index,
      text: response.text,
      toolCalls: [],
      finishReason: response.finishReason,
      usage: response.usage,
      modelMs,
      toolsMs: 0,
    };
    snapshot.steps.push(step);
    span.setAttributes({
      'gen_ai.usage.input_tokens': response.usage.inputTokens,
      'gen_ai.usage.output_tokens': response.usage.outputTokens,
      'mcpkit.completion.tool_calls': response.toolCalls.length,
    });
    if (response.toolCalls.length === 0) {
      snapshot.output = response.text;
      const stopReason = response.finishReason === 'length' ? 'length' : 'stop';
      this.#host.jobs.finish(job, { status: 'succeeded', stopReason });
      span.end();
      return true;
    }
    run.messages.push({ role: 'assistant', content: response.text, toolCalls: response.toolCalls });
    const toolsStarted = performance.now();
    const calls = response.toolCalls;
    const results = await span.run(() => Promise.all(calls.map((call) => this.#callTool(run, call, step))));
    step.toolsMs = performance.now() - toolsStarted;
    span.end();
    snapshot.timing.toolsMs += step.toolsMs;
    if (signal.aborted) throw signal.reason;
    run.messages.push(...results);
    if (index === run.maxSteps - 1) {
      this.#host.jobs.finish(job, {
        status: 'failed',
        stopReason: 'max_steps',
        error: {
          code: 'MAX_STEPS',
          message: `Stopped after ${run.maxSteps} steps: the model was still calling tools`,
        },
      });
    }
    return false;
  }

  /** The model's answer to the conversation so far, streamed (text deltas as events) or whole. */
  async #ask(run: RunState, index: number, span: ActiveSpan): Promise<ModelResponse> {
    const { config, provider } = run;
    const turn = {
      model: config.model,
      messages: run.messages,
      ...(run.modelTools.length > 0 && { tools: run.modelTools }),
      ...(run.maxTokens !== undefined && { maxTokens: run.maxTokens }),
      ...(run.temperature !== undefined && { temperature: run.temperature }),
      ...(config.defaults?.extra && { extra: config.defaults.extra }),
      signal: run.signal,
    };
    if (!run.options.stream) return span.run(() => provider.complete(turn));
    let response: ModelResponse | undefined;
    const ready = run.options.ready;
    for await (const event of provider.stream(turn)) {
      if (event.type === 'text') {
        run.emit({ type: 'text', step: index, delta: event.delta });
        // A reader that is behind pauses the model stream: nothing more is read from the provider
        // until it has caught up (or the run is cancelled).
        const waiting = ready?.();
        if (waiting) await settledOrAborted(waiting, run.signal);
      } else if (event.type === 'done') response = event.response;
    }
    if (!response) throw new McpKitError('UPSTREAM_ERROR', `${provider.name} stream ended without a result`);
    return response;
  }

  /** A run that stopped on a failure: cancelled if its signal aborted, else failed with the error. */
  #failed(run: RunState, error: unknown): void {
    const jobs = this.#host.jobs;
    if (run.signal.aborted) {
      jobs.finish(run.job, cancelledEnd());
      return;
    }
    const e = toMcpKitError(error);
    if (e.code === 'INTERNAL')
      this.#host.logger.error({ err: error, completion: run.job.snapshot.id }, 'completion failed');
    jobs.finish(run.job, {
      status: 'failed',
      stopReason: 'error',
      error: { code: e.code, message: publicErrorMessage(e) },
    });
  }

  /**
   * One tool call the model asked for, recorded in `record`: refused unless its arguments are a JSON
   * object and the tool was offered, else run through the executor, as the caller's own call
   * (`delegated`) when the run has a caller. Answers the message that carries the result back.
   */
  async #callTool(run: RunState, call: ModelToolCall, record: CompletionStep): Promise<ChatMessage> {
    const { options, emit } = run;
    const step = record.index;
    const started = performance.now();
    let args: unknown;
    let result: CallToolResult;
    try {
      args = parseJsonSafe(call.arguments || '{}');
    } catch {
      args = undefined;
    }
    const entry: CompletionToolCall = { id: call.id, name: call.name, arguments: args ?? call.arguments };
    record.toolCalls.push(entry);
    emit({ type: 'tool_call', step, id: call.id, name: call.name, arguments: entry.arguments });
    if (args === undefined || typeof args !== 'object' || args === null || Array.isArray(args)) {
      result = errorResult('INVALID_ARGUMENT', `The arguments of ${call.name} are not a JSON object`);
    } else if (!run.allowed.has(call.name)) {
      result = errorResult('NOT_FOUND', `Tool ${call.name} is not available`);
    } else {
      try {
        // The model acts for the caller: each call is checked and paid for as the caller's own.
        result = await this.#host.executor.execute(call.name, args, {
          signal: run.signal,
          origin: options.origin ?? 'internal',
          ...(options.caller && { caller: options.caller, delegated: true }),
          ...(options.requestId !== undefined && { requestId: options.requestId }),
          ...(options.clientAddress !== undefined && { clientAddress: options.clientAddress }),
        });
      } catch (error) {
        const e = toMcpKitError(error);
        result = errorResult(e.code, publicErrorMessage(e));
      }
    }
    const text = resultText(result) || (result.isError ? 'The tool failed' : '');
    entry.isError = result.isError === true;
    entry.result = text;
    entry.durationMs = performance.now() - started;
    emit({ type: 'tool_result', step, id: call.id, name: call.name, isError: entry.isError, result: text });
    return {
      role: 'tool',
      toolCallId: call.id,
      name: call.name,
      content: text,
      ...(result.isError && { isError: true }),
    };
  }
}
