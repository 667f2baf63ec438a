/**
 * The services a server is made of, built once in dependency order: what everything else rests on
 * (settings, logs, metrics, tracing, the event bus, the policy), then the catalogs, then execution,
 * then what works on a caller's behalf beyond one call (integrations, completions). Each stage is a
 * function of the options and the stages before it; nothing refers forward. The catalogs announce
 * their changes on one typed bus (`events`), which sessions and the HTTP door listen on.
 *
 * `Services` satisfies structurally the hosts the layers above declare (`SessionHost` of the
 * protocol layer, `RestHost` of the HTTP layer), so the composition root hands the same object to
 * each instead of building a bag per layer.
 */
import type { Implementation, Tool } from '@modelcontextprotocol/server';
import { EventEmitter } from 'eventemitter3';
import { ResourceCache } from './catalog/cache.js';
import { PromptCatalog } from './catalog/prompts.js';
import { ResourceCatalog } from './catalog/resources.js';
import { ToolCatalog } from './catalog/tools.js';
import { CompletionManager } from './completions/manager.js';
import type { CompletionRunOptions } from './completions/types.js';
import { type EnvConfig, loadEnvConfig } from './config.js';
import { McpKitError, quote } from './core/errors.js';
import { checkDeclarativeIsolation, type DeclarativeToolOptions, outboundOf } from './declarative.js';
import { ToolExecutor } from './execution/executor.js';
import { LoadShedder, type OverloadOptions, resolveOverloadOptions } from './http/overload.js';
import { createEphemeralCipher } from './integrations/cipher.js';
import { IntegrationManager } from './integrations/manager.js';
import { createMemoryIntegrationStore } from './integrations/store.js';
import { createLogger, LOG_LEVEL_NAMES, toLogLevel } from './logger.js';
import type { OutboundPolicy } from './net/outbound.js';
import { TOOLS_VIEW, visibleItems } from './policy/permissions.js';
import { Policy } from './policy/policy.js';
import type { RateLimitOptions } from './policy/rateLimit.js';
import type { CatalogEvents } from './protocol/session.js';
import type { CreateMcpServerOptions } from './server.js';
import { SharedEntries } from './state/catalogEntries.js';
import type { CatalogChange, ChangeBus } from './state/shared.js';
import { TaskManager } from './tasks/manager.js';
import { HealthChecks } from './telemetry/health.js';
import { LogRing, teeLogger } from './telemetry/logs.js';
import { MetricsRegistry } from './telemetry/metrics.js';
import { globalTracing, Tracing } from './telemetry/tracing.js';
import { observeUsage, UsageMeter } from './telemetry/usage.js';
import type { CallerIdentity, Logger } from './types.js';

/** What everything rests on: identity, settings, logs, metrics, tracing, the bus and the policy. */
export interface Foundation {
  readonly info: Implementation;
  readonly instructions: string | undefined;
  /** What the `MCP_*` environment variables configured. */
  readonly env: EnvConfig;
  readonly logger: Logger;
  /** The redacted ring behind `GET /logs`. */
  readonly logs: LogRing;
  readonly metrics: MetricsRegistry;
  /** Calls and model tokens per caller, tool and model, behind `GET /usage`; `undefined` with `usage: false`. */
  readonly usage: UsageMeter | undefined;
  readonly health: HealthChecks;
  readonly tracing: Tracing;
  readonly startedAt: number;
  /** The catalog's event bus. */
  readonly events: EventEmitter<CatalogEvents>;
  /** The policy layer, configured or not (`server.policy`). */
  readonly policyLayer: Policy;
  /** The policy, only when something is configured: the doors consult it only then. */
  readonly policy: Policy | undefined;
  /** The load shedder; `undefined` with `overload: false`. */
  readonly overload: LoadShedder | undefined;
  /** Whether the server built the shedder (and so closes it): one given in the options is the caller's. */
  readonly ownsOverload: boolean;
  readonly pageSize: number | undefined;
  readonly maxCompletions: number;
}

/** The shared catalogs. */
export interface Catalogs {
  readonly tools: ToolCatalog;
  readonly resources: ResourceCatalog;
  readonly prompts: PromptCatalog;
}

/** What runs tool calls. */
export interface Execution {
  readonly executor: ToolExecutor;
  /** The tasks extension's runtime; `undefined` with `tasks: false`. */
  readonly tasks: TaskManager | undefined;
}

