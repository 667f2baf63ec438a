import {
  type AuthInfo,
  createMcpHandler,
  type EventStore,
  isJsonContentType,
  isLegacyRequest,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  type McpHttpHandler,
  originValidationResponse,
  type Server,
  validateHostHeader,
} from '@modelcontextprotocol/server';
import { ERROR_CODES } from '../errors.js';
import { metadataUrlFor } from '../policy/auth.js';
import { PERMISSIONS } from '../policy/permissions.js';
import {
  type ListenCheck,
  type Policy,
  type PolicyRefusal,
  type RequestFacts,
  requestFacts,
} from '../policy/policy.js';
import { rateLimitHeaders } from '../policy/rateLimit.js';
import type { HttpMetrics } from '../telemetry/standard.js';
import {
  globalTracing,
  markError,
  SPAN_KIND,
  type SpanAttributes,
  type Tracing,
} from '../telemetry/tracing.js';
import type { Logger } from '../types.js';
import { DEFAULT_BODY_TIMEOUT_MS, readBodyLimited } from './bodyText.js';
import { MemoryEventStore } from './eventStore.js';
import {
  JSONRPC_INTERNAL_ERROR,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_PARSE_ERROR,
  JSONRPC_SERVER_ERROR,
  jsonRpcError,
} from './jsonrpc.js';
import { JSONRPC_HEADER_MISMATCH, paramHeaderMismatch } from './paramHeaders.js';
import { problem } from './problem.js';
import { type RestHost, serveRest } from './rest.js';
import { parseJsonSafe } from './safeJson.js';
import { LegacySessions } from './sessions.js';

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
  /** Answer POSTs with plain JSON instead of an SSE stream where possible. Default `false`. */
  jsonResponse?: boolean;
  /**
   * Resumable 2025-era SSE streams (SEP-1699): every event gets an id, and a client whose stream
   * dropped reconnects with `Last-Event-ID` to receive what it missed. `'memory'` keeps each
   * session's last 1000 events in memory; a function returns the store for each new session (one
   * store per session: stream ids repeat across sessions). Default `false`.
   */
  eventStore?: false | 'memory' | (() => EventStore);
  /**
   * The SSE `retry:` hint in milliseconds sent with each stream's priming event, when `eventStore`
   * is set. Default: none (clients use their own).
   */
  sseRetryMs?: number;
}

/** The resolved HTTP options. */
export type ResolvedHttpOptions = Required<Omit<HttpOptions, 'sseRetryMs'>> & Pick<HttpOptions, 'sseRetryMs'>;

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
};

/** What the HTTP layer needs from the server. */
export interface HttpHost {
  readonly logger: Logger;
  /** Builds one SDK server for the given era; live ones forward catalog changes until `onClose`. */
  createServer(era: 'legacy' | 'modern', live: boolean, onClose?: () => void): Server;
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
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const AUTH_FAILURE_CODE = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 503: 'UNAVAILABLE' } as const;
/** A protocol version as MCP spells them (a date); other header values are the SDK's to refuse. */
const DATED_VERSION = /^\d{4}-\d{2}-\d{2}$/;

function normalisePath(path: string): string {
  if (path === '' || path === '/') return '';
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash;
}

/**
 * The one web-standard handler: MCP over Streamable HTTP for both protocol eras, behind Host and
 * Origin checks, body limits and JSON-only errors.
 */
export class HttpHandler {
  readonly options: ResolvedHttpOptions;
  readonly sessions: LegacySessions;
  readonly modern: McpHttpHandler;
  readonly #host: HttpHost;
  readonly #basePath: string;
  readonly #mcpRelative: string;

