/** Anthropic Messages as a small `fetch` client. */
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

/** Options for {@link createAnthropicProvider}. */
export interface AnthropicProviderOptions extends ProviderHttpOptions {
  /** The API key, sent as `x-api-key`. */
  apiKey?: string;
  /** Base URL without the version. Default `https://api.anthropic.com`. */
  baseUrl?: string;
  /** The `anthropic-version` header. Default `2023-06-01`. */
  apiVersion?: string;
  /** `max_tokens` when a request gives none (the API requires it). Default 4096. */
  defaultMaxTokens?: number;
  /** The name used in errors and logs. Default `anthropic`. */
  name?: string;
}

interface WireBlock {
  type: string;
  [key: string]: unknown;
}

function parseInput(text: string): unknown {
  try {
    const value = JSON.parse(text || '{}');
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : { value };
  } catch {
    return {};
  }
}

/** Messages on the Anthropic wire: system apart, every tool result of a turn in one user message. */
function toWire(messages: ChatMessage[]): { system?: string; messages: unknown[] } {
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n\n');
  const out: Array<{ role: 'user' | 'assistant'; content: string | WireBlock[] }> = [];
  for (const m of messages) {
    if (m.role === 'system') continue;
    if (m.role === 'tool') {
      const block: WireBlock = {
        type: 'tool_result',
        tool_use_id: m.toolCallId,
        content: m.content,
        ...(m.isError && { is_error: true }),
      };
      const last = out.at(-1);
      if (
        last?.role === 'user' &&
        Array.isArray(last.content) &&
        last.content.every((b) => b.type === 'tool_result')
      ) {
        last.content.push(block);
      } else out.push({ role: 'user', content: [block] });
      continue;
    }
    if (m.role === 'assistant') {
      const blocks: WireBlock[] = [];
      if (m.content !== '') blocks.push({ type: 'text', text: m.content });
      for (const c of m.toolCalls ?? [])
        blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: parseInput(c.arguments) });
      out.push({ role: 'assistant', content: blocks.length > 0 ? blocks : '' });
      continue;
    }
    out.push({ role: 'user', content: m.content });
  }
  return { ...(system !== '' && { system }), messages: out };
}

function finishReason(value: unknown): ModelFinishReason {
  if (value === 'end_turn' || value === 'stop_sequence') return 'stop';
  if (value === 'tool_use') return 'tool_calls';
  if (value === 'max_tokens') return 'length';
  return 'other';
}

/**
 * A provider for the Anthropic Messages API with tools: `tool_use`/`tool_result` blocks (all results
 * of a turn in one user message, `is_error` for failures), the named streaming events including
 * `input_json_delta`, `max_tokens` always sent, the API version configurable.
 *
 * @example
 * ```ts
 * import { createAnthropicProvider } from 'mcpkit';
 *
 * const claude = createAnthropicProvider({ apiKey: process.env.ANTHROPIC_API_KEY });
 * ```
 */