/** What works on a caller's behalf beyond one call. */
export interface Delegation {
  readonly outbound: OutboundPolicy;
  readonly declarative: DeclarativeToolOptions;
  readonly integrations: IntegrationManager;
  readonly completions: CompletionManager;
  /** With a shared state's `catalog`: the entries written over REST, kept the same on every node. */
  readonly sharedEntries?: SharedEntries;
}

/** Everything a server is made of. */
export type Services = Foundation & Catalogs & Execution & Delegation;

/** Builds every service of a server from its options, in dependency order. */
export function buildServices(options: CreateMcpServerOptions): Services {
  const foundation = buildFoundation(options);
  const catalogs = buildCatalogs(options, foundation);
  const execution = buildExecution(options, foundation, catalogs);
  const delegation = buildDelegation(options, foundation, { ...catalogs, ...execution });
  return { ...foundation, ...catalogs, ...execution, ...delegation };
}

/** The `rateLimit` option, with a shared state's store where the option names none. */
function rateLimitOption(options: CreateMcpServerOptions): RateLimitOptions | false | undefined {
  const { rateLimit, state } = options;
  if (rateLimit === false || !state?.rateLimits || rateLimit?.store) return rateLimit;
  return { ...rateLimit, store: state.rateLimits };
}

function buildFoundation(options: CreateMcpServerOptions): Foundation {
  const env = loadEnvConfig();
  const logLevel = options.logLevel === undefined ? (env.logLevel ?? 'info') : toLogLevel(options.logLevel);
  if (logLevel === undefined) throw new TypeError(`logLevel must be one of ${LOG_LEVEL_NAMES}`);
  const logs = new LogRing(options.logBufferSize ?? 1000);
  // Every line is redacted and kept in the ring behind GET /logs as well.
  const logger = teeLogger(options.logger ?? createLogger({ level: logLevel }), {
    ring: logs,
    level: logLevel,
  });
  if (options.pageSize !== undefined && !(Number.isInteger(options.pageSize) && options.pageSize > 0)) {
    throw new TypeError('pageSize must be a positive integer');
  }
  const maxCompletions = options.maxCompletions ?? 100;
  if (!(Number.isInteger(maxCompletions) && maxCompletions > 0)) {
    throw new TypeError('maxCompletions must be a positive integer');
  }
  const given = options.overload instanceof LoadShedder ? options.overload : undefined;
  const resolved = given
    ? undefined
    : resolveOverloadOptions(options.overload as OverloadOptions | boolean | undefined);
  const policyLayer = new Policy(
    {
      ...(options.auth && { auth: options.auth }),
      ...(options.roles && { roles: options.roles }),
      ...(options.rules && { rules: options.rules }),
      ...(rateLimitOption(options) && { rateLimit: rateLimitOption(options) }),
      ...(options.audit && { audit: options.audit }),
    },
    env.rateLimitPerMinute,
    logger,
  );
  const startedAt = Date.now();
  const health = new HealthChecks(startedAt);
  const { state } = options;
  if (state) {
    state.attach?.({ logger });
    const healthy = state.healthy?.bind(state);
    if (healthy) health.register(`state:${state.name}`, () => ({ ok: healthy(), detail: state.name }));
  }
  return {
    info: {
      name: options.name ?? 'mcpkit',
      version: options.version ?? '0.0.0',
      ...(options.title !== undefined && { title: options.title }),
    },
    instructions: options.instructions,
    env,
    logger,
    logs,
    metrics: new MetricsRegistry(),
    usage: options.usage === false ? undefined : new UsageMeter(options.usage),
    health,
    tracing: options.tracing === undefined ? globalTracing : new Tracing(options.tracing),
    startedAt,
    events: new EventEmitter<CatalogEvents>(),
    policyLayer,
    policy: policyLayer.active ? policyLayer : undefined,
    overload: given ?? (resolved ? new LoadShedder(resolved, { logger }) : undefined),
    ownsOverload: given === undefined,
    pageSize: options.pageSize,
    maxCompletions,
  };
}

