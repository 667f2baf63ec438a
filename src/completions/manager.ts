/**
 * The completion loop: a model sees the server's tools as functions, each step's tool calls run
 * through the {@link ToolExecutor} in parallel, results (failures included) go back to the model,
 * until it answers or the step limit ends the run. Every run is a job with an id, a status, its
 * steps, tool calls, usage and timing, cancellable at once.
 */
import type { CallToolResult, Tool } from '@modelcontextprotocol/server';
import type { CallOrigin } from '../catalog/tools.js';
import {
  detach,
  McpKitError,
  type McpKitErrorCode,
  publicErrorMessage,
  toMcpKitError,
} from '../core/errors.js';
import { parseJsonSafe } from '../core/safeJson.js';
import { errorResult } from '../executor.js';
import { isHeaderText, MODEL_PROVIDER_HOSTS, OutboundPolicy } from '../net/outbound.js';
import { createAnthropicProvider } from '../providers/anthropic.js';
import type { ProviderHttpOptions } from '../providers/http.js';
import { createCustomProvider, createOpenAIProvider } from '../providers/openai.js';
import type {
  ChatMessage,
  ModelProvider,
  ModelResponse,
  ModelTool,
  ModelToolCall,
  ModelUsage,
} from '../providers/types.js';
import { type ActiveSpan, globalTracing, markError, type Tracing } from '../telemetry/tracing.js';
import type { CallerIdentity, Logger } from '../types.js';

/** A model to run: a provider name (built-in `openai`, `anthropic`, `custom`, or a registered one) and its settings. */
export interface ModelConfig {
  provider: string;
  model: string;
  apiKey?: string;
  baseUrl?: string;
  /** Request defaults: `maxTokens`, `temperature`, and any further body fields (`extra`). */
  defaults?: { maxTokens?: number; temperature?: number; extra?: Record<string, unknown> };
}

/** Which tools the model may call. */
export type ToolSelection = 'all' | 'none' | string[] | ((tool: Tool) => boolean);

/** One completion request. */
export interface CompletionRequest {
  /** The model, inline. Either this or `integrationId` (resolved by `resolveModel`). */
  model?: ModelConfig;
  /** An integration whose model to use; needs the `resolveModel` hook. */
  integrationId?: string;
  /** The conversation so far. */
  messages?: ChatMessage[];
  /** A prompt of the server's catalog, rendered as the first messages. */
  prompt?: { name: string; arguments?: Record<string, unknown> };
  /** A system message put first. */
  system?: string;
  /** Tools offered to the model. Default `'all'`. */
  tools?: ToolSelection;
  /** Model turns before the run stops with `stopReason: 'max_steps'`. Default: the manager's `maxSteps`. */
  maxSteps?: number;
  maxTokens?: number;
  temperature?: number;
}

/** Per-run options. */
export interface CompletionRunOptions {
  /** Stream the model's turns (text deltas arrive as events). Default `false`. */
  stream?: boolean;
  /** Cancels the job (like `cancel(id)`). */
  signal?: AbortSignal;
  /**
   * Who asked: the prompt is rendered, and every tool call the model makes is checked and paid for
   * (one `execute` rate-limit token each), as this caller's own.
   */
  caller?: CallerIdentity;
  /** Where tool calls say they came from. Default `internal`. */
  origin?: CallOrigin;
  /** The id of the request that asked (for audit). */
  requestId?: string;
  /** The client's network address (for audit, and the rate limits of anonymous callers). */
  clientAddress?: string;
  /** Receives the job's events as they happen. */
  onEvent?: (event: CompletionEvent) => void;
}

/** Status of a completion job. */
export type CompletionStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Why a job ended. */
export type CompletionStopReason = 'stop' | 'length' | 'max_steps' | 'error' | 'cancelled';

/** One tool call of a step and its result. */
export interface CompletionToolCall {
  id: string;
  name: string;
  arguments: unknown;
  isError?: boolean;
  /** The text the model received as the result. */
  result?: string;
  durationMs?: number;
}

