/**
 * The provider-neutral shapes of a model conversation: messages, tools offered to the model, one
 * model turn's result, and the events of a streamed turn. Every provider translates these to and
 * from its own wire format.
 */

/** A tool call the model asked for. `arguments` is the JSON text the model produced. */
export interface ModelToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** One message of a conversation. */
export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ModelToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string; isError?: boolean };

/** A tool offered to the model: a function with its JSON Schema. */
export interface ModelTool {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
}

/** Token counts of one or more model turns. */
export interface ModelUsage {
  inputTokens: number;
  outputTokens: number;
}

/** Why a model turn ended. */
export type ModelFinishReason = 'stop' | 'tool_calls' | 'length' | 'other';

/** One model turn. */
export interface ModelRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ModelTool[];
  /** Output token cap. Anthropic requires one: the provider's default applies when absent. */
  maxTokens?: number;
  temperature?: number;
  /**
   * Further body fields merged into the provider request as they are (for example `top_p`). Fields
   * the provider sets itself (`model`, `messages`, `tools`, `stream`) win.
   */
  extra?: Record<string, unknown>;
  /** Aborts the HTTP request, including a stream in flight. */
  signal?: AbortSignal;
}

/** What one model turn produced. */
export interface ModelResponse {
  text: string;
  toolCalls: ModelToolCall[];
  finishReason: ModelFinishReason;
  usage: ModelUsage;
  /** The model id the provider reported. */
  model?: string;
}

/** Events of a streamed model turn; `done` is always last. */
export type ModelStreamEvent =
  | { type: 'text'; delta: string }
  | { type: 'tool_call'; call: ModelToolCall }
  | { type: 'usage'; usage: ModelUsage }
  | { type: 'done'; response: ModelResponse };

/**
 * A model behind a wire format. mcpkit ships OpenAI Chat Completions, Anthropic Messages and any
 * OpenAI-compatible endpoint; implement this to plug in another.
 *
 * @example
 * ```ts
 * const echo: ModelProvider = {
 *   name: 'echo',
 *   async complete(req) {
 *     const last = req.messages.at(-1);
 *     const text = last && 'content' in last ? last.content : '';
 *     return { text, toolCalls: [], finishReason: 'stop', usage: { inputTokens: 0, outputTokens: 0 } };
 *   },
 *   async *stream(req) {
 *     yield { type: 'done', response: await this.complete(req) };
 *   },
 * };
 * ```
 */
export interface ModelProvider {
  /** A name for logs and errors (`openai`, `anthropic`, …). */
  readonly name: string;
  /** One turn, answered whole. */
  complete(request: ModelRequest): Promise<ModelResponse>;
  /**
   * One turn, streamed. Ends with a `done` event; throws `CANCELLED` when `request.signal` aborts,
   * including when an aborted stream ends quietly.
   */
  stream(request: ModelRequest): AsyncIterable<ModelStreamEvent>;
}
