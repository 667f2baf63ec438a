/**
 * The completion manager: a model with the server's tools, each run a job with an id, a status, its
 * steps, tool calls, usage and timing, cancellable at once. It checks a request (`validation.ts`),
 * finds its provider (`providers.ts`), keeps the job (`jobs.ts`) and runs the model ↔ tools loop
 * (`loop.ts`) in a `completion` span. Who may reach a job is the policy's decision (the host's
 * `reachesJob`), and the model's tool calls are the caller's own, checked by the executor's policy
 * hook like any other.
 */
import { McpKitError } from '../core/errors.js';
import { globalTracing, markError, type Tracing } from '../telemetry/tracing.js';
import type { CallerIdentity } from '../types.js';
import { cancelledEnd, type Job, JobTable } from './jobs.js';
import { CompletionLoop, type CompletionRun } from './loop.js';
import { ModelProviders } from './providers.js';
import type {
  CompletionEvent,
  CompletionHandle,
  CompletionHost,
  CompletionManagerOptions,
  CompletionRequest,
  CompletionRunOptions,
  CompletionSnapshot,
  ModelConfig,
} from './types.js';
import { checkMaxSteps, checkModelConfig, initialMessages, selectTools } from './validation.js';

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
  readonly #options: CompletionManagerOptions;
  readonly #maxSteps: number;
  readonly #tracing: Tracing;
  readonly #providers: ModelProviders;
  readonly #jobs: JobTable;
  readonly #loop: CompletionLoop;

  constructor(host: CompletionHost, options: CompletionManagerOptions = {}) {
    this.#host = host;
    this.#tracing = host.tracing ?? globalTracing;
    this.#options = options;
    this.#providers = new ModelProviders({
      registered: options.providers,
      http: options.providerOptions,
      outbound: () => host.outbound,
    });
    this.#maxSteps = options.maxSteps ?? 10;
    if (!(Number.isInteger(this.#maxSteps) && this.#maxSteps >= 1))
      throw new TypeError('completions.maxSteps must be a positive integer');
    const keepFinishedMs = options.keepFinishedMs ?? 600_000;
    if (!(keepFinishedMs >= 0)) throw new TypeError('completions.keepFinishedMs must be >= 0');
    const maxFinished = options.maxFinished ?? 1000;
    if (!(Number.isInteger(maxFinished) && maxFinished >= 0))
      throw new TypeError('completions.maxFinished must be a non-negative integer');
    this.#jobs = new JobTable({
      keepFinishedMs,
      maxFinished,
      maxRunning: options.maxRunning ?? 256,
      reaches: host.reachesJob?.bind(host),
    });
    this.#loop = new CompletionLoop({
      executor: host.executor,
      jobs: this.#jobs,
      tracing: this.#tracing,
      logger: host.logger,
    });
  }

  /** Jobs running now. */
  get running(): number {
    return this.#jobs.running;
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
    this.#jobs.admit();
    let prepared: Omit<CompletionRun, 'job' | 'request' | 'options' | 'emit'>;
    try {
      prepared = await this.#prepare(request, options);
    } catch (error) {
      this.#jobs.release();
      throw error;
    }
    const { provider, config, tools, messages, maxSteps } = prepared;

    const job = this.#newJob(config, options);
    const { snapshot, controller } = job;
    this.#jobs.add(job);
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
    emit({ type: 'start', id: snapshot.id, model: snapshot.model });
    const run: CompletionRun = { job, provider, config, request, tools, messages, maxSteps, options, emit };
    job.done = this.#traceJob(run).finally(() => {
      parent?.removeEventListener('abort', onParentAbort);
    });
    return { id: snapshot.id, done: job.done, cancel: () => this.cancel(snapshot.id) };
  }

  /** What a run needs before its job exists: its model, provider, tools and first messages. */
  async #prepare(
    request: CompletionRequest,
    options: CompletionRunOptions,
  ): Promise<Omit<CompletionRun, 'job' | 'request' | 'options' | 'emit'>> {
    const config = await this.#resolveModel(request, options);
    const provider = this.#providers.of(config);
    const maxSteps = checkMaxSteps(request.maxSteps, this.#maxSteps);
    const listed = this.#host.tools.list();
    // The model is offered only what the caller could run itself.
    const visible =
      options.caller && this.#host.visibleTools ? this.#host.visibleTools(listed, options.caller) : listed;
    const tools = selectTools(visible, request.tools);
    const messages = await initialMessages(request, options, this.#host);
    return { provider, config, tools, messages, maxSteps };
  }

  /** A new running job for `config`, owned by the run's caller. */
  #newJob(config: ModelConfig, options: CompletionRunOptions): Job {
    const snapshot: CompletionSnapshot = {
      id: globalThis.crypto.randomUUID(),
      status: 'running',
      model: { provider: config.provider, model: config.model },
      steps: [],
      usage: { inputTokens: 0, outputTokens: 0 },
      createdAt: new Date().toISOString(),
      timing: { durationMs: 0, modelMs: 0, toolsMs: 0, overheadMs: 0 },
    };
    return {
      snapshot,
      owner: options.caller?.id,
      controller: new AbortController(),
      started: performance.now(),
      done: Promise.resolve(snapshot),
    };
  }

  /** Runs a job's loop in a `completion` span, the parent of its steps' spans; a failed run marks it. */
  #traceJob(run: CompletionRun): Promise<CompletionSnapshot> {
    const { snapshot } = run.job;
    const { options } = run;
    return this.#tracing.span(
      'completion',
      async (span) => {
        const final = await this.#loop.run(run);
        try {
          this.#host.finished?.({
            snapshot: final,
            caller: options.caller,
            integrationId: run.request.integrationId,
          });
        } catch (error) {
          this.#host.logger.warn({ err: error }, 'completion observer threw');
        }
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
   * started is unknown too, unless the policy lets `caller` reach it (callers with the `admin` role
   * see every job).
   */
  get(id: string, options: { caller?: CallerIdentity } = {}): CompletionSnapshot | undefined {
    this.#jobs.prune();
    const job = this.#jobs.reach(id, options.caller);
    if (!job) return undefined;
    return this.#jobs.view(job);
  }

  /** Jobs kept, newest last. */
  list(): CompletionSnapshot[] {
    this.#jobs.prune();
    return [...this.#jobs.all()].map((job) => this.#jobs.view(job));
  }

  /**
   * Cancels the job `id` at once: aborts the model request and every running tool call. Returns the
   * snapshot, or `undefined` for an unknown job (or, with `caller`, one it may not reach, as for
   * `get`). Cancelling a finished job changes nothing.
   */
  cancel(id: string, options: { caller?: CallerIdentity } = {}): CompletionSnapshot | undefined {
    const job = this.#jobs.reach(id, options.caller);
    if (!job) return undefined;
    this.#cancel(job);
    return this.#jobs.view(job);
  }

  #cancel(job: Job): void {
    if (job.snapshot.status !== 'running') return;
    job.controller.abort(new McpKitError('CANCELLED', 'The completion was cancelled'));
    this.#jobs.finish(job, cancelledEnd());
  }

  /** Cancels every running job. */
  close(): void {
    for (const job of this.#jobs.all()) this.#cancel(job);
  }

  async #resolveModel(request: CompletionRequest, options: CompletionRunOptions): Promise<ModelConfig> {
    let config: ModelConfig | undefined;
    if (this.#options.resolveModel) config = await this.#options.resolveModel(request);
    else if (request.integrationId !== undefined)
      throw new McpKitError('INVALID_ARGUMENT', 'integrationId needs integrations to be configured');
    else config = request.model;
    return checkModelConfig(config, request, {
      options,
      allowInlineBaseUrl: this.#options.allowInlineBaseUrl === true,
    });
  }
}
