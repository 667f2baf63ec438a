import {
  type AuthInfo,
  createMcpHandler,
  type EventStore,
  isJsonContentType,
  isLegacyRequest,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  type McpHttpHandler,
  type Server,
  type ServerNotifier,
} from '@modelcontextprotocol/server';
import type EventEmitter from 'eventemitter3';
import { DEFAULT_BODY_TIMEOUT_MS, readBodyLimited } from '../core/bodyLimit.js';
import { checkTrustProxy, type TrustProxy } from '../core/forwarded.js';
import { normalisePath } from '../core/paths.js';
import { type Refusal, refuse } from '../core/refusal.js';
import { JsonDepthError, MAX_JSON_DEPTH, parseJsonSafe } from '../core/safeJson.js';
import { metadataUrlFor } from '../policy/auth.js';
import { PERMISSIONS } from '../policy/permissions.js';
import { type Policy, type RateState, type RequestFacts, requestFacts } from '../policy/policy.js';
import { rateLimitHeaders } from '../policy/rateLimit.js';
import { Shares } from '../policy/shares.js';
import { admitRequest, isWireRequest, type RefusedMessage, refusedMessage } from '../protocol/gate.js';
import type { CatalogEvents } from '../protocol/session.js';
import type { HttpMetrics } from '../telemetry/standard.js';
import {
  globalTracing,
  markError,
  SPAN_KIND,
  type SpanAttributes,
  type Tracing,
} from '../telemetry/tracing.js';
import type { CallerIdentity, Logger } from '../types.js';
import { RequestAdmission, type RequestAdmitted } from './admission.js';
import { mcpMessageRefusals, mcpRequestRefusal, restRefusal } from './answers.js';
import { answerFor } from './bodyText.js';
import { EventBytes, MemoryEventStore } from './eventStore.js';
import { JSONRPC_INTERNAL_ERROR, JSONRPC_PARSE_ERROR, jsonRpcError } from './jsonrpc.js';
import { settleAnswer } from './lazyAnswer.js';
import { type LoadShedder, overloadRefusal, type ShedDoor } from './overload.js';
import { JSONRPC_HEADER_MISMATCH, paramHeaderMismatch } from './paramHeaders.js';
import { problem } from './problem.js';
import { type RestHost, serveRest } from './rest.js';
import { LegacySessions } from './sessions.js';
import { isPlainJsonRpc } from './sessionTransport.js';
import { isSharedStatelessRequest, StatelessTransport } from './statelessTransport.js';

/** The first protocol revision of the stateless (per-request envelope) era. */
const FIRST_MODERN_VERSION = '2026-07-28';

/** HTTP options of `createMcpServer`. */
export interface HttpOptions {
  /** Path prefix the handler is mounted under in `server.fetch` (adapters set this). Default `""`. */
  basePath?: string;
  /** Path of the MCP endpoint, relative to `basePath`. Default `/mcp`. */
  mcpPath?: string;
  /**
   * Serve 2025-era clients without sessions (every request stands alone; no GET stream, no DELETE).
   * Default `false`: 2025-era clients get sessions.
   */
  stateless?: boolean;
  /** Largest accepted request body in bytes. Default 4 MiB. */
  maxBodyBytes?: number;
  /**
   * How long a request body may take to arrive whole, in ms, from when it is first read. A body
   * still arriving after that gets 408 (a JSON-RPC error on the MCP endpoint, a problem on the REST
   * routes) and the rest of it is not read: under `listen()` or an adapter the connection is closed
   * once the answer is out. Default 30 000.
   */
  bodyTimeoutMs?: number;
  /** Cap on live 2025-era sessions; past it `initialize` gets 503. Default 1000. */
  maxSessions?: number;
  /** Close a 2025-era session after this long without a request or open stream. Default 30 min. */
  sessionIdleTimeoutMs?: number;
  /**
   * Host header values (hostnames, no port) accepted. Default: loopback names only
   * (`localhost`, `127.0.0.1`, `[::1]`), which makes DNS rebinding fail. `'any'` turns the check off.
   */
  allowedHosts?: readonly string[] | 'any';
  /** Origin hostnames accepted from browsers. Default: loopback only. `'any'` turns the check off. */
  allowedOrigins?: readonly string[] | 'any';
  /**
   * Always answer POSTs with plain JSON, dropping what would precede the result (progress, log
   * messages). Default `false`: a POST is answered with JSON unless something must go out before
   * its result, and then with an SSE stream.
   */
  jsonResponse?: boolean;
  /**
   * Resumable 2025-era SSE streams (SEP-1699): every event gets an id, and a client whose stream
   * dropped reconnects with `Last-Event-ID` to receive what it missed. `'memory'` keeps each
   * session's latest events in memory, bounded by bytes: 1 MiB per session and 64 MiB for all
   * sessions together (`{ maxBytesPerSession, maxBytes }` sets them); a session's events go when it
   * closes. A function returns the store for each new session (one store per session: stream ids
   * repeat across sessions; a store with `close()` has it called when its session ends).
   * Default `false`.
   */
  eventStore?: false | 'memory' | MemoryEventStoreLimits | (() => EventStore);
  /**
   * The SSE `retry:` hint in milliseconds sent with each stream's priming event, when `eventStore`
   * is set. Default: none (clients use their own).
   */
  sseRetryMs?: number;
  /**
   * Which proxies in front of the server to believe about the client: their `X-Forwarded-For`
   * (the client address rate limits and audit use), `X-Forwarded-Proto` and `X-Forwarded-Host` (the
   * scheme and host the client addressed, for OAuth metadata and the Host check). `false` (the
   * default) believes none and uses the connection itself; `true` believes every hop; a number
   * believes that many hops nearest the server; a list names trusted proxy addresses and CIDR
   * ranges (`'10.0.0.0/8'`, `'::1'`) or `'loopback'`, `'private'` (RFC 1918 and unique-local).
   * Applied by `listen()`, the Express and Fastify adapters, Hono on `@hono/node-server` and the
   * WebSocket door, whatever the framework's own setting.
   */
  trustProxy?: TrustProxy;
  /** How deep a JSON request body (or WebSocket message) may nest; deeper is refused (400). Default 64. */
  maxJsonDepth?: number;
  /**
   * 2025-era sessions one caller (an API key, or an anonymous client's address) may hold at once,
   * when the policy layer is on. A caller at its share that opens another loses its least recently
   * used session without an open stream; with a stream open on every one, it gets 429.
   * Default: a tenth of `maxSessions` (at least 1).
   */
  maxSessionsPerCaller?: number;
  /**
   * Streams one caller may hold open at once, when the policy layer is on: 2025-era standalone GET
   * streams, 2026-07-28 `subscriptions/listen` streams, REST resource subscriptions and streamed
   * completions. Past it, a new one gets 429. Default 100.
   */
  maxStreamsPerCaller?: number;
}

