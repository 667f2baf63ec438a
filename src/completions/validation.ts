/**
 * A completion request checked before its job starts: the model config, the step limit, the tools
 * offered, and the first messages (a system message, a rendered prompt, the conversation so far).
 * Each failure is an `INVALID_ARGUMENT` (or the policy's refusal) thrown before any model is asked.
 */
import type { Tool } from '@modelcontextprotocol/server';
import { McpKitError } from '../core/errors.js';
import { isHeaderText } from '../net/outbound.js';
import type { ChatMessage } from '../providers/types.js';
import type {
  CompletionHost,
  CompletionRequest,
  CompletionRunOptions,
  ModelConfig,
  ToolSelection,
} from './types.js';

/** The longest a run may be, in model turns, whatever the request asks. */
const MAX_STEPS = 100;

/**
 * Checks the model config a request resolved to. An inline `baseUrl` from REST (the server would
 * call that URL) is refused unless `allowInlineBaseUrl`.
 */
export function checkModelConfig(
  config: ModelConfig | undefined,
  request: CompletionRequest,
  run: { options: CompletionRunOptions; allowInlineBaseUrl: boolean },
): ModelConfig {
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
    run.options.origin === 'rest' &&
    request.integrationId === undefined &&
    request.model?.baseUrl !== undefined &&
    !run.allowInlineBaseUrl
  ) {
    throw new McpKitError(
      'FORBIDDEN',
      'An inline baseUrl is not allowed here (completions.allowInlineBaseUrl is off)',
    );
  }
  return config;
}

/** The request's step limit (or the manager's), checked. */
export function checkMaxSteps(requested: number | undefined, fallback: number): number {
  const maxSteps = requested ?? fallback;
  if (!(Number.isInteger(maxSteps) && maxSteps >= 1 && maxSteps <= MAX_STEPS))
    throw new McpKitError('INVALID_ARGUMENT', `maxSteps must be an integer from 1 to ${MAX_STEPS}`);
  return maxSteps;
}

/** The tools of `all` that `selection` names. */
export function selectTools(all: readonly Tool[], selection: ToolSelection | undefined): Tool[] {
  if (selection === undefined || selection === 'all') return [...all];
  if (selection === 'none') return [];
  if (Array.isArray(selection)) {
    const wanted = new Set(selection);
    return all.filter((t) => wanted.has(t.name));
  }
  if (typeof selection === 'function') return all.filter((t) => selection(t));
  throw new McpKitError('INVALID_ARGUMENT', "tools must be 'all', 'none' or an array of tool names");
}

function checkMessage(m: ChatMessage, i: number): void {
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
}

/**
 * The conversation the model first sees: the system message, then the prompt rendered for the caller
 * (if it may read it), then the request's messages. At least one must be the user's.
 */
export async function initialMessages(
  request: CompletionRequest,
  options: CompletionRunOptions,
  host: Pick<CompletionHost, 'prompts' | 'admitPrompt'>,
): Promise<ChatMessage[]> {
  const messages: ChatMessage[] = [];
  if (request.system !== undefined) {
    if (typeof request.system !== 'string')
      throw new McpKitError('INVALID_ARGUMENT', 'system must be a string');
    messages.push({ role: 'system', content: request.system });
  }
  if (request.prompt !== undefined) {
    if (!host.prompts) throw new McpKitError('INVALID_ARGUMENT', 'Prompts are not available');
    if (typeof request.prompt?.name !== 'string')
      throw new McpKitError('INVALID_ARGUMENT', 'prompt.name must be a string');
    // A prompt the caller could not read itself is not rendered for it either.
    const refused = options.caller && host.admitPrompt?.(request.prompt.name, options.caller, options);
    if (refused) throw new McpKitError(refused.code, refused.message);
    const rendered = await host.prompts.render(request.prompt.name, request.prompt.arguments ?? {}, {
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
      checkMessage(m, i);
      messages.push(m);
    });
  }
  if (!messages.some((m) => m.role === 'user'))
    throw new McpKitError('INVALID_ARGUMENT', 'Give messages (with a user message) or a prompt');
  return messages;
}
