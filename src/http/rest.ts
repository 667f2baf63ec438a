/**
 * The REST surface: plain JSON over HTTP for callers that do not speak MCP, on the same catalog and
 * executor as the MCP sessions. Every error is `application/problem+json` from the one code table.
 *
 * Size: the route table is one list, which the OpenAPI document and the policy read whole; the
 * integrations' and completions' routes live in `routes/`.
 */
import type { CallToolResult, Prompt, Resource, Tool } from '@modelcontextprotocol/server';
import type { PromptCatalog } from '../catalog/prompts.js';
import type { RegistrationHandle } from '../catalog/registry.js';
import type { ResourceCatalog } from '../catalog/resources.js';
import type { ToolCatalog } from '../catalog/tools.js';
import type { CompletionManager } from '../completions/manager.js';
import { ABANDONED_BODY, type LimitedRead, readBodyLimited } from '../core/bodyLimit.js';
import { McpKitError, type McpKitErrorCode, quote } from '../core/errors.js';
import { restPage } from '../core/paginate.js';
import type { Refusal } from '../core/refusal.js';
import { JsonDepthError, parseJsonBytes } from '../core/safeJson.js';
import { eventStreamResponse, openEventStream } from '../core/sse.js';
import {
  chainStepTools,
  compileDeclarativeTool,
  type DeclarativeToolOptions,
  type DeclarativeToolSpec,
} from '../declarative.js';
import type { ToolExecutor } from '../execution/executor.js';
import { ERROR_META_KEY } from '../execution/results.js';
import type { IntegrationManager } from '../integrations/manager.js';
import {
  FULL_GRANT,
  type Grant,
  type Permission,
  PROMPTS_VIEW,
  RESOURCES_VIEW,
  type TargetKind,
  TOOLS_VIEW,
  visibleItems,
} from '../policy/permissions.js';
import type { Operation, Policy, RequestFacts } from '../policy/policy.js';
import { type RateClass, rateLimitHeaders } from '../policy/rateLimit.js';
import type { Shares } from '../policy/shares.js';
import { MAX_NAME_LENGTH, type Target } from '../policy/targets.js';
import { restPrompt, restResource, type SharedEntries } from '../state/catalogEntries.js';
import type { CatalogEntryKind } from '../state/shared.js';
import type { HealthChecks } from '../telemetry/health.js';
import type { LogRing } from '../telemetry/logs.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { UsageMeter, UsageReport, UsageWindow } from '../telemetry/usage.js';
import type { CallerIdentity, Logger } from '../types.js';
import { restRefusal } from './answers.js';
import { departureOf, setPlainHeader, textResponse } from './bodyText.js';
import type { DocsPage } from './docs.js';
import { buildOpenApi } from './openapi.js';
import { json, problem, problemFromError } from './problem.js';
import { completionRoutes } from './routes/completions.js';
import { integrationRoutes } from './routes/integrations.js';

/** What the REST routes need from the server. */
export interface RestHost {
  readonly info: { name: string; version: string; title?: string };
  readonly tools: ToolCatalog;
  readonly resources: ResourceCatalog;
  readonly prompts: PromptCatalog;
  readonly executor: ToolExecutor;
  readonly logger: Logger;
  readonly declarative: DeclarativeToolOptions;
  readonly startedAt: number;
  readonly metrics: MetricsRegistry;
  readonly logs: LogRing;
  readonly health: HealthChecks;
  /** Usage analytics, for `GET /usage`; without it that route answers 404. */
  readonly usage?: UsageMeter;
  /** With a shared state: the report of every node's usage, which `GET /usage` answers instead. */
  readonly usageReport?: (options: Parameters<UsageMeter['report']>[0]) => Promise<UsageReport>;
  summary(httpSessions: number): Record<string, unknown>;
  /** Persisted integrations, for `/integrations`; without them those routes answer 404. */
  readonly integrations?: IntegrationManager;
  /** Completion jobs, for `/completions`; without them those routes answer 404. */
  readonly completions?: CompletionManager;
  /** Authentication, permissions, rate limits and audit; absent when nothing is configured. */
  readonly policy?: Policy;
  /** Streams held open per caller (with the policy on): SSE routes take one while they stream. */
  readonly streams?: Shares;
  /** The MCP endpoint's path below the mount point, for the index's link. Default `/mcp`. */
  readonly mcpPath?: string;
  /** The `/docs` page; without it (`docs: false`) its routes answer 404. */
  readonly docs?: DocsPage;
  /** Live 2025-era HTTP sessions, which the HTTP handler holds. */
  readonly httpSessions?: () => number;
  /** With a shared state: the entries written over REST, kept the same on every node. */
  readonly sharedEntries?: SharedEntries;
}

