/**
 * One SDK `Server` bound to the shared catalog (`createSessionServer`): the low-level handlers of every
 * MCP method, each traced, the per-call context a tool's handler sees, and list answers filtered by
 * what the caller may see. Size: the handlers are one table of the MCP methods mcpkit serves, kept
 * together so that what a method does on the wire can be read in one place.
 */
import {
  type CallToolRequest,
  type CallToolResult,
  type CompleteRequest,
  type GetPromptRequest,
  type Implementation,
  isInputRequiredResult,
  type ListPromptsRequest,
  type ListResourcesRequest,
  type ListResourceTemplatesRequest,
  type ListToolsRequest,
  MissingRequiredClientCapabilityError,
  ProtocolError,
  ProtocolErrorCode,
  type ReadResourceRequest,
  type RequestMethod,
  type RequestTypeMap,
  ResourceNotFoundError,
  type Server,
  type ServerCapabilities,
  type ServerContext,
  SUPPORTED_PROTOCOL_VERSIONS,
  type SubscribeRequest,
  type UnsubscribeRequest,
} from '@modelcontextprotocol/server';
import type { EventEmitter } from 'eventemitter3';
import { z } from 'zod';
import type { PromptCatalog } from '../catalog/prompts.js';
import type { Completer, ResourceCatalog } from '../catalog/resources.js';
import type { CallOrigin, ClientLog, RegisteredTool, ToolCatalog } from '../catalog/tools.js';
import { McpKitError, publicErrorMessage, quote, toMcpKitError } from '../core/errors.js';
import { cutPage } from '../core/paginate.js';
import type { ToolExecutor } from '../execution/executor.js';
import type { ExecuteOptions } from '../execution/options.js';
import type { UpstreamLogEvent } from '../integrations/types.js';
import {
  FULL_GRANT,
  type Grant,
  type ListView,
  PROMPTS_VIEW,
  RESOURCES_VIEW,
  TEMPLATES_VIEW,
  TOOLS_VIEW,
  visibleItems,
} from '../policy/permissions.js';
import { type Policy, type RequestFacts, requestFacts } from '../policy/policy.js';
import { isTaskContinuation, type TaskWork } from '../tasks/continuation.js';
import {
  type StartTaskOptions,
  TASKS_EXTENSION_ID,
  type TaskManager,
  type TaskSnapshot,
} from '../tasks/manager.js';
import { createTaskResult, declaresTasks, detailedTask, TASKS_REQUIRED_CAPABILITIES } from '../tasks/wire.js';
import {
  globalTracing,
  SPAN_KIND,
  type SpanAttributes,
  type SpanLike,
  type Tracing,
} from '../telemetry/tracing.js';
import type { CallerIdentity, Logger } from '../types.js';
import { CatalogServer } from './fastServer.js';
import type { McpMethodName } from './methods.js';
import { type SharedHandler, type SharedHandlers, serveShared } from './sharedHandlers.js';
import { isStable, markStable } from './wireJson.js';

/** Catalog change events every live session listens to. */
export interface CatalogEvents {
  toolsChanged: () => void;
  resourcesChanged: () => void;
  promptsChanged: () => void;
  resourceUpdated: (uri: string) => void;
  /** An upstream's log message that belongs to no one call (the gateway): for sessions that used it. */
  upstreamLog: (event: UpstreamLogEvent) => void;
}

/** What a session needs from the server that hosts it. */
export interface SessionHost {
  readonly info: Implementation;
  readonly instructions: string | undefined;
  readonly tools: ToolCatalog;
  readonly resources: ResourceCatalog;
  readonly prompts: PromptCatalog;
  readonly executor: ToolExecutor;
  readonly logger: Logger;
  readonly events: EventEmitter<CatalogEvents>;
  /** Page size for list results; `undefined` returns every item in one page. */
  readonly pageSize: number | undefined;
  /** Cap on completion values returned. */
  readonly maxCompletions: number;
  /** The task runtime; absent when the tasks extension is turned off. */
  readonly tasks?: TaskManager;
  /** Where request spans go. Default: the global OpenTelemetry registration, if any. */
  readonly tracing?: Tracing;
  /** Permissions, rate limits and audit; absent when nothing is configured. */
  readonly policy?: Policy;
}

/** The first protocol revision of the stateless (per-request envelope) era: the one mcpkit serves. */
export const MODERN_REVISION = '2026-07-28';

/**
 * What a modern-era instance supports: the 2025 revisions and the modern one. The SDK's HTTP entry
 * adds the modern revision to every instance it serves; naming it at construction lets a transport
 * of the SDK's per-request type bind a long-lived instance to the modern era too.
 */
const MODERN_ERA_VERSIONS = [...SUPPORTED_PROTOCOL_VERSIONS, MODERN_REVISION];

