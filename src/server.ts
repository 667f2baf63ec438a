import type { Implementation, Server, Tool, Transport } from '@modelcontextprotocol/server';
import EventEmitter from 'eventemitter3';
import { ResourceCache, type ResourceCacheOptions } from './catalog/cache.js';
import { PromptCatalog, type PromptDefinition } from './catalog/prompts.js';
import {
  ResourceCatalog,
  type ResourceDefinition,
  type ResourceTemplateDefinition,
} from './catalog/resources.js';
import { type CallOrigin, ToolCatalog, type ToolDefinition } from './catalog/tools.js';
import {
  CompletionManager,
  type CompletionManagerOptions,
  type CompletionRunOptions,
} from './completions/manager.js';
import { type EnvConfig, loadEnvConfig } from './config.js';
import { McpKitError, quote } from './core/errors.js';
import { type DeclarativeToolOptions, outboundOf } from './declarative.js';
import { type RetryPolicy, ToolExecutor } from './executor.js';
import {
  type AdmissionDecision,
  type FetchOptions,
  HttpHandler,
  type HttpOptions,
  type ResolvedHttpOptions,
} from './http/handler.js';
import { LoadShedder, type OverloadOptions, resolveOverloadOptions } from './http/overload.js';
import { createEphemeralCipher } from './integrations/cipher.js';
import { IntegrationManager } from './integrations/manager.js';
import { createMemoryIntegrationStore } from './integrations/store.js';
import type { IntegrationStore, SecretCipher } from './integrations/types.js';
import { createLogger } from './logger.js';
import type { OutboundOptions, OutboundPolicy } from './net/outbound.js';
import type { AuditSink } from './policy/audit.js';
import type { AuthOptions } from './policy/auth.js';
import { type AccessRule, type RoleDefinition, visibleItems } from './policy/permissions.js';
import { Policy } from './policy/policy.js';
import type { RateLimitOptions } from './policy/rateLimit.js';
import { serveConnection } from './protocol/connection.js';
import { AdmissionTransport } from './protocol/gate.js';
import { type CatalogEvents, createSessionServer, type SessionHost } from './protocol/session.js';
import { TaskManager, type TaskOptions } from './tasks/manager.js';
import { HealthChecks } from './telemetry/health.js';
import { LogRing, teeLogger } from './telemetry/logs.js';
import { MetricsRegistry } from './telemetry/metrics.js';
import { installStandardMetrics } from './telemetry/standard.js';
import { globalTracing, Tracing, type TracingOptions } from './telemetry/tracing.js';
import type { CallerIdentity, Logger, LogLevel } from './types.js';

/** What the server's doors take per request: the adapters' contract, with {@link McpKitServer}. */
export type { FetchOptions };

