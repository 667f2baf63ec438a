/**
 * The HTTP door: `HttpHandler.fetch` runs every request through one ordered pipeline (request id,
 * span, load shedding, Host, Origin, credentials, the route; on the MCP endpoint body limits, the
 * policy's gate and the protocol era). Its options live in `options.ts`, the shaping of MCP answers in
 * `mcpAnswers.ts`. Size: the pipeline stays in one class on purpose; its order is what keeps every
 * door's rules the same, and it is checked by reading it top to bottom.
 */
import {
  createMcpHandler,
  isJsonContentType,
  isLegacyRequest,
  type McpHttpHandler,
  type Server,
  type ServerNotifier,
} from '@modelcontextprotocol/server';
import type { EventEmitter } from 'eventemitter3';
import { ABANDONED_BODY_HEADERS, readBodyLimited } from '../core/bodyLimit.js';
import { checkTrustProxy } from '../core/forwarded.js';
import { normalisePath } from '../core/paths.js';
import { type Refusal, refuse } from '../core/refusal.js';
import { JsonDepthError, parseJsonBytes } from '../core/safeJson.js';
import { metadataUrlFor } from '../policy/auth.js';
import { PERMISSIONS } from '../policy/permissions.js';
import { type Policy, type RateState, type RequestFacts, requestFacts } from '../policy/policy.js';
import { rateLimitHeaders } from '../policy/rateLimit.js';
import { Shares } from '../policy/shares.js';
import { admitRequest, isWireRequest, type RefusedMessage } from '../protocol/gate.js';
import { type CatalogEvents, MODERN_REVISION } from '../protocol/session.js';
import type { SessionDirectory } from '../state/shared.js';
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
import { answerFor, departureOf } from './bodyText.js';
import {
  JSONRPC_INTERNAL_ERROR,
  JSONRPC_PARSE_ERROR,
  JSONRPC_SESSION_NOT_FOUND,
  jsonRpcError,
} from './jsonrpc.js';
import { settleAnswer } from './lazyAnswer.js';
import {
  boundedError,
  isListen,
  isModernOnly,
  mergeRefused,
  releaseWhenDone,
  stripUndefined,
  tooManyStreams,
  withHeader,
} from './mcpAnswers.js';
import { isSharedModernRequest, SharedModernTransport } from './modernTransport.js';
import {
  eventStoreFactory,
  type FetchOptions,
  HTTP_DEFAULTS,
  type HttpOptions,
  type ResolvedHttpOptions,
} from './options.js';
import { type LoadShedder, overloadRefusal, type ShedDoor } from './overload.js';
import { JSONRPC_HEADER_MISMATCH, paramHeaderMismatch } from './paramHeaders.js';
import { problem } from './problem.js';
import { isPublicRoute, type RestHost, serveRest } from './rest.js';
import { FORWARDED_HEADER, forwardToOwner, verifyForwarded } from './sessionForwarding.js';
import { LegacySessions } from './sessions.js';
import { isPlainJsonRpc } from './sessionTransport.js';
import { isSharedStatelessRequest, LADDER_REFUSED, StatelessTransport } from './statelessTransport.js';

/** How the HTTP layer asks for an SDK server: its era, whether it lives on, and its end. */
export interface HttpServerRequest {
  era: 'legacy' | 'modern';
  /** `true` for a 2025-era session's server, which forwards catalog changes until it closes. */
  live: boolean;
  onClose?: () => void;
  /** Told when the handler of request `id` ends, even after its cancellation (see `SessionOptions`). */
  onRequestSettled?: (id: string | number) => void;
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
  /**
   * Where the 2025-era sessions of every node are recorded (a shared state's): a request for a
   * session another node holds is forwarded there. Absent: sessions are served by their own node.
   */
  readonly sessionDirectory?: SessionDirectory;
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
      /**
       * Takes one of the caller's `http.maxStreamsPerCaller` streams, as a streamed HTTP answer does:
       * the function that gives it back, or `undefined` when the caller holds its whole share. Free
       * (a no-op release) without a policy.
       */
      readonly holdStream: () => (() => void) | undefined;
    }
  | { readonly ok: false; readonly refusal: Refusal };