/** One model turn and the tool calls it asked for. */
export interface CompletionStep {
  index: number;
  text: string;
  toolCalls: CompletionToolCall[];
  finishReason: ModelResponse['finishReason'];
  usage: ModelUsage;
  /** Time waiting for the model. */
  modelMs: number;
  /** Time running this step's tool calls (in parallel: the longest). */
  toolsMs: number;
}

/** A job as `GET /completions/{id}` shows it. */
export interface CompletionSnapshot {
  id: string;
  status: CompletionStatus;
  stopReason?: CompletionStopReason;
  model: { provider: string; model: string };
  /** The model's final answer. */
  output?: string;
  steps: CompletionStep[];
  usage: ModelUsage;
  error?: { code: McpKitErrorCode | 'MAX_STEPS'; message: string };
  createdAt: string;
  finishedAt?: string;
  timing: { durationMs: number; modelMs: number; toolsMs: number; overheadMs: number };
}

/** Events of a running job (the SSE events of `POST /completions/stream`). */
export type CompletionEvent =
  | { type: 'start'; id: string; model: { provider: string; model: string } }
  | { type: 'text'; step: number; delta: string }
  | { type: 'tool_call'; step: number; id: string; name: string; arguments: unknown }
  | { type: 'tool_result'; step: number; id: string; name: string; isError: boolean; result: string }
  | { type: 'usage'; step: number; usage: ModelUsage }
  | { type: 'done'; job: CompletionSnapshot };

/** What the manager needs from the server. */
export interface CompletionHost {
  tools: { list(): readonly Tool[]; get(name: string): unknown };
  /**
   * The outbound policy model requests of the built-in providers go through (`server.outbound`);
   * the providers' own APIs are always allowed. Default: a policy that allows only those.
   */
  outbound?: OutboundPolicy;
  /** The tools `caller` may use (the policy layer's view); default: every listed tool. */
  visibleTools?(tools: readonly Tool[], caller: CallerIdentity): readonly Tool[];
  /**
   * Whether `caller` may render the prompt `name` (the policy layer's check): a refusal, or
   * `undefined`. Default: every prompt.
   */
  admitPrompt?(
    name: string,
    caller: CallerIdentity,
    run: CompletionRunOptions,
  ): { code: McpKitErrorCode; message: string } | undefined;
  executor: {
    execute(
      name: string,
      args: unknown,
      options: {
        signal?: AbortSignal;
        caller?: CallerIdentity;
        origin?: CallOrigin;
        delegated?: boolean;
        requestId?: string;
        clientAddress?: string;
      },
    ): Promise<CallToolResult>;
  };
  prompts?: {
    render(
      name: string,
      args: Record<string, unknown>,
      options: { signal?: AbortSignal; caller?: CallerIdentity },
    ): Promise<{ messages: Array<{ role: string; content: unknown }> }>;
  };
  logger: Logger;
  /** Where completion spans go. Default: the global OpenTelemetry registration, if any. */
  tracing?: Tracing;
}

/** Options for {@link CompletionManager}. */
export interface CompletionManagerOptions {
  /** Providers by name, beside (or replacing) the built-in `openai`, `anthropic` and `custom`. */
  providers?: Record<string, ModelProvider>;
  /** Model turns per run before it stops with `stopReason: 'max_steps'`. Default 10. */
  maxSteps?: number;
  /** How long finished jobs stay readable. Default 10 minutes. */
  keepFinishedMs?: number;
  /** Finished jobs kept at most (oldest dropped first). Default 1000. */
  maxFinished?: number;
  /** Jobs running at once; more fail fast with `BUSY`. Default 256. */
  maxRunning?: number;
  /**
   * Turns a request into a model config: the hook for `integrationId` (and for server-side defaults).
   * Default: the request's inline `model`.
   */
  resolveModel?: (request: CompletionRequest) => ModelConfig | Promise<ModelConfig>;
  /** Whether REST callers may give an inline `baseUrl` (the server would call that URL). Default `false`. */
  allowInlineBaseUrl?: boolean;
  /** HTTP options of the built-in providers the manager creates (fetch, retry, limits). */
  providerOptions?: ProviderHttpOptions;
}