function buildCatalogs(
  options: CreateMcpServerOptions,
  { env, events, logger, policyLayer }: Foundation,
): Catalogs {
  // Catalog changes are audited only when an audit sink listens.
  const observe = (kind: string) =>
    policyLayer.audit.enabled
      ? (op: string, key: string) => policyLayer.catalogChanged(kind, op, key)
      : undefined;
  const tools = new ToolCatalog({
    onChange: () => events.emit('toolsChanged'),
    observe: observe('tool'),
    report: (tool, err) =>
      logger.warn(
        { tool, err },
        'tool schema cannot be described as JSON Schema; it is listed as any object',
      ),
  });
  const cacheTtl = options.cache?.ttlMs ?? env.cacheTtlMs;
  const cache = new ResourceCache({ ...options.cache, ...(cacheTtl !== undefined && { ttlMs: cacheTtl }) });
  const resources = new ResourceCatalog({
    onChange: () => events.emit('resourcesChanged'),
    onUpdated: (uri) => events.emit('resourceUpdated', uri),
    cache,
    observe: observe('resource'),
  });
  const prompts = new PromptCatalog({
    onChange: () => events.emit('promptsChanged'),
    observe: observe('prompt'),
  });
  if (options.state?.changes) shareChanges(options.state.changes, { events, resources, cache });
  return { tools, resources, prompts };
}

/**
 * For a server whose catalog changes are shared: runs catalog changes that this node makes after
 * another node (an integration written there) without publishing them again.
 */
const unpublished = new WeakMap<EventEmitter<CatalogEvents>, (apply: () => void) => void>();

/**
 * Publishes this node's catalog changes on the shared bus, and replays the other nodes' here: on the
 * local bus (so sessions of every transport and 2026-07-28 listen streams hear them) and, for an
 * updated resource, through `notifyUpdated` (its subscribers, its cached read).
 */
function shareChanges(
  bus: ChangeBus,
  {
    events,
    resources,
    cache,
  }: { events: EventEmitter<CatalogEvents>; resources: ResourceCatalog; cache: ResourceCache },
): void {
  let replaying = false;
  const publish = (change: CatalogChange) => {
    if (!replaying) bus.publish(change);
  };
  events.on('toolsChanged', () => publish({ kind: 'tools' }));
  events.on('resourcesChanged', () => publish({ kind: 'resources' }));
  events.on('promptsChanged', () => publish({ kind: 'prompts' }));
  events.on('resourceUpdated', (uri) => publish({ kind: 'resourceUpdated', uri }));
  unpublished.set(events, (apply) => {
    const was = replaying;
    replaying = true;
    try {
      apply();
    } finally {
      replaying = was;
    }
  });
  const replay = (change: CatalogChange) => {
    replaying = true;
    try {
      if (change.kind === 'resourceUpdated') resources.notifyUpdated(change.uri);
      else events.emit(`${change.kind}Changed`);
    } finally {
      replaying = false;
    }
  };
  bus.subscribe(replay, () => {
    // Changes may have been missed while the bus was down: clients list again, cached reads go.
    cache.clear();
    for (const kind of ['tools', 'resources', 'prompts'] as const) replay({ kind });
  });
}

function buildExecution(
  options: CreateMcpServerOptions,
  { logger, tracing, policy, policyLayer }: Foundation,
  { tools }: Catalogs,
): Execution {
  const executor = new ToolExecutor(tools, {
    logger,
    tracing,
    ...(options.toolTimeoutMs !== undefined && { defaultTimeoutMs: options.toolTimeoutMs }),
    ...(options.toolConcurrency !== undefined && { concurrency: options.toolConcurrency }),
    ...(options.toolQueueLimit !== undefined && { maxQueue: options.toolQueueLimit }),
    ...(options.toolRetry !== undefined && { retry: options.toolRetry }),
    ...(policy && { authorize: (name, caller, call) => policy.admitCall(name, caller, call) }),
  });
  if (policyLayer.audit.enabled) policyLayer.auditToolCalls(executor);
  const tasks =
    options.tasks === false
      ? undefined
      : new TaskManager(executor, logger, { ...options.tasks, store: options.state?.tasks });
  return { executor, tasks };
}

/** Per-upstream metrics: forwarded requests by outcome, and whether each upstream is connected. */
function upstreamMetrics(integrations: IntegrationManager, metrics: MetricsRegistry): void {
  const requests = metrics.counter(
    'mcpkit_upstream_requests_total',
    'Requests forwarded to upstream MCP servers, by integration, method and outcome',
    ['integration', 'method', 'outcome'],
  );
  integrations.on('upstreamRequest', ({ id, method, outcome }) => {
    requests.inc({ integration: id, method, outcome });
  });
  let shown: string[] = [];
  const up = metrics.gauge(
    'mcpkit_upstream_up',
    'Whether each upstream MCP server is connected (1) or not (0)',
    {
      labels: ['integration'],
      collect: (gauge) => {
        const upstreams = integrations.upstreams();
        // An upstream that is no longer there (its integration disabled, or deleted) leaves the gauge.
        for (const id of shown) if (!(id in upstreams)) gauge.remove({ integration: id });
        shown = Object.keys(upstreams);
        for (const [id, state] of Object.entries(upstreams))
          gauge.set({ integration: id }, state.status === 'ready' ? 1 : 0);
      },
    },
  );
  // A deleted integration's series go with it: a scrape must not show an upstream that is gone.
  integrations.on('deleted', ({ integration }) => {
    requests.remove({ integration: integration.id });
    up.remove({ integration: integration.id });
  });
}