/** The release of a stream share nobody counts (no policy, so no caller to count it for). */
const NOTHING_HELD = (): void => {};

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
  /** The one server (and its transport) that serves plain 2026-07-28 requests, once started. */
  #sharedModern: Promise<{ server: Server; transport: SharedModernTransport } | undefined> | undefined;
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
      ...(host.sessionDirectory && { directory: host.sessionDirectory }),
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
    const { facts } = admitted;
    const policy = this.#host.policy;
    return {
      ok: true,
      caller: facts?.caller,
      facts,
      holdStream: () => (facts && policy ? this.streams.take(policy.shareKey(facts)) : NOTHING_HELD),
    };
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

  async #route(request: Request, given: FetchOptions, out: RouteOut): Promise<Response> {
    const { requestId } = out;
    let options = given;
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
    // Another node forwarded a request for a session held here: believed only when signed with the
    // cluster's secret, and then only about the client's address and the origin it addressed.
    let forwarded = false;
    const directory = this.#host.sessionDirectory;
    if (directory && request.headers.has(FORWARDED_HEADER)) {
      const vouched = isMcp ? await verifyForwarded(request, url, directory.secret) : undefined;
      if (!vouched) {
        const refused = refuse('FORBIDDEN', 'Forbidden: the forwarding signature is not valid');
        return isMcp ? mcpRequestRefusal(refused) : restRefusal(refused, requestId);
      }
      forwarded = true;
      url = new URL(`${vouched.origin}${url.pathname}${url.search}`);
      const { clientAddress: _, ...rest } = options;
      options = vouched.address === '' ? rest : { ...rest, clientAddress: vouched.address };
    }
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
      // Only the public routes (the liveness probe, the docs page's files) and the OAuth metadata
      // answer without a credential; the MCP endpoint never does.
      public: metadata || (!isMcp && this.#rest !== undefined && isPublicRoute(method, relative)),
      endpoint: () => this.#endpointUrl(url, base),
      target: isMcp ? this.#mcpRelative : relative,
      vouched: forwarded,
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
      return this.#mcp(request, options, { facts, url, forwarded, requestId });
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

  async #mcp(
    request: Request,
    options: FetchOptions,
    {
      facts,
      url,
      forwarded,
      requestId,
    }: { facts: RequestFacts | undefined; url: URL; forwarded: boolean; requestId: string },
  ): Promise<Response> {
    const caller = facts?.caller;
    const method = request.method;
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return mcpRequestRefusal(
        refuse('METHOD_NOT_ALLOWED', 'Method not allowed', { headers: { allow: 'GET, POST, DELETE' } }),
      );
    }
    // A 2025-era session another node holds: that node serves it (a forwarded request never goes on).
    const directory = this.#host.sessionDirectory;
    const sessionId = request.headers.get('mcp-session-id');
    if (
      directory &&
      !forwarded &&
      sessionId !== null &&
      !this.options.stateless &&
      !this.sessions.has(sessionId)
    ) {
      const answer = await this.#forward(request, { url, sessionId, directory, options, requestId });
      if (answer) return answer;
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
      (method === 'POST' && isPlainJsonRpc(parsedBody) && (version === null || version < MODERN_REVISION)) ||
      (!(method === 'POST' && version !== null && version >= MODERN_REVISION && isModernOnly(parsedBody)) &&
        (await isLegacyRequest(request, parsedBody, { maxRequestBodySize: this.options.maxBodyBytes })));
    let response: Response;
    if (legacy) {
      if (this.options.stateless && method === 'POST' && isSharedStatelessRequest(parsedBody)) {
        // A plain request that leaves no state behind: the one shared server serves it.
        this.#stateless ??= this.#startStateless();
        const { transport } = await this.#stateless;
        // Only a modern-era transport defers a refusal to the SDK's entry.
        response = (await transport.handle(request, parsedBody, authInfo)) as Response;
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
      if (method === 'POST' && isSharedModernRequest(request, parsedBody, MODERN_REVISION)) {
        // A plain request: the one shared modern server serves it, unless its ladder refuses it.
        this.#sharedModern ??= this.#startSharedModern();
        const shared = await this.#sharedModern;
        const served = shared ? await shared.transport.serve(request, parsedBody, authInfo) : LADDER_REFUSED;
        response = served === LADDER_REFUSED ? await this.modern.fetch(request, handlerOptions) : served;
      } else {
        response = await this.modern.fetch(request, handlerOptions);
        if (release) response = releaseWhenDone(response, release);
      }
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

  /**
   * Forwards a request for session `sessionId` to the node holding it and streams its answer back;
   * `undefined` when no other node holds it (this node answers, with 404). The body is read here,
   * under this node's limits; the owner admits the request again, on the caller's own credentials,
   * and spends its rate tokens.
   */
  async #forward(
    request: Request,
    {
      url,
      sessionId,
      directory,
      options,
      requestId,
    }: { url: URL; sessionId: string; directory: SessionDirectory; options: FetchOptions; requestId: string },
  ): Promise<Response | undefined> {
    let owner: string | undefined;
    try {
      owner = await directory.owner(sessionId);
    } catch {
      return mcpRequestRefusal(SESSIONS_DOWN);
    }
    if (owner === undefined || owner === directory.advertise) return undefined;
    let body: Uint8Array | undefined;
    if (request.method === 'POST') {
      const read = await this.#readBytes(request);
      if (read instanceof Response) return read;
      body = read;
    }
    const answer = await forwardToOwner({
      request,
      url,
      sessionId,
      body,
      owner,
      secret: directory.secret,
      address: options.clientAddress,
      timeoutMs: directory.forwardTimeoutMs,
      departure: departureOf(request),
      requestId,
    });
    if (answer instanceof Response) return answer;
    if (answer === 'gone') {
      // The owner is not there any more: its sessions died with it.
      directory.forget(sessionId, owner);
      this.#host.logger.debug({ sessionId }, 'the node holding a session is gone');
      return jsonRpcError(404, { code: JSONRPC_SESSION_NOT_FOUND, message: 'Session not found' });
    }
    this.#host.logger.warn({ sessionId, reason: answer }, 'forwarding a session request failed');
    return answer === 'timeout'
      ? jsonRpcError(504, {
          code: JSONRPC_INTERNAL_ERROR,
          message: 'The node holding this session did not answer in time',
        })
      : mcpRequestRefusal(OWNER_UNREACHABLE);
  }

  /** Reads a POST body under the size and time limits: its bytes, or the refusal to answer with. */
  async #readBytes(request: Request): Promise<Uint8Array | Response> {
    const { maxBodyBytes, bodyTimeoutMs } = this.options;
    let read: Awaited<ReturnType<typeof readBodyLimited>>;
    try {
      read = await readBodyLimited(request, maxBodyBytes, bodyTimeoutMs);
    } catch {
      return mcpRequestRefusal(refuse('INVALID_REQUEST', 'Bad Request: the body could not be read'));
    }
    if (read.tooLarge) {
      return mcpRequestRefusal(
        refuse('PAYLOAD_TOO_LARGE', `Payload Too Large: the limit is ${maxBodyBytes} bytes`, {
          headers: ABANDONED_BODY_HEADERS,
        }),
      );
    }
    if (read.timedOut) {
      return mcpRequestRefusal(
        refuse('REQUEST_TIMEOUT', `Request Timeout: the body did not arrive within ${bodyTimeoutMs} ms`, {
          headers: ABANDONED_BODY_HEADERS,
        }),
      );
    }
    return read.bytes;
  }

  /** Reads and parses a POST body under the limits: the JSON, or the refusal to answer with. */
  async #readBody(request: Request): Promise<{ body: unknown } | Response> {
    if (!isJsonContentType(request.headers.get('content-type'))) {
      return mcpRequestRefusal(
        refuse('UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type: Content-Type must be application/json'),
      );
    }
    const read = await this.#readBytes(request);
    if (read instanceof Response) return read;
    let body: unknown;
    try {
      body = parseJsonBytes(read, this.options.maxJsonDepth);
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

  /** Builds the shared stateless server and connects it to its transport. */
  /**
   * The one server that serves plain 2026-07-28 requests, bound to the modern era by its transport;
   * undefined (every request then goes through the SDK's entry) should the SDK not bind it.
   */
  async #startSharedModern(): Promise<{ server: Server; transport: SharedModernTransport } | undefined> {
    const transport = new SharedModernTransport(MODERN_REVISION);
    const server = this.#host.createServer({
      era: 'modern',
      live: false,
      onRequestSettled: (id) => transport.requestSettled(id),
    });
    await server.connect(transport);
    if (server.getNegotiatedProtocolVersion() === MODERN_REVISION) return { server, transport };
    this.#host.logger.warn(
      'the SDK did not bind the shared server to the modern era; serving 2026-07-28 requests one server each',
    );
    await server.close();
    return undefined;
  }

  async #startStateless(): Promise<{ server: Server; transport: StatelessTransport }> {
    const transport = new StatelessTransport({ jsonResponse: this.options.jsonResponse });
    const server = this.#host.createServer({
      era: 'legacy',
      live: false,
      onRequestSettled: (id) => transport.requestSettled(id),
    });
    await server.connect(transport);
    return { server, transport };
  }

  /** Ends every session, stream and in-flight exchange, and stops listening to the catalog. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    const stateless = this.#stateless;
    const sharedModern = this.#sharedModern;
    await Promise.all([
      this.sessions.close(),
      this.modern.close(),
      stateless?.then(({ server }) => server.close()),
      sharedModern?.then((shared) => shared?.server.close()),
    ]);
  }
}

/** The session directory is out of reach (a shared state whose Redis is down): retryable. */
const SESSIONS_DOWN = refuse('UNAVAILABLE', 'The session directory is unavailable; try again later', {
  headers: { 'retry-after': '1' },
  data: { retryAfterSeconds: 1 },
});
/** The session's node answered nothing usable: retryable. */
const OWNER_UNREACHABLE = refuse(
  'UNAVAILABLE',
  'The node holding this session did not answer; try again later',
  {
    headers: { 'retry-after': '1' },
    data: { retryAfterSeconds: 1 },
  },
);

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