/** The resolved HTTP options. */
export type ResolvedHttpOptions = Required<Omit<HttpOptions, 'sseRetryMs' | 'maxSessionsPerCaller'>> &
  Pick<HttpOptions, 'sseRetryMs'> & { maxSessionsPerCaller: number };

export const HTTP_DEFAULTS: ResolvedHttpOptions = {
  basePath: '',
  mcpPath: '/mcp',
  stateless: false,
  maxBodyBytes: 4 * 1024 * 1024,
  bodyTimeoutMs: DEFAULT_BODY_TIMEOUT_MS,
  maxSessions: 1000,
  sessionIdleTimeoutMs: 30 * 60 * 1000,
  allowedHosts: localhostAllowedHostnames(),
  allowedOrigins: localhostAllowedOrigins(),
  jsonResponse: false,
  eventStore: false,
  trustProxy: false,
  maxJsonDepth: MAX_JSON_DEPTH,
  maxSessionsPerCaller: 100,
  maxStreamsPerCaller: 100,
};

/** How the HTTP layer asks for an SDK server: its era, whether it lives on, and its end. */
export interface HttpServerRequest {
  era: 'legacy' | 'modern';
  /** `true` for a 2025-era session's server, which forwards catalog changes until it closes. */
  live: boolean;
  onClose?: () => void;
}

/** What the HTTP layer needs from the server. */
export interface HttpHost {
  readonly logger: Logger;
  /** Builds one SDK server bound to the catalog. */
  createServer(request: HttpServerRequest): Server;
  /**
   * The catalog's event bus: its changes reach 2026-07-28 `subscriptions/listen` streams through
   * it (2025-era sessions' servers listen on their own).
   */
  readonly events?: EventEmitter<CatalogEvents>;
  /** The listed input schema of an enabled tool, for the `Mcp-Param-*` header check. */
  toolInputSchema?(name: string): object | undefined;
  /** The REST routes' view of the server; without it only `/mcp` answers. */
  readonly rest?: RestHost;
  /** Where request counts and durations go. */
  readonly metrics?: HttpMetrics;
  /** Where HTTP request spans go. Default: the global OpenTelemetry registration, if any. */
  readonly tracing?: Tracing;
  /** Authentication, permissions, rate limits and audit; absent when nothing is configured. */
  readonly policy?: Policy;
  /** Load shedding (`overload`); absent when turned off. */
  readonly overload?: LoadShedder;
}

/** The byte bounds of the memory event store (`http.eventStore`). */
export interface MemoryEventStoreLimits {
  /** Bytes of events one session keeps; its oldest go first. Default 1 MiB. */
  maxBytesPerSession?: number;
  /** Bytes of events all sessions keep together; a session makes room from its own first. Default 64 MiB. */
  maxBytes?: number;
}

/** The event store of each new session, from the `http.eventStore` option. */
function eventStoreFactory(option: 'memory' | MemoryEventStoreLimits | (() => EventStore)): () => EventStore {
  if (typeof option === 'function') return option;
  const limits = option === 'memory' ? {} : option;
  if (typeof limits !== 'object' || limits === null) {
    throw new TypeError(
      "http.eventStore must be false, 'memory', { maxBytesPerSession, maxBytes } or a function",
    );
  }
  const shared = new EventBytes(limits.maxBytes ?? 64 * 1024 * 1024);
  const maxBytes = limits.maxBytesPerSession ?? 1024 * 1024;
  if (!(Number.isInteger(maxBytes) && maxBytes > 0)) {
    throw new TypeError('http.eventStore.maxBytesPerSession must be a positive integer');
  }
  return () => new MemoryEventStore({ maxBytes, shared });
}