  constructor(host: HttpHost, options: HttpOptions = {}) {
    this.options = { ...HTTP_DEFAULTS, ...stripUndefined(options) };
    if (!(this.options.maxBodyBytes > 0)) throw new TypeError('http.maxBodyBytes must be a positive number');
    if (!(this.options.maxSessions > 0)) throw new TypeError('http.maxSessions must be a positive number');
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
    this.#basePath = normalisePath(this.options.basePath);
    this.#mcpRelative = normalisePath(this.options.mcpPath) || '/';
    const onerror = (error: Error) => host.logger.debug({ err: error }, 'MCP HTTP request rejected');
    this.modern = createMcpHandler(({ era }) => host.createServer(era, false), {
      legacy: this.options.stateless ? 'stateless' : 'reject',
      maxRequestBodySize: this.options.maxBodyBytes,
      onerror,
    });
    this.sessions = new LegacySessions({
      createServer: (onClose) => host.createServer('legacy', true, onClose),
      maxSessions: this.options.maxSessions,
      idleTimeoutMs: this.options.sessionIdleTimeoutMs,
      maxBodyBytes: this.options.maxBodyBytes,
      jsonResponse: this.options.jsonResponse,
      ...(eventStore && { eventStore: eventStore === 'memory' ? () => new MemoryEventStore() : eventStore }),
      ...(sseRetryMs !== undefined && { retryIntervalMs: sseRetryMs }),
      logger: host.logger,
    });
  }