interface Job {
  snapshot: CompletionSnapshot;
  /** The id of the caller who started it, when one was named. */
  owner: string | undefined;
  controller: AbortController;
  started: number;
  finished?: number;
  done: Promise<CompletionSnapshot>;
}

/** A running job. */
export interface CompletionHandle {
  readonly id: string;
  /** Settles with the job's final snapshot (never rejects). */
  readonly done: Promise<CompletionSnapshot>;
  cancel(): void;
}

const MAX_RESULT_CHARS = 100_000;

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

function selectTools(all: readonly Tool[], selection: ToolSelection | undefined): Tool[] {
  if (selection === undefined || selection === 'all') return [...all];
  if (selection === 'none') return [];
  if (Array.isArray(selection)) {
    const wanted = new Set(selection);
    return all.filter((t) => wanted.has(t.name));
  }
  if (typeof selection === 'function') return all.filter((t) => selection(t));
  throw new McpKitError('INVALID_ARGUMENT', "tools must be 'all', 'none' or an array of tool names");
}

function addUsage(a: ModelUsage, b: ModelUsage): ModelUsage {
  return { inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens };
}

/**
 * Runs completions: a model with the server's tools. Reach it as `server.completions`.
 *
 * @example
 * ```ts
 * const job = await server.completions.run({
 *   model: { provider: 'openai', model: 'gpt-4o-mini', apiKey: process.env.OPENAI_API_KEY },
 *   messages: [{ role: 'user', content: 'What is 2 + 3? Use the add tool.' }],
 * });
 * console.log(job.status, job.output);
 * ```
 */
export class CompletionManager {
  readonly #host: CompletionHost;
  readonly #providers: Record<string, ModelProvider>;
  readonly #builtIn = new Map<string, ModelProvider>();
  readonly #jobs = new Map<string, Job>();
  readonly #maxSteps: number;
  readonly #keepFinishedMs: number;
  readonly #maxFinished: number;
  readonly #maxRunning: number;
  readonly #options: CompletionManagerOptions;
  #running = 0;
  readonly #tracing: Tracing;

  #outbound: OutboundPolicy | undefined;