/** How the instance will be served. */
export interface SessionOptions {
  era: 'legacy' | 'modern';
  origin: CallOrigin;
  /**
   * `true` for an instance that lives as long as a connection or session: it forwards catalog
   * changes and resource updates. Per-request instances (HTTP modern era, stateless) leave that to
   * the HTTP handler's event bus.
   */
  live: boolean;
  /** The caller, when the policy layer identified one. */
  caller?: CallerIdentity;
  /** The client's network address (connection-oriented transports), for rate limits and audit. */
  clientAddress?: string;
  /** Called once when the instance closes. */
  onClose?: () => void;
  /**
   * Called with a request's id once its handler has really finished (for `tools/call`, the tool's
   * own handler, which may outlive a cancelled or timed-out call): a connection holds a cancelled
   * request's in-flight slot until then.
   */
  onRequestSettled?: (id: string | number) => void;
}

/** The capabilities every mcpkit session advertises: exactly the handlers registered below. */
export const SERVER_CAPABILITIES: ServerCapabilities = {
  tools: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  prompts: { listChanged: true },
  completions: {},
  logging: {},
};

/** What a modern-era session advertises when the tasks extension is on. */
const TASKS_CAPABILITIES: ServerCapabilities = {
  ...SERVER_CAPABILITIES,
  extensions: { [TASKS_EXTENSION_ID]: {} },
};

const TaskIdParams = z.looseObject({ taskId: z.string() });
// The SDK lifts `inputResponses` out of the params into `ctx.mcpReq.inputResponses`.
const TaskUpdateParams = z.looseObject({
  taskId: z.string(),
  inputResponses: z.record(z.string(), z.unknown()).optional(),
});

function toProtocolError(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  const e = toMcpKitError(error);
  return new ProtocolError(e.jsonRpcCode, publicErrorMessage(e), e.details);
}

/** Pages already cut from a stable list, so each page is one stable array too. */
const pages = new WeakMap<readonly unknown[], Map<number, unknown[]>>();

/**
 * The page a list request's cursor names (cut by the core paginator); each page of a stable list is
 * one stable array too.
 */
