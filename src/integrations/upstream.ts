/**
 * One upstream MCP server, held connected: an SDK client over a transport the integration opens,
 * reconnected with backoff (p-retry) whenever the connection fails or closes, its lists fetched
 * under bounds and fetched again when it announces a change. Forwarded requests carry the caller's
 * signal; a request to an upstream that is not ready fails at once with a retryable `UNAVAILABLE`.
 *
 * The SDK client, `@modelcontextprotocol/client`, is an optional peer dependency loaded on the
 * first upstream: a server without upstreams never loads it.
 *
 * Size: about 780 lines: one connection's whole lifecycle (connect, bounded lists, refresh,
 * forwarding, errors), kept in one file so its states read in one place.
 */
import type {
  CallToolResult,
  Client,
  GetPromptResult,
  LoggingLevel,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplateType as ResourceTemplate,
  Tool,
} from '@modelcontextprotocol/client';
import type { StandardSchemaV1, Transport } from '@modelcontextprotocol/server';
import pRetry from 'p-retry';
import { McpKitError, quote } from '../core/errors.js';
import { maskSecrets, redactText, redactValue } from '../core/redaction.js';
import type { CancelSignal } from '../execution/signal.js';
import type { Logger } from '../types.js';
import { DirectCalls } from './upstreamCalls.js';
import { isPlainResult } from './upstreamMessages.js';
import type { UpstreamLimits, UpstreamState, UpstreamStatus } from './upstreamTypes.js';

type ClientModule = typeof import('@modelcontextprotocol/client');
const CLIENT_PACKAGE = '@modelcontextprotocol/client';
let clientModule: Promise<ClientModule> | undefined;

/** The SDK client module, imported once; a clear error when it is not installed. */
export function loadClientModule(): Promise<ClientModule> {
  clientModule ??= import('@modelcontextprotocol/client').catch((error: unknown) => {
    clientModule = undefined;
    throw new McpKitError(
      'UNAVAILABLE',
      `Upstream MCP servers need the SDK client, "${CLIENT_PACKAGE}" (an optional peer dependency of mcpkit): npm install ${CLIENT_PACKAGE}`,
      { cause: error },
    );
  });
  return clientModule;
}

/** The limits with their defaults filled in. */
export type ResolvedLimits = Required<Omit<UpstreamLimits, 'backoff'>> & {
  backoff: { minMs: number; maxMs: number };
};

/** Fills in the defaults of {@link UpstreamLimits}; a bad value is a `TypeError` naming it. */
export function resolveLimits(limits: UpstreamLimits = {}): ResolvedLimits {
  const pick = (name: keyof Omit<UpstreamLimits, 'backoff'>, fallback: number): number => {
    const value = limits[name];
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value <= 0)
      throw new TypeError(`integrations.upstreamLimits.${name} must be a positive integer`);
    return value;
  };
  const minMs = limits.backoff?.minMs ?? 500;
  const maxMs = limits.backoff?.maxMs ?? 30_000;
  if (!(minMs > 0 && maxMs >= minMs))
    throw new TypeError('integrations.upstreamLimits.backoff needs 0 < minMs <= maxMs');
  return {
    maxEntries: pick('maxEntries', 500),
    maxEntryBytes: pick('maxEntryBytes', 64 * 1024),
    maxDepth: pick('maxDepth', 32),
    maxResponseBytes: pick('maxResponseBytes', 8 * 1024 * 1024),
    connectTimeoutMs: pick('connectTimeoutMs', 10_000),
    backoff: { minMs, maxMs },
  };
}

/** What an upstream offers, after the limits. */
export interface UpstreamOffer {
  tools: Tool[];
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
}

/** What a {@link UpstreamLink} needs. */
export interface UpstreamLinkOptions {
  /** The integration id (for logs and errors). */
  id: string;
  transport: 'http' | 'code';
  target: string;
  open(): Transport | Promise<Transport>;
  limits: ResolvedLimits;
  logger: Logger;
  /** The offer changed: a new one, or `undefined` while the upstream is unavailable. */
  onOffer(offer: UpstreamOffer | undefined): void;
  /** The upstream says a subscribed resource (its own URI) changed. */
  onResourceUpdated(uri: string): void;
  /** A forwarded request ended. */
  onRequest?(request: { method: string; outcome: 'ok' | 'error' | 'cancelled' }): void;
  /**
   * A log message from the upstream that belongs to no one call (sent outside calls, or while
   * several calls were in flight, when it cannot be told whose it is); already bounded and redacted.
   */
  onLog?(message: UpstreamLogMessage): void;
  /** The integration's secrets in clear, kept out of every text from the upstream (it may echo them). */
  secrets?: readonly string[];
}