  /** Serves one request. Never throws: failures become a JSON 500 without details. */
  async fetch(request: Request, options: FetchOptions = {}): Promise<Response> {
    const incoming = request.headers.get('x-request-id');
    const requestId =
      incoming !== null && REQUEST_ID.test(incoming) ? incoming : globalThis.crypto.randomUUID();
    const started = performance.now();
    const out = { route: 'rejected' };
    let response: Response;
    try {
      response = await this.#traced(request, options, requestId, out);
    } catch (error) {
      this.#host.logger.error({ err: error, requestId }, 'unhandled error in HTTP handler');
      response = jsonRpcError(500, JSONRPC_INTERNAL_ERROR, 'Internal error');
    }
    this.#host.metrics?.observe(
      out.route,
      request.method,
      response.status,
      (performance.now() - started) / 1000,
    );
    return withHeader(response, 'x-request-id', requestId);
  }

  /**
   * `#route` in a SERVER span whose parent is the trace context the request carries (`traceparent`),
   * named `<METHOD> <route pattern>`: never the raw path, so names stay bounded.
   */
  #traced(
    request: Request,
    options: FetchOptions,
    requestId: string,
    out: { route: string },
  ): Promise<Response> {
    const tracing = this.#host.tracing ?? globalTracing;
    const method = request.method;
    const parent = tracing.extract(request.headers);
    return tracing.span(
      method,
      async (span) => {
        const response = await this.#route(request, options, requestId, out);
        if (span) {
          const matched = out.route !== 'rejected' && out.route !== 'unmatched';
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

  async #route(
    request: Request,
    options: FetchOptions,
    requestId: string,
    out: { route: string },
  ): Promise<Response> {
    const rejected = this.#checkHostAndOrigin(request);
    if (rejected) return rejected;
    out.route = 'unmatched';
    const url = new URL(request.url);
    const base = options.basePath === undefined ? this.#basePath : normalisePath(options.basePath);
    const { pathname } = url;
    const policy = this.#host.policy;
    const auth = policy?.auth;
    if (auth?.oauth && pathname.startsWith('/.well-known/oauth-protected-resource')) {
      out.route = '/.well-known/oauth-protected-resource';
      return this.#protectedResourceMetadata(request, url, base);
    }
    if (base !== '' && pathname !== base && !pathname.startsWith(`${base}/`)) {
      return problem('NOT_FOUND', 'No such route', requestId);
    }
    const relative = pathname.slice(base.length) || '/';
    const isMcp = relative === this.#mcpRelative || relative === `${this.#mcpRelative}/`;
    let facts: RequestFacts | undefined;
    if (policy) {
      facts = {
        caller: undefined,
        requestId,
        origin: isMcp ? 'http' : 'rest',
        ...(options.clientAddress !== undefined && { address: options.clientAddress }),
      };
      // Everything but the liveness probe needs a caller once authentication is configured.
      if (auth && !(relative === '/health' && (request.method === 'GET' || request.method === 'HEAD'))) {
        const outcome = await auth.authenticate(request, url, () => this.#endpointUrl(url, base));
        if ('failure' in outcome) {
          const { failure } = outcome;
          const target = isMcp ? this.#mcpRelative : relative;
          out.route = isMcp ? this.#mcpRelative : 'unauthenticated';
          const limited = await policy.authFailed(facts, target, failure.reason);
          if (limited) return this.#refusedForRate(limited, isMcp, requestId);
          const headers = { 'www-authenticate': failure.challenge };
          const code = AUTH_FAILURE_CODE[failure.status];
          return isMcp
            ? jsonRpcError(failure.status, ERROR_CODES[code].jsonRpc, failure.message, headers)
            : problem(code, failure.message, requestId, { headers });
        }
        facts.caller = outcome.caller;
      } else if (!auth && options.authInfo) {
        // The host application authenticated the request (an adapter's authInfo): that is the caller.
        const { authInfo } = options;
        facts.caller = {
          id: authInfo.clientId,
          roles: authInfo.scopes.filter((s) => policy.access.hasRole(s)),
          permissions: [...authInfo.scopes],
          authInfo,
        };
      }
    }
    if (isMcp) {
      out.route = this.#mcpRelative;
      if (facts) requestFacts.set(request, facts);
      return this.#mcp(request, options, facts);
    }
    if (!this.#host.rest) return problem('NOT_FOUND', 'No such route', requestId);
    const segments = relative.split('/').slice(1);
    if (segments.at(-1) === '' && segments.length > 1) segments.pop();
    return serveRest(request, url, segments, requestId, this.#host.rest, this.options, out, facts);
  }

  /** The 429 for a refusal by rate: a problem on REST, a JSON-RPC error on `/mcp`. */
  #refusedForRate(refusal: PolicyRefusal, isMcp: boolean, requestId: string): Response {
    const headers = refusal.rate
      ? rateLimitHeaders(refusal.rate.cls, refusal.rate.rule, refusal.rate.decision)
      : { 'retry-after': String(refusal.retryAfterSeconds ?? 1) };
    return isMcp
      ? jsonRpcError(429, ERROR_CODES.RATE_LIMITED.jsonRpc, refusal.message, headers)
      : problem('RATE_LIMITED', refusal.message, requestId, {
          headers,
          fields: { retryAfterSeconds: refusal.retryAfterSeconds },
        });
  }

  /** This server's MCP endpoint as the client addressed it, for OAuth metadata. */
  #endpointUrl(url: URL, base: string): URL {
    return new URL(`${base}${this.#mcpRelative}`, url.origin);
  }

  /** RFC 9728 protected-resource metadata, at the well-known path for the MCP endpoint (and the bare one). */
  #protectedResourceMetadata(request: Request, url: URL, base: string): Response {
    const oauth = this.#host.policy!.auth!.oauth!;
    const endpoint = this.#endpointUrl(url, base);
    const resource = oauth.resource ?? endpoint.href;
    const expected = new URL(metadataUrlFor(new URL(resource))).pathname;
    if (url.pathname !== expected && url.pathname !== '/.well-known/oauth-protected-resource') {
      return problem('NOT_FOUND', 'No such route', '');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return problem('METHOD_NOT_ALLOWED', 'Use GET', '', { headers: { allow: 'GET' } });
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

  #checkHostAndOrigin(request: Request): Response | undefined {
    const { allowedHosts, allowedOrigins } = this.options;
    if (allowedHosts !== 'any') {
      // A request built in process (`new Request(url)`) has no Host header: its URL's host stands in.
      const host = request.headers.get('host') ?? safeHost(request.url);
      const result = validateHostHeader(host, allowedHosts as string[]);
      if (!result.ok) return jsonRpcError(403, JSONRPC_SERVER_ERROR, result.message);
    }
    if (allowedOrigins !== 'any') {
      const rejected = originValidationResponse(request, allowedOrigins as string[]);
      if (rejected) return rejected;
    }
    return undefined;
  }

  async #mcp(request: Request, options: FetchOptions, facts?: RequestFacts): Promise<Response> {
    const caller = facts?.caller;
    const method = request.method;
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return jsonRpcError(405, JSONRPC_SERVER_ERROR, 'Method not allowed', { allow: 'GET, POST, DELETE' });
    }
    let parsedBody: unknown;
    if (method === 'POST') {
      if (!isJsonContentType(request.headers.get('content-type'))) {
        return jsonRpcError(
          415,
          JSONRPC_SERVER_ERROR,
          'Unsupported Media Type: Content-Type must be application/json',
        );
      }
      const { maxBodyBytes, bodyTimeoutMs } = this.options;
      let body: Awaited<ReturnType<typeof readBodyLimited>>;
      try {
        body = await readBodyLimited(request, maxBodyBytes, bodyTimeoutMs);
      } catch {
        return jsonRpcError(400, JSONRPC_SERVER_ERROR, 'Bad Request: the body could not be read');
      }
      if (body.tooLarge) {
        return jsonRpcError(
          413,
          JSONRPC_SERVER_ERROR,
          `Payload Too Large: the limit is ${maxBodyBytes} bytes`,
        );
      }
      if (body.timedOut) {
        return jsonRpcError(
          408,
          JSONRPC_SERVER_ERROR,
          `Request Timeout: the body did not arrive within ${bodyTimeoutMs} ms`,
        );
      }
      try {
        parsedBody = parseJsonSafe(new TextDecoder().decode(body.bytes));
      } catch {
        return jsonRpcError(400, JSONRPC_PARSE_ERROR, 'Parse error: the body is not valid JSON');
      }
      // Protocol 2025-06-18 removed JSON-RPC batching; the SDK transport accepts arrays whatever the
      // version, so refuse them here when the request names a version without batches.
      const version = request.headers.get('mcp-protocol-version');
      if (
        Array.isArray(parsedBody) &&
        version !== null &&
        DATED_VERSION.test(version) &&
        version >= '2025-06-18'
      ) {
        return jsonRpcError(
          400,
          JSONRPC_INVALID_REQUEST,
          `Invalid Request: JSON-RPC batches are not allowed in protocol version ${version}`,
        );
      }
    }
    const authInfo = options.authInfo ?? caller?.authInfo;
    const handlerOptions = {
      ...(parsedBody !== undefined && { parsedBody }),
      ...(authInfo && { authInfo }),
    };
    const legacy = await isLegacyRequest(request, parsedBody, {
      maxRequestBodySize: this.options.maxBodyBytes,
    });
    if (legacy) {
      if (this.options.stateless) return this.modern.fetch(request, handlerOptions);
      return this.sessions.handle(request, parsedBody, authInfo, caller?.id);
    }
    const mismatch = this.#checkParamHeaders(request, parsedBody);
    if (mismatch) return mismatch;
    const listen = this.#checkListen(parsedBody, facts);
    if (listen === undefined) return this.modern.fetch(request, handlerOptions);
    return listen instanceof Promise
      ? listen.then((refused) => refused ?? this.modern.fetch(request, handlerOptions))
      : listen;
  }

  /**
   * The policy's check of a `subscriptions/listen` request, which the SDK answers before any handler:
   * a refusal (403, or 429 with `Retry-After`), or `undefined` to let it through.
   */
  #checkListen(
    body: unknown,
    facts: RequestFacts | undefined,
  ): Response | undefined | Promise<Response | undefined> {
    const policy = this.#host.policy;
    if (!policy || !facts || body === null || typeof body !== 'object' || Array.isArray(body))
      return undefined;
    const message = body as { id?: unknown; method?: unknown; params?: unknown };
    if (message.method !== 'subscriptions/listen') return undefined;
    const answer = (refusal: ListenCheck): Response | undefined =>
      refusal &&
      new Response(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, error: refusal.error }), {
        status: refusal.status,
        headers: {
          'content-type': 'application/json',
          ...(refusal.retryAfterSeconds !== undefined && {
            'retry-after': String(refusal.retryAfterSeconds),
          }),
        },
      });
    const checked = policy.checkListen(message.params, facts);
    return checked instanceof Promise ? checked.then(answer) : answer(checked);
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
  async close(): Promise<void> {
    await Promise.all([this.sessions.close(), this.modern.close()]);
  }
}

function safeHost(url: string): string | null {
  try {
    return new URL(url).host || null;
  } catch {
    return null;
  }
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