/** Options for {@link createMcpServer}. Every option has a documented default. */
export interface CreateMcpServerOptions {
  /** Server name sent to clients. Default `mcpkit`. */
  name?: string;
  /** Server version sent to clients. Default `0.0.0`. */
  version?: string;
  /** Human-readable title sent to clients. */
  title?: string;
  /** Instructions sent to clients at initialisation. */
  instructions?: string;
  /** A pino-compatible logger. Default: JSON lines to stderr at `logLevel`. */
  logger?: Logger;
  /** Level of the default logger. Default `MCP_LOG_LEVEL`, else `info`. */
  logLevel?: LogLevel;
  /** Log records kept for `GET /logs`. Default 1000. */
  logBufferSize?: number;
  /** Record the standard metrics (tool calls, HTTP requests, sessions, cache, process). Default `true`. */
  metrics?: boolean;
  /**
   * OpenTelemetry traces: `{ tracer?, api? }` (pass the `@opentelemetry/api` module as `api`), or
   * `false` for none. Default: whatever provider is registered globally with `@opentelemetry/api`.
   */
  tracing?: TracingOptions;
  /** Tools to register at start. */
  tools?: ToolDefinition<any>[];
  /** Resources and templates to register at start. */
  resources?: Array<ResourceDefinition | ResourceTemplateDefinition>;
  /** Prompts to register at start. */
  prompts?: PromptDefinition[];
  /** Default timeout of a tool call in milliseconds; `0` disables. Default 60 000. */
  toolTimeoutMs?: number;
  /** Tool calls running at once across all tools. Default: unlimited. */
  toolConcurrency?: number;
  /** Calls waiting for a slot before new ones fail fast with `BUSY`. Default 1000. */
  toolQueueLimit?: number;
  /** Retry policy for idempotent tools. Default `{ retries: 2, minTimeoutMs: 100, maxTimeoutMs: 2000 }`. */
  toolRetry?: RetryPolicy;
  /**
   * The resource read cache: `ttlMs` (default `MCP_CACHE_TTL`, else 0: off), `maxEntries` (1000),
   * and `now`, the clock (for tests).
   */
  cache?: ResourceCacheOptions;
  /** Page size of `tools/list`, `resources/list` and `prompts/list`. Default: everything in one page. */
  pageSize?: number;
  /** Most completion values returned for one `completion/complete`. Default 100. */
  maxCompletions?: number;
  /** HTTP options: paths, sessions, limits, Host/Origin checks. */
  http?: HttpOptions;
  /**
   * Load shedding on every HTTP door and the WebSocket upgrade: while the event loop stays later
   * than `maxEventLoopDelayMs` (200; three samples in a row), or when a request waited in `listen()`'s
   * queue longer than `maxQueueWaitMs` (500), a new request gets a quick 503 with
   * `Retry-After: retryAfterSeconds` (1) before its body is read; work already admitted runs to its
   * end. `GET /health`, `GET /metrics`
   * and `DELETE` on the MCP endpoint are never shed. `false` turns it off; a {@link LoadShedder} of
   * yours is used as it is (several servers in one process may share one; closing them leaves it
   * running). See docs/operations.md, "Overload".
   *
   * @example
   * ```ts
   * createMcpServer({ overload: { maxEventLoopDelayMs: 500, retryAfterSeconds: 2 } });
   * ```
   */
  overload?: OverloadOptions | boolean | LoadShedder;
  /**
   * The tasks extension (`io.modelcontextprotocol/tasks`) for tools registered with `task`:
   * `{ maxTasks (1000), maxRunningPerOwner (maxTasks / 10, rounded up), maxResultBytes (64 MiB),
   * ttlMs (1 hour), pollIntervalMs (500) }`, or `false` to turn it off.
   */
  tasks?: TaskOptions | false;
  /**
   * Where mcpkit may send requests on a caller's behalf — declarative HTTP tools (`POST /tools`,
   * integrations) and model endpoints (integrations, completions): `allowedHosts` (none by default;
   * models may always reach `api.openai.com` and `api.anthropic.com`), `allowPrivateNetworks`
   * (false), `resolveHost`, `fetch`. On Node every connection goes to the address that was checked.
   * See docs/security.md, "Outbound requests".
   */
  outbound?: OutboundOptions;
  /**
   * Limits of declarative HTTP tools: `maxResponseBytes` (1 MiB), `timeoutMs` (10 000),
   * `maxRedirects` (3). Its `allowedHosts`, `allowPrivateNetworks`, `resolveHost` and `fetch` are
   * deprecated spellings of `outbound`'s (used where `outbound` does not set them).
   */
  declarativeTools?: DeclarativeToolOptions;
  /**
   * Where integrations are stored and how their secrets are sealed. Default: an in-memory store and
   * a per-process key (nothing survives a restart). On Node, `openFileIntegrations()` from
   * `mcpkit/node` gives the file store under `MCP_DATA_DIR` and the key from `MCP_SECRET_KEY`.
   */
  integrations?: { store?: IntegrationStore; cipher?: SecretCipher };
  /**
   * Completions (`server.completions`, `/completions`): `providers` beside the built-in `openai`,
   * `anthropic` and `custom`; `maxSteps` (10), `keepFinishedMs` (10 minutes), `maxFinished` (1000),
   * `resolveModel` (the hook that turns `integrationId` into a model config). See docs/completions.md.
   */
  completions?: CompletionManagerOptions;
  /**
   * Who may call (docs/security.md): `apiKeys` (`{ id, roles, key | hash }`), a `verify(request)`
   * hook, OAuth resource-server mode (`oauth`), and `anonymous` roles. With it set, every HTTP route
   * but `/health` and the OAuth metadata needs a credential, and WebSocket upgrades do too.
   */
  auth?: AuthOptions;
  /** Custom roles, beside (or redefining) the built-in `admin`, `operator`, `user` and `viewer`. */
  roles?: Record<string, RoleDefinition>;
  /** Rules reserving tools, resources or prompts (names or `*` patterns) for some roles. */
  rules?: AccessRule[];
  /**
   * Token buckets per caller and class of operation (`execute`, `read`, `manage`, `completions`);
   * a number is requests per minute. Default: `MCP_RATE_LIMIT` per minute for every class, else
   * none. `false` turns limits off even when `MCP_RATE_LIMIT` is set.
   */
  rateLimit?: RateLimitOptions | false;
  /** Audit sinks (`MemoryAuditSink`, `jsonLinesAuditSink`, or your own). Default: none. */
  audit?: { sinks?: AuditSink[] };
}

