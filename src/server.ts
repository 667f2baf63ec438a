import type { Implementation, Server, Transport } from '@modelcontextprotocol/server';
import type { ResourceCacheOptions } from './catalog/cache.js';
import type { PromptCatalog, PromptDefinition } from './catalog/prompts.js';
import type { ResourceCatalog, ResourceDefinition, ResourceTemplateDefinition } from './catalog/resources.js';
import type { CallOrigin, ToolCatalog, ToolDefinition } from './catalog/tools.js';
import type { CompletionManager } from './completions/manager.js';
import type { CompletionManagerOptions } from './completions/types.js';
import type { EnvConfig } from './config.js';
import type { DeclarativeToolOptions } from './declarative.js';
import type { ToolExecutor } from './execution/executor.js';
import type { RetryPolicy } from './execution/retry.js';
import { type DocsOptions, DocsPage } from './http/docs.js';
import { type AdmissionDecision, HttpHandler } from './http/handler.js';
import type { FetchOptions, HttpOptions, ResolvedHttpOptions } from './http/options.js';
import type { LoadShedder, OverloadOptions } from './http/overload.js';
import type { IntegrationManager } from './integrations/manager.js';
import type { IntegrationStore, SecretCipher } from './integrations/types.js';
import type { UpstreamLimits, UpstreamSource } from './integrations/upstreamTypes.js';
import type { OutboundOptions, OutboundPolicy } from './net/outbound.js';
import type { AuditSink } from './policy/audit.js';
import type { AuthOptions } from './policy/auth.js';
import type { AccessRule, RoleDefinition } from './policy/permissions.js';
import type { Policy } from './policy/policy.js';
import type { RateLimitOptions } from './policy/rateLimit.js';
import { type Connection, Connections, type ConnectOptions } from './protocol/connections.js';
import { createSessionServer } from './protocol/session.js';
import { buildServices, type Services } from './services.js';
import type { SharedState } from './state/shared.js';
import type { TaskManager, TaskOptions } from './tasks/manager.js';
import type { HealthChecks } from './telemetry/health.js';
import type { MetricsRegistry } from './telemetry/metrics.js';
import { installConnectionMetrics, installStandardMetrics } from './telemetry/standard.js';
import type { TracingOptions } from './telemetry/tracing.js';
import { clusterUsage, type UsageMeter, type UsageOptions } from './telemetry/usage.js';
import type { Logger, LogLevel } from './types.js';

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
  /**
   * `GET /docs`: an interactive reference of the REST API (Swagger UI from the optional peer
   * `swagger-ui-dist`, served by mcpkit itself). `false` turns it off; an object sets where its files
   * are and its title. Default: on, unless `MCP_DOCS=off`. The page is public; the API document it
   * shows and the calls it makes need a key like any other request.
   */
  docs?: boolean | DocsOptions;
  /**
   * `GET /usage`: how many bytes its counts may take (`maxBytes`, default 8 MiB, shared equally by
   * callers, tools and models; past it the least active keys fold into `other`). See
   * docs/operations.md, "Usage analytics". `false` keeps no usage (and `GET /usage` answers 404).
   */
  usage?: UsageOptions | false;
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
  integrations?: {
    store?: IntegrationStore;
    cipher?: SecretCipher;
    /**
     * Upstream MCP servers attached in code, by integration id: programs over stdio
     * (`stdioUpstream()` from `mcpkit/node`) or any SDK transport. Never configurable over REST.
     * See docs/integrations.md, "Gateway".
     */
    upstreams?: Record<string, UpstreamSource & { name?: string }>;
    /** Bounds on what each upstream may offer and send back (entries, bytes, depth, timeouts). */
    upstreamLimits?: UpstreamLimits;
  };
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
  /**
   * State shared by several mcpkit processes (docs/scale-out.md), e.g. `redisState({ url })` from
   * mcpkit/redis. Default: everything in this process's memory. A `rateLimit.store` given explicitly
   * wins over the state's.
   */
  state?: SharedState;
  /** Audit sinks (`MemoryAuditSink`, `jsonLinesAuditSink`, or your own). Default: none. */
  audit?: { sinks?: AuditSink[] };
}

