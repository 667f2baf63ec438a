/** OpenAI Chat Completions (and any OpenAI-compatible endpoint) as a small `fetch` client. */
import { McpKitError } from '../core/errors.js';
import { ProviderHttp, type ProviderHttpOptions, readEvents } from './http.js';
import type {
  ChatMessage,
  ModelFinishReason,
  ModelProvider,
  ModelRequest,
  ModelStreamEvent,
  ModelToolCall,
  ModelUsage,
} from './types.js';

/** Options for {@link createOpenAIProvider}. */
export interface OpenAIProviderOptions extends ProviderHttpOptions {
  /** The API key, sent as `Authorization: Bearer …`. Optional for endpoints that need none. */
  apiKey?: string;
  /** Base URL up to and including the version. Default `https://api.openai.com/v1`. */
  baseUrl?: string;
  /** `OpenAI-Organization` header. */
  organization?: string;
  /**
   * The body field that carries `maxTokens`. Default `max_completion_tokens` for OpenAI and
   * `max_tokens` for custom endpoints.
   */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
  /** The name used in errors and logs. Default `openai`. */
  name?: string;
}

/** Options for {@link createCustomProvider}: an OpenAI-compatible endpoint at `baseUrl`. */
export interface CustomProviderOptions extends OpenAIProviderOptions {
  baseUrl: string;
}

function toWireMessages(messages: ChatMessage[]): unknown[] {
  return messages.map((m) => {
    switch (m.role) {
      case 'assistant':
        return {
          role: 'assistant',
          content: m.content === '' && m.toolCalls?.length ? null : m.content,
          ...(m.toolCalls?.length && {
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: 'function',
              function: { name: c.name, arguments: c.arguments },
            })),
          }),
        };
      case 'tool':
        return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
      default:
        return { role: m.role, content: m.content };
    }
  });
}

function finishReason(value: unknown): ModelFinishReason {
  if (value === 'stop') return 'stop';
  if (value === 'tool_calls' || value === 'function_call') return 'tool_calls';
  if (value === 'length') return 'length';
  return 'other';
}

function usageOf(value: any): ModelUsage {
  return {
    inputTokens: Number(value?.prompt_tokens) || 0,
    outputTokens: Number(value?.completion_tokens) || 0,
  };
}

/**
 * A provider for OpenAI Chat Completions with tools: a small `fetch` client, streaming parsed with
 * `eventsource-parser` (tool calls assembled from fragments by index, the usage chunk, `[DONE]`).
 *
 * @example
 * ```ts
 * import { createOpenAIProvider } from 'mcpkit';
 *
 * const openai = createOpenAIProvider({ apiKey: process.env.OPENAI_API_KEY });
 * const res = await openai.complete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
 * ```
 */
