import {
  type AuthInfo,
  createMcpHandler,
  isJsonContentType,
  isLegacyRequest,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  type McpHttpHandler,
  originValidationResponse,
  readRequestBody,
  type Server,
  validateHostHeader,
} from '@modelcontextprotocol/server';
import type { Logger } from '../types.js';
import {
  JSONRPC_INTERNAL_ERROR,
  JSONRPC_PARSE_ERROR,
  JSONRPC_SERVER_ERROR,
  jsonRpcError,
} from './jsonrpc.js';
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
}

/** The resolved HTTP options. */
export type ResolvedHttpOptions = Required<HttpOptions>;

export const HTTP_DEFAULTS: ResolvedHttpOptions = {
  basePath: '',
  mcpPath: '/mcp',
  stateless: false,
  maxBodyBytes: 4 * 1024 * 1024,
  maxSessions: 1000,
  sessionIdleTimeoutMs: 30 * 60 * 1000,
  allowedHosts: localhostAllowedHostnames(),
  allowedOrigins: localhostAllowedOrigins(),
  jsonResponse: false,
};

/** What the HTTP layer needs from the server. */
export interface HttpHost {
  readonly logger: Logger;
  /** Builds one SDK server for the given era; live ones forward catalog changes until `onClose`. */
  createServer(era: 'legacy' | 'modern', live: boolean, onClose?: () => void): Server;
}

/** Extra, per-request inputs from adapters. */
export interface FetchOptions {
  /** Authentication established by the host application. */
  authInfo?: AuthInfo;
}

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
  readonly #mcpPath: string;

  constructor(host: HttpHost, options: HttpOptions = {}) {
    this.options = { ...HTTP_DEFAULTS, ...stripUndefined(options) };
    if (!(this.options.maxBodyBytes > 0)) throw new TypeError('http.maxBodyBytes must be a positive number');
    if (!(this.options.maxSessions > 0)) throw new TypeError('http.maxSessions must be a positive number');
    this.#host = host;
    this.#mcpPath = normalisePath(this.options.basePath) + (normalisePath(this.options.mcpPath) || '/');
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
      logger: host.logger,
    });
  }

  /** Serves one request. Never throws: failures become a JSON 500 without details. */
  async fetch(request: Request, options: FetchOptions = {}): Promise<Response> {
    try {
      const rejected = this.#checkHostAndOrigin(request);
      if (rejected) return rejected;
      const { pathname } = new URL(request.url);
      if (pathname === this.#mcpPath || pathname === `${this.#mcpPath}/`)
        return await this.#mcp(request, options);
      return notFound();
    } catch (error) {
      this.#host.logger.error({ err: error }, 'unhandled error in HTTP handler');
      return jsonRpcError(500, JSONRPC_INTERNAL_ERROR, 'Internal error');
    }
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

  async #mcp(request: Request, options: FetchOptions): Promise<Response> {
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
      const body = await readRequestBody(request, this.options.maxBodyBytes);
      if (body.tooLarge) {
        return jsonRpcError(
          413,
          JSONRPC_SERVER_ERROR,
          `Payload Too Large: the limit is ${this.options.maxBodyBytes} bytes`,
        );
      }
      try {
        parsedBody = JSON.parse(body.text);
      } catch {
        return jsonRpcError(400, JSONRPC_PARSE_ERROR, 'Parse error: the body is not valid JSON');
      }
    }
    const handlerOptions = {
      ...(parsedBody !== undefined && { parsedBody }),
      ...(options.authInfo && { authInfo: options.authInfo }),
    };
    if (this.options.stateless) return this.modern.fetch(request, handlerOptions);
    const legacy = await isLegacyRequest(request, parsedBody, {
      maxRequestBodySize: this.options.maxBodyBytes,
    });
    if (legacy) return this.sessions.handle(request, parsedBody, options.authInfo);
    return this.modern.fetch(request, handlerOptions);
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

function notFound(): Response {
  return new Response(
    JSON.stringify({
      type: 'about:blank',
      title: 'Not found',
      status: 404,
      detail: 'No such route',
      code: 'NOT_FOUND',
    }),
    { status: 404, headers: { 'content-type': 'application/problem+json' } },
  );
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