function paginate<T>(items: readonly T[], cursor: string | undefined, pageSize: number | undefined) {
  const bounds = cutPage(items.length, cursor, pageSize);
  if (!bounds) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid cursor: ${quote(cursor)}`);
  const { start, end, nextCursor } = bounds;
  if (pageSize === undefined && start === 0) return { page: items as T[], nextCursor: undefined };
  // Only the pages the server hands out cursors for are kept (at most the list itself, once over):
  // a cursor a client made up is served, not remembered.
  const issued = pageSize !== undefined && start % pageSize === 0;
  if (!issued || !isStable(items)) return { page: items.slice(start, end), nextCursor };
  let cut = pages.get(items);
  if (!cut) {
    cut = new Map();
    pages.set(items, cut);
  }
  let page = cut.get(start) as T[] | undefined;
  if (!page) {
    page = markStable(items.slice(start, end));
    cut.set(start, page);
  }
  return { page, nextCursor };
}

/**
 * What `grant` may see of a catalog's listed array. Both are stable (the catalog's array until it
 * changes, the filtered one cached per grant), so list answers serialise their items once.
 */
function visibleList<T extends U, U>(grant: Grant, view: ListView<U>, listed: readonly T[]) {
  return markStable(visibleItems(grant, view, markStable(listed)));
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function clientLog(ctx: ServerContext): ClientLog {
  const send = (level: 'debug' | 'info' | 'warning' | 'error') => (data: unknown, logger?: string) =>
    ctx.mcpReq.log(level, data, logger).catch(() => {});
  return { debug: send('debug'), info: send('info'), warning: send('warning'), error: send('error') };
}

/**
 * The handler context with `elicitInput` and `requestSampling` bound to the request being handled.
 * The SDK sends them as server-level requests, which a Streamable HTTP session delivers on the
 * standalone GET stream, or drops when the client has not opened that stream yet; related to the
 * call, they ride the call's own response stream, as the spec recommends.
 */
function relatedContext(ctx: ServerContext): ServerContext {
  const related = { relatedRequestId: ctx.mcpReq.id };
  return {
    ...ctx,
    mcpReq: {
      ...ctx.mcpReq,
      elicitInput: (params, options) => ctx.mcpReq.elicitInput(params, { ...related, ...options }),
      requestSampling: (params, options) => ctx.mcpReq.requestSampling(params, { ...related, ...options }),
    },
  };
}

/**
 * Per-call executor options for an MCP `tools/call`: what costs something to build (the client log,
 * the related-request context, the progress sink) is built only when the handler reaches for it.
 */
class McpCallOptions implements ExecuteOptions {
  readonly signal: AbortSignal;
  readonly requestId: string | number;
  readonly httpRequestId: string | undefined;
  readonly clientAddress: string | undefined;
  readonly sessionId: string | undefined;
  readonly caller: CallerIdentity | undefined;
  readonly origin: CallOrigin;
  readonly onProgress: ExecuteOptions['onProgress'];
  acceptTaskContinuation: boolean | undefined;
  onSettled: (() => void) | undefined;
  /** The MCP gate admitted the call for its caller when there is a policy (it sees every request). */
  readonly admitted: boolean;
  /** The `tools/call` request's span, which the tool's execution reports into. */
  readonly span: SpanLike | undefined;
  readonly #ctx: ServerContext;
  readonly #server: Server;
  readonly #modern: boolean;
  #log: ClientLog | undefined;
  #mcp: ServerContext | undefined;

  constructor(binding: Binding, request: ToolCallRequest) {
    const { server, options } = binding;
    const { ctx, progressToken, span } = request;
    // The MCP gate admitted the call at the door when there is a policy (it sees every request).
    const admittedAtDoor = binding.host.policy !== undefined;
    this.#ctx = ctx;
    this.#server = server;
    this.#modern = options.era === 'modern';
    this.signal = ctx.mcpReq.signal;
    this.requestId = clientIdOf(server, ctx.mcpReq.id);
    const facts = ctx.http?.req ? httpFacts(ctx) : undefined;
    this.httpRequestId = facts?.requestId;
    this.clientAddress = clientAddressOf(ctx, options);
    this.sessionId = ctx.sessionId;
    this.caller = callerOf(ctx, options.caller);
    this.admitted = admittedAtDoor;
    this.origin = options.origin;
    this.span = span;
    if (progressToken !== undefined) {
      this.onProgress = (progress, total, message) =>
        ctx.mcpReq.notify({
          method: 'notifications/progress',
          params: {
            progressToken,
            progress,
            ...(total !== undefined && { total }),
            ...(message !== undefined && { message }),
          },
        });
    }
  }

  /**
   * The capabilities the client declared at initialisation (2025 era). None on the 2026-07-28 era,
   * which has no server-to-client requests: `ctx.sample` answers `UNAVAILABLE` there, whichever
   * server (shared or per request) serves the call.
   */
  clientCapabilities(): ReturnType<Server['getClientCapabilities']> {
    return this.#modern ? undefined : this.#server.getClientCapabilities();
  }

  get log(): ClientLog {
    this.#log ??= clientLog(this.#ctx);
    return this.#log;
  }

  get mcp(): ServerContext {
    this.#mcp ??= relatedContext(this.#ctx);
    return this.#mcp;
  }
}

const MAX_URI_ATTRIBUTE = 1024;

/** `network.transport` and `network.protocol.name` of the OpenTelemetry MCP conventions, by origin. */
const NETWORK: Partial<Record<CallOrigin, [transport: string, protocol?: string]>> = {
  stdio: ['pipe'],
  http: ['tcp', 'http'],
  websocket: ['tcp', 'websocket'],
};

/**
 * The attributes of an MCP request's server span (OpenTelemetry MCP conventions): the method, the
 * request and session ids, the transport, the caller, and what the request is about. Assigned one
 * by one: the OpenTelemetry SDK handles a spread-built object more slowly.
 */
function requestAttributes(
  { options, server }: Binding,
  {
    method,
    params,
    ctx,
  }: { method: string; params: { name?: unknown; uri?: unknown } | undefined; ctx: ServerContext },
): SpanAttributes {
  const attributes: SpanAttributes = {
    'mcp.method.name': method,
    'jsonrpc.request.id': String(clientIdOf(server, ctx.mcpReq.id)),
    'mcpkit.origin': options.origin,
  };
  if (ctx.sessionId !== undefined) attributes['mcp.session.id'] = ctx.sessionId;
  const address = clientAddressOf(ctx, options);
  if (address !== undefined) attributes['client.address'] = address;
  const network = NETWORK[options.origin];
  if (network) {
    attributes['network.transport'] = network[0];
    if (network[1]) attributes['network.protocol.name'] = network[1];
  }
  const caller = callerOf(ctx, options.caller);
  if (caller) attributes['mcpkit.caller.id'] = caller.id;
  if (method === 'tools/call' && typeof params?.name === 'string') {
    attributes['gen_ai.operation.name'] = 'execute_tool';
    attributes['gen_ai.tool.name'] = params.name;
  } else if (method === 'prompts/get' && typeof params?.name === 'string') {
    attributes['gen_ai.prompt.name'] = params.name;
  } else if (typeof params?.uri === 'string') {
    // A URI the client made up is bounded before it reaches a span.
    attributes['mcp.resource.uri'] =
      params.uri.length > MAX_URI_ATTRIBUTE ? params.uri.slice(0, MAX_URI_ATTRIBUTE) : params.uri;
  }
  return attributes;
}

/** One SDK server bound to its host, as the handlers registered on it see it. */
interface Binding {
  readonly host: SessionHost;
  readonly options: SessionOptions;
  readonly server: Server;
}

/** A handler to trace: its method, and whether it is registered in the SDK's custom-method form. */
interface TracedHandler<TInput> {
  method: McpMethodName;
  handler: SessionHandler<TInput>;
  custom?: boolean;
}

/** What one `tools/call` brings: its context, its progress token and its span. */
interface ToolCallRequest {
  ctx: ServerContext;
  progressToken: string | number | undefined;
  span: SpanLike | undefined;
}

/** A tool to start as a task, for the call that asked. */
interface TaskStart {
  tool: RegisteredTool;
  args: unknown;
  call: McpCallOptions;
  ctx: ServerContext;
  work?: TaskWork<any>;
}

/**
 * `handler` in a SERVER span named after its MCP method and target (`tools/call add`, `prompts/get
 * review`, `resources/read`), with the attributes of the OpenTelemetry MCP conventions. Its parent is
 * the trace context in the request's `params._meta` when there is one (the HTTP request's span is
 * then a link), else the active span (on HTTP, the HTTP request's). `custom` says the handler is
 * registered in the SDK's custom-method form, which hands it the params themselves.
 */
function traced<TInput>(
  session: Session,
  { method, handler, custom = false }: TracedHandler<TInput>,
): (input: TInput, ctx: ServerContext) => any {
  // `tools/call` reports its end itself: its tool's handler can outlive the request.
  const settled = method === 'tools/call' ? undefined : session.options.onRequestSettled;
  // One closure per handler and server, made when the server's client first calls the method.
  const call: TracedCall<TInput> = { session, method, handler, custom };
  if (!settled) return (input, ctx) => runTraced(call, input, ctx);
  return (input, ctx) => {
    const id = ctx.mcpReq.id;
    try {
      const result = runTraced(call, input, ctx);
      if (isPromiseLike(result)) {
        result.then(
          () => settled(id),
          () => settled(id),
        );
      } else settled(id);
      return result;
    } catch (error) {
      settled(id);
      throw error;
    }
  };
}

/** A traced handler as {@link runTraced} runs it: what {@link traced} was given. */
interface TracedCall<TInput> {
  readonly session: Session;
  readonly method: McpMethodName;
  readonly handler: SessionHandler<TInput>;
  readonly custom: boolean;
}

/** Runs `handler` for one request, in its span when tracing is on (see {@link traced}). */
function runTraced<TInput>(call: TracedCall<TInput>, input: TInput, ctx: ServerContext): unknown {
  const { session, method, handler, custom } = call;
  const { host } = session;
  const tracing = host.tracing ?? globalTracing;
  // Untraced, the handler is served the call itself: it holds the session.
  if (!tracing.enabled) return handler(call, input, ctx);
  const params = (custom ? input : (input as { params?: unknown } | undefined)?.params) as
    | { name?: unknown; uri?: unknown; _meta?: unknown }
    | undefined;
  const target = spanTarget(host, method, params);
  const remote = tracing.extractMeta(params?._meta);
  return tracing.span(
    target === undefined ? method : `${method} ${target}`,
    (span) => handler({ session, span }, input, ctx),
    {
      kind: SPAN_KIND.SERVER,
      ...(remote && { parent: remote.parent, links: remote.links }),
      attributes: () => requestAttributes(session, { method, params, ctx }),
    },
  );
}

/**
 * The low-cardinality target in a request span's name: a registered tool's or prompt's name (a
 * name a client made up stays out of span names, which backends index).
 */
function spanTarget(host: SessionHost, method: string, params: { name?: unknown } | undefined) {
  const name = params?.name;
  if (typeof name !== 'string') return undefined;
  if (method === 'tools/call') return host.tools.has(name) ? name : undefined;
  if (method === 'prompts/get') return host.prompts.has(name) ? name : undefined;
  return undefined;
}

/** What the HTTP door learnt about the request carrying `ctx`, if it came over HTTP. */
function httpFacts(ctx: ServerContext): RequestFacts | undefined {
  const req = ctx.http?.req;
  return req ? requestFacts.get(req) : undefined;
}

/**
 * The id the client sent for request `id`: a transport that serves some requests under private ids
 * (a repeated id in a session, every request of the shared stateless server) says which.
 */
function clientIdOf(server: Server, id: string | number): string | number {
  const transport = server.transport as { clientIdOf?(id: string | number): string | number | undefined };
  return transport?.clientIdOf?.(id) ?? id;
}

function callerOf(ctx: ServerContext, fallback: CallerIdentity | undefined): CallerIdentity | undefined {
  if (fallback) return fallback;
  const facts = httpFacts(ctx);
  if (facts) return facts.caller;
  const auth = ctx.http?.authInfo;
  return auth ? { id: auth.clientId, authInfo: auth } : undefined;
}

/** The client's address: what the HTTP door learnt, or the connection's. */
function clientAddressOf(ctx: ServerContext, options: SessionOptions): string | undefined {
  return (ctx.http?.req ? httpFacts(ctx)?.address : undefined) ?? options.clientAddress;
}

/** A session's own state, beside its binding: made when its handlers first need it. */
interface Session extends Binding {
  /** 2025-era resource subscriptions of a live session, by URI: each one's stop. */
  subscriptions?: Map<string, () => void>;
  /**
   * The gateway's upstreams this live 2025-era session has called: their log messages outside calls
   * come here too (a modern-era client has no channel for messages outside its requests).
   */
  usedUpstreams?: Set<string>;
}

/** The tasks runtime a session serves: the tasks extension (SEP-2663) lives on the 2026-07-28 wire only. */
function tasksOf({ host, options }: Binding): TaskManager | undefined {
  return options.era === 'modern' ? host.tasks : undefined;
}

/** What a handler of the shared table serves: its session, and the request's span when traced. */
interface Served {
  readonly session: Session;
  readonly span?: SpanLike | undefined;
}

/** A handler of the shared table. */
type SessionHandler<TInput> = (served: Served, input: TInput, ctx: ServerContext) => unknown;

/** Each host's handler tables, without and with the tasks methods; made at its first session. */
const tables = new WeakMap<
  SessionHost,
  { plain?: SharedHandlers<Session>; tasks?: SharedHandlers<Session> }
>();

function tableOf(host: SessionHost, withTasks: boolean): SharedHandlers<Session> {
  let entry = tables.get(host);
  if (!entry) {
    entry = {};
    tables.set(host, entry);
  }
  if (withTasks) {
    entry.tasks ??= buildTable(host, true);
    return entry.tasks;
  }
  entry.plain ??= buildTable(host, false);
  return entry.plain;
}

/**
 * The handlers of every MCP method mcpkit serves, once per host (and tasks extension): each is
 * given its session, so no session carries handlers of its own until its client uses a method.
 */
function buildTable(host: SessionHost, withTasks: boolean): SharedHandlers<Session> {
  const table = new Map<string, SharedHandler<Session>>();
  /** Serves spec method `method` with `handler`, traced, on each server whose client calls it. */
  const serve = <M extends RequestMethod & McpMethodName>(
    method: M,
    handler: SessionHandler<RequestTypeMap[M]>,
  ) =>
    table.set(method, {
      install: (server, s) => server.setRequestHandler(method, traced(s, { method, handler })),
    });
  /** Serves a tasks method (params checked by `params`), installed with each server. */
  const serveCustom = <P extends typeof TaskIdParams>(
    method: McpMethodName,
    params: P,
    handler: SessionHandler<z.output<P>>,
  ) =>
    table.set(method, {
      custom: true,
      install: (server, s) =>
        server.setRequestHandler(method, { params }, traced(s, { method, handler, custom: true }) as never),
    });
  // Admission (permissions, visibility of the entries a request names, rate limits) happened at the
  // door, before the SDK dispatched the request; handlers only filter lists by what the caller sees.
  const policy = host.policy;
  /** The grant of the caller behind `ctx`: unrestricted without a policy or a caller. */
  const grantOf = (s: Session, ctx: ServerContext): Grant =>
    policy ? policy.grantOf(callerOf(ctx, s.options.caller)) : FULL_GRANT;
  const { tools, resources, prompts, executor } = host;

  /** Starts `tool` as a task and answers with its `CreateTaskResult`. */
  const startTask = async (
    tasks: TaskManager,
    { tool, args, call, ctx, work }: TaskStart,
  ): Promise<CallToolResult> => {
    try {
      const options: StartTaskOptions = {
        tool,
        args,
        execute: {
          requestId: call.requestId,
          origin: call.origin,
          ...(call.sessionId !== undefined && { sessionId: call.sessionId }),
          ...(call.caller && { caller: call.caller }),
        },
        mcp: ctx,
        ...(call.caller && { owner: call.caller.id }),
        // With a policy, anonymous callers count per client address, like every other share.
        ...(policy && {
          share: policy.shareKey({
            caller: call.caller,
            ...(call.clientAddress !== undefined && { address: call.clientAddress }),
          }),
        }),
        ...(work && { work }),
      };
      // With a shared store the task is recorded there before its id is handed out.
      const task = tasks.shared ? await tasks.begin(options) : tasks.start(options);
      return createTaskResult(task) as unknown as CallToolResult;
    } catch (error) {
      throw toProtocolError(error);
    }
  };

  const listTools: SessionHandler<ListToolsRequest> = ({ session: s }, request, ctx) => {
    const listed = visibleList(grantOf(s, ctx), TOOLS_VIEW, tools.list());
    const { page, nextCursor } = paginate(listed, request.params?.cursor, host.pageSize);
    return nextCursor === undefined ? { tools: page } : { tools: page, nextCursor };
  };
  serve('tools/list', listTools);

  const callTool: SessionHandler<CallToolRequest> = async ({ session: s, span }, request, ctx) => {
    const { server, options } = s;
    const settled = options.onRequestSettled;
    const tasks = tasksOf(s);
    // Whether the executor reports the end of the tool's handler; otherwise it is reported here.
    let handed = false;
    try {
      const { name, arguments: args, _meta } = request.params;
      const tool = tools.get(name);
      if (!tool) {
        throw new ProtocolError(
          ProtocolErrorCode.InvalidParams,
          tools.has(name) ? `Tool ${quote(name)} disabled` : `Tool ${quote(name)} not found`,
        );
      }
      if (options.live && options.era === 'legacy') noteUpstream(s, tool);
      const call = new McpCallOptions(s, { ctx, progressToken: _meta?.progressToken, span });
      if (tool.task) {
        const declared = tasks !== undefined && declaresTasks(ctx);
        if (!declared && tool.task.support === 'required') {
          throw new MissingRequiredClientCapabilityError(
            { requiredCapabilities: TASKS_REQUIRED_CAPABILITIES },
            `Tool ${name} runs only as a task: the request must declare the ${TASKS_EXTENSION_ID} extension`,
          );
        }
        if (declared && tool.task.start === 'call') return await startTask(tasks, { tool, args, call, ctx });
        call.acceptTaskContinuation = declared;
      }
      if (settled) {
        const id = ctx.mcpReq.id;
        call.onSettled = () => settled(id);
        handed = true;
      }
      const result = await executor.executeTool(tool, args, call);
      if (isTaskContinuation(result)) {
        // Only a call that accepted a continuation (a declared tasks extension) gets one back.
        return await startTask(tasks!, { tool, args, call, ctx, work: result.work });
      }
      if (isInputRequiredResult(result)) return result;
      return server.projectCallToolResult(result, tool.output?.jsonSchema);
    } finally {
      if (settled && !handed) settled(ctx.mcpReq.id);
    }
  };
  table.set('tools/call', {
    install: (server, s) => server.setToolCallHandler(traced(s, { method: 'tools/call', handler: callTool })),
  });

  const listResources: SessionHandler<ListResourcesRequest> = async ({ session: s }, request, ctx) => {
    const fixed = resources.fixedList();
    const all = fixed
      ? visibleList(grantOf(s, ctx), RESOURCES_VIEW, fixed)
      : visibleItems(grantOf(s, ctx), RESOURCES_VIEW, await resources.list({ signal: ctx.mcpReq.signal }));
    const { page, nextCursor } = paginate(all, request.params?.cursor, host.pageSize);
    return nextCursor === undefined ? { resources: page } : { resources: page, nextCursor };
  };
  serve('resources/list', listResources);

  const listTemplates: SessionHandler<ListResourceTemplatesRequest> = ({ session: s }, request, ctx) => {
    const listed = visibleList(grantOf(s, ctx), TEMPLATES_VIEW, resources.listTemplates());
    const { page, nextCursor } = paginate(listed, request.params?.cursor, host.pageSize);
    return nextCursor === undefined ? { resourceTemplates: page } : { resourceTemplates: page, nextCursor };
  };
  serve('resources/templates/list', listTemplates);

  const readResource: SessionHandler<ReadResourceRequest> = async ({ session: s }, request, ctx) => {
    const { uri } = request.params;
    const caller = callerOf(ctx, s.options.caller);
    try {
      return await resources.read(uri, {
        signal: ctx.mcpReq.signal,
        ...(ctx.sessionId !== undefined && { sessionId: ctx.sessionId }),
        ...(caller && { caller }),
      });
    } catch (error) {
      if (error instanceof McpKitError && error.code === 'NOT_FOUND') {
        // Named back only as a short prefix, in the message and in `data.uri` alike.
        throw new ResourceNotFoundError(quote(uri), `Resource not found: ${quote(uri)}`);
      }
      host.logger.error({ uri, err: error }, 'resource read failed');
      throw toProtocolError(error);
    }
  };
  serve('resources/read', readResource);

  const subscribe: SessionHandler<SubscribeRequest> = ({ session: s }, request) => {
    const { uri } = request.params;
    // A per-request instance has nowhere to deliver updates later; only live ones track them.
    if (!s.options.live) return {};
    s.subscriptions ??= new Map();
    if (!s.subscriptions.has(uri)) {
      const { server } = s;
      s.subscriptions.set(
        uri,
        resources.subscribe(uri, () => {
          server.sendResourceUpdated({ uri }).catch(() => {});
        }),
      );
    }
    return {};
  };
  serve('resources/subscribe', subscribe);

  const unsubscribe: SessionHandler<UnsubscribeRequest> = ({ session: s }, request) => {
    const { uri } = request.params;
    s.subscriptions?.get(uri)?.();
    s.subscriptions?.delete(uri);
    return {};
  };
  serve('resources/unsubscribe', unsubscribe);

  const listPrompts: SessionHandler<ListPromptsRequest> = ({ session: s }, request, ctx) => {
    const listed = visibleList(grantOf(s, ctx), PROMPTS_VIEW, prompts.list());
    const { page, nextCursor } = paginate(listed, request.params?.cursor, host.pageSize);
    return nextCursor === undefined ? { prompts: page } : { prompts: page, nextCursor };
  };
  serve('prompts/list', listPrompts);

  const getPrompt: SessionHandler<GetPromptRequest> = async ({ session: s }, request, ctx) => {
    const caller = callerOf(ctx, s.options.caller);
    try {
      return await prompts.render(request.params.name, request.params.arguments, {
        signal: ctx.mcpReq.signal,
        ...(ctx.sessionId !== undefined && { sessionId: ctx.sessionId }),
        ...(caller && { caller }),
        mcp: relatedContext(ctx),
      });
    } catch (error) {
      if (!(error instanceof McpKitError))
        host.logger.error({ prompt: request.params.name, err: error }, 'prompt failed');
      throw toProtocolError(error);
    }
  };
  serve('prompts/get', getPrompt);

  const complete: SessionHandler<CompleteRequest> = async ({ session: s }, request, ctx) => {
    const { ref, argument, context } = request.params;
    const caller = callerOf(ctx, s.options.caller);
    let completer: Completer | undefined;
    let template: string | undefined;
    if (ref.type === 'ref/prompt') {
      if (!prompts.get(ref.name))
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Prompt ${quote(ref.name)} not found`);
      completer = prompts.completer(ref.name, argument.name);
    } else if (ref.type === 'ref/resource') {
      const found = resources.hasReference(ref.uri);
      if (!found) {
        throw new ProtocolError(
          ProtocolErrorCode.InvalidParams,
          `Resource template ${quote(ref.uri)} not found`,
        );
      }
      completer = resources.completer(ref.uri, argument.name);
      if (found === 'template') template = ref.uri;
    } else {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid completion reference');
    }
    if (!completer) return { completion: { values: [], hasMore: false } };
    let values: string[];
    try {
      const produced = await completer(argument.value, {
        ...(context?.arguments && { arguments: context.arguments }),
        ...(caller && { caller }),
      });
      values = Array.isArray(produced) ? produced.map(String) : [];
    } catch (error) {
      host.logger.error({ err: error }, 'completion failed');
      throw toProtocolError(error);
    }
    // A value is suggested only when the resource it completes is one the caller may read.
    if (template !== undefined && policy && caller) {
      const grant = policy.grantOf(caller);
      if (!grant.unrestricted) {
        values = values.filter((value) =>
          policy.canSee(
            caller,
            'resources',
            resources.expand(template, { ...context?.arguments, [argument.name]: value }),
          ),
        );
      }
    }
    const max = host.maxCompletions;
    return {
      completion: { values: values.slice(0, max), total: values.length, hasMore: values.length > max },
    };
  };
  serve('completion/complete', complete);

  if (withTasks) {
    const findTask = async (s: Session, taskId: string, ctx: ServerContext) => {
      const tasks = host.tasks!;
      if (!declaresTasks(ctx)) {
        throw new MissingRequiredClientCapabilityError(
          { requiredCapabilities: TASKS_REQUIRED_CAPABILITIES },
          `Task methods need the ${TASKS_EXTENSION_ID} extension declared in the request's client capabilities`,
        );
      }
      let task: TaskSnapshot | undefined;
      try {
        // On this node, or (with a shared store) on the node that runs it.
        task = tasks.shared ? await tasks.find(taskId) : tasks.get(taskId);
      } catch (error) {
        throw toProtocolError(error);
      }
      // Another caller's task is as unknown as a task that never existed.
      if (!task || task.owner !== callerOf(ctx, s.options.caller)?.id) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown task: ${quote(taskId)}`);
      }
      return task;
    };
    const getTask: SessionHandler<z.infer<typeof TaskIdParams>> = async ({ session: s }, params, ctx) => {
      const task = await findTask(s, params.taskId, ctx);
      const outputSchema = tools.get(task.tool)?.output?.jsonSchema;
      return detailedTask(task, (result) => s.server.projectCallToolResult(result, outputSchema));
    };
    serveCustom('tasks/get', TaskIdParams, getTask);
    const updateTask: SessionHandler<z.infer<typeof TaskUpdateParams>> = async (
      { session: s },
      params,
      ctx,
    ) => {
      const tasks = host.tasks!;
      const task = await findTask(s, params.taskId, ctx);
      const answers = params.inputResponses ?? ctx.mcpReq.inputResponses ?? {};
      if (!tasks.shared) tasks.update(task.taskId, answers);
      else if (
        !(await tasks.updateAnywhere(task.taskId, answers).catch((e) => Promise.reject(toProtocolError(e))))
      ) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown task: ${quote(task.taskId)}`);
      }
      return {};
    };
    serveCustom('tasks/update', TaskUpdateParams, updateTask);
    const cancelTask: SessionHandler<z.infer<typeof TaskIdParams>> = async ({ session: s }, params, ctx) => {
      const tasks = host.tasks!;
      const task = await findTask(s, params.taskId, ctx);
      if (!tasks.shared) tasks.cancel(task.taskId);
      else await tasks.cancelAnywhere(task.taskId).catch((e) => Promise.reject(toProtocolError(e)));
      return {};
    };
    serveCustom('tasks/cancel', TaskIdParams, cancelTask);
  }
  return table;
}

