/**
 * The one HTTP layer every built-in provider sends through: a per-provider concurrency cap and
 * request rate, p-retry on 408/409/429/5xx (and Anthropic's 529) honouring `retry-after-ms` and
 * `retry-after` up to a cap, never retrying other 4xx, and provider errors mapped to
 * {@link McpKitError} codes with a summary of the provider's answer: its JSON error message, redacted
 * and cut to 200 characters, or only the type and size of any other body. Never the body itself,
 * never the API key, never what a connection error said.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import pLimit, { type LimitFunction } from 'p-limit';
import pRetry, { AbortError } from 'p-retry';
import { isAbortError, McpKitError, type McpKitErrorCode } from '../core/errors.js';
import { redactText } from '../core/redaction.js';
import { connectionFailure, isHeaderText, summariseUpstreamError } from '../net/outbound.js';

/** Retry policy of a provider. */
export interface ProviderRetryOptions {
  /** Further attempts after the first. Default 3. */
  retries?: number;
  /** First backoff delay when the provider gives no `retry-after`. Default 500 ms. */
  minDelayMs?: number;
  /** Longest backoff delay, and the cap on a provider's `retry-after`. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Backoff factor. Default 2. */
  factor?: number;
}

/** Options every built-in provider takes. */
export interface ProviderHttpOptions {
  /** The `fetch` to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Retries of failed requests. */
  retry?: ProviderRetryOptions;
  /** Requests in flight at once (a stream holds its slot until it ends). Default 16. */
  concurrency?: number;
  /** At most `requests` request attempts per `intervalMs`. Default: unlimited. */
  rateLimit?: { requests: number; intervalMs: number };
  /** Timeout of one request attempt until its response headers arrive. Default 120 000 ms; `0` disables. */
  timeoutMs?: number;
  /** Headers added to every request. */
  headers?: Record<string, string>;
}

const RETRY_STATUS = new Set([408, 409, 429, 500, 502, 503, 504, 529]);

/** A failed HTTP attempt, kept until it is mapped. */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

function statusCode(status: number): McpKitErrorCode {
  switch (status) {
    case 400:
    case 422:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 408:
      return 'TIMEOUT';
    case 409:
      return 'CONFLICT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 429:
      return 'RATE_LIMITED';
    case 503:
    case 529:
      return 'UNAVAILABLE';
    default:
      return 'UPSTREAM_ERROR';
  }
}

/** Parses `retry-after-ms` (milliseconds) or `retry-after` (seconds or an HTTP date). */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Number(ms);
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A sliding-window limit on request attempts. */
class RateWindow {
  readonly #stamps: number[] = [];
  constructor(
    readonly requests: number,
    readonly intervalMs: number,
  ) {}
  async take(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const now = Date.now();
      while (this.#stamps.length > 0 && this.#stamps[0]! <= now - this.intervalMs) this.#stamps.shift();
      if (this.#stamps.length < this.requests) {
        this.#stamps.push(now);
        return;
      }
      await abortableDelay(this.#stamps[0]! + this.intervalMs - now, signal);
    }
  }
}

/** A cancelled-call error. */
export function cancelled(provider: string): McpKitError {
  return new McpKitError('CANCELLED', `The ${provider} request was cancelled`);
}

/** One POST to a model endpoint: extra headers, the body (JSON-encoded on the way), the caller's signal. */
export interface PostInit<TBody = unknown> {
  headers: Record<string, string>;
  body: TBody;
  signal: AbortSignal | undefined;
}

/** An HTTP client bound to one provider's limits and key. */
export class ProviderHttp {
  readonly #name: string;
  readonly #fetch: typeof fetch;
  readonly #retry: Required<ProviderRetryOptions>;
  readonly #limit: LimitFunction;
  readonly #rate: RateWindow | undefined;
  readonly #timeoutMs: number;
  readonly #secret: string | undefined;
  readonly #headers: Record<string, string>;

