/**
 * The completion manager: a model with the server's tools, each run a job with an id, a status, its
 * steps, tool calls, usage and timing, cancellable at once. It checks a request (`validation.ts`),
 * finds its provider (`providers.ts`), keeps the job (`jobs.ts`) and runs the model ↔ tools loop
 * (`loop.ts`) in a `completion` span. Who may reach a job is the policy's decision (the host's
 * `reachesJob`), and the model's tool calls are the caller's own, checked by the executor's policy
 * hook like any other.
 */
import { McpKitError } from '../core/errors.js';
import type { JobStore } from '../state/shared.js';
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
  readonly #store: JobStore | undefined;
  readonly #keepFinishedMs: number;
  #closing = false;

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
    const store = host.sharedJobs;
    this.#store = store;
    this.#keepFinishedMs = keepFinishedMs;
    this.#jobs = new JobTable({
      keepFinishedMs,
      maxFinished,
      maxRunning: options.maxRunning ?? 256,
      reaches: host.reachesJob?.bind(host),
      ...(store && { onFinish: (job: Job) => this.#mirror(job) }),
    });
    store?.serve({
      running: () => this.#runningIds(),
      cancel: (id: string) => {
        const job = this.#jobs.reach(id, undefined);
        if (job) this.#cancel(job);
      },
      ended: (id: string, status: 'cancelled' | 'failed') => {
        const job = this.#jobs.reach(id, undefined);
        if (!job) return;
        this.#cancel(job);
        // Cancelled on another node while it finished here: the store says cancelled, so does this node.
        const { snapshot } = job;
        if (status === 'cancelled' && snapshot.status !== 'cancelled')
          Object.assign(snapshot, cancelledEnd());
      },
      // Progress (steps, usage) reaches the other nodes on each heartbeat, and the record's TTL with it.
      beat: () => {
        for (const job of this.#jobs.all()) if (job.snapshot.status === 'running') this.#mirror(job);
      },
      resync: () => {
        for (const job of this.#jobs.all()) this.#mirror(job);
      },
    });
    this.#loop = new CompletionLoop({
      executor: host.executor,
      jobs: this.#jobs,
      tracing: this.#tracing,
      logger: host.logger,
    });
  }

  *#runningIds(): Iterable<string> {
    for (const job of this.#jobs.all()) if (job.snapshot.status === 'running') yield job.snapshot.id;
  }

  #mirror(job: Job): void {
    if (this.#closing) return;
    this.#store?.save(
      job.snapshot.id,
      () => ({ snapshot: this.#jobs.view(job), ...(job.owner !== undefined && { owner: job.owner }) }),
      this.#keepFinishedMs,
    );
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
    if (this.#store) {
      try {
        // Recorded before its id is handed out, so any node finds it.
        await this.#store.create(
          { snapshot: this.#jobs.view(job), ...(job.owner !== undefined && { owner: job.owner }) },
          this.#keepFinishedMs,
        );
      } catch (error) {
        this.#jobs.drop(snapshot.id);
        throw error;
      }
    }
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

  /**
   * The job `id` on this node or, with a shared store (`createMcpServer({ state })`), on any node,
   * with the same reach rules as {@link get}. A job whose node stopped heartbeating reads as
   * `failed`. Rejects with `UNAVAILABLE` when the job is not here and the store is out of reach.
   */
  async find(id: string, options: { caller?: CallerIdentity } = {}): Promise<CompletionSnapshot | undefined> {
    const local = this.get(id, options);
    if (local || !this.#store || this.#jobs.has(id)) return local;
    const shared = await this.#store.get(id);
    if (!shared || !this.#jobs.reaches(options.caller, shared.owner)) return undefined;
    return shared.snapshot;
  }

  /**
   * Cancels the job `id` on this node or, with a shared store, on the node that runs it (its model
   * request and tool calls are aborted there). Same reach rules and answer as {@link cancel}.
   */
  async cancelAnywhere(
    id: string,
    options: { caller?: CallerIdentity } = {},
  ): Promise<CompletionSnapshot | undefined> {
    if (!this.#store || this.#jobs.has(id)) return this.cancel(id, options);
    const shared = await this.#store.get(id);
    if (!shared || !this.#jobs.reaches(options.caller, shared.owner)) return undefined;
    if (shared.snapshot.status !== 'running') return shared.snapshot;
    return this.#store.cancel(id);
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

  /**
   * Cancels every running job. With a shared store, the jobs this node ran read as `failed` on the
   * other nodes once its lease is given up (the state's `close()`).
   */
  close(): void {
    this.#closing = true;
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