export type { Connection, ConnectOptions } from './protocol/connections.js';

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
   * Calls, errors, durations and model tokens per caller, tool and model (`GET /usage`);
   * `undefined` with `usage: false`.
   */
  readonly usage: UsageMeter | undefined;
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
  const services = buildServices(options);
  const { tools, resources, prompts, executor, tasks, integrations, completions, overload } = services;
  if (options.tools) tools.registerMany(options.tools);
  for (const r of options.resources ?? []) resources.register(r);
  for (const p of options.prompts ?? []) prompts.register(p);

  // The doors: connection-oriented transports, then HTTP (which serves the REST routes too).
  const connections = new Connections(services);
  const httpMetrics =
    options.metrics === false
      ? undefined
      : installStandardMetrics(services.metrics, {
          executor,
          resources,
          policy: services.policyLayer,
          ...(overload && { overload }),
        });
  const docsOption = options.docs ?? services.env.docs ?? true;
  const docs = docsOption === false ? undefined : new DocsPage(docsOption === true ? {} : docsOption);
  // With a shared state that carries usage, `GET /usage` adds up every node's figures.
  const cluster =
    services.usage && options.state?.usage
      ? clusterUsage(services.usage, options.state.usage, (reason) =>
          services.logger.debug({ reason }, 'usage'),
        )
      : undefined;
  const http = new HttpHandler(
    {
      logger: services.logger,
      tracing: services.tracing,
      events: services.events,
      ...(services.policy && { policy: services.policy }),
      ...(overload && { overload }),
      ...(httpMetrics && { metrics: httpMetrics }),
      ...(options.state?.sessions && { sessionDirectory: options.state.sessions }),
      createServer: ({ era, live, onClose, onRequestSettled }) =>
        createSessionServer(services, {
          era,
          origin: 'http',
          live,
          ...(onClose && { onClose }),
          ...(onRequestSettled && { onRequestSettled }),
        }),
      toolInputSchema: (name) => tools.get(name)?.descriptor.inputSchema,
      rest: {
        ...services,
        ...(docs && { docs }),
        ...(cluster && { usageReport: cluster.report }),
        summary: (httpSessions) => summaryOf(services, { httpSessions, connections: connections.byOrigin() }),
      },
    },
    {
      ...options.http,
      maxSessions: options.http?.maxSessions ?? services.env.maxConnections,
      eventStore: options.http?.eventStore ?? options.state?.eventStore,
    },
  );
  const connectionCounts = (): ConnectionCounts => ({
    httpSessions: http.sessions.size,
    connections: connections.byOrigin(),
  });
  if (options.metrics !== false) installConnectionMetrics(services.metrics, connectionCounts);

  return {
    info: services.info,
    config: services.env,
    policy: services.policyLayer,
    metrics: services.metrics,
    health: services.health,
    usage: services.usage,
    logger: services.logger,
    outbound: services.outbound,
    overload,
    tools,
    resources,
    prompts,
    executor,
    tasks,
    integrations,
    completions,
    fetch: (request, fetchOptions) => http.fetch(request, fetchOptions),
    admit: (request, admitOptions) => http.admit(request, admitOptions),
    httpOptions: http.options,
    connect: (transport, connectOptions) => connections.connect(transport, connectOptions),
    createSessionServer: (sessionOptions = {}) =>
      createSessionServer(services, {
        era: sessionOptions.era ?? 'legacy',
        origin: sessionOptions.origin ?? 'internal',
        live: true,
      }),
    connectionCounts,
    async close() {
      tools.close();
      if (services.ownsOverload) overload?.close();
      tasks?.close();
      cluster?.close();
      completions.close();
      await Promise.all([http.close(), connections.close()]);
      await integrations.close();
      services.sharedEntries?.close();
      services.outbound.close();
      await options.state?.close?.();
    },
  };
}

/** `GET /summary`: the server at a glance. */
function summaryOf(services: Services, sessions: ConnectionCounts): Record<string, unknown> {
  const { info, startedAt, tools, resources, prompts, executor } = services;
  return {
    server: info,
    uptimeMs: Math.round(Date.now() - startedAt),
    tools: tools.size,
    resources: resources.size,
    prompts: prompts.size,
    sessions,
    subscriptions: resources.subscriptionCount,
    cache: resources.cacheStats,
    executor: executor.load,
  };
}