/** Extra, per-request inputs from adapters. */
export interface FetchOptions {
  /** Authentication established by the host application. */
  authInfo?: AuthInfo;
  /**
   * The path prefix this request was mounted under, for adapters that see the full path (Fastify,
   * Hono). Overrides `http.basePath` for this request.
   */
  basePath?: string;
  /** The client's network address (the adapters and `listen()` set it), for rate limits and audit. */
  clientAddress?: string;
  /**
   * How long, in ms, the request already waited in a queue of the host's before this call
   * (`listen()` sets it). Past `overload.maxQueueWaitMs` the request is shed with a quick 503.
   */
  queuedMs?: number;
  /**
   * Why the door already refused this request before mcpkit could read it (a host framework's body
   * parser, say). The request still passes load shedding, Host, Origin and credentials, so they
   * answer first; then it is answered with this refusal in its route's form (a problem on REST, a
   * JSON-RPC error on the MCP endpoint) instead of being served.
   *
   * @example
   * ```ts
   * // the framework's parser read more than its limit: answered 413, in the route's form
   * await server.fetch(request, {
   *   refusal: { code: 'PAYLOAD_TOO_LARGE', message: 'The body is larger than 100 kB' },
   * });
   * ```
   */
  refusal?: Refusal;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A protocol version as MCP spells them (a date); other header values are the SDK's to refuse. */
const DATED_VERSION = /^\d{4}-\d{2}-\d{2}$/;
const METADATA_PATH = '/.well-known/oauth-protected-resource';

/** Where a path lands: under the mount point or not, the path below it, and whether it is the MCP endpoint. */
interface Located {
  readonly inside: boolean;
  readonly relative: string;
  readonly isMcp: boolean;
}

/** Locates `pathname` under the mount point `base` (normalised), with the MCP endpoint at `mcp` below it. */
function locate(pathname: string, base: string, mcp: string): Located {
  const inside = base === '' || pathname === base || pathname.startsWith(`${base}/`);
  const relative = inside ? pathname.slice(base.length) || '/' : pathname;
  const isMcp = inside && (relative === mcp || relative === `${mcp}/`);
  return { inside, relative, isMcp };
}

/**
 * Whether the answers to `pathname` are JSON-RPC errors (the MCP endpoint) rather than problems
 * (every other path), for a door that must answer a request the handler never saw, such as a
 * malformed one node:http refused. The same rule as the handler's own.
 *
 * @example
 * ```ts
 * answersJsonRpc('/api/mcp', { basePath: '/api', mcpPath: '/mcp' }); // true
 * answersJsonRpc('/api/tools', { basePath: '/api', mcpPath: '/mcp' }); // false
 * ```
 */
export function answersJsonRpc(pathname: string, paths: { basePath: string; mcpPath: string }): boolean {
  return locate(pathname, normalisePath(paths.basePath), normalisePath(paths.mcpPath) || '/').isMcp;
}

/** What routing learnt, for metrics, spans and the answer to an unexpected failure. */
interface RouteOut {
  /** The request's id (`x-request-id`, the client's when well formed). */
  readonly requestId: string;
  /** The route pattern (`/tools/:name`), or `rejected`, `unmatched`, `shed`, `unauthenticated`. */
  route: string;
  /** Whether the path is the MCP endpoint, whose answers are JSON-RPC. */
  mcp: boolean;
}

/** What {@link HttpHandler.admit} decides about a request: its caller, or why it is refused. */
export type AdmissionDecision =
  | {
      readonly ok: true;
      readonly caller: CallerIdentity | undefined;
      readonly facts: RequestFacts | undefined;
    }
  | { readonly ok: false; readonly refusal: Refusal };

/** The operations of `/mcp` that carry no JSON-RPC request: each still pays one `read` token. */
const MCP_HTTP_OPERATIONS = {
  GET: { name: 'GET /mcp', rate: 'read' },
  DELETE: { name: 'DELETE /mcp', rate: 'read' },
  POST: { name: 'POST /mcp (notifications)', rate: 'read' },
} as const;

/**
 * The one web-standard handler: MCP over Streamable HTTP for both protocol eras and the REST
 * routes, every request through the same admission pipeline (Host and Origin, credentials, then each
 * operation's permission, the entries it names and its rate class), with body limits and JSON-only
 * errors.
 */
export class HttpHandler {
  readonly options: ResolvedHttpOptions;
  readonly sessions: LegacySessions;
  readonly modern: McpHttpHandler;
  /** Streams held open per caller (2025 GET streams, listens, REST subscriptions, streamed completions). */
  readonly streams: Shares;
  readonly #host: HttpHost;
  /** The one server (and its transport) that serves plain `http.stateless` requests, once started. */
  #stateless: Promise<{ server: Server; transport: StatelessTransport }> | undefined;
  readonly #unsubscribe: (() => void) | undefined;
  /** The REST routes' view of the server, with this handler's stream shares. */
  readonly #rest: RestHost | undefined;
  readonly #admission: RequestAdmission;
  readonly #basePath: string;
  readonly #mcpRelative: string;