/** One REST request, parsed just enough for the routes. */
export interface RestContext {
  readonly request: Request;
  readonly url: URL;
  readonly params: Record<string, string>;
  readonly requestId: string;
  readonly caller: CallerIdentity | undefined;
  /** What the caller may see and do (unrestricted without a policy). */
  readonly grant: Grant;
  /** The request's facts for audit, when a policy is configured. */
  readonly facts: RequestFacts | undefined;
  /** The JSON body: 415 for another content type, 413 past the limit, 400 for bad JSON. */
  body(): Promise<unknown>;
  /**
   * Refuses (403, or 400 for a name no catalog could hold) unless the caller may use every entry in
   * `targets` and holds `permission`: for entries a request names in its body. Entries named in the
   * path are checked before the handler runs, from the route's `target`.
   */
  require(targets: readonly Target[], permission?: Permission): void;
  /**
   * Takes one of the caller's stream shares for a response that stays open (SSE): the function
   * that gives it back once the stream ends. Refuses (429) a caller holding its whole share.
   */
  holdStream(): () => void;
}

interface RouteDefinition {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The path pattern: `/tools/:name/execute`. */
  path: string;
  /** OpenAPI summary. */
  summary: string;
  /** Query and header parameters, for the OpenAPI document only (the handler reads them). */
  parameters?: ReadonlyArray<{
    name: string;
    in: 'query' | 'header';
    description: string;
    schema: Record<string, unknown>;
  }>;
  handler(ctx: RestContext, host: RestHost): Promise<Response> | Response;
}

/**
 * Who may call a route and what it costs, declared beside its handler: a public route (no
 * credential, no cost), or the permission it needs, the rate class it pays one token of, and the
 * catalog entry its path names (checked for visibility, in every spelling, before the handler runs).
 */
export type RouteAccess =
  | { readonly public: true }
  | {
      readonly permission: Permission;
      readonly rate: RateClass;
      readonly target?: { readonly kind: TargetKind; readonly param: string };
    };

/** A REST route: method, path, its access declaration and its handler. */
export type Route = RouteDefinition & RouteAccess;

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new McpKitError('INVALID_ARGUMENT', `${what} must be an object`);
  return value as Record<string, unknown>;
}

function optionalPositive(value: unknown, what: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new McpKitError('INVALID_ARGUMENT', `${what} must be a number from 1 to ${max}`);
  }
  return value;
}

/** Maps a tool result that failed to the HTTP status of its error code, if the failure is the request's. */
const RESULT_STATUS: Partial<Record<McpKitErrorCode, McpKitErrorCode>> = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  TIMEOUT: 'TIMEOUT',
  BUSY: 'BUSY',
  CANCELLED: 'CANCELLED',
  FORBIDDEN: 'FORBIDDEN',
  RATE_LIMITED: 'RATE_LIMITED',
};

function executeResponse(result: CallToolResult, durationMs: number, requestId: string): Response {
  const meta = result._meta?.[ERROR_META_KEY] as { code?: McpKitErrorCode; issues?: unknown } | undefined;
  const mapped = result.isError && meta?.code ? RESULT_STATUS[meta.code] : undefined;
  if (mapped) {
    const text = result.content.find((c) => c.type === 'text');
    return problem(mapped, text?.type === 'text' ? text.text : mapped, {
      requestId: requestId,
      fields: { ...(meta?.issues !== undefined && { issues: meta.issues }), durationMs },
    });
  }
  return json({ ...result, durationMs });
}

function toolOr404(host: RestHost, name: string): Tool {
  const tool = host.tools.get(name);
  if (!tool) throw new McpKitError('NOT_FOUND', `Tool ${quote(name)} not found`);
  return tool.descriptor;
}

/** Runs a catalog mutation on behalf of the caller, so its audit event names them. */
function act<T>(ctx: RestContext, host: RestHost, change: () => T): T {
  return host.policy && ctx.facts ? host.policy.asActor(ctx.facts, change) : change();
}

/**
 * The executor options of calls a route makes on the caller's behalf (a batch, a chain): each call
 * is checked as the caller and pays one `execute` token, the first out of the token the request
 * itself paid to be admitted.
 */
function onBehalf(ctx: RestContext) {
  return {
    signal: departureOf(ctx.request),
    origin: 'rest' as const,
    requestId: ctx.requestId,
    ...(ctx.facts?.address !== undefined && { clientAddress: ctx.facts.address }),
    ...(ctx.caller && { caller: ctx.caller }),
    meter: { credit: 1 },
  };
}

/**
 * Registers an entry a REST body describes: on every node with a shared state (stored first, so of
 * two nodes adding one name exactly one succeeds), else here.
 */
async function addEntry(
  ctx: RestContext,
  host: RestHost,
  entry: { kind: CatalogEntryKind; name: string; spec: unknown; register: () => RegistrationHandle },
): Promise<void> {
  const register = () => act(ctx, host, entry.register);
  try {
    if (host.sharedEntries) await host.sharedEntries.add(entry, register);
    else register();
  } catch (error) {
    if (error instanceof TypeError) throw new McpKitError('INVALID_ARGUMENT', error.message);
    throw error;
  }
}