/**
 * The integration store: the option's, else a shared state's (which needs `integrations.cipher`: the
 * same key on every node), else one in memory.
 */
function integrationStore(options: CreateMcpServerOptions, logger: Logger) {
  const given = options.integrations?.store;
  if (given) return given;
  const shared = options.state?.integrations;
  if (shared && options.integrations?.cipher) return shared;
  if (shared) {
    logger.warn(
      'integrations are kept on this node only: sharing them needs integrations.cipher, the same key on every node',
    );
  }
  return createMemoryIntegrationStore();
}

function buildDelegation(
  options: CreateMcpServerOptions,
  { logger, tracing, policy, policyLayer, health, metrics, events, usage }: Foundation,
  { tools, resources, prompts, executor }: Catalogs & Execution,
): Delegation {
  // Usage hears every tool call at the executor, and every completion at its end: one place per kind.
  const finished = usage
    ? observeUsage(usage, { executor, ...(options.metrics !== false && { metrics }) })
    : undefined;
  const declared = options.declarativeTools ?? {};
  checkDeclarativeIsolation(declared.isolation);
  const outbound = outboundOf(declared, options.outbound);
  const declarative: DeclarativeToolOptions = { ...declared, outbound };
  if (options.integrations?.store && !options.integrations.cipher) {
    throw new TypeError(
      'integrations.cipher is required with integrations.store (loadSecretCipher from mcpkit/node)',
    );
  }
  const replaying = unpublished.get(events);
  const integrations = new IntegrationManager({
    store: integrationStore(options, logger),
    cipher: options.integrations?.cipher ?? createEphemeralCipher(),
    tools,
    resources,
    prompts,
    declarative,
    logger,
    ...(options.integrations?.upstreamLimits && { upstreamLimits: options.integrations.upstreamLimits }),
    ...(options.integrations?.upstreams && { upstreams: options.integrations.upstreams }),
    ...(replaying && { replaying }),
  });
  upstreamMetrics(integrations, metrics);
  // An upstream's log messages outside its calls reach the live sessions that have used it.
  integrations.on('upstreamLog', (event) => events.emit('upstreamLog', event));
  // An upstream that is down degrades its own entries, not the server: the check reports, never fails.
  health.register('upstreams', () => {
    const states = Object.entries(integrations.upstreams());
    const down = states.filter(([, s]) => s.status !== 'ready').map(([id, s]) => `${id} ${s.status}`);
    return {
      ok: true,
      detail: `${states.length - down.length}/${states.length} ready${down.length ? `; ${down.join(', ')}` : ''}`,
    };
  });
  const completions = new CompletionManager(
    {
      tools,
      executor,
      prompts,
      logger,
      tracing,
      outbound,
      ...(finished && { finished }),
      // Who may reach a completion job: its owner, or a caller the policy lets act for others.
      reachesJob: (caller: CallerIdentity, owner: string | undefined) =>
        policyLayer.reachesWorkOf(caller, owner),
      ...(options.state?.jobs && { sharedJobs: options.state.jobs }),
      ...(policy && {
        visibleTools: (listed: readonly Tool[], caller: CallerIdentity) =>
          visibleItems(policy.grantOf(caller), TOOLS_VIEW, listed),
        admitPrompt: (name: string, caller: CallerIdentity, run: CompletionRunOptions) => {
          const decided = policy.admit(
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
      // `integrationId` in a completion request resolves through the integrations, unless code says otherwise.
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
  const shared = options.state?.catalog;
  const sharedEntries =
    shared &&
    new SharedEntries({
      store: shared,
      catalogs: { tools, resources, prompts, declarative },
      logger,
      ...(replaying && { replaying }),
    });
  return { outbound, declarative, integrations, completions, ...(sharedEntries && { sharedEntries }) };
}