export function createOpenAIProvider(options: OpenAIProviderOptions = {}): ModelProvider {
  const name = options.name ?? 'openai';
  const baseUrl = (options.baseUrl ?? 'https://api.openai.com/v1').replace(/\/+$/, '');
  const maxTokensField = options.maxTokensField ?? 'max_completion_tokens';
  const http = new ProviderHttp(name, options, options.apiKey);
  const url = `${baseUrl}/chat/completions`;
  const headers: Record<string, string> = {
    ...(options.apiKey && { authorization: `Bearer ${options.apiKey}` }),
    ...(options.organization && { 'openai-organization': options.organization }),
  };

  const body = (request: ModelRequest, stream: boolean) => ({
    ...request.extra,
    model: request.model,
    messages: toWireMessages(request.messages),
    ...(request.tools?.length && {
      tools: request.tools.map((t) => ({
        type: 'function',
        function: {
          name: t.name,
          ...(t.description !== undefined && { description: t.description }),
          parameters: t.inputSchema,
        },
      })),
    }),
    ...(request.maxTokens !== undefined && { [maxTokensField]: request.maxTokens }),
    ...(request.temperature !== undefined && { temperature: request.temperature }),
    ...(stream && { stream: true, stream_options: { include_usage: true } }),
  });

  return {
    name,
    async complete(request) {
      const data = await http.postJson(url, { headers, body: body(request, false), signal: request.signal });
      const choice = data?.choices?.[0];
      if (!choice) throw new McpKitError('UPSTREAM_ERROR', `${name} answered without a choice`);
      const message = choice.message ?? {};
      const toolCalls: ModelToolCall[] = Array.isArray(message.tool_calls)
        ? message.tool_calls
            .filter((c: any) => c?.function?.name)
            .map((c: any) => ({
              id: String(c.id ?? ''),
              name: String(c.function.name),
              arguments: typeof c.function.arguments === 'string' ? c.function.arguments : '{}',
            }))
        : [];
      return {
        text: typeof message.content === 'string' ? message.content : '',
        toolCalls,
        finishReason: finishReason(choice.finish_reason),
        usage: usageOf(data.usage),
        ...(typeof data.model === 'string' && { model: data.model }),
      };
    },
    async *stream(request): AsyncGenerator<ModelStreamEvent> {
      const { response, release } = await http.post(url, {
        headers,
        body: body(request, true),
        signal: request.signal,
      });
      let text = '';
      let usage: ModelUsage = { inputTokens: 0, outputTokens: 0 };
      let finish: ModelFinishReason = 'other';
      let model: string | undefined;
      let done = false;
      const partial = new Map<number, { id: string; name: string; arguments: string }>();
      try {
        for await (const event of readEvents(response, request.signal, name)) {
          if (event.data === '[DONE]') {
            done = true;
            break;
          }
          if (event.event !== undefined && event.event !== 'message') {
            if (event.event === 'error') throw http.streamError(undefined, errorText(event.data));
            continue;
          }
          let chunk: any;
          try {
            chunk = JSON.parse(event.data);
          } catch {
            continue;
          }
          if (chunk?.error) throw http.streamError(chunk.error.type, String(chunk.error.message ?? 'error'));
          if (typeof chunk?.model === 'string') model = chunk.model;
          if (chunk?.usage) {
            usage = usageOf(chunk.usage);
            yield { type: 'usage', usage };
          }
          const choice = chunk?.choices?.[0];
          if (!choice) continue;
          const delta = choice.delta ?? {};
          if (typeof delta.content === 'string' && delta.content !== '') {
            text += delta.content;
            yield { type: 'text', delta: delta.content };
          }
          if (Array.isArray(delta.tool_calls)) {
            for (const fragment of delta.tool_calls) {
              const index = Number.isInteger(fragment?.index) ? fragment.index : partial.size;
              const entry = partial.get(index) ?? { id: '', name: '', arguments: '' };
              if (typeof fragment.id === 'string' && fragment.id) entry.id = fragment.id;
              if (typeof fragment.function?.name === 'string') entry.name += fragment.function.name;
              if (typeof fragment.function?.arguments === 'string')
                entry.arguments += fragment.function.arguments;
              partial.set(index, entry);
            }
          }
          if (choice.finish_reason) finish = finishReason(choice.finish_reason);
        }
      } finally {
        release();
      }
      if (!done && finish === 'other')
        throw new McpKitError('UPSTREAM_ERROR', `The ${name} stream ended before it finished`);
      const toolCalls = [...partial.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, c]) => ({ id: c.id, name: c.name, arguments: c.arguments || '{}' }))
        .filter((c) => c.name !== '');
      for (const call of toolCalls) yield { type: 'tool_call', call };
      yield {
        type: 'done',
        response: { text, toolCalls, finishReason: finish, usage, ...(model !== undefined && { model }) },
      };
    },
  };
}

function errorText(data: string): string {
  try {
    const parsed = JSON.parse(data);
    return String(parsed?.error?.message ?? parsed?.message ?? data);
  } catch {
    return data;
  }
}

/**
 * A provider for any OpenAI-compatible Chat Completions endpoint (vLLM, Ollama, LM Studio, Groq,
 * OpenRouter, …) at `baseUrl`.
 *
 * @example
 * ```ts
 * import { createCustomProvider } from 'mcpkit';
 *
 * const local = createCustomProvider({ baseUrl: 'http://127.0.0.1:11434/v1' });
 * ```
 */
export function createCustomProvider(options: CustomProviderOptions): ModelProvider {
  if (typeof options?.baseUrl !== 'string' || options.baseUrl === '')
    throw new TypeError('baseUrl must be the URL of an OpenAI-compatible API');
  return createOpenAIProvider({ maxTokensField: 'max_tokens', name: 'custom', ...options });
}