/**
 * Removes an entry: from every node with a shared state, where only entries added over REST may be
 * removed over REST (one registered in code is registered by every node's own code: 409).
 */
async function removeEntry(
  ctx: RestContext,
  host: RestHost,
  entry: { kind: CatalogEntryKind; name: string; remove: () => boolean },
): Promise<boolean> {
  const { kind, name, remove } = entry;
  const shared = host.sharedEntries;
  if (!shared) return act(ctx, host, remove);
  const here =
    kind === 'tools' ? host.tools.get(name) : kind === 'prompts' ? host.prompts.get(name) : undefined;
  const inCode =
    !shared.has(kind, name) &&
    (here !== undefined || (kind === 'resources' && host.resources.resolve(name) !== undefined));
  if (inCode) {
    throw new McpKitError(
      'CONFLICT',
      `${quote(name)} was not added over REST: with shared state, every node registers it in code, so it is removed there`,
    );
  }
  return shared.remove(kind, name, () => act(ctx, host, remove));
}

function created(body: unknown, location: string): Response {
  return json(body, 201, { location });
}

/** The REST routes, in match order. */
export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/',
    // What /openapi.json, the document it leads to, needs: name and version are not for anyone.
    permission: 'tools:read',
    rate: 'read',
    summary: 'Index: name, version and links to the MCP endpoint, the OpenAPI document and health',
    handler: (ctx, host) => {
      // The index answers at the mount point itself: its path, without trailing slashes, is the base.
      const base = ctx.url.pathname.replace(/\/+$/, '');
      return json({
        name: host.info.name,
        version: host.info.version,
        ...(host.info.title !== undefined && { title: host.info.title }),
        links: {
          mcp: `${base}${host.mcpPath ?? '/mcp'}`,
          openapi: `${base}/openapi.json`,
          health: `${base}/health`,
        },
      });
    },
  },
  {
    method: 'GET',
    path: '/health',
    public: true,
    summary: 'Liveness and readiness (503 when a readiness check fails)',
    handler: async (_ctx, host) => {
      const report = await host.health.report();
      return json(report, report.status === 'ok' ? 200 : 503, { 'cache-control': 'no-store' });
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    permission: 'admin:read',
    rate: 'read',
    summary: 'Prometheus metrics (JSON with Accept: application/json)',
    handler: (ctx, host) => {
      const accept = ctx.request.headers.get('accept') ?? '';
      if (/application\/json/.test(accept) && !/text\/plain/.test(accept)) return json(host.metrics.toJSON());
      return textResponse(host.metrics.render(), {
        headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' },
      });
    },
  },
  {
    method: 'GET',
    path: '/logs',
    permission: 'admin:read',
    rate: 'read',
    summary: 'Recent structured logs (?level=&since=&limit=&requestId=)',
    handler: (ctx, host) => {
      const q = ctx.url.searchParams;
      const level = q.get('level') ?? undefined;
      if (level !== undefined && !['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(level)) {
        throw new McpKitError(
          'INVALID_ARGUMENT',
          'level must be one of trace, debug, info, warn, error, fatal',
        );
      }
      const sinceParam = q.get('since');
      const since =
        sinceParam === null
          ? undefined
          : /^\d+$/.test(sinceParam)
            ? Number(sinceParam)
            : Date.parse(sinceParam);
      if (since !== undefined && Number.isNaN(since)) {
        throw new McpKitError('INVALID_ARGUMENT', 'since must be epoch milliseconds or an ISO date');
      }
      const limitParam = q.get('limit');
      const limit = limitParam === null ? 100 : Number(limitParam);
      if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) {
        throw new McpKitError('INVALID_ARGUMENT', 'limit must be 1-1000');
      }
      const requestId = q.get('requestId') ?? undefined;
      return json({
        items: host.logs.query({
          ...(level !== undefined && { level }),
          ...(since !== undefined && { since }),
          limit,
          ...(requestId !== undefined && { requestId }),
        }),
      });
    },
  },
  {
    method: 'GET',
    path: '/summary',
    permission: 'admin:read',
    rate: 'read',
    summary: 'Counts, sessions and cache statistics',
    handler: (_ctx, host) => json(host.summary(host.httpSessions?.() ?? 0)),
  },
  {
    method: 'GET',
    path: '/usage',
    permission: 'admin:read',
    rate: 'read',
    summary:
      'Calls, errors, p50/p95 duration and model tokens per caller, tool and model (?window=hour|day|start&limit=)',
    handler: async (ctx, host) => {
      if (!host.usage) throw new McpKitError('NOT_FOUND', 'Usage analytics are not kept by this server');
      const q = ctx.url.searchParams;
      const windows = q.getAll('window').flatMap((w) => w.split(','));
      for (const w of windows) {
        if (!['hour', 'day', 'start'].includes(w))
          throw new McpKitError('INVALID_ARGUMENT', 'window must be hour, day or start');
      }
      const limitParam = q.get('limit');
      const limit = limitParam === null ? 100 : Number(limitParam);
      if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) {
        throw new McpKitError('INVALID_ARGUMENT', 'limit must be 1-1000');
      }
      const options = {
        limit,
        ...(windows.length > 0 && { windows: [...new Set(windows)] as UsageWindow[] }),
      };
      const report = host.usageReport ? await host.usageReport(options) : host.usage.report(options);
      return json(report, 200, { 'cache-control': 'no-store' });
    },
  },
  {
    method: 'GET',
    path: '/audit',
    permission: 'admin:read',
    rate: 'read',
    summary: 'Recent audit events (?action=&callerId=&outcome=&limit=), from a MemoryAuditSink',
    handler: (ctx, host) => {
      const sink = host.policy?.audit.memory;
      if (!sink) throw new McpKitError('NOT_FOUND', 'No in-memory audit sink is configured');
      const q = ctx.url.searchParams;
      const limitParam = q.get('limit');
      const limit = limitParam === null ? 100 : Number(limitParam);
      if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) {
        throw new McpKitError('INVALID_ARGUMENT', 'limit must be 1-1000');
      }
      const filter = (name: string) => q.get(name) ?? undefined;
      return json({
        items: sink.events({
          ...(filter('action') !== undefined && { action: filter('action') }),
          ...(filter('callerId') !== undefined && { callerId: filter('callerId') }),
          ...(filter('outcome') !== undefined && { outcome: filter('outcome') }),
          limit,
        }),
      });
    },
  },
  {
    method: 'GET',
    path: '/openapi.json',
    permission: 'tools:read',
    rate: 'read',
    summary: 'This API as OpenAPI 3.1',
    handler: (ctx, host) =>
      json(buildOpenApi(host, ROUTES, { url: ctx.url, visible: (name) => ctx.grant.canSee('tools', name) })),
  },
  {
    method: 'GET',
    path: '/docs',
    // The page and its files hold nothing of the server's: the document they show needs a key.
    public: true,
    summary: 'An interactive reference of this API (Swagger UI, served locally)',
    handler: (ctx, host) => {
      if (!host.docs) throw new McpKitError('NOT_FOUND', 'The docs page is turned off');
      const base = ctx.url.pathname.replace(/\/docs\/*$/, '');
      return host.docs.page(base, host.info.title ?? host.info.name);
    },
  },
  {
    method: 'GET',
    path: '/docs/:file',
    public: true,
    summary: 'A file of the docs page (its script and style sheet)',
    handler: (ctx, host) => {
      if (!host.docs) throw new McpKitError('NOT_FOUND', 'The docs page is turned off');
      return host.docs.asset(ctx.params.file ?? '', ctx.request.headers.get('if-none-match'));
    },
  },
  {
    method: 'GET',
    path: '/tools',
    permission: 'tools:read',
    rate: 'read',
    summary: 'List tools',
    handler: (ctx, host) =>
      json(restPage(visibleItems(ctx.grant, TOOLS_VIEW, host.tools.list()), ctx.url.searchParams)),
  },
  {
    method: 'POST',
    path: '/tools',
    permission: 'tools:manage',
    rate: 'manage',
    summary: 'Register a declarative tool (http or chain)',
    handler: async (ctx, host) => {
      const spec = (await ctx.body()) as DeclarativeToolSpec;
      let definition: ReturnType<typeof compileDeclarativeTool>;
      try {
        definition = compileDeclarativeTool(spec, host.declarative);
        ctx.require([{ kind: 'tools', name: definition.name }]);
        // A chain runs its steps as whoever calls it; its author must be able to run each of them too.
        const steps = chainStepTools(spec);
        if (steps.length > 0) {
          ctx.require(
            steps.map((name) => ({ kind: 'tools', name })),
            'tools:execute',
          );
        }
      } catch (error) {
        if (error instanceof TypeError) throw new McpKitError('INVALID_ARGUMENT', error.message);
        throw error;
      }
      await addEntry(ctx, host, {
        kind: 'tools',
        name: definition.name,
        spec,
        register: () => host.tools.register(definition),
      });
      return created(toolOr404(host, definition.name), `tools/${encodeURIComponent(definition.name)}`);
    },
  },
  {
    method: 'POST',
    path: '/tools/batch',
    permission: 'tools:execute',
    rate: 'execute',
    summary: 'Run tool calls in parallel',
    handler: async (ctx, host) => {
      const body = asObject(await ctx.body(), 'body');
      if (!Array.isArray(body.calls) || body.calls.length === 0 || body.calls.length > 1000) {
        throw new McpKitError('INVALID_ARGUMENT', 'calls must be an array of 1 to 1000 { tool, arguments }');
      }
      const calls = body.calls.map((call: unknown, i: number) => {
        const c = asObject(call, `calls[${i}]`);
        if (typeof c.tool !== 'string' || c.tool.length > MAX_NAME_LENGTH) {
          throw new McpKitError(
            'INVALID_ARGUMENT',
            `calls[${i}].tool must be a tool name (a string of at most ${MAX_NAME_LENGTH} characters)`,
          );
        }
        return { tool: c.tool, args: asObject(c.arguments, `calls[${i}].arguments`) };
      });
      const concurrency = optionalPositive(body.concurrency, 'concurrency', 256);
      const started = performance.now();
      const results = await host.executor.parallel(calls, {
        ...(concurrency !== undefined && { concurrency: Math.floor(concurrency) }),
        failFast: body.failFast === true,
        ...onBehalf(ctx),
      });
      return json({ results, durationMs: performance.now() - started });
    },
  },
  {
    method: 'POST',
    path: '/tools/chain',
    permission: 'tools:execute',
    rate: 'execute',
    summary: 'Run a chain of tools',
    handler: async (ctx, host) => {
      const body = asObject(await ctx.body(), 'body');
      if (!Array.isArray(body.steps) || body.steps.length === 0 || body.steps.length > 100) {
        throw new McpKitError('INVALID_ARGUMENT', 'steps must be an array of 1 to 100 { tool, args, name? }');
      }
      const steps = body.steps.map((step: unknown, i: number) => {
        const s = asObject(step, `steps[${i}]`);
        if (typeof s.tool !== 'string' || s.tool.length > MAX_NAME_LENGTH) {
          throw new McpKitError(
            'INVALID_ARGUMENT',
            `steps[${i}].tool must be a tool name (a string of at most ${MAX_NAME_LENGTH} characters)`,
          );
        }
        return {
          tool: s.tool,
          ...(typeof s.name === 'string' && { name: s.name }),
          args: asObject(s.args, `steps[${i}].args`),
        };
      });
      const result = await host.executor.chain(steps, body.input ?? {}, {
        continueOnError: body.continueOnError === true,
        ...onBehalf(ctx),
      });
      return json(result);
    },
  },
  {
    method: 'GET',
    path: '/tools/:name',
    permission: 'tools:read',
    rate: 'read',
    target: { kind: 'tools', param: 'name' },
    summary: 'Describe a tool',
    handler: (ctx, host) => json(toolOr404(host, ctx.params.name!)),
  },
  {
    method: 'DELETE',
    path: '/tools/:name',
    permission: 'tools:manage',
    rate: 'manage',
    target: { kind: 'tools', param: 'name' },
    summary: 'Remove a tool',
    handler: async (ctx, host) => {
      const name = ctx.params.name!;
      if (
        !(await removeEntry(ctx, host, { kind: 'tools', name: name, remove: () => host.tools.remove(name) }))
      )
        throw new McpKitError('NOT_FOUND', `Tool ${quote(ctx.params.name)} not found`);
      return new Response(null, { status: 204 });
    },
  },
  {
    method: 'POST',
    path: '/tools/:name/execute',
    permission: 'tools:execute',
    rate: 'execute',
    target: { kind: 'tools', param: 'name' },
    summary: 'Execute a tool',
    handler: async (ctx, host) => {
      const body = asObject(await ctx.body(), 'body');
      const timeoutMs = optionalPositive(body.timeoutMs, 'timeoutMs', 3_600_000);
      const started = performance.now();
      const result = await host.executor.execute(ctx.params.name!, asObject(body.arguments, 'arguments'), {
        signal: departureOf(ctx.request),
        origin: 'rest',
        requestId: ctx.requestId,
        // The route admitted the tool its path names for this caller.
        admitted: true,
        ...(ctx.facts?.address !== undefined && { clientAddress: ctx.facts.address }),
        ...(timeoutMs !== undefined && { timeoutMs }),
        ...(ctx.caller && { caller: ctx.caller }),
      });
      return executeResponse(result, performance.now() - started, ctx.requestId);
    },
  },
  {
    method: 'GET',
    path: '/resources',
    permission: 'resources:read',
    rate: 'read',
    summary: 'List resources',
    handler: async (ctx, host) => {
      const all: Resource[] = await host.resources.list({ signal: ctx.request.signal });
      return json(restPage(visibleItems(ctx.grant, RESOURCES_VIEW, all), ctx.url.searchParams));
    },
  },
  {
    method: 'POST',
    path: '/resources',
    permission: 'resources:manage',
    rate: 'manage',
    summary: 'Register a resource with fixed content',
    handler: async (ctx, host) => {
      const spec = await ctx.body();
      const definition = restResource(spec);
      const uri = definition.uri;
      ctx.require([{ kind: 'resources', name: uri }]);
      await addEntry(ctx, host, {
        kind: 'resources',
        name: uri,
        spec,
        register: () => host.resources.register(definition),
      });
      const listed = host.resources.listStatic().find((r) => r.uri === uri);
      return created(listed, `resources/${encodeURIComponent(uri)}`);
    },
  },
  {
    method: 'GET',
    path: '/resources/:uri',
    permission: 'resources:read',
    rate: 'read',
    target: { kind: 'resources', param: 'uri' },
    summary: 'Read a resource (through the cache)',
    handler: async (ctx, host) => {
      return json(
        await host.resources.read(ctx.params.uri!, {
          signal: ctx.request.signal,
          ...(ctx.caller && { caller: ctx.caller }),
        }),
      );
    },
  },
  {
    method: 'DELETE',
    path: '/resources/:uri',
    permission: 'resources:manage',
    rate: 'manage',
    target: { kind: 'resources', param: 'uri' },
    summary: 'Remove a resource or template',
    handler: async (ctx, host) => {
      const uri = ctx.params.uri!;
      if (
        !(await removeEntry(ctx, host, {
          kind: 'resources',
          name: uri,
          remove: () => host.resources.remove(uri),
        }))
      )
        throw new McpKitError('NOT_FOUND', `Resource ${quote(ctx.params.uri)} not found`);
      return new Response(null, { status: 204 });
    },
  },
  {
    method: 'POST',
    path: '/resources/:uri/subscribe',
    permission: 'resources:read',
    rate: 'read',
    target: { kind: 'resources', param: 'uri' },
    summary: 'Stream update events for a resource (text/event-stream)',
    handler: (ctx, host) => {
      const uri = ctx.params.uri!;
      if (!host.resources.resolve(uri))
        throw new McpKitError('NOT_FOUND', `Resource ${quote(uri)} not found`);
      const release = ctx.holdStream();
      let stop = () => {};
      const events = openEventStream({
        onEnd: () => {
          stop();
          release();
        },
      });
      events.send('subscribed', { uri });
      stop = host.resources.subscribe(uri, (updated) => events.send('updated', { uri: updated }));
      if (events.closed) stop();
      const { signal } = ctx.request;
      if (signal.aborted) events.close();
      else signal.addEventListener('abort', () => events.close(), { once: true });
      return eventStreamResponse(events.stream);
    },
  },
  {
    method: 'GET',
    path: '/prompts',
    permission: 'prompts:read',
    rate: 'read',
    summary: 'List prompts',
    handler: (ctx, host) =>
      json(restPage(visibleItems(ctx.grant, PROMPTS_VIEW, host.prompts.list()), ctx.url.searchParams)),
  },
  {
    method: 'POST',
    path: '/prompts',
    permission: 'prompts:manage',
    rate: 'manage',
    summary: 'Register a template prompt',
    handler: async (ctx, host) => {
      const body = restPrompt(await ctx.body());
      if (typeof body.name === 'string') ctx.require([{ kind: 'prompts', name: body.name }]);
      await addEntry(ctx, host, {
        kind: 'prompts',
        name: String(body.name),
        spec: body,
        register: () => host.prompts.register(body as never),
      });
      return created(host.prompts.get(String(body.name)), `prompts/${encodeURIComponent(String(body.name))}`);
    },
  },
  {
    method: 'GET',
    path: '/prompts/:name',
    permission: 'prompts:read',
    rate: 'read',
    target: { kind: 'prompts', param: 'name' },
    summary: 'Describe a prompt',
    handler: (ctx, host) => {
      const prompt: Prompt | undefined = host.prompts.get(ctx.params.name!);
      if (!prompt) throw new McpKitError('NOT_FOUND', `Prompt ${quote(ctx.params.name)} not found`);
      return json(prompt);
    },
  },
  {
    method: 'POST',
    path: '/prompts/:name/generate',
    permission: 'prompts:read',
    rate: 'read',
    target: { kind: 'prompts', param: 'name' },
    summary: 'Render a prompt with validated arguments',
    handler: async (ctx, host) => {
      const body = asObject(await ctx.body(), 'body');
      const rendered = await host.prompts.render(ctx.params.name!, asObject(body.arguments, 'arguments'), {
        signal: ctx.request.signal,
        ...(ctx.caller && { caller: ctx.caller }),
      });
      return json(rendered);
    },
  },
  {
    method: 'DELETE',
    path: '/prompts/:name',
    permission: 'prompts:manage',
    rate: 'manage',
    target: { kind: 'prompts', param: 'name' },
    summary: 'Remove a prompt',
    handler: async (ctx, host) => {
      const name = ctx.params.name!;
      if (
        !(await removeEntry(ctx, host, {
          kind: 'prompts',
          name: name,
          remove: () => host.prompts.remove(name),
        }))
      )
        throw new McpKitError('NOT_FOUND', `Prompt ${quote(ctx.params.name)} not found`);
      return new Response(null, { status: 204 });
    },
  },
  ...integrationRoutes,
  ...completionRoutes,
];

type CompiledRoute = Route & {
  readonly segments: string[];
  /** The operation the policy admits: `METHOD /path`, its permission and rate class. */
  readonly operation: Operation | undefined;
};

const COMPILED: CompiledRoute[] = ROUTES.map((r) => ({
  ...r,
  segments: r.path.split('/').slice(1),
  operation:
    'public' in r ? undefined : { name: `${r.method} ${r.path}`, permission: r.permission, rate: r.rate },
}));

/** The operation of a matched route: its declaration, with the entry its path names. */
function operationOf(route: CompiledRoute, params: Record<string, string>): Operation | undefined {
  const operation = route.operation;
  if (!operation || 'public' in route || !route.target) return operation;
  const name = params[route.target.param];
  if (name === undefined) return operation;
  // Built as a literal: a spread costs more than the rest of the admission of a small request.
  return {
    name: operation.name,
    permission: operation.permission,
    rate: operation.rate,
    targets: [{ kind: route.target.kind, name }],
  };
}

/** Finds the route for `path`; `allowed` lists the methods of routes whose path matched. */
export function matchRoute(
  method: string,
  segments: string[],
): { route?: CompiledRoute; params: Record<string, string>; allowed: string[] } {
  const allowed: string[] = [];
  for (const route of COMPILED) {
    if (route.segments.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < segments.length; i++) {
      const pattern = route.segments[i]!;
      const actual = segments[i]!;
      if (pattern.startsWith(':')) {
        if (actual === '') {
          ok = false;
          break;
        }
        params[pattern.slice(1)] = actual;
      } else if (pattern !== actual) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    if (route.method === method || (method === 'HEAD' && route.method === 'GET'))
      return { route, params, allowed };
    allowed.push(route.method);
  }
  return { params: {}, allowed };
}

/**
 * Whether `relative` (the path below the mount point, still encoded) is a route anyone may reach
 * without a credential: the table's `public` routes (`GET /health`, the `/docs` page and its files).
 *
 * @example
 * ```ts
 * isPublicRoute('GET', '/health'); // true
 * isPublicRoute('GET', '/tools'); // false
 * ```
 */
export function isPublicRoute(method: string, relative: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const segments = relative.split('/').slice(1);
  if (segments.at(-1) === '' && segments.length > 1) segments.pop();
  const { route } = matchRoute(method, segments);
  return route !== undefined && 'public' in route;
}

/** How large a request body may be, and how long it may take to arrive (the HTTP options). */
export interface BodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  /** How deep the JSON may nest. Default 64. */
  maxJsonDepth?: number;
}

/** One REST request as the HTTP handler hands it over. */
export interface RestExchange {
  request: Request;
  url: URL;
  /** The path below the mount point, split on `/`, still encoded. */
  segments: string[];
  requestId: string;
  /** Where the matched route's pattern is reported (for metrics and spans). */
  out?: { route: string };
  /** What the admission pipeline learnt, with a policy. */
  facts?: RequestFacts | undefined;
}

/** Serves one REST request. */
export async function serveRest(
  exchange: RestExchange,
  host: RestHost,
  limits: BodyLimits,
): Promise<Response> {
  const { request, segments, requestId, out = { route: '' }, facts } = exchange;
  let decoded: string[];
  try {
    decoded = segments.map((s) => decodeURIComponent(s));
  } catch {
    return problem('INVALID_REQUEST', 'The path is not valid percent-encoding', { requestId });
  }
  const { route, params, allowed } = matchRoute(request.method, decoded);
  out.route = route?.path ?? 'unmatched';
  if (!route) {
    if (allowed.length > 0) {
      return problem('METHOD_NOT_ALLOWED', `Use ${allowed.join(', ')}`, {
        requestId: requestId,
        headers: { allow: [...new Set(allowed)].join(', ') },
      });
    }
    return problem('NOT_FOUND', 'No such route', { requestId });
  }
  const produces =
    route.path.endsWith('/subscribe') || route.path.endsWith('/stream')
      ? ['text/event-stream']
      : route.path === '/metrics'
        ? ['text/plain', 'application/json']
        : ['application/json'];
  const accept = request.headers.get('accept');
  if (accept && !produces.some((type) => acceptable(accept, type))) {
    return problem('NOT_ACCEPTABLE', `This route answers ${produces.join(' or ')}`, { requestId });
  }
  let rateHeaders: Record<string, string> | undefined;
  const policy = host.policy;
  let operation: Operation | undefined;
  if (policy && facts) {
    operation = operationOf(route, params);
    if (operation) {
      const pending = policy.admit(operation, facts);
      const decision = pending instanceof Promise ? await pending : pending;
      if (!decision.ok) return restRefusal(decision.refusal, requestId);
      if (decision.rate) {
        rateHeaders = rateLimitHeaders(decision.rate.cls, decision.rate.rule, decision.rate.decision);
      }
    }
  }
  const ctx = new RestRequest(exchange, { params, host, limits, name: operation?.name ?? route.path });
  let response: Response;
  try {
    response = await route.handler(ctx, host);
  } catch (error) {
    if (!(error instanceof McpKitError)) host.logger.error({ err: error, requestId }, 'REST handler failed');
    response = problemFromError(error, requestId);
  }
  if (rateHeaders) for (const [name, value] of Object.entries(rateHeaders)) setHeader(response, name, value);
  // The backup routes record their own events (integration.export, integration.import).
  if (
    policy &&
    facts &&
    route.method !== 'GET' &&
    route.path.startsWith('/integrations') &&
    route.path !== '/integrations/import'
  ) {
    policy.record(facts, {
      action: 'integration.change',
      outcome: response.ok ? 'success' : 'failure',
      target: params.id === undefined ? '(new)' : quote(params.id),
      details: { method: route.method, status: response.status },
    });
  }
  return response;
}

const NOTHING_HELD = () => {};

/** One REST request as its route's handler sees it. */
class RestRequest implements RestContext {
  readonly caller: CallerIdentity | undefined;
  readonly grant: Grant;
  readonly #host: RestHost;
  readonly #limits: BodyLimits;
  readonly #name: string;

  readonly request: Request;
  readonly url: URL;
  readonly params: Record<string, string>;
  readonly requestId: string;
  readonly facts: RequestFacts | undefined;

  constructor(
    { request, url, requestId, facts }: RestExchange,
    {
      params,
      host,
      limits,
      name,
    }: { params: Record<string, string>; host: RestHost; limits: BodyLimits; name: string },
  ) {
    this.request = request;
    this.url = url;
    this.params = params;
    this.requestId = requestId;
    this.facts = facts;
    this.#host = host;
    this.#limits = limits;
    this.#name = name;
    this.caller = facts?.caller;
    this.grant = host.policy ? host.policy.grantOf(this.caller) : FULL_GRANT;
  }

  body(): Promise<unknown> {
    return readJson(this.request, this.#limits);
  }

  require(targets: readonly Target[], permission?: Permission): void {
    const policy = this.#host.policy;
    if (!policy || !this.facts) return;
    // No rate class: the request paid once to be admitted; this only checks what its body names.
    const decision = policy.admit({ name: this.#name, permission, targets }, this.facts);
    if (!(decision instanceof Promise) && !decision.ok) throw refusalError(decision.refusal);
  }

  holdStream(): () => void {
    const { policy, streams } = this.#host;
    if (!policy || !this.facts || !streams) return NOTHING_HELD;
    const release = streams.take(policy.shareKey(this.facts));
    if (release) return release;
    throw new McpKitError(
      'RATE_LIMITED',
      `Too many open streams for this caller (limit ${streams.limit}); close one first`,
      { details: { retryAfterSeconds: 5, limit: streams.limit } },
    );
  }
}

/** A refusal of something a request's body names, thrown from a handler: answered as a problem. */
function refusalError(refusal: Refusal): McpKitError {
  return new McpKitError(refusal.code, refusal.message);
}

/** Sets a header where the response allows it (responses built here always do). */
function setHeader(response: Response, name: string, value: string): void {
  if (setPlainHeader(response, name, value)) return;
  try {
    response.headers.set(name, value);
  } catch {
    // an immutable response from elsewhere keeps its headers
  }
}

function acceptable(accept: string, type: string): boolean {
  const [major] = type.split('/');
  return accept.split(',').some((part) => {
    const media = part.split(';')[0]!.trim().toLowerCase();
    return (
      media === type || media === '*/*' || media === `${major}/*` || media === 'application/problem+json'
    );
  });
}

async function readJson(
  request: Request,
  { maxBodyBytes, bodyTimeoutMs, maxJsonDepth }: BodyLimits,
): Promise<unknown> {
  const type = request.headers.get('content-type');
  const contentLength = request.headers.get('content-length');
  if (type === null && (contentLength === null || contentLength === '0') && request.body === null)
    return undefined;
  if (!type || !/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(type)) {
    throw new McpKitError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json');
  }
  let read: LimitedRead;
  try {
    read = await readBodyLimited(request, maxBodyBytes, bodyTimeoutMs);
  } catch (error) {
    throw new McpKitError('INVALID_REQUEST', 'The body could not be read', { cause: error });
  }
  if (read.tooLarge) {
    throw new McpKitError('PAYLOAD_TOO_LARGE', `The body is larger than ${maxBodyBytes} bytes`, {
      cause: ABANDONED_BODY,
    });
  }
  if (read.timedOut) {
    throw new McpKitError('REQUEST_TIMEOUT', `The body did not arrive within ${bodyTimeoutMs} ms`, {
      cause: ABANDONED_BODY,
    });
  }
  return parseJson(read.bytes, maxJsonDepth);
}

/** The body as JSON, without prototype-pollution keys (`__proto__`, `constructor.prototype`). */
function parseJson(bytes: Uint8Array, maxDepth: number | undefined): unknown {
  if (bytes.byteLength === 0) return undefined;
  try {
    return parseJsonBytes(bytes, maxDepth);
  } catch (error) {
    if (error instanceof JsonDepthError)
      throw new McpKitError('INVALID_REQUEST', `The body nests deeper than ${error.maxDepth} levels`);
    throw new McpKitError('INVALID_REQUEST', 'The body is not valid JSON');
  }
}