  constructor(name: string, options: ProviderHttpOptions, secret: string | undefined) {
    this.#name = name;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#retry = { retries: 3, minDelayMs: 500, maxDelayMs: 30_000, factor: 2, ...options.retry };
    if (!(Number.isInteger(this.#retry.retries) && this.#retry.retries >= 0))
      throw new TypeError('retry.retries must be a non-negative integer');
    const concurrency = options.concurrency ?? 16;
    if (!(Number.isInteger(concurrency) && concurrency >= 1))
      throw new TypeError('concurrency must be a positive integer');
    this.#limit = pLimit(concurrency);
    if (options.rateLimit) {
      const { requests, intervalMs } = options.rateLimit;
      if (!(Number.isInteger(requests) && requests >= 1 && intervalMs > 0))
        throw new TypeError('rateLimit must be { requests: positive integer, intervalMs: positive number }');
      this.#rate = new RateWindow(requests, intervalMs);
    }
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    // It travels in a header; a control character would make the request fail quoting the header.
    if (secret !== undefined && !isHeaderText(secret))
      throw new TypeError('apiKey must hold only printable Latin-1 characters');
    this.#secret = secret;
    this.#headers = options.headers ?? {};
  }

  /**
   * Maps a provider's error message to an {@link McpKitError}: redacted (the key first), without
   * control characters, at most 200 characters.
   */
  error(status: number, message: string): McpKitError {
    const code = statusCode(status);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
    const plain = message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
    const summary = redactText(plain, { secrets: [this.#secret], maxLength: 200 });
    return new McpKitError(code, `${this.#name} answered ${status}: ${summary}`, {
      details: { provider: this.#name, status },
    });
  }

  /** Maps a mid-stream error event (which has a type, not a status) to an error. */
  streamError(type: string | undefined, message: string): McpKitError {
    const status =
      type === 'overloaded_error'
        ? 529
        : type === 'rate_limit_error'
          ? 429
          : type === 'invalid_request_error'
            ? 400
            : type === 'authentication_error'
              ? 401
              : 500;
    return this.error(status, message);
  }

  /** Holds a concurrency slot until the returned release is called. */
  #acquire(): Promise<() => void> {
    return new Promise((resolveAcquire) => {
      void this.#limit(() => new Promise<void>((release) => resolveAcquire(release)));
    });
  }

  /**
   * POSTs `body` and reads the whole JSON answer, freeing the slot either way. A read broken by the
   * caller's abort is `CANCELLED`; an unparsable answer is `UPSTREAM_ERROR`.
   */
  async postJson(url: string, init: PostInit): Promise<any> {
    const { signal } = init;
    const { response, release } = await this.post(url, init);
    try {
      return parseJson(await response.text(), this.#name);
    } catch (error) {
      if (signal?.aborted) throw cancelled(this.#name);
      throw error;
    } finally {
      release();
    }
  }

  /**
   * POSTs `body` as JSON to `url` with retries; resolves with an OK response and a `release` that
   * frees the concurrency slot (call it once the body has been read).
   */
  async post(
    url: string,
    { headers, body, signal }: PostInit,
  ): Promise<{ response: Response; release: () => void }> {
    const release = await this.#acquire();
    try {
      if (signal?.aborted) throw cancelled(this.#name);
      const text = JSON.stringify(body);
      const { minDelayMs, maxDelayMs, factor, retries } = this.#retry;
      const response = await pRetry(
        async () => {
          await this.#rate?.take(signal);
          return this.#attempt(url, { headers: { ...this.#headers, ...headers }, body: text, signal });
        },
        {
          retries,
          minTimeout: 0,
          maxTimeout: 0,
          signal,
          shouldRetry: ({ error }) => !(signal?.aborted ?? false) && isRetryable(error),
          onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
            if (retriesLeft <= 0 || signal?.aborted || !isRetryable(error)) return;
            const backoff = Math.min(maxDelayMs, minDelayMs * factor ** (attemptNumber - 1));
            const hinted = error instanceof HttpFailure ? error.retryAfterMs : undefined;
            const wait =
              hinted !== undefined ? Math.min(hinted, maxDelayMs) : backoff * (0.5 + Math.random() * 0.5);
            await abortableDelay(wait, signal);
          },
        },
      );
      return { response, release };
    } catch (error) {
      release();
      throw this.#map(error, signal);
    }
  }

  async #attempt(url: string, { headers, body, signal }: PostInit<string>): Promise<Response> {
    const timeout = this.#timeoutMs > 0 ? AbortSignal.timeout(this.#timeoutMs) : undefined;
    const combined = signal && timeout ? AbortSignal.any([signal, timeout]) : (signal ?? timeout);
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        ...(combined && { signal: combined }),
      });
    } catch (error) {
      if (signal?.aborted) throw new AbortError(cancelled(this.#name));
      // Refused by the outbound policy: final, not a connection failure.
      if (error instanceof McpKitError) throw new AbortError(error);
      if (timeout?.aborted) throw new HttpFailure(408, `no response within ${this.#timeoutMs} ms`, undefined);
      // A connection failure, said in words of our own (its message may quote a header): worth another attempt.
      throw new HttpFailure(503, connectionFailure(error), undefined);
    }
    if (response.ok) return response;
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => {});
      throw new AbortError(
        new McpKitError(
          'UPSTREAM_ERROR',
          `${this.#name} answered ${response.status}: model requests do not follow redirects`,
          {
            details: { provider: this.#name, status: response.status },
          },
        ),
      );
    }
    const text = await readAtMost(response, 64 * 1024);
    const summary = summariseUpstreamError(text, response.headers.get('content-type'), [this.#secret]);
    const failure = new HttpFailure(response.status, summary, retryAfterMs(response.headers));
    if (!RETRY_STATUS.has(response.status)) throw new AbortError(failure);
    throw failure;
  }

  #map(error: unknown, signal: AbortSignal | undefined): McpKitError {
    const inner = error instanceof AbortError ? error.originalError : error;
    if (inner instanceof McpKitError) return inner;
    if (signal?.aborted || isAbortError(inner)) return cancelled(this.#name);
    if (inner instanceof HttpFailure) return this.error(inner.status, inner.message);
    return new McpKitError('UPSTREAM_ERROR', `${this.#name} request failed`, { cause: inner });
  }
}

/** Up to `limit` bytes of a body, as text; the rest is not read. */
async function readAtMost(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // a body that breaks off is summarised by what arrived
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(size, limit));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

function isRetryable(error: unknown): boolean {
  return error instanceof HttpFailure && RETRY_STATUS.has(error.status);
}

/**
 * Reads a `text/event-stream` body as parsed events. Throws `CANCELLED` when `signal` aborts, even if
 * the stream then ends quietly.
 */
export async function* readEvents(
  response: Response,
  signal: AbortSignal | undefined,
  provider: string,
): AsyncGenerator<EventSourceMessage> {
  const body = response.body;
  if (!body) return;
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => queue.push(event) });
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) throw cancelled(provider);
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal?.aborted) throw cancelled(provider);
        throw new McpKitError('UPSTREAM_ERROR', `The ${provider} stream failed`, { cause: error });
      }
      if (chunk.done) break;
      parser.feed(chunk.value);
      while (queue.length > 0) yield queue.shift()!;
    }
    if (signal?.aborted) throw cancelled(provider);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // A no-op once the stream has ended; otherwise it closes the connection.
    await reader.cancel().catch(() => {});
  }
}

/** Parses JSON, or throws an `UPSTREAM_ERROR` naming the provider. */
export function parseJson(text: string, provider: string): any {
  try {
    return JSON.parse(text);
  } catch {
    throw new McpKitError('UPSTREAM_ERROR', `${provider} sent invalid JSON`);
  }
}