  constructor(host: CompletionHost, options: CompletionManagerOptions = {}) {
    this.#host = host;
    this.#tracing = host.tracing ?? globalTracing;
    this.#options = options;
    this.#providers = { ...options.providers };
    this.#maxSteps = options.maxSteps ?? 10;
    if (!(Number.isInteger(this.#maxSteps) && this.#maxSteps >= 1))
      throw new TypeError('completions.maxSteps must be a positive integer');
    this.#keepFinishedMs = options.keepFinishedMs ?? 600_000;
    if (!(this.#keepFinishedMs >= 0)) throw new TypeError('completions.keepFinishedMs must be >= 0');
    this.#maxFinished = options.maxFinished ?? 1000;
    if (!(Number.isInteger(this.#maxFinished) && this.#maxFinished >= 0))
      throw new TypeError('completions.maxFinished must be a non-negative integer');
    this.#maxRunning = options.maxRunning ?? 256;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Runs a completion to the end and returns its final snapshot (a failed run is a snapshot too). */
  async run(request: CompletionRequest, options: CompletionRunOptions = {}): Promise<CompletionSnapshot> {
    const handle = await this.start(request, options);
    return handle.done;
  }

  /**
   * Starts a completion and returns at once with its id. Throws for requests that cannot start
   * (`INVALID_ARGUMENT`, `NOT_FOUND` for an unknown provider, `BUSY`).
   */
  async start(request: CompletionRequest, options: CompletionRunOptions = {}): Promise<CompletionHandle> {
    if (typeof request !== 'object' || request === null)
      throw new McpKitError('INVALID_ARGUMENT', 'The request must be an object');
    this.#prune();
    if (this.#running >= this.#maxRunning)
      throw new McpKitError('BUSY', `${this.#maxRunning} completions are running already`);
    const config = await this.#resolveModel(request, options);
    const provider = this.#provider(config);
    const maxSteps = request.maxSteps ?? this.#maxSteps;
    if (!(Number.isInteger(maxSteps) && maxSteps >= 1 && maxSteps <= 100))
      throw new McpKitError('INVALID_ARGUMENT', 'maxSteps must be an integer from 1 to 100');
    const listed = this.#host.tools.list();
    // The model is offered only what the caller could run itself.
    const visible =
      options.caller && this.#host.visibleTools ? this.#host.visibleTools(listed, options.caller) : listed;
    const tools = selectTools(visible, request.tools);
    const messages = await this.#initialMessages(request, options);

    const id = globalThis.crypto.randomUUID();
    const controller = new AbortController();
    const snapshot: CompletionSnapshot = {
      id,
      status: 'running',
      model: { provider: config.provider, model: config.model },
      steps: [],
      usage: { inputTokens: 0, outputTokens: 0 },
      createdAt: new Date().toISOString(),
      timing: { durationMs: 0, modelMs: 0, toolsMs: 0, overheadMs: 0 },
    };
    const job: Job = {
      snapshot,
      owner: options.caller?.id,
      controller,
      started: performance.now(),
      done: Promise.resolve(snapshot),
    };
    this.#jobs.set(id, job);
    this.#running++;
    const parent = options.signal;
    const onParentAbort = () => controller.abort(parent?.reason);
    if (parent?.aborted) controller.abort(parent.reason);
    else parent?.addEventListener('abort', onParentAbort, { once: true });
    const emit = (event: CompletionEvent) => {
      try {
        options.onEvent?.(event);
      } catch (error) {
        this.#host.logger.warn({ err: error }, 'completion event listener threw');
      }
    };
    emit({ type: 'start', id, model: snapshot.model });
    const loop = () => this.#loop(job, provider, config, request, tools, messages, maxSteps, options, emit);
    job.done = this.#traceJob(snapshot, options, loop).finally(() => {
      parent?.removeEventListener('abort', onParentAbort);
    });
    return { id, done: job.done, cancel: () => this.cancel(id) };
  }

  /** Runs a job in a `completion` span, the parent of its steps' spans; a failed run marks it. */
  #traceJob(
    snapshot: CompletionSnapshot,
    options: CompletionRunOptions,
    loop: () => Promise<CompletionSnapshot>,
  ): Promise<CompletionSnapshot> {
    return this.#tracing.span(
      'completion',
      async (span) => {
        const final = await loop();
        if (span) {
          span.setAttribute('mcpkit.completion.status', final.status);
          span.setAttribute('mcpkit.completion.steps', final.steps.length);
          span.setAttribute('gen_ai.usage.input_tokens', final.usage.inputTokens);
          span.setAttribute('gen_ai.usage.output_tokens', final.usage.outputTokens);
          if (final.status === 'failed') markError(span, final.error?.code ?? 'INTERNAL');
        }
        return final;
      },
      {
        attributes: () => ({
          'mcpkit.completion.id': snapshot.id,
          'gen_ai.provider.name': snapshot.model.provider,
          'gen_ai.request.model': snapshot.model.model,
          'mcpkit.origin': options.origin ?? 'internal',
          ...(options.caller && { 'mcpkit.caller.id': options.caller.id }),
        }),
      },
    );
  }

  /**
   * The job `id`, or `undefined` when it is unknown or expired. With `caller`, a job another caller
   * started is unknown too (callers with the `admin` role see every job).
   */
  get(id: string, options: { caller?: CallerIdentity } = {}): CompletionSnapshot | undefined {
    this.#prune();
    const job = this.#owned(id, options.caller);
    if (!job) return undefined;
    return this.#view(job);
  }

  #owned(id: string, caller: CallerIdentity | undefined): Job | undefined {
    const job = this.#jobs.get(id);
    if (!job || caller === undefined || caller.roles?.includes('admin')) return job;
    return job.owner === caller.id ? job : undefined;
  }

  /** Jobs kept, newest last. */
  list(): CompletionSnapshot[] {
    this.#prune();
    return [...this.#jobs.values()].map((job) => this.#view(job));
  }

  /**
   * Cancels the job `id` at once: aborts the model request and every running tool call. Returns the
   * snapshot, or `undefined` for an unknown job (or, with `caller`, one another caller started).
   * Cancelling a finished job changes nothing.
   */
  cancel(id: string, options: { caller?: CallerIdentity } = {}): CompletionSnapshot | undefined {
    const job = this.#owned(id, options.caller);
    if (!job) return undefined;
    if (job.snapshot.status === 'running') {
      job.controller.abort(new McpKitError('CANCELLED', 'The completion was cancelled'));
      this.#finish(job, 'cancelled', 'cancelled', {
        code: 'CANCELLED',
        message: 'The completion was cancelled',
      });
    }
    return this.#view(job);
  }

  /** Cancels every running job. */
  close(): void {
    for (const id of this.#jobs.keys()) this.cancel(id);
  }

  #view(job: Job): CompletionSnapshot {
    const s = job.snapshot;
    const end = job.finished ?? performance.now();
    const durationMs = end - job.started;
    return structuredClone({
      ...s,
      timing: {
        ...s.timing,
        durationMs,
        overheadMs: Math.max(0, durationMs - s.timing.modelMs - s.timing.toolsMs),
      },
    });
  }

  async #resolveModel(request: CompletionRequest, options: CompletionRunOptions): Promise<ModelConfig> {
    let config: ModelConfig | undefined;
    if (this.#options.resolveModel) config = await this.#options.resolveModel(request);
    else if (request.integrationId !== undefined)
      throw new McpKitError('INVALID_ARGUMENT', 'integrationId needs integrations to be configured');
    else config = request.model;
    if (!config || typeof config !== 'object')
      throw new McpKitError('INVALID_ARGUMENT', 'Give a model: { provider, model, apiKey?, baseUrl? }');
    if (typeof config.provider !== 'string' || typeof config.model !== 'string' || config.model === '')
      throw new McpKitError('INVALID_ARGUMENT', 'model.provider and model.model must be strings');
    if (config.apiKey !== undefined && (typeof config.apiKey !== 'string' || !isHeaderText(config.apiKey)))
      throw new McpKitError(
        'INVALID_ARGUMENT',
        'model.apiKey must be a string of printable Latin-1 characters',
      );
    if (config.baseUrl !== undefined && typeof config.baseUrl !== 'string')
      throw new McpKitError('INVALID_ARGUMENT', 'model.baseUrl must be a string');
    if (
      options.origin === 'rest' &&
      request.integrationId === undefined &&
      request.model?.baseUrl !== undefined &&
      !this.#options.allowInlineBaseUrl
    ) {
      throw new McpKitError(
        'FORBIDDEN',
        'An inline baseUrl is not allowed here (completions.allowInlineBaseUrl is off)',
      );
    }
    return config;
  }

  #provider(config: ModelConfig): ModelProvider {
    const registered = this.#providers[config.provider];
    if (registered) return registered;
    const key = JSON.stringify([config.provider, config.baseUrl ?? '', config.apiKey ?? '']);
    let provider = this.#builtIn.get(key);
    if (provider) return provider;
    const http = this.#options.providerOptions ?? {};
    this.#outbound ??= this.#host.outbound ?? new OutboundPolicy();
    const outbound = this.#outbound;
    const own = http.fetch;
    // Every request of a built-in provider goes through the outbound policy, whoever named the URL.
    const checked: typeof fetch = (input, init) =>
      outbound.fetch(new URL(String(input)), (init ?? {}) as never, {
        also: MODEL_PROVIDER_HOSTS,
        ...(own && { fetch: own }),
      });
    const common = {
      ...http,
      fetch: checked,
      ...(config.apiKey !== undefined && { apiKey: config.apiKey }),
      ...(config.baseUrl !== undefined && { baseUrl: config.baseUrl }),
    };
    switch (config.provider) {
      case 'openai':
        provider = createOpenAIProvider(common);
        break;
      case 'anthropic':
        provider = createAnthropicProvider(common);
        break;
      case 'custom':
        if (config.baseUrl === undefined)
          throw new McpKitError('INVALID_ARGUMENT', 'A custom provider needs model.baseUrl');
        provider = createCustomProvider({ ...common, baseUrl: config.baseUrl });
        break;
      default:
        throw new McpKitError('NOT_FOUND', `No model provider named ${config.provider}`);
    }
    if (this.#builtIn.size >= 256) this.#builtIn.delete(this.#builtIn.keys().next().value!);
    this.#builtIn.set(key, provider);
    return provider;
  }

  async #initialMessages(request: CompletionRequest, options: CompletionRunOptions): Promise<ChatMessage[]> {
    const messages: ChatMessage[] = [];
    if (request.system !== undefined) {
      if (typeof request.system !== 'string')
        throw new McpKitError('INVALID_ARGUMENT', 'system must be a string');
      messages.push({ role: 'system', content: request.system });
    }
    if (request.prompt !== undefined) {
      if (!this.#host.prompts) throw new McpKitError('INVALID_ARGUMENT', 'Prompts are not available');
      if (typeof request.prompt?.name !== 'string')
        throw new McpKitError('INVALID_ARGUMENT', 'prompt.name must be a string');
      // A prompt the caller could not read itself is not rendered for it either.
      const refused =
        options.caller && this.#host.admitPrompt?.(request.prompt.name, options.caller, options);
      if (refused) throw new McpKitError(refused.code, refused.message);
      const rendered = await this.#host.prompts.render(request.prompt.name, request.prompt.arguments ?? {}, {
        ...(options.signal && { signal: options.signal }),
        ...(options.caller && { caller: options.caller }),
      });
      for (const m of rendered.messages) {
        const content = m.content as { type?: string; text?: string };
        const text = content?.type === 'text' ? String(content.text) : JSON.stringify(content);
        messages.push(
          m.role === 'assistant' ? { role: 'assistant', content: text } : { role: 'user', content: text },
        );
      }
    }
    if (request.messages !== undefined) {
      if (!Array.isArray(request.messages))
        throw new McpKitError('INVALID_ARGUMENT', 'messages must be an array');
      request.messages.forEach((m, i) => {
        const ok =
          typeof m === 'object' &&
          m !== null &&
          ['system', 'user', 'assistant', 'tool'].includes(m.role) &&
          typeof m.content === 'string' &&
          (m.role !== 'tool' || (typeof m.toolCallId === 'string' && typeof m.name === 'string'));
        if (!ok)
          throw new McpKitError(
            'INVALID_ARGUMENT',
            `messages[${i}] must be { role: system|user|assistant|tool, content: string }`,
          );
        messages.push(m);
      });
    }
    if (!messages.some((m) => m.role === 'user'))
      throw new McpKitError('INVALID_ARGUMENT', 'Give messages (with a user message) or a prompt');
    return messages;
  }

  async #loop(
    job: Job,
    provider: ModelProvider,
    config: ModelConfig,
    request: CompletionRequest,
    tools: Tool[],
    messages: ChatMessage[],
    maxSteps: number,
    options: CompletionRunOptions,
    emit: (event: CompletionEvent) => void,
  ): Promise<CompletionSnapshot> {
    const { snapshot, controller } = job;
    const signal = controller.signal;
    const allowed = new Set(tools.map((t) => t.name));
    const modelTools: ModelTool[] = tools.map((t) => ({
      name: t.name,
      ...(t.description !== undefined && { description: t.description }),
      inputSchema: t.inputSchema as Record<string, unknown>,
    }));
    const maxTokens = request.maxTokens ?? config.defaults?.maxTokens;
    const temperature = request.temperature ?? config.defaults?.temperature;
    // One span per model turn and the tool calls it asked for.
    let stepSpan: ActiveSpan | undefined;
    try {
      for (let index = 0; index < maxSteps; index++) {
        stepSpan = this.#tracing.begin('completion step', {
          attributes: () => ({ 'mcpkit.completion.id': snapshot.id, 'mcpkit.completion.step': index }),
        });
        const modelStarted = performance.now();
        const turn = {
          model: config.model,
          messages,
          ...(modelTools.length > 0 && { tools: modelTools }),
          ...(maxTokens !== undefined && { maxTokens }),
          ...(temperature !== undefined && { temperature }),
          ...(config.defaults?.extra && { extra: config.defaults.extra }),
          signal,
        };
        let response: ModelResponse | undefined;
        if (options.stream) {
          for await (const event of provider.stream(turn)) {
            if (event.type === 'text') emit({ type: 'text', step: index, delta: event.delta });
            else if (event.type === 'done') response = event.response;
          }
          if (!response)
            throw new McpKitError('UPSTREAM_ERROR', `${provider.name} stream ended without a result`);
        } else response = await stepSpan.run(() => provider.complete(turn));
        // A stream that ends quietly after an abort is a cancelled run, not a finished one.
        if (signal.aborted) throw signal.reason;
        const modelMs = performance.now() - modelStarted;
        snapshot.timing.modelMs += modelMs;
        snapshot.usage = addUsage(snapshot.usage, response.usage);
        emit({ type: 'usage', step: index, usage: response.usage });
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
        stepSpan.setAttributes({
          'gen_ai.usage.input_tokens': response.usage.inputTokens,
          'gen_ai.usage.output_tokens': response.usage.outputTokens,
          'mcpkit.completion.tool_calls': response.toolCalls.length,
        });
        if (response.toolCalls.length === 0) {
          snapshot.output = response.text;
          this.#finish(job, 'succeeded', response.finishReason === 'length' ? 'length' : 'stop');
          stepSpan.end();
          break;
        }
        messages.push({ role: 'assistant', content: response.text, toolCalls: response.toolCalls });
        const toolsStarted = performance.now();
        const calls = response.toolCalls;
        const results = await stepSpan.run(() =>
          Promise.all(calls.map((call) => this.#callTool(call, index, allowed, step, signal, options, emit))),
        );
        step.toolsMs = performance.now() - toolsStarted;
        stepSpan.end();
        snapshot.timing.toolsMs += step.toolsMs;
        if (signal.aborted) throw signal.reason;
        messages.push(...results);
        if (index === maxSteps - 1) {
          this.#finish(job, 'failed', 'max_steps', {
            code: 'MAX_STEPS',
            message: `Stopped after ${maxSteps} steps: the model was still calling tools`,
          });
        }
      }
    } catch (error) {
      stepSpan?.end(signal.aborted ? 'CANCELLED' : error);
      if (signal.aborted) {
        this.#finish(job, 'cancelled', 'cancelled', {
          code: 'CANCELLED',
          message: 'The completion was cancelled',
        });
      } else {
        const e = toMcpKitError(error);
        if (e.code === 'INTERNAL')
          this.#host.logger.error({ err: error, completion: snapshot.id }, 'completion failed');
        this.#finish(job, 'failed', 'error', { code: e.code, message: publicErrorMessage(e) });
      }
    }
    const final = this.#view(job);
    emit({ type: 'done', job: final });
    return final;
  }

  async #callTool(
    call: ModelToolCall,
    step: number,
    allowed: Set<string>,
    record: CompletionStep,
    signal: AbortSignal,
    options: CompletionRunOptions,
    emit: (event: CompletionEvent) => void,
  ): Promise<ChatMessage> {
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
    } else if (!allowed.has(call.name)) {
      result = errorResult('NOT_FOUND', `Tool ${call.name} is not available`);
    } else {
      try {
        // The model acts for the caller: each call is checked and paid for as the caller's own.
        result = await this.#host.executor.execute(call.name, args, {
          signal,
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

  #finish(
    job: Job,
    status: Exclude<CompletionStatus, 'running'>,
    stopReason: CompletionStopReason,
    error?: CompletionSnapshot['error'],
  ): void {
    if (job.snapshot.status !== 'running') return;
    job.snapshot.status = status;
    job.snapshot.stopReason = stopReason;
    if (error) job.snapshot.error = error;
    job.finished = performance.now();
    job.snapshot.finishedAt = new Date().toISOString();
    this.#running--;
    this.#prune();
  }

  #prune(): void {
    const now = performance.now();
    let finished = 0;
    for (const job of this.#jobs.values()) if (job.finished !== undefined) finished++;
    for (const [id, job] of this.#jobs) {
      if (job.finished === undefined) continue;
      if (now - job.finished > this.#keepFinishedMs || finished > this.#maxFinished) {
        this.#jobs.delete(id);
        finished--;
      }
    }
  }
}
