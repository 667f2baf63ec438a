/**
 * The provider each run's model config names: a registered one, or a built-in client (OpenAI,
 * Anthropic, OpenAI-compatible) made once per provider, URL and key, whose every request goes
 * through the outbound policy.
 */
import { McpKitError } from '../core/errors.js';
import { MODEL_PROVIDER_HOSTS, OutboundPolicy } from '../net/outbound.js';
import { createAnthropicProvider } from '../providers/anthropic.js';
import type { ProviderHttpOptions } from '../providers/http.js';
import { createCustomProvider, createOpenAIProvider } from '../providers/openai.js';
import type { ModelProvider } from '../providers/types.js';
import type { ModelConfig } from './types.js';

/** Built-in clients kept at most (the oldest made is dropped first). */
const MAX_BUILT_IN = 256;

/** Where {@link ModelProviders} finds its providers. */
export interface ModelProvidersOptions {
  /** Providers by name, beside (or replacing) the built-in ones. */
  registered?: Record<string, ModelProvider> | undefined;
  /** HTTP options of the built-in providers (fetch, retry, limits). */
  http?: ProviderHttpOptions | undefined;
  /** The outbound policy, asked for on the first built-in provider. Default: one that allows only the providers' APIs. */
  outbound?: (() => OutboundPolicy | undefined) | undefined;
}

/** The providers of one manager. */
export class ModelProviders {
  readonly #registered: Record<string, ModelProvider>;
  readonly #builtIn = new Map<string, ModelProvider>();
  readonly #options: ModelProvidersOptions;
  #outbound: OutboundPolicy | undefined;

  constructor(options: ModelProvidersOptions) {
    this.#registered = { ...options.registered };
    this.#options = options;
  }

  /** The provider of `config`. Throws `NOT_FOUND` for an unknown name. */
  of(config: ModelConfig): ModelProvider {
    const registered = this.#registered[config.provider];
    if (registered) return registered;
    const key = JSON.stringify([config.provider, config.baseUrl ?? '', config.apiKey ?? '']);
    let provider = this.#builtIn.get(key);
    if (provider) return provider;
    provider = this.#create(config);
    if (this.#builtIn.size >= MAX_BUILT_IN) this.#builtIn.delete(this.#builtIn.keys().next().value!);
    this.#builtIn.set(key, provider);
    return provider;
  }

  #create(config: ModelConfig): ModelProvider {
    const http = this.#options.http ?? {};
    this.#outbound ??= this.#options.outbound?.() ?? new OutboundPolicy();
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
        return createOpenAIProvider(common);
      case 'anthropic':
        return createAnthropicProvider(common);
      case 'custom':
        if (config.baseUrl === undefined)
          throw new McpKitError('INVALID_ARGUMENT', 'A custom provider needs model.baseUrl');
        return createCustomProvider({ ...common, baseUrl: config.baseUrl });
      default:
        throw new McpKitError('NOT_FOUND', `No model provider named ${config.provider}`);
    }
  }
}