/** Per-request options of a forwarded request. */
export interface ForwardOptions {
  /** The caller's cancellation: an `AbortSignal`, or the executor's lighter `CancelSignal`. */
  signal: CancelSignal;
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
  meta?: Record<string, unknown>;
  /**
   * Where the upstream's log messages during this call go (a forwarded `tools/call` only). A sink
   * that answers `false` did not take the message, which then goes where a message outside calls
   * goes (`UpstreamLinkOptions.onLog`).
   */
  onlog?: (message: UpstreamLogMessage) => boolean | undefined;
}

/** A log message an upstream sent (`notifications/message`), made safe to pass on. */
export interface UpstreamLogMessage {
  level: LoggingLevel;
  /** The upstream's logger name, cleaned; absent when it gave none. */
  logger?: string;
  /** Its data, redacted and bounded to about {@link LOG_BYTES} bytes of JSON. */
  data: unknown;
}

const LOG_LEVELS: ReadonlySet<string> = new Set([
  'debug',
  'info',
  'notice',
  'warning',
  'error',
  'critical',
  'alert',
  'emergency',
]);
/** Bytes of JSON one passed-on log message's data may take. */
export const LOG_BYTES = 8 * 1024;
/**
 * What one upstream may log through mcpkit, as token buckets: `burst` messages (or bytes) at once,
 * refilled at `perSecond`. Past either, messages are dropped (and the drops counted in mcpkit's log).
 */
export const LOG_RATE = {
  messages: { burst: 50, perSecond: 20 },
  bytes: { burst: 256 * 1024, perSecond: 64 * 1024 },
} as const;

/** A token bucket. */
class Bucket {
  #tokens: number;
  #at: number;
  constructor(
    readonly burst: number,
    readonly perSecond: number,
  ) {
    this.#tokens = burst;
    this.#at = Date.now();
  }
  /** Whether `cost` tokens are there now (taking them if so). */
  take(cost: number, now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }
}

/** Every string in an already bounded value with `secrets` masked. */
function maskDeep(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return maskSecrets(value, secrets);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, secrets));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v, secrets);
    return out;
  }
  return value;
}

/**
 * The shape of a `tools/call` answer, checked without a schema library: an object whose `content`
 * (`[]` when missing) is an array of objects with a string `type`, and whose `isError`, when
 * present, is a boolean. The blocks themselves, and `structuredContent` against the tool's output
 * schema, are checked by the executor (`toCallToolResult`, `checkOutput`) on the way out; the answer's
 * size is bounded by the transport and its depth by {@link UpstreamLink}.
 */
export const CALL_RESULT: StandardSchemaV1<unknown, CallToolResult> = {
  '~standard': {
    version: 1,
    vendor: 'mcpkit',
    validate(value) {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return { issues: [{ message: 'the result is not an object' }] };
      const result = value as Record<string, unknown>;
      const content = result.content ?? [];
      if (!Array.isArray(content) || !content.every(isBlock))
        return { issues: [{ message: 'content is not an array of content blocks' }] };
      if (result.isError !== undefined && typeof result.isError !== 'boolean')
        return { issues: [{ message: 'isError is not a boolean' }] };
      return { value: (result.content === undefined ? { ...result, content } : result) as CallToolResult };
    },
  },
};

function isBlock(block: unknown): boolean {
  return (
    typeof block === 'object' && block !== null && typeof (block as { type?: unknown }).type === 'string'
  );
}

/** A forwarded request never outlives the caller's signal; the SDK's own timeout is set out of the way. */
const NO_SDK_TIMEOUT = 2_147_483_647;

/**
 * Text from an upstream, safe to show: control characters out, credential-shaped strings and the
 * given `secrets` (an upstream may echo the credential it was sent) redacted, at most 300 characters.
 */