  constructor(host: HttpHost, options: HttpOptions = {}) {
    const given = stripUndefined(options);
    this.options = {
      ...HTTP_DEFAULTS,
      ...given,
      maxSessionsPerCaller:
        given.maxSessionsPerCaller ??
        Math.max(1, Math.ceil((given.maxSessions ?? HTTP_DEFAULTS.maxSessions) / 10)),
    };
    if (!(this.options.maxBodyBytes > 0)) throw new TypeError('http.maxBodyBytes must be a positive number');
    if (!(this.options.maxSessions > 0)) throw new TypeError('http.maxSessions must be a positive number');
    if (!(Number.isInteger(this.options.maxJsonDepth) && this.options.maxJsonDepth > 0)) {
      throw new TypeError('http.maxJsonDepth must be a positive integer');
    }
    checkTrustProxy(this.options.trustProxy);
    const { bodyTimeoutMs } = this.options;
    // setTimeout fires at once for a delay past 2^31 - 1 ms
    if (!(typeof bodyTimeoutMs === 'number' && bodyTimeoutMs > 0 && bodyTimeoutMs <= 2_147_483_647)) {
      throw new TypeError('http.bodyTimeoutMs must be a positive number of milliseconds (at most 2^31 - 1)');
    }
    const { eventStore, sseRetryMs } = this.options;
    if (sseRetryMs !== undefined && !(Number.isInteger(sseRetryMs) && sseRetryMs >= 0)) {
      throw new TypeError('http.sseRetryMs must be a non-negative integer');
    }
    this.#host = host;
    this.#admission = new RequestAdmission(this.options, host.policy);
    this.#basePath = normalisePath(this.options.basePath);
    this.#mcpRelative = normalisePath(this.options.mcpPath) || '/';
    this.streams = new Shares(this.options.maxStreamsPerCaller, 'http.maxStreamsPerCaller');
    this.#rest = host.rest && {
      ...host.rest,
      streams: this.streams,
      mcpPath: this.#mcpRelative,
      httpSessions: () => this.sessions.size,
    };
    const onerror = (error: Error) => host.logger.debug({ err: error }, 'MCP HTTP request rejected');
    this.modern = createMcpHandler(({ era }) => host.createServer({ era, live: false }), {
      legacy: this.options.stateless ? 'stateless' : 'reject',
      maxRequestBodySize: this.options.maxBodyBytes,
      onerror,
    });
    this.sessions = new LegacySessions({
      createServer: (onClose) => host.createServer({ era: 'legacy', live: true, onClose }),
      maxSessions: this.options.maxSessions,
      maxSessionsPerCaller: this.options.maxSessionsPerCaller,
      streams: this.streams,
      idleTimeoutMs: this.options.sessionIdleTimeoutMs,
      maxBodyBytes: this.options.maxBodyBytes,
      jsonResponse: this.options.jsonResponse,
      ...(eventStore && { eventStore: eventStoreFactory(eventStore) }),
      ...(sseRetryMs !== undefined && { retryIntervalMs: sseRetryMs }),
      logger: host.logger,
    });
    this.#unsubscribe = host.events ? forwardCatalogEvents(host.events, this.modern.notify) : undefined;
  }