/** Notes the integration of an upstream tool (the gateway's) a live 2025-era session calls. */
function noteUpstream(s: Session, tool: RegisteredTool): void {
  const meta = tool.definition._meta;
  const id = meta?.['io.mcpkit/upstream'] ? meta['io.mcpkit/integration'] : undefined;
  if (typeof id !== 'string') return;
  s.usedUpstreams ??= new Set();
  s.usedUpstreams.add(id);
}

/**
 * Each host's live sessions, told of catalog changes by one listener per event and host (made at
 * its first live session) rather than by listeners of their own.
 */
const liveSessions = new WeakMap<SessionHost, Set<Session>>();

function liveSessionsOf(host: SessionHost): Set<Session> {
  let sessions = liveSessions.get(host);
  if (sessions) return sessions;
  const live = new Set<Session>();
  sessions = live;
  liveSessions.set(host, live);
  host.events.on('toolsChanged', () => {
    for (const { server } of live) void server.sendToolListChanged().catch(() => {});
  });
  host.events.on('resourcesChanged', () => {
    for (const { server } of live) void server.sendResourceListChanged().catch(() => {});
  });
  host.events.on('promptsChanged', () => {
    for (const { server } of live) void server.sendPromptListChanged().catch(() => {});
  });
  // On a modern-era connection the SDK's listen router filters updates per subscription, so the
  // instance forwards every update; on a legacy one, resources/subscribe above chooses.
  host.events.on('resourceUpdated', (uri: string) => {
    for (const { server, options } of live) {
      if (options.era === 'modern') void server.sendResourceUpdated({ uri }).catch(() => {});
    }
  });
  // Sent at the client's logging/setLevel threshold (the SDK's `sendLoggingMessage` checks it).
  host.events.on('upstreamLog', ({ id, level, logger, data }: UpstreamLogEvent) => {
    for (const { server, usedUpstreams } of live) {
      if (!usedUpstreams?.has(id)) continue;
      void server.sendLoggingMessage({ level, logger, data }, server.transport?.sessionId).catch(() => {});
    }
  });
  return live;
}