export function upstreamText(value: unknown, secrets: readonly string[] = []): string {
  const text = typeof value === 'string' ? value : 'no message';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  const safe = redactText(clean, { secrets, maxLength: 1200 });
  return safe.length > 300 ? `${safe.slice(0, 300)}…` : safe;
}

/** Depth of a JSON value, stopping once past `max` (walked without copying its values out). */
function depthOf(value: unknown, max: number, depth = 0): number {
  if (depth > max || typeof value !== 'object' || value === null) return depth;
  let deepest = depth + 1;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && deepest <= max; i++)
      deepest = Math.max(deepest, depthOf(value[i], max, depth + 1));
    return deepest;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    deepest = Math.max(deepest, depthOf(record[key], max, depth + 1));
    if (deepest > max) break;
  }
  return deepest;
}

/**
 * Hands the client's result responses straight to its response dispatch (`_onresponse`, which the
 * SDK documents for subclasses), past the classification its `connect` puts on the transport: that
 * runs a zod parse of the message (`isJSONRPCResultResponse`) before `_onresponse` runs it again.
 * Only a result the parse would accept beyond doubt ({@link isPlainResult}) goes around it, and
 * only on a transport that had no `onmessage` of its own before `connect` (which the
 * classification would have called first); everything else, and any SDK without `_onresponse`,
 * keeps the SDK's path. Given `calls`, the responses to its calls in flight go to it first (see
 * `upstreamCalls.ts`). Returns whether the shortcut is in place.
 */
export function answerDirectly(client: Client, transport: Transport, calls?: DirectCalls): boolean {
  const classify = transport.onmessage;
  const dispatch = (client as unknown as { _onresponse?: unknown })._onresponse;
  if (typeof classify !== 'function' || typeof dispatch !== 'function') return false;
  transport.onmessage = (message, extra) => {
    if (calls?.take(message)) return;
    if (isPlainResult(message)) dispatch.call(client, message);
    else classify.call(transport, message, extra);
  };
  return true;
}

/** A connection that ends sooner than this after it opened counts as dropped at once. */
const QUICK_CLOSE_MS = 5_000;

/** Waits `ms` unless `signal` aborts first; resolves whether the wait ran its course. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = (ran: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(ran);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** One upstream connection and its lifecycle. */
export class UpstreamLink {
  readonly #options: UpstreamLinkOptions;
  readonly #stop = new AbortController();
  #client: Client | undefined;
  /** The direct `tools/call` path of {@link #client}'s connection, where it is taken. */
  #calls: DirectCalls | undefined;
  #state: UpstreamState;
  #refreshing: Promise<void> | undefined;
  #refreshAgain = false;
  readonly #subscribed = new Set<string>();
  /** Where the log messages of each forwarded `tools/call` in flight go. */
  readonly #logSinks = new Set<(message: UpstreamLogMessage) => boolean | undefined>();
  readonly #logMessages = new Bucket(LOG_RATE.messages.burst, LOG_RATE.messages.perSecond);
  readonly #logBytes = new Bucket(LOG_RATE.bytes.burst, LOG_RATE.bytes.perSecond);
  #logsDropped = 0;
  /** The key under which a 2026-07-28 request asks for log messages, when the era has one. */
  #logLevelKey: string | undefined;