  /** Serves one request. Never throws: failures become a JSON 500 without details. */
  async fetch(request: Request, options: FetchOptions = {}): Promise<Response> {
    const incoming = request.headers.get('x-request-id');
    const requestId =
      incoming !== null && REQUEST_ID.test(incoming) ? incoming : globalThis.crypto.randomUUID();
    const started = performance.now();
    const out: RouteOut = { requestId, route: 'rejected', mcp: false };
    let response: Response;
    try {
      response = await this.#traced(request, options, out);
    } catch (error) {
      this.#host.logger.error({ err: error, requestId }, 'unhandled error in HTTP handler');
      // In the route's own form: a JSON-RPC error on the MCP endpoint, a problem anywhere else.
      response = out.mcp
        ? jsonRpcError(500, { code: JSONRPC_INTERNAL_ERROR, message: 'Internal error' })
        : problem('INTERNAL', 'Internal error', { requestId });
    }
    this.#host.metrics?.observe({
      route: out.route,
      method: request.method,
      status: response.status,
      seconds: (performance.now() - started) / 1000,
    });
    return answerFor(request, withHeader(response, 'x-request-id', requestId));
  }

  /**
   * The request stages of the pipeline for a door other than `fetch` (the WebSocket upgrade): Host,
   * Origin and credentials, exactly as `fetch` applies them.
   */
  async admit(request: Request, options: FetchOptions & { door: 'websocket' }): Promise<AdmissionDecision> {
    const shed = this.#shed('websocket', options.queuedMs);
    if (shed) return { ok: false, refusal: shed };
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return { ok: false, refusal: refuse('INVALID_REQUEST', 'Bad Request: the request URL is not valid') };
    }
    const base = options.basePath === undefined ? this.#basePath : normalisePath(options.basePath);
    const admitted = await this.#admission.admit(request, url, {
      door: options.door,
      requestId: globalThis.crypto.randomUUID(),
      address: options.clientAddress,
      authInfo: options.authInfo,
      endpoint: () => this.#endpointUrl(url, base),
      target: `${base}${this.#mcpRelative}`,
    });
    if ('refusal' in admitted) return { ok: false, refusal: admitted.refusal };
    return { ok: true, caller: admitted.facts?.caller, facts: admitted.facts };
  }

  /**
   * `#route` in a SERVER span whose parent is the trace context the request carries (`traceparent`),
   * named `<METHOD> <route pattern>`: never the raw path, so names stay bounded.
   */
  #traced(request: Request, options: FetchOptions, out: RouteOut): Promise<Response> {
    const { requestId } = out;
    const tracing = this.#host.tracing ?? globalTracing;
    const method = request.method;
    const parent = tracing.extract(request.headers);
    return tracing.span(
      method,
      async (span) => {
        const response = await this.#route(request, options, out);
        if (span) {
          const matched = out.route !== 'rejected' && out.route !== 'unmatched' && out.route !== 'shed';
          if (matched) span.updateName(`${method} ${out.route}`);
          span.setAttribute('http.route', out.route);
          span.setAttribute('http.response.status_code', response.status);
          if (response.status >= 500) markError(span, String(response.status));
        }
        return response;
      },
      {
        kind: SPAN_KIND.SERVER,
        ...(parent && { parent }),
        attributes: () => {
          const attributes: SpanAttributes = {
            'http.request.method': method,
            'mcpkit.request.id': requestId,
          };
          if (options.clientAddress !== undefined) attributes['client.address'] = options.clientAddress;
          return attributes;
        },
      },
    );
  }

  async #route(request: Request, options: FetchOptions, out: RouteOut): Promise<Response> {
    const { requestId } = out;
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return problem('INVALID_REQUEST', 'Bad Request: the request URL is not valid', {
        requestId: requestId,
      });
    }
    const base = options.basePath === undefined ? this.#basePath : normalisePath(options.basePath);
    const { pathname } = url;
    const oauth = this.#host.policy?.auth?.oauth;
    const metadata = oauth !== undefined && pathname.startsWith(METADATA_PATH);
    const { inside, relative, isMcp } = locate(pathname, base, this.#mcpRelative);
    out.mcp = isMcp;
    const door = isMcp ? 'mcp' : 'rest';
    if (!metadata && !inside) {
      // Not under the mount point: nothing here answers it, but Host and Origin still apply.
      const refused = this.#admission.checkOrigin(request, url);
      return refused ? restRefusal(refused, requestId) : problem('NOT_FOUND', 'No such route', { requestId });
    }
    // Load shedding comes first: a saturated server answers at once, before reading anything more.
    // The liveness probe, the metrics scrape and a session's DELETE (which frees resources) pass.
    const method = request.method;
    const exempt =
      (relative === '/health' && (method === 'GET' || method === 'HEAD')) ||
      (relative === '/metrics' && method === 'GET') ||
      (isMcp && method === 'DELETE');
    if (!exempt) {
      const shed = this.#shed(isMcp ? 'mcp' : 'rest', options.queuedMs);
      if (shed) {
        out.route = 'shed';
        return isMcp ? mcpRequestRefusal(shed) : restRefusal(shed, requestId);
      }
    }
    out.route = metadata ? METADATA_PATH : isMcp ? this.#mcpRelative : 'unmatched';
    const pending = this.#admission.admit(request, url, {
      door,
      requestId,
      address: options.clientAddress,
      authInfo: options.authInfo,
      // Only the liveness probe and the OAuth metadata answer without a credential.
      public: metadata || (relative === '/health' && (request.method === 'GET' || request.method === 'HEAD')),
      endpoint: () => this.#endpointUrl(url, base),
      target: isMcp ? this.#mcpRelative : relative,
    });
    const admitted: RequestAdmitted = pending instanceof Promise ? await pending : pending;
    if ('refusal' in admitted) {
      if (out.route === 'unmatched') out.route = 'unauthenticated';
      return isMcp ? mcpRequestRefusal(admitted.refusal) : restRefusal(admitted.refusal, requestId);
    }
    // The door refused the request already (a host framework's parser): answered in the route's form.
    if (options.refusal) {
      return isMcp ? mcpRequestRefusal(options.refusal) : restRefusal(options.refusal, requestId);
    }
    const { facts } = admitted;
    if (metadata) return this.#protectedResourceMetadata(request, { url, base, requestId });
    if (isMcp) {
      if (facts) requestFacts.set(request, facts);
      return this.#mcp(request, options, facts);
    }
    if (!this.#rest) return problem('NOT_FOUND', 'No such route', { requestId });
    const segments = relative.split('/').slice(1);
    if (segments.at(-1) === '' && segments.length > 1) segments.pop();
    return serveRest({ request, url, segments, requestId, out, facts }, this.#rest, this.options);
  }

  /** The refusal of a request the load shedder sheds (recorded there), or `undefined` to serve it. */
  #shed(door: ShedDoor, queuedMs: number | undefined): Refusal | undefined {
    const shedder = this.#host.overload;
    if (!shedder) return undefined;
    const reason = shedder.check(queuedMs);
    if (reason === undefined) return undefined;
    shedder.shed(door, reason, queuedMs);
    this.#host.metrics?.shed(door, reason);
    return overloadRefusal(shedder.options.retryAfterSeconds);
  }

  /** This server's MCP endpoint as the client addressed it, for OAuth metadata. */
  #endpointUrl(url: URL, base: string): URL {
    return new URL(`${base}${this.#mcpRelative}`, url.origin);
  }

  /** RFC 9728 protected-resource metadata, at the well-known path for the MCP endpoint (and the bare one). */
  #protectedResourceMetadata(
    request: Request,
    { url, base, requestId }: { url: URL; base: string; requestId: string },
  ): Response {
    const oauth = this.#host.policy!.auth!.oauth!;
    const endpoint = this.#endpointUrl(url, base);
    const resource = oauth.resource ?? endpoint.href;
    const expected = new URL(metadataUrlFor(new URL(resource))).pathname;
    if (url.pathname !== expected && url.pathname !== METADATA_PATH) {
      return problem('NOT_FOUND', 'No such route', { requestId });
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return problem('METHOD_NOT_ALLOWED', 'Use GET', { requestId, headers: { allow: 'GET' } });
    }
    const body = {
      resource,
      authorization_servers: oauth.authorizationServers,
      scopes_supported: oauth.scopesSupported ?? [...PERMISSIONS],
      bearer_methods_supported: ['header'],
      ...(oauth.resourceName !== undefined && { resource_name: oauth.resourceName }),
    };
    return new Response(JSON.stringify(body), {
      headers: {
        'content-type': 'application/json',
        'cache-control': 'max-age=3600',
        'access-control-allow-origin': '*',
      },
    });
  }

  async #mcp(request: Request, options: FetchOptions, facts?: RequestFacts): Promise<Response> {
    const caller = facts?.caller;
    const method = request.method;
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return mcpRequestRefusal(
        refuse('METHOD_NOT_ALLOWED', 'Method not allowed', { headers: { allow: 'GET, POST, DELETE' } }),
      );
    }
    let parsedBody: unknown;
    if (method === 'POST') {
      const parsed = await this.#readBody(request);
      if (parsed instanceof Response) return parsed;
      parsedBody = parsed.body;
    }
    // The policy's gate: every JSON-RPC request (and every request without one) pays its way.
    let admittedRate: RateState | undefined;
    let refused: RefusedMessage[] | undefined;
    const policy = this.#host.policy;
    if (policy && facts) {
      const gated = await this.#gate(parsedBody, method, facts);
      if (gated instanceof Response) return gated;
      ({ rate: admittedRate, refused, body: parsedBody } = gated);
    }
    const authInfo = options.authInfo ?? caller?.authInfo;
    const handlerOptions = {
      ...(parsedBody !== undefined && { parsedBody }),
      ...(authInfo && { authInfo }),
    };
    // A plain request or notification without `_meta`, under a 2025-era version header (or none),
    // carries no 2026-07-28 envelope: legacy, as the SDK's classifier would say at far greater cost.
    const version = request.headers.get('mcp-protocol-version');
    // A request (not `initialize`) under a 2026-07-28-or-later version header is never legacy: the
    // SDK serves it on the modern path or refuses it there, so its classifier need not run twice.
    const legacy =
      (method === 'POST' &&
        isPlainJsonRpc(parsedBody) &&
        (version === null || version < FIRST_MODERN_VERSION)) ||
      (!(
        method === 'POST' &&
        version !== null &&
        version >= FIRST_MODERN_VERSION &&
        isModernOnly(parsedBody)
      ) &&
        (await isLegacyRequest(request, parsedBody, { maxRequestBodySize: this.options.maxBodyBytes })));
    let response: Response;
    if (legacy) {
      if (this.options.stateless && method === 'POST' && isSharedStatelessRequest(parsedBody)) {
        // A plain request that leaves no state behind: the one shared server serves it.
        this.#stateless ??= this.#startStateless();
        const { transport } = await this.#stateless;
        response = await transport.handle(request, parsedBody, authInfo);
      } else if (this.options.stateless) {
        response = await this.modern.fetch(request, handlerOptions);
        // One request: JSON unless something must go out before its result (see settleAnswer).
        if (method === 'POST' && isWireRequest(parsedBody)) {
          response = await settleAnswer(response, parsedBody.id, request.signal);
        }
      } else {
        response = await this.sessions.handle(request, {
          parsedBody,
          authInfo,
          caller: facts && { id: caller?.id, shareKey: policy!.shareKey(facts) },
        });
      }
    } else {
      const mismatch = this.#checkParamHeaders(request, parsedBody);
      if (mismatch) return mismatch;
      const release =
        facts && policy && isListen(parsedBody) ? this.streams.take(policy.shareKey(facts)) : undefined;
      if (facts && policy && isListen(parsedBody) && !release) {
        return mcpMessageRefusals(
          [{ id: (parsedBody as { id: string | number }).id, refusal: tooManyStreams(this.streams.limit) }],
          false,
        );
      }
      response = await this.modern.fetch(request, handlerOptions);
      if (release) response = releaseWhenDone(response, release);
    }
    // The SDK's own refusals (its validation ladder) can repeat what the request carried whole.
    if (response.status >= 400) response = await boundedError(response);
    if (refused) response = await mergeRefused(response, refused);
    if (admittedRate) {
      const headers = rateLimitHeaders(admittedRate.cls, admittedRate.rule, admittedRate.decision);
      for (const [name, value] of Object.entries(headers)) response = withHeader(response, name, value);
    }
    return response;
  }

  /** Reads and parses a POST body under the limits: the JSON, or the refusal to answer with. */
  async #readBody(request: Request): Promise<{ body: unknown } | Response> {
    if (!isJsonContentType(request.headers.get('content-type'))) {
      return mcpRequestRefusal(
        refuse('UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type: Content-Type must be application/json'),
      );
    }
    const { maxBodyBytes, bodyTimeoutMs, maxJsonDepth } = this.options;
    let read: Awaited<ReturnType<typeof readBodyLimited>>;
    try {
      read = await readBodyLimited(request, maxBodyBytes, bodyTimeoutMs);
    } catch {
      return mcpRequestRefusal(refuse('INVALID_REQUEST', 'Bad Request: the body could not be read'));
    }
    if (read.tooLarge) {
      return mcpRequestRefusal(
        refuse('PAYLOAD_TOO_LARGE', `Payload Too Large: the limit is ${maxBodyBytes} bytes`),
      );
    }
    if (read.timedOut) {
      return mcpRequestRefusal(
        refuse('REQUEST_TIMEOUT', `Request Timeout: the body did not arrive within ${bodyTimeoutMs} ms`),
      );
    }
    let body: unknown;
    try {
      body = parseJsonSafe(new TextDecoder().decode(read.bytes), maxJsonDepth);
    } catch (error) {
      if (error instanceof JsonDepthError) {
        return mcpRequestRefusal(refuse('INVALID_REQUEST', `Invalid Request: ${error.message}`));
      }
      return jsonRpcError(400, {
        code: JSONRPC_PARSE_ERROR,
        message: 'Parse error: the body is not valid JSON',
      });
    }
    // Protocol 2025-06-18 removed JSON-RPC batching; the SDK transport accepts arrays whatever the
    // version, so refuse them here when the request names a version without batches.
    const version = request.headers.get('mcp-protocol-version');
    if (Array.isArray(body) && version !== null && DATED_VERSION.test(version) && version >= '2025-06-18') {
      return mcpRequestRefusal(
        refuse(
          'INVALID_REQUEST',
          `Invalid Request: JSON-RPC batches are not allowed in protocol version ${version}`,
        ),
      );
    }
    return { body };
  }

  /**
   * The admission gate of `/mcp`: each JSON-RPC request in the body through the policy (a request
   * without one, a GET or DELETE, pays one `read` token). Everything refused: the answer. Some of a
   * batch refused: the rest of the body to serve, and the refusals to add to its answer.
   */
  async #gate(
    body: unknown,
    method: 'POST' | 'GET' | 'DELETE',
    facts: RequestFacts,
  ): Promise<Response | { rate?: RateState; refused?: RefusedMessage[]; body: unknown }> {
    const policy = this.#host.policy!;
    const messages: unknown[] = Array.isArray(body) ? body : body === undefined ? [] : [body];
    const refused: RefusedMessage[] = [];
    const refusedMessages = new Set<unknown>();
    let rate: RateState | undefined;
    let requests = 0;
    for (const message of messages) {
      if (!isWireRequest(message)) continue;
      requests++;
      const pending = admitRequest(policy, message, facts);
      const decided = pending instanceof Promise ? await pending : pending;
      if (decided.refused) {
        refused.push(decided.refused);
        refusedMessages.add(message);
      } else rate = decided.rate ?? rate;
    }
    if (requests === 0) {
      const pending = policy.admit(MCP_HTTP_OPERATIONS[method], facts);
      const decision = pending instanceof Promise ? await pending : pending;
      if (!decision.ok) return mcpRequestRefusal(decision.refusal);
      return decision.rate ? { rate: decision.rate, body } : { body };
    }
    if (refused.length === 0) return rate ? { rate, body } : { body };
    const batch = Array.isArray(body);
    // What the SDK still serves: the admitted requests, and the batch's notifications and responses.
    const left = messages.filter((m) => !refusedMessages.has(m));
    if (left.length === 0) return mcpMessageRefusals(refused, batch);
    return { refused, body: left };
  }

  /**
   * SEP-2243: a 2026-07-28 `tools/call` whose `Mcp-Param-*` headers disagree with its arguments
   * gets 400 / -32020 before dispatch (the SDK checks this only for `McpServer`).
   */
  #checkParamHeaders(request: Request, body: unknown): Response | undefined {
    if (!this.#host.toolInputSchema || body === null || typeof body !== 'object' || Array.isArray(body)) {
      return undefined;
    }
    const message = body as {
      id?: unknown;
      method?: unknown;
      params?: { name?: unknown; arguments?: unknown };
    };
    if (
      message.method !== 'tools/call' ||
      message.id === undefined ||
      typeof message.params?.name !== 'string'
    ) {
      return undefined;
    }
    const schema = this.#host.toolInputSchema(message.params.name);
    if (!schema) return undefined;
    const mismatch = paramHeaderMismatch(schema, message.params.arguments, request.headers);
    if (!mismatch) return undefined;
    return new Response(
      JSON.stringify({
        jsonrpc: '2.0',
        id: message.id,
        error: {
          code: JSONRPC_HEADER_MISMATCH,
          message: `Bad Request: the request headers and body disagree: ${mismatch.message}`,
          data: { mismatch: { header: mismatch.header, body: mismatch.message } },
        },
      }),
      { status: 400, headers: { 'content-type': 'application/json' } },
    );
  }

  /** Ends every session, stream and in-flight exchange. */
  /** Builds the shared stateless server and connects it to its transport. */
  async #startStateless(): Promise<{ server: Server; transport: StatelessTransport }> {
    const transport = new StatelessTransport({ jsonResponse: this.options.jsonResponse });
    const server = this.#host.createServer({ era: 'legacy', live: false });
    await server.connect(transport);
    return { server, transport };
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    const stateless = this.#stateless;
    await Promise.all([
      this.sessions.close(),
      this.modern.close(),
      stateless?.then(({ server }) => server.close()),
    ]);
  }
}