/** Options of {@link McpKitServer.connect}. */
export interface ConnectOptions {
  /** The door, for audit, metrics and rate limits (`websocket` is rate limited). Default `memory`. */
  origin?: CallOrigin;
  /**
   * Who is on the other end. With a caller, every request passes the policy (permissions,
   * visibility, rate limits) before the SDK sees it; without one the connection is the local user's.
   */
  caller?: CallerIdentity;
  /** The client's network address, for rate limits and audit. */
  clientAddress?: string;
  /**
   * Called with a request's id once its handler has really finished, even when the client cancelled
   * it first: a transport that bounds requests in flight holds a cancelled one's slot until then.
   */
  onRequestSettled?: (id: string | number) => void;
}

/** A live connection served by {@link McpKitServer.connect}. */
export interface Connection {
  /** Closes the connection and its transport. */
  close(): Promise<void>;
}

/** Counts of live MCP connections by transport. */
export interface ConnectionCounts {
  /** 2025-era Streamable HTTP sessions. */
  httpSessions: number;
  /** Connections served with `connect()` (stdio, in-memory, WebSocket), by origin. */
  connections: Partial<Record<CallOrigin, number>>;
}

/**
 * An mcpkit server: one shared catalog served to every session on every transport.
 */
export interface McpKitServer {
  /** The server's identity as sent to clients. */
  readonly info: Implementation;
  /** The shared tool catalog. */
  readonly tools: ToolCatalog;
  /** The shared resource catalog. */
  readonly resources: ResourceCatalog;
  /** The shared prompt catalog. */
  readonly prompts: PromptCatalog;
  /** Runs every tool call. */
  readonly executor: ToolExecutor;
  /** The task runtime of the tasks extension; `undefined` when `tasks: false`. */
  readonly tasks: TaskManager | undefined;
  /** Persisted integrations; `await server.integrations.ready` before serving. */
  readonly integrations: IntegrationManager;
  /** Runs models with the server's tools: completion jobs, streaming, cancel. */
  readonly completions: CompletionManager;
  /**
   * The outbound policy (`options.outbound`) that declarative HTTP tools and model requests go
   * through; code of yours may send through it too (`server.outbound.fetch(url, init)`).
   */
  readonly outbound: OutboundPolicy;
  /** The server's logger (what it logs is also kept, redacted, for `GET /logs`). */
  readonly logger: Logger;
  /** The metrics registry behind `GET /metrics`; add your own metrics to it. */
  readonly metrics: MetricsRegistry;
  /** Readiness checks behind `GET /health`. */
  readonly health: HealthChecks;
  /**
   * The load shedder (the `overload` option): whether the server is overloaded, the event-loop
   * delay it measures, how many requests it shed. `undefined` with `overload: false`.
   */
  readonly overload: LoadShedder | undefined;
  /** Authentication, permissions, rate limits and audit (docs/security.md). */
  readonly policy: Policy;
  /** What the `MCP_*` environment variables configured (validated at creation). */
  readonly config: EnvConfig;
  /**
   * The web-standard handler: MCP over Streamable HTTP at `/mcp` for both protocol eras. Runs on
   * Node, Bun, Deno and edge runtimes.
   */
  fetch(request: Request, options?: FetchOptions): Promise<Response>;
  /**
   * The request stages of the admission pipeline (Host, Origin, credentials), as `fetch` applies them
   * to every HTTP request: for doors `fetch` does not serve, such as a WebSocket upgrade, so they admit
   * exactly as the HTTP routes do. The decision names the caller, or the refusal to answer with.
   *
   * @example
   * ```ts
   * const decision = await server.admit(upgradeRequest, { door: 'websocket', clientAddress });
   * if (!decision.ok) refuse(decision.refusal.message);
   * ```
   */
  admit(request: Request, options: FetchOptions & { door: 'websocket' }): Promise<AdmissionDecision>;
  /** The resolved HTTP options (paths, limits, Host/Origin allow-lists), shared by the WebSocket door. */
  readonly httpOptions: Readonly<ResolvedHttpOptions>;
  /**
   * Serves one connection-oriented transport (stdio, in-memory, WebSocket) in whichever protocol era
   * the client speaks.
   */
  connect(transport: Transport, options?: ConnectOptions): Promise<Connection>;
  /** Builds a bare SDK `Server` bound to the catalog, for custom wiring. */
  createSessionServer(options?: { era?: 'legacy' | 'modern'; origin?: CallOrigin }): Server;
  /** Live connections by transport. */
  connectionCounts(): ConnectionCounts;
  /** Ends every session, connection and open stream. */
  close(): Promise<void>;
}

