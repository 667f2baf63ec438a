/** The shapes of completions: requests, jobs and their events, and what the manager needs of the server. */

import type { CallToolResult, Tool } from '@modelcontextprotocol/server';
import type { CallOrigin } from '../catalog/tools.js';
import type { McpKitErrorCode } from '../core/errors.js';
import type { OutboundPolicy } from '../net/outbound.js';
import type { ProviderHttpOptions } from '../providers/http.js';
import type { ChatMessage, ModelProvider, ModelResponse, ModelUsage } from '../providers/types.js';
import type { JobStore } from '../state/shared.js';
import type { Tracing } from '../telemetry/tracing.js';
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
  /**
   * Backpressure for a streamed run: asked after each text delta is delivered; when it returns a
   * promise, the model's stream is not read again until it settles, so a slow reader slows the model
   * request instead of filling memory. A cancelled run stops waiting at once. Default: never waits.
   */
  ready?: () => Promise<void> | undefined;
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

/** A job that ended, as {@link CompletionHost.finished} hears of it. */
export interface FinishedCompletion {
  snapshot: CompletionSnapshot;
  caller: CallerIdentity | undefined;
  integrationId: string | undefined;
}

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
  /**
   * Whether `caller` may see and cancel a job `owner` started (`undefined`: started without a
   * caller), when it is not its own: the policy layer's decision. Default: only its own.
   */
  reachesJob?(caller: CallerIdentity, owner: string | undefined): boolean;
  /** Told of every job that ended (its final snapshot, who ran it, the integration it named): usage analytics. */
  finished?(job: FinishedCompletion): void;
  /**
   * Jobs shared with other nodes (`createMcpServer({ state })`): each job is recorded there, and a
   * job another node runs is read and cancelled through it. Default: jobs live on this node only.
   */
  sharedJobs?: JobStore;
  /**
   * Runs the model's tool calls. With a caller, each is `delegated`: the server's executor checks
   * and charges it as the caller's own through the policy (`Policy.admitCall`), as it does for a
   * tool called over REST or MCP.
   */
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

/** A running job. */
export interface CompletionHandle {
  readonly id: string;
  /** Settles with the job's final snapshot (never rejects). */
  readonly done: Promise<CompletionSnapshot>;
  cancel(): void;
}