  constructor(options: UpstreamLinkOptions) {
    this.#options = options;
    this.#state = {
      status: 'connecting',
      transport: options.transport,
      target: options.target,
      since: new Date().toISOString(),
      failures: 0,
      offers: { tools: 0, resources: 0, resourceTemplates: 0, prompts: 0 },
    };
  }

  /** A copy of the current state. */
  get state(): UpstreamState {
    return structuredClone(this.#state);
  }

  /** Starts connecting (and reconnecting, until {@link stop}). */
  start(): void {
    void this.#run();
  }

  /** Stops for good: no more reconnects; the connection is closed. */
  async stop(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    this.#setStatus('stopped');
    const client = this.#client;
    this.#client = undefined;
    this.#calls = undefined;
    await client?.close().catch(() => {});
  }

  /**
   * Calls an upstream tool by its own name. The request goes out through the client's lower-level
   * `request` with {@link CALL_RESULT}, a shape check, rather than `callTool`, which parses every
   * result against the whole `CallToolResult` schema and checks `structuredContent` against the
   * tool's output schema: mcpkit's executor does both already, once, on the result this returns.
   * On a 2025-era connection it goes past `request` too, straight onto the transport
   * ({@link DirectCalls}, `upstreamCalls.ts`), with the same message, result and errors.
   */
  callTool(name: string, args: Record<string, unknown>, options: ForwardOptions): Promise<CallToolResult> {
    const client = this.#ready();
    const sink = options.onlog;
    if (!sink) return this.#sendCall(client, { name, arguments: args }, options);
    this.#logSinks.add(sink);
    const call = this.#sendCall(client, { name, arguments: args }, options);
    const done = () => this.#logSinks.delete(sink);
    call.then(done, done);
    return call;
  }

  #sendCall(
    client: Client,
    tool: { name: string; arguments: Record<string, unknown> },
    options: ForwardOptions,
  ): Promise<CallToolResult> {
    // A 2026-07-28 upstream logs during a request only when the request asks (its `_meta` envelope);
    // what each client then sees is filtered by that client's own level, on mcpkit's side.
    const logKey = options.onlog ? this.#logLevelKey : undefined;
    const meta = logKey ? { ...options.meta, [logKey]: 'debug' } : options.meta;
    const calls = this.#calls;
    if (calls && this.#client === client) {
      const params = meta ? { ...tool, _meta: meta } : tool;
      return this.#forward(
        'tools/call',
        () => calls.call(params, CALL_RESULT, options) as Promise<CallToolResult>,
      );
    }
    return this.#forward('tools/call', () =>
      client.request(
        {
          method: 'tools/call',
          params: { ...tool, ...(meta && { _meta: meta }) },
        },
        CALL_RESULT,
        {
          // The SDK reads `aborted`, `reason` and the `abort` listeners of it: a CancelSignal's all.
          signal: options.signal as AbortSignal,
          timeout: NO_SDK_TIMEOUT,
          ...(options.onprogress && { onprogress: options.onprogress, resetTimeoutOnProgress: true }),
        },
      ),
    );
  }

  /** Reads an upstream resource by its own URI. */
  readResource(uri: string, options: ForwardOptions): Promise<ReadResourceResult> {
    const client = this.#ready();
    return this.#forward('resources/read', () =>
      client.readResource(
        { uri, ...(options.meta && { _meta: options.meta }) },
        { signal: options.signal as AbortSignal, timeout: NO_SDK_TIMEOUT },
      ),
    );
  }

  /** Gets an upstream prompt by its own name. */
  getPrompt(name: string, args: Record<string, string>, options: ForwardOptions): Promise<GetPromptResult> {
    const client = this.#ready();
    return this.#forward('prompts/get', () =>
      client.getPrompt(
        { name, arguments: args, ...(options.meta && { _meta: options.meta }) },
        { signal: options.signal as AbortSignal, timeout: NO_SDK_TIMEOUT },
      ),
    );
  }

  /**
   * Subscribes to updates of an upstream resource (its own URI); kept across reconnects until
   * {@link unsubscribe}. Upstreams that do not offer subscriptions are skipped quietly.
   */
  async subscribe(uri: string): Promise<void> {
    this.#subscribed.add(uri);
    const client = this.#client;
    if (client && this.#state.status === 'ready') await this.#subscribeOn(client, uri);
  }

  /** Stops forwarding updates of `uri`. */
  async unsubscribe(uri: string): Promise<void> {
    if (!this.#subscribed.delete(uri)) return;
    const client = this.#client;
    if (!client || this.#state.status !== 'ready' || !client.getServerCapabilities()?.resources?.subscribe)
      return;
    await client
      .unsubscribeResource({ uri }, { timeout: this.#options.limits.connectTimeoutMs })
      .catch(() => {});
  }

  // ---- internals ---------------------------------------------------------------------------

  #ready(): Client {
    const client = this.#client;
    if (!client || this.#state.status !== 'ready') {
      throw new McpKitError(
        'UNAVAILABLE',
        `Upstream of integration ${quote(this.#options.id)} is ${this.#state.status === 'stopped' ? 'stopped' : 'unavailable'}; try again later`,
        { details: { integration: this.#options.id, retryable: true } },
      );
    }
    return client;
  }

  /** Runs a forwarded request; its failure becomes an error a caller may see. */
  async #forward<T>(method: string, request: () => Promise<T>): Promise<T> {
    const client = this.#client;
    try {
      const result = await request();
      // An answer is bounded in bytes by the transport; its nesting is bounded here, before anything
      // (validation, our own serialiser) walks it recursively.
      const maxDepth = this.#options.limits.maxDepth * 2;
      if (depthOf(result, maxDepth) > maxDepth) {
        throw new McpKitError(
          'UPSTREAM_ERROR',
          `Upstream of ${quote(this.#options.id)} answered with JSON nested deeper than ${maxDepth} levels`,
          {
            details: { integration: this.#options.id },
          },
        );
      }
      this.#options.onRequest?.({ method, outcome: 'ok' });
      return result;
    } catch (error) {
      const e = (error ?? {}) as { name?: unknown; code?: unknown };
      this.#options.onRequest?.({ method, outcome: e.name === 'AbortError' ? 'cancelled' : 'error' });
      // Not an answer and not the caller's cancellation: the connection itself may be gone (an HTTP
      // upstream that restarted forgets its sessions). Check it, and start over if it is.
      if (client && typeof e.code !== 'number' && e.name !== 'AbortError') this.#suspect(client);
      throw this.#callerError(error);
    }
  }

  /** Pings a connection a request failed on; closing it (and so reconnecting) if it does not answer. */
  #suspect(client: Client): void {
    client.ping({ timeout: this.#options.limits.connectTimeoutMs }).catch(() => {
      if (this.#client !== client) return;
      this.#options.logger.warn(
        { integration: this.#options.id },
        'upstream stopped answering; reconnecting',
      );
      this.#client = undefined;
      this.#setStatus('unavailable', 'the upstream stopped answering');
      void client.close().catch(() => {});
    });
  }

  #callerError(error: unknown): unknown {
    if (error instanceof McpKitError) return error;
    const e = (error ?? {}) as { name?: unknown; code?: unknown; message?: unknown };
    if (e.name === 'AbortError') return error; // the caller's own cancellation or timeout
    const id = this.#options.id;
    if (typeof e.code === 'number') {
      // A JSON-RPC error the upstream answered with.
      const code =
        e.code === -32602
          ? 'INVALID_ARGUMENT'
          : e.code === -32601 || e.code === -32002
            ? 'NOT_FOUND'
            : 'UPSTREAM_ERROR';
      return new McpKitError(
        code,
        `Upstream of ${quote(id)}: ${upstreamText(e.message, this.#options.secrets)}`,
        {
          details: { integration: id },
        },
      );
    }
    if (e.code === 'CONNECTION_CLOSED' || this.#state.status !== 'ready') {
      return new McpKitError(
        'UNAVAILABLE',
        `Upstream of integration ${quote(id)} closed the connection; try again later`,
        { details: { integration: id, retryable: true } },
      );
    }
    return new McpKitError(
      'UPSTREAM_ERROR',
      `Upstream of ${quote(id)} failed: ${upstreamText(e.message, this.#options.secrets)}`,
      {
        details: { integration: id },
      },
    );
  }

  #setStatus(status: UpstreamStatus, lastError?: string): void {
    if (this.#state.status === 'stopped') return;
    if (this.#state.status !== status) this.#state.since = new Date().toISOString();
    this.#state.status = status;
    if (lastError !== undefined) this.#state.lastError = lastError;
  }

  /** Connects, serves until the connection ends, and starts again with backoff, until stopped. */
  async #run(): Promise<void> {
    const { limits, logger, id } = this.#options;
    const signal = this.#stop.signal;
    let quickCloses = 0;
    while (!signal.aborted) {
      let closed: Promise<void>;
      try {
        ({ closed } = await pRetry(() => this.#connectOnce(), {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: limits.backoff.minMs,
          maxTimeout: limits.backoff.maxMs,
          factor: 2,
          randomize: true,
          signal,
          shouldRetry: () => !signal.aborted,
          onFailedAttempt: ({ error }) => {
            this.#state.failures += 1;
            const reason = upstreamText((error as Error).message, this.#options.secrets);
            this.#setStatus('unavailable', reason);
            if (this.#state.failures === 1) this.#options.onOffer(undefined);
            logger.warn({ integration: id, failures: this.#state.failures, reason }, 'upstream unavailable');
          },
        }));
      } catch {
        return; // stopped
      }
      const openedAt = Date.now();
      await closed;
      if (signal.aborted) return;
      this.#state.failures = 0;
      this.#setStatus('unavailable', 'the connection closed');
      logger.warn({ integration: id }, 'upstream connection closed; reconnecting');
      this.#options.onOffer(undefined);
      // An upstream that accepts and then drops every connection must not be reconnected in a loop.
      quickCloses = Date.now() - openedAt < QUICK_CLOSE_MS ? quickCloses + 1 : 0;
      if (quickCloses > 0) {
        const wait = Math.min(limits.backoff.maxMs, limits.backoff.minMs * 2 ** (quickCloses - 1));
        if (!(await pause(wait, signal))) return;
      }
    }
  }

  /** One attempt: connect and list. Resolves with a promise of the connection's end. */
  async #connectOnce(): Promise<{ closed: Promise<void> }> {
    const { Client } = await loadClientModule();
    const { limits } = this.#options;
    this.#setStatus('connecting');
    const changed = { autoRefresh: false, debounceMs: 50, onChanged: () => this.#refresh() };
    const client = new Client(
      { name: 'mcpkit-gateway', version: '1.0.0' },
      {
        listChanged: { tools: changed, resources: changed, prompts: changed },
        listMaxPages: 16,
        // The 2026-07-28 era where the upstream offers it, the 2025 handshake where it does not.
        versionNegotiation: { mode: 'auto' },
      },
    );
    let ended: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      ended = resolve;
    });
    let calls: DirectCalls | undefined;
    client.onclose = () => {
      if (this.#client === client) {
        this.#client = undefined;
        this.#calls = undefined;
      }
      calls?.closed();
      ended();
    };
    client.onerror = () => {}; // failures surface as the close, or as the request's error
    client.setNotificationHandler('notifications/message', (n) => this.#onLog(n.params));
    client.setNotificationHandler('notifications/resources/updated', (n) => {
      const uri = n.params?.uri;
      if (typeof uri === 'string' && this.#subscribed.has(uri)) this.#options.onResourceUpdated(uri);
    });
    let transport: Transport;
    try {
      transport = await this.#options.open();
      const unclaimed = transport.onmessage === undefined;
      await client.connect(transport as never, { timeout: limits.connectTimeoutMs });
      if (unclaimed) {
        // Forwarded calls go past the client's request funnel where the connection allows it.
        const direct = DirectCalls.open(client, transport as never, await loadClientModule());
        if (answerDirectly(client, transport, direct)) calls = direct;
      }
      const offer = await this.#list(client);
      if (this.#stop.signal.aborted) {
        await client.close().catch(() => {});
        return { closed };
      }
      this.#client = client;
      this.#calls = calls;
      this.#state.failures = 0;
      delete this.#state.lastError;
      const server = client.getServerVersion();
      if (server)
        this.#state.server = { name: upstreamText(server.name), version: upstreamText(server.version) };
      const version = client.getNegotiatedProtocolVersion();
      if (version) this.#state.protocolVersion = upstreamText(version);
      const { LOG_LEVEL_META_KEY } = await loadClientModule();
      this.#logLevelKey = client.getProtocolEra() === 'modern' ? LOG_LEVEL_META_KEY : undefined;
      this.#publish(offer);
      this.#setStatus('ready');
      this.#options.logger.info({ integration: this.#options.id }, 'upstream connected');
      for (const uri of this.#subscribed) void this.#subscribeOn(client, uri);
    } catch (error) {
      await client.close().catch(() => {});
      throw new Error(this.#reason(error));
    }
    return { closed };
  }

  /**
   * A log message from the upstream: checked, bounded, redacted, rate limited, then handed to the
   * one call in flight, or to `onLog` when there is none, or several (whose it is cannot be told).
   */
  #onLog(params: unknown): void {
    const p = (params ?? {}) as { level?: unknown; logger?: unknown; data?: unknown };
    if (typeof p.level !== 'string' || !LOG_LEVELS.has(p.level)) return;
    const now = Date.now();
    if (!this.#logMessages.take(1, now)) {
      this.#logsDropped += 1;
      return;
    }
    const secrets = this.#options.secrets ?? [];
    let data = redactValue(p.data, { budget: LOG_BYTES, maxDepth: 8, scrubPaths: true });
    if (secrets.length > 0) data = maskDeep(data, secrets);
    const bytes = JSON.stringify(data ?? null).length;
    if (!this.#logBytes.take(bytes, now)) {
      this.#logsDropped += 1;
      return;
    }
    const message: UpstreamLogMessage = {
      level: p.level as LoggingLevel,
      ...(typeof p.logger === 'string' && { logger: upstreamText(p.logger, secrets).slice(0, 100) }),
      data,
    };
    if (this.#logsDropped > 0) {
      this.#options.logger.warn(
        { integration: this.#options.id, dropped: this.#logsDropped },
        'upstream log messages dropped: over the rate limit',
      );
      this.#logsDropped = 0;
    }
    if (this.#logSinks.size === 1) {
      for (const sink of this.#logSinks) if (sink(message) === false) this.#options.onLog?.(message);
    } else this.#options.onLog?.(message);
  }

  #reason(error: unknown): string {
    return upstreamText((error as { message?: unknown } | undefined)?.message);
  }

  async #subscribeOn(client: Client, uri: string): Promise<void> {
    if (!client.getServerCapabilities()?.resources?.subscribe) return;
    await client
      .subscribeResource({ uri }, { timeout: this.#options.limits.connectTimeoutMs })
      .catch((error: unknown) => {
        this.#options.logger.warn(
          { integration: this.#options.id, reason: upstreamText((error as Error)?.message) },
          'upstream subscription failed',
        );
      });
  }

  /** Fetches the lists again after the upstream announced a change; one refresh at a time. */
  #refresh(): void {
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return;
    }
    const client = this.#client;
    if (!client) return;
    this.#refreshing = this.#list(client)
      .then((offer) => {
        if (this.#client === client) this.#publish(offer);
      })
      .catch((error: unknown) => {
        this.#options.logger.warn(
          { integration: this.#options.id, reason: upstreamText((error as Error)?.message) },
          'upstream lists could not be refreshed',
        );
      })
      .finally(() => {
        this.#refreshing = undefined;
        if (this.#refreshAgain) {
          this.#refreshAgain = false;
          this.#refresh();
        }
      });
  }

  #publish(offer: UpstreamOffer): void {
    this.#state.offers = {
      tools: offer.tools.length,
      resources: offer.resources.length,
      resourceTemplates: offer.resourceTemplates.length,
      prompts: offer.prompts.length,
    };
    this.#options.onOffer(offer);
  }

  /** Every list the upstream offers, each bounded in entries, bytes and depth. */
  async #list(client: Client): Promise<UpstreamOffer> {
    const caps = client.getServerCapabilities() ?? {};
    const options = { timeout: this.#options.limits.connectTimeoutMs };
    const [tools, resources, resourceTemplates, prompts] = await Promise.all([
      caps.tools ? client.listTools(undefined, options).then((r) => r.tools) : [],
      caps.resources ? client.listResources(undefined, options).then((r) => r.resources) : [],
      caps.resources ? client.listResourceTemplates(undefined, options).then((r) => r.resourceTemplates) : [],
      caps.prompts ? client.listPrompts(undefined, options).then((r) => r.prompts) : [],
    ]);
    return {
      tools: this.#bounded('tools', tools),
      resources: this.#bounded('resources', resources),
      resourceTemplates: this.#bounded('resource templates', resourceTemplates),
      prompts: this.#bounded('prompts', prompts),
    };
  }

  #bounded<T>(kind: string, items: readonly T[]): T[] {
    const { maxEntries, maxEntryBytes, maxDepth } = this.#options.limits;
    const { logger, id } = this.#options;
    if (!Array.isArray(items)) return [];
    if (items.length > maxEntries)
      logger.warn({ integration: id, kind, offered: items.length, kept: maxEntries }, 'upstream list cut');
    const kept: T[] = [];
    let dropped = 0;
    for (const item of items.slice(0, maxEntries)) {
      if (depthOf(item, maxDepth) > maxDepth || JSON.stringify(item).length > maxEntryBytes) dropped += 1;
      else kept.push(item);
    }
    if (dropped > 0)
      logger.warn(
        { integration: id, kind, dropped },
        'upstream entries over the size or depth limit dropped',
      );
    return kept;
  }
}