/**
 * Creates an MCP server with a shared catalog of tools, resources and prompts, served to many
 * sessions at once over stdio, Streamable HTTP (both protocol eras) and any SDK transport.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { listen } from 'mcpkit/node';
 * import { z } from 'zod';
 *
 * const server = createMcpServer({ name: 'demo', version: '1.0.0' });
 * server.tools.register({
 *   name: 'add',
 *   description: 'Add two numbers',
 *   inputSchema: { a: z.number(), b: z.number() },
 *   handler: ({ a, b }) => ({ sum: a + b }),
 * });
 * const { url } = await listen(server, { port: 3000 });
 * console.error(`MCP endpoint: ${url}/mcp`);
 * ```
 */
export function createMcpServer(options: CreateMcpServerOptions = {}): McpKitServer {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const env = loadEnvConfig();
  const logLevel = options.logLevel ?? env.logLevel ?? 'info';
  const logs = new LogRing(options.logBufferSize ?? 1000);
  // Every line is redacted and kept in the ring behind GET /logs as well.
  const logger = teeLogger(options.logger ?? createLogger({ level: logLevel }), logs, logLevel);
  const metrics = new MetricsRegistry();
  const info: Implementation = {
    name: options.name ?? 'mcpkit',
    version: options.version ?? '0.0.0',
    ...(options.title !== undefined && { title: options.title }),
  };
  if (options.pageSize !== undefined && !(Number.isInteger(options.pageSize) && options.pageSize > 0)) {
    throw new TypeError('pageSize must be a positive integer');
  }
  const maxCompletions = options.maxCompletions ?? 100;
  if (!(Number.isInteger(maxCompletions) && maxCompletions > 0)) {
    throw new TypeError('maxCompletions must be a positive integer');
  }

  // A load shedder of the caller's is theirs to close; one built from options is the server's.
  const givenShedder = options.overload instanceof LoadShedder ? options.overload : undefined;
  let overload = givenShedder;
  if (!givenShedder) {
    const resolved = resolveOverloadOptions(options.overload as OverloadOptions | boolean | undefined);
    if (resolved) overload = new LoadShedder(resolved, { logger });
  }

  const startedAt = Date.now();
  const health = new HealthChecks(startedAt);
  const events = new EventEmitter<CatalogEvents>();
  const policy = new Policy(
    {
      ...(options.auth && { auth: options.auth }),
      ...(options.roles && { roles: options.roles }),
      ...(options.rules && { rules: options.rules }),
      ...(options.rateLimit !== undefined && { rateLimit: options.rateLimit }),
      ...(options.audit && { audit: options.audit }),
    },
    env.rateLimitPerMinute,
    logger,
  );
  // The doors consult the policy only when something is configured: otherwise it costs nothing.
  const activePolicy = policy.active ? policy : undefined;
  const observe = (kind: string) =>
    policy.audit.enabled ? (op: string, key: string) => policy.catalogChanged(kind, op, key) : undefined;
  let http: HttpHandler | undefined;
  const tools = new ToolCatalog(
    () => {
      events.emit('toolsChanged');
      http?.modern.notify.toolsChanged();
    },
    observe('tool'),
    (tool, err) =>
      logger.warn(
        { tool, err },
        'tool schema cannot be described as JSON Schema; it is listed as any object',
      ),
  );
  const cacheTtl = options.cache?.ttlMs ?? env.cacheTtlMs;
  const cache = new ResourceCache({ ...options.cache, ...(cacheTtl !== undefined && { ttlMs: cacheTtl }) });
  const resources = new ResourceCatalog(
    () => {
      events.emit('resourcesChanged');
      http?.modern.notify.resourcesChanged();
    },
    (uri) => {
      events.emit('resourceUpdated', uri);
      http?.modern.notify.resourceUpdated(uri);
    },
    cache,
    observe('resource'),
  );
  const prompts = new PromptCatalog(() => {
    events.emit('promptsChanged');
    http?.modern.notify.promptsChanged();
  }, observe('prompt'));
  const tracing = options.tracing === undefined ? globalTracing : new Tracing(options.tracing);
  const executor = new ToolExecutor(tools, {
    logger,
    tracing,
    ...(options.toolTimeoutMs !== undefined && { defaultTimeoutMs: options.toolTimeoutMs }),
    ...(options.toolConcurrency !== undefined && { concurrency: options.toolConcurrency }),
    ...(options.toolQueueLimit !== undefined && { maxQueue: options.toolQueueLimit }),
    ...(options.toolRetry !== undefined && { retry: options.toolRetry }),
    ...(activePolicy && {
      authorize: (name, caller, call) => activePolicy.admitCall(name, caller, call),
    }),
  });
  if (policy.audit.enabled) policy.auditToolCalls(executor);

  const taskManager =
    options.tasks === false ? undefined : new TaskManager(executor, logger, options.tasks ?? {});

  const declared = options.declarativeTools ?? {};
  const outbound = outboundOf(declared, options.outbound);
  const declarative: DeclarativeToolOptions = { ...declared, outbound };

  if (options.integrations?.store && !options.integrations.cipher) {
    throw new TypeError(
      'integrations.cipher is required with integrations.store (loadSecretCipher from mcpkit/node)',
    );
  }
  const integrations = new IntegrationManager({
    store: options.integrations?.store ?? createMemoryIntegrationStore(),
    cipher: options.integrations?.cipher ?? createEphemeralCipher(),
    tools,
    resources,
    prompts,
    declarative,
    logger,
  });

  // `integrationId` in a completion request resolves through the integrations, unless code says otherwise.
  const completions = new CompletionManager(
    {
      tools,
      executor,
      prompts,
      logger,
      tracing,
      outbound,
      ...(activePolicy && {
        visibleTools: (listed: readonly Tool[], caller: CallerIdentity) =>
          visibleItems(activePolicy.grantOf(caller), 'tools', listed, (t) => t.name),
        admitPrompt: (name: string, caller: CallerIdentity, run: CompletionRunOptions) => {
          const decided = activePolicy.admit(
            { name: 'completion prompt', permission: 'prompts:read', targets: [{ kind: 'prompts', name }] },
            {
              caller,
              ...(run.origin !== undefined && { origin: run.origin }),
              ...(run.requestId !== undefined && { requestId: run.requestId }),
              ...(run.clientAddress !== undefined && { address: run.clientAddress }),
            },
          );
          // No rate class: synchronous.
          return decided instanceof Promise || decided.ok ? undefined : decided.refusal;
        },
      }),
    },
    {
      resolveModel: async (request) => {
        if (request.integrationId === undefined) return request.model as never;
        await integrations.ready;
        const model = integrations.modelConfig(request.integrationId);
        if (!model) {
          throw new McpKitError(
            'INVALID_ARGUMENT',
            `Integration ${quote(request.integrationId)} has no model configuration`,
          );
        }
        return model as never;
      },
      ...options.completions,
    },
  );

  const host: SessionHost = {
    info,
    instructions: options.instructions,
    tools,
    resources,
    prompts,
    executor,
    logger,
    events,
    pageSize: options.pageSize,
    maxCompletions,
    ...(taskManager && { tasks: taskManager }),
    tracing,
    ...(activePolicy && { policy: activePolicy }),
  };

  if (options.tools) tools.registerMany(options.tools);
  for (const r of options.resources ?? []) resources.register(r);
  for (const p of options.prompts ?? []) prompts.register(p);

  const httpMetrics =
    options.metrics === false
      ? undefined
      : installStandardMetrics(metrics, {
          executor,
          resources,
          connections: () => connectionCounts(),
          policy,
          ...(overload && { overload }),
        });

  http = new HttpHandler(
    {
      logger,
      tracing,
      ...(activePolicy && { policy: activePolicy }),
      ...(httpMetrics && { metrics: httpMetrics }),
      ...(overload && { overload }),
      createServer: (era, live, onClose) =>
        createSessionServer(host, { era, origin: 'http', live, ...(onClose && { onClose }) }),
      toolInputSchema: (name) => tools.get(name)?.descriptor.inputSchema,
      rest: {
        info,
        tools,
        resources,
        prompts,
        executor,
        logger,
        declarative,
        startedAt,
        integrations,
        completions,
        metrics,
        logs,
        health,
        ...(activePolicy && { policy: activePolicy }),
        summary: () => ({
          server: info,
          uptimeMs: Math.round(Date.now() - startedAt),
          tools: tools.size,
          resources: resources.size,
          prompts: prompts.size,
          sessions: connectionCounts(),
          subscriptions: resources.subscriptionCount,
          cache: resources.cacheStats,
          executor: executor.load,
        }),
      },
    },
    { ...options.http, maxSessions: options.http?.maxSessions ?? env.maxConnections },
  );
  const httpHandler = http;

  const connectionCounts = (): ConnectionCounts => {
    const counts: Partial<Record<CallOrigin, number>> = {};
    for (const c of connections) counts[c.origin] = (counts[c.origin] ?? 0) + 1;
    return { httpSessions: http?.sessions.size ?? 0, connections: counts };
  };
  const connections = new Set<{ origin: CallOrigin; close(): Promise<void> }>();

  return {
    info,
    config: env,
    policy,
    metrics,
    health,
    overload,
    tools,
    resources,
    prompts,
    executor,
    tasks: taskManager,
    integrations,
    completions,
    outbound,
    logger,
    fetch: (request, fetchOptions) => httpHandler.fetch(request, fetchOptions),
    admit: (request, admitOptions) => httpHandler.admit(request, admitOptions),
    httpOptions: httpHandler.options,
    async connect(transport, connectOptions = {}) {
      const origin = connectOptions.origin ?? 'memory';
      const entry = { origin, close: async () => {} };
      connections.add(entry);
      const { caller } = connectOptions;
      // A connection with a caller passes every request through the policy before the SDK sees it;
      // without one (stdio, in-process) it is the local user's.
      const guarded =
        activePolicy && caller
          ? new AdmissionTransport(transport, activePolicy, {
              caller,
              origin,
              ...(connectOptions.clientAddress !== undefined && { address: connectOptions.clientAddress }),
            })
          : transport;
      const served = await serveConnection(
        guarded,
        (era) =>
          createSessionServer(host, {
            era,
            origin,
            live: true,
            caller: connectOptions.caller,
            ...(connectOptions.clientAddress !== undefined && {
              clientAddress: connectOptions.clientAddress,
            }),
            ...(connectOptions.onRequestSettled && { onRequestSettled: connectOptions.onRequestSettled }),
          }),
        {
          onerror: (error) => logger.debug({ err: error }, 'MCP connection error'),
          onEnd: () => connections.delete(entry),
        },
      );
      entry.close = async () => {
        connections.delete(entry);
        await served.close();
      };
      return { close: entry.close };
    },
    createSessionServer: (sessionOptions = {}) =>
      createSessionServer(host, {
        era: sessionOptions.era ?? 'legacy',
        origin: sessionOptions.origin ?? 'internal',
        live: true,
      }),
    connectionCounts,
    async close() {
      tools.close();
      if (!givenShedder) overload?.close();
      taskManager?.close();
      completions.close();
      await Promise.all([httpHandler.close(), ...[...connections].map((c) => c.close())]);
      await integrations.close();
      outbound.close();
    },
  };
}