export function createAnthropicProvider(options: AnthropicProviderOptions = {}): ModelProvider {
  const name = options.name ?? 'anthropic';
  const baseUrl = (options.baseUrl ?? 'https://api.anthropic.com').replace(/\/+$/, '').replace(/\/v1$/, '');
  const url = `${baseUrl}/v1/messages`;
  const defaultMaxTokens = options.defaultMaxTokens ?? 4096;
  const http = new ProviderHttp(name, options, options.apiKey);
  const headers: Record<string, string> = {
    'anthropic-version': options.apiVersion ?? '2023-06-01',
    ...(options.apiKey && { 'x-api-key': options.apiKey }),
  };

  const body = (request: ModelRequest, stream: boolean) => ({
    ...request.extra,
    model: request.model,
    ...toWire(request.messages),
    max_tokens: request.maxTokens ?? defaultMaxTokens,
    ...(request.tools?.length && {
      tools: request.tools.map((t) => ({
        name: t.name,
        ...(t.description !== undefined && { description: t.description }),
        input_schema: t.inputSchema,
      })),
    }),
    ...(request.temperature !== undefined && { temperature: request.temperature }),
    ...(stream && { stream: true }),
  });

  return {
    name,
    async complete(request) {
      const data = await http.postJson(url, { headers, body: body(request, false), signal: request.signal });
      const blocks: any[] = Array.isArray(data?.content) ? data.content : [];
      const text = blocks
        .filter((b) => b?.type === 'text' && typeof b.text === 'string')
        .map((b) => b.text)
        .join('');
      const toolCalls: ModelToolCall[] = blocks
        .filter((b) => b?.type === 'tool_use')
        .map((b) => ({ id: String(b.id), name: String(b.name), arguments: JSON.stringify(b.input ?? {}) }));
      return {
        text,
        toolCalls,
        finishReason: finishReason(data?.stop_reason),
        usage: {
          inputTokens: Number(data?.usage?.input_tokens) || 0,
          outputTokens: Number(data?.usage?.output_tokens) || 0,
        },
        ...(typeof data?.model === 'string' && { model: data.model }),
      };
    },
    async *stream(request): AsyncGenerator<ModelStreamEvent> {
      const { response, release } = await http.post(url, {
        headers,
        body: body(request, true),
        signal: request.signal,
      });
      let text = '';
      const usage: ModelUsage = { inputTokens: 0, outputTokens: 0 };
      let finish: ModelFinishReason = 'other';
      let model: string | undefined;
      let stopped = false;
      const blocks = new Map<number, { type: string; id: string; name: string; json: string }>();
      const toolCalls: ModelToolCall[] = [];
      try {
        for await (const event of readEvents(response, request.signal, name)) {
          let data: any;
          try {
            data = JSON.parse(event.data);
          } catch {
            continue;
          }
          const type = event.event ?? data?.type;
          switch (type) {
            case 'message_start':
              if (typeof data.message?.model === 'string') model = data.message.model;
              usage.inputTokens = Number(data.message?.usage?.input_tokens) || 0;
              usage.outputTokens = Number(data.message?.usage?.output_tokens) || 0;
              break;
            case 'content_block_start': {
              const block = data.content_block ?? {};
              blocks.set(data.index, {
                type: String(block.type),
                id: String(block.id ?? ''),
                name: String(block.name ?? ''),
                json: '',
              });
              if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') {
                text += block.text;
                yield { type: 'text', delta: block.text };
              }
              break;
            }
            case 'content_block_delta': {
              const delta = data.delta ?? {};
              if (delta.type === 'text_delta' && typeof delta.text === 'string') {
                text += delta.text;
                yield { type: 'text', delta: delta.text };
              } else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
                const block = blocks.get(data.index);
                if (block) block.json += delta.partial_json;
              }
              break;
            }
            case 'content_block_stop': {
              const block = blocks.get(data.index);
              if (block?.type === 'tool_use') {
                const call = {
                  id: block.id,
                  name: block.name,
                  arguments: JSON.stringify(parseInput(block.json)),
                };
                toolCalls.push(call);
                yield { type: 'tool_call', call };
              }
              break;
            }
            case 'message_delta':
              if (data.delta?.stop_reason) finish = finishReason(data.delta.stop_reason);
              if (data.usage?.output_tokens !== undefined)
                usage.outputTokens = Number(data.usage.output_tokens) || 0;
              if (data.usage?.input_tokens !== undefined)
                usage.inputTokens = Number(data.usage.input_tokens) || usage.inputTokens;
              yield { type: 'usage', usage: { ...usage } };
              break;
            case 'message_stop':
              stopped = true;
              break;
            case 'error':
              throw http.streamError(data?.error?.type, String(data?.error?.message ?? 'stream error'));
            default:
              // ping and events added later are ignored
              break;
          }
          if (stopped) break;
        }
      } finally {
        release();
      }
      if (!stopped) throw new McpKitError('UPSTREAM_ERROR', `The ${name} stream ended before message_stop`);
      yield {
        type: 'done',
        response: { text, toolCalls, finishReason: finish, usage, ...(model !== undefined && { model }) },
      };
    },
  };
}