/** Forwards the catalog's changes to the SDK's notifier of modern streams; the way to stop. */
function forwardCatalogEvents(events: EventEmitter<CatalogEvents>, notify: ServerNotifier): () => void {
  const tools = () => notify.toolsChanged();
  const resources = () => notify.resourcesChanged();
  const prompts = () => notify.promptsChanged();
  const updated = (uri: string) => notify.resourceUpdated(uri);
  events.on('toolsChanged', tools).on('resourcesChanged', resources);
  events.on('promptsChanged', prompts).on('resourceUpdated', updated);
  return () => {
    events.off('toolsChanged', tools).off('resourcesChanged', resources);
    events.off('promptsChanged', prompts).off('resourceUpdated', updated);
  };
}

/**
 * Whether a POST body is one JSON-RPC request that the SDK's classifier, under a modern version
 * header, can only send to the modern path: not `initialize` (the legacy handshake), not a batch,
 * not something that could pass for a response.
 */
function isModernOnly(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const m = body as Record<string, unknown>;
  return (
    typeof m.method === 'string' &&
    m.method !== 'initialize' &&
    'id' in m &&
    !('result' in m) &&
    !('error' in m)
  );
}

function isListen(body: unknown): boolean {
  return isWireRequest(body) && body.method === 'subscriptions/listen';
}