/**
 * Builds one SDK `Server` bound to the shared catalog. The SDK refuses to connect one instance to
 * two transports, so every connection, session or per-request exchange gets its own; they share
 * everything else, their request handlers included (src/protocol/sharedHandlers.ts): a server
 * installs a method's handler when its client first calls the method.
 */
export function createSessionServer(host: SessionHost, options: SessionOptions): Server {
  const withTasks = options.era === 'modern' && host.tasks !== undefined;
  const server = new CatalogServer(host.info, {
    capabilities: withTasks ? TASKS_CAPABILITIES : SERVER_CAPABILITIES,
    ...(options.era === 'modern' && { supportedProtocolVersions: MODERN_ERA_VERSIONS }),
    ...(host.instructions !== undefined && { instructions: host.instructions }),
  });
  const session: Session = { host, options, server };
  serveShared(server, tableOf(host, withTasks), session);
  if (options.live) {
    const live = liveSessionsOf(host);
    live.add(session);
    let closed = false;
    const previous = server.onclose;
    server.onclose = () => {
      previous?.();
      if (closed) return;
      closed = true;
      live.delete(session);
      if (session.subscriptions) for (const stop of session.subscriptions.values()) stop();
      session.subscriptions = undefined;
      options.onClose?.();
    };
  }
  return server;
}
