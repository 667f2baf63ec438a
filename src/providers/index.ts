export { type AnthropicProviderOptions, createAnthropicProvider } from './anthropic.js';
export { type ProviderHttpOptions, type ProviderRetryOptions, retryAfterMs } from './http.js';
export {
  type CustomProviderOptions,
  createCustomProvider,
  createOpenAIProvider,
  type OpenAIProviderOptions,
} from './openai.js';
export type {
  ChatMessage,
  ModelFinishReason,
  ModelProvider,
  ModelRequest,
  ModelResponse,
  ModelStreamEvent,
  ModelTool,
  ModelToolCall,
  ModelUsage,
} from './types.js';