function tooManyStreams(limit: number): Refusal {
  return refuse('RATE_LIMITED', `Too many open streams for this caller (limit ${limit}); close one first`, {
    headers: { 'retry-after': '5' },
    data: { retryAfterSeconds: 5, limit },
  });
}

const MAX_ERROR_TEXT = 256;
/** The longest run of an SDK error's text kept whole: past it, a run is what the caller sent. */
const MAX_ECHO = 64;

/** `text` with every run longer than an echo may be (a name, a URI) cut short, and bounded in all. */
function boundText(text: string): string {
  const cut = text.replace(/[^\s"]{65,}/g, (run) => `${run.slice(0, MAX_ECHO)}…`);
  return cut.length > MAX_ERROR_TEXT ? `${cut.slice(0, MAX_ERROR_TEXT)}…` : cut;
}

/**
 * An error answer of the SDK's with its message and string data cut to a short prefix (control
 * characters escaped), so no refusal repeats a long name, URI or header back; other answers as
 * they are.
 */
async function boundedError(response: Response): Promise<Response> {
  if (!response.headers.get('content-type')?.startsWith('application/json')) return response;
  const text = await response.text();
  const rebuilt = (body: string) =>
    new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  // A short answer cannot repeat much of anything.
  if (text.length <= MAX_ERROR_TEXT * 2) return rebuilt(text);
  let answer: { error?: { message?: unknown; data?: unknown } };
  try {
    answer = JSON.parse(text);
  } catch {
    return rebuilt(text.slice(0, MAX_ERROR_TEXT));
  }
  const error = answer?.error;
  if (error && typeof error === 'object') {
    if (typeof error.message === 'string') error.message = boundText(error.message);
    if (error.data !== undefined) error.data = boundStrings(error.data, 8);
  }
  const body = JSON.stringify(answer);
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

/** `value` with every string cut to a short prefix, and nesting past `depth` dropped. */
function boundStrings(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return value.length > MAX_ECHO ? `${value.slice(0, MAX_ECHO)}…` : value;
  if (value === null || typeof value !== 'object' || depth <= 0)
    return typeof value === 'object' ? undefined : value;
  if (Array.isArray(value)) return value.slice(0, 20).map((v) => boundStrings(v, depth - 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value).slice(0, 20))
    out[key.slice(0, 64)] = boundStrings(v, depth - 1);
  return out;
}

/** `response` with `release` called once its body has been read to the end, or abandoned. */
function releaseWhenDone(response: Response, release: () => void): Response {
  if (!response.body) {
    release();
    return response;
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  response.body
    .pipeTo(writable)
    .catch(() => {})
    .finally(release);
  return new Response(readable, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * The answer to a batch part of which the policy refused: the SDK's answer to the rest, with a
 * JSON-RPC error for each refused request added: into the JSON array, as SSE events before the
 * stream's own, or as the whole answer when the SDK had nothing to say (202).
 */
async function mergeRefused(response: Response, refused: readonly RefusedMessage[]): Promise<Response> {
  const errors = refused.map(refusedMessage);
  const type = response.headers.get('content-type') ?? '';
  if (response.status === 202 || !response.body) return mcpMessageRefusals(refused, true);
  if (type.startsWith('application/json')) {
    const answered = (await response.json()) as unknown;
    const all = [...errors, ...(Array.isArray(answered) ? answered : [answered])];
    return new Response(JSON.stringify(all), { status: response.status, headers: response.headers });
  }
  if (type.startsWith('text/event-stream')) {
    const encoder = new TextEncoder();
    const prefix = errors.map((e) => `event: message\ndata: ${JSON.stringify(e)}\n\n`).join('');
    const reader = response.body.getReader();
    let first = true;
    const merged = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (first) {
          first = false;
          controller.enqueue(encoder.encode(prefix));
          return;
        }
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(merged, { status: response.status, headers: response.headers });
  }
  return response;
}

/** `response` with one more header; rebuilt when its headers are immutable. */
function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const headers = new Headers(response.headers);
    headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
