import type { AuthInfo } from '@modelcontextprotocol/server';
import {
  type EventStore,
  isInitializeRequest,
  type Server,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import type { Logger } from '../types.js';
import {
  JSONRPC_INVALID_REQUEST,
  JSONRPC_SERVER_ERROR,
  JSONRPC_SESSION_NOT_FOUND,
  jsonRpcError,
} from './jsonrpc.js';

/** Options for the 2025-era session table. */
export interface LegacySessionOptions {
  /** Builds the SDK server for a new session; `onClose` must be called when it closes. */
  createServer(onClose: () => void): Server;
  maxSessions: number;
  idleTimeoutMs: number;
  maxBodyBytes: number;
  jsonResponse: boolean;
  /** Builds the event store of a new session, for resumable streams; absent turns resumption off. */
  eventStore?: () => EventStore;
  /** SSE `retry:` hint sent with priming events. */
  retryIntervalMs?: number;
  logger: Logger;
}

interface Session {
  readonly id: string;
  readonly transport: WebStandardStreamableHTTPServerTransport;
  readonly server: Server;
  lastSeen: number;
  openStreams: number;
  /** The caller that opened it; only that caller may use it. */
  readonly owner: string | undefined;
  /** The protocol version the client asked for at `initialize`. */
  readonly version: string | undefined;
}

function isInitialize(body: unknown): boolean {
  if (Array.isArray(body)) return body.some((m) => isInitializeRequest(m));
  return isInitializeRequest(body);
}

/**
 * Sessions for 2025-era Streamable HTTP clients: ids from a CSPRNG, one SDK server and transport per
 * session, 400 for a missing id, 404 for an unknown or expired one, idle expiry, and a cap on live
 * sessions. A session with an open stream is never idle.
 */
export class LegacySessions {
  readonly #sessions = new Map<string, Session>();
  readonly #options: LegacySessionOptions;
  #pending = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: LegacySessionOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Serves one request of the 2025-era protocol. `parsedBody` is set for POST. `owner` is the
   * caller's id when the policy layer identified one: a session answers only the caller that opened
   * it, and to anyone else it does not exist (404, like an unknown id).
   */
  async handle(
    request: Request,
    parsedBody: unknown,
    authInfo: AuthInfo | undefined,
    owner?: string,
  ): Promise<Response> {
    const id = request.headers.get('mcp-session-id');
    const options = authInfo ? { parsedBody, authInfo } : { parsedBody };
    if (id === null) {
      if (request.method === 'POST' && isInitialize(parsedBody)) return this.#open(request, options, owner);
      return jsonRpcError(400, JSONRPC_SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required');
    }
    const session = this.#sessions.get(id);
    if (!session || session.owner !== owner) {
      return jsonRpcError(404, JSONRPC_SESSION_NOT_FOUND, 'Session not found');
    }
    // Batches went away in 2025-06-18: a session that negotiated it or later refuses them even when a
    // request leaves its MCP-Protocol-Version header off.
    if (Array.isArray(parsedBody) && session.version !== undefined && session.version >= '2025-06-18') {
      return jsonRpcError(
        400,
        JSONRPC_INVALID_REQUEST,
        `Invalid Request: JSON-RPC batches are not allowed in protocol version ${session.version}`,
      );
    }
    session.lastSeen = Date.now();
    const response = await session.transport.handleRequest(request, options);
    if (request.method === 'GET' && response.body && response.ok) return this.#track(session, response);
    return response;
  }

  async #open(
    request: Request,
    options: { parsedBody: unknown; authInfo?: AuthInfo },
    owner: string | undefined,
  ): Promise<Response> {
    if (this.#closed) return jsonRpcError(503, JSONRPC_SERVER_ERROR, 'Server is shutting down');
    if (this.#sessions.size + this.#pending >= this.#options.maxSessions) {
      return jsonRpcError(503, JSONRPC_SERVER_ERROR, 'Too many sessions; try again later', {
        'retry-after': '5',
      });
    }
    this.#pending++;
    const requested = (options.parsedBody as { params?: { protocolVersion?: unknown } }).params
      ?.protocolVersion;
    const version =
      typeof requested === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(requested) ? requested : undefined;
    let sessionId: string | undefined;
    let session: Session | undefined;
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => globalThis.crypto.randomUUID(),
      enableJsonResponse: this.#options.jsonResponse,
      maxRequestBodySize: this.#options.maxBodyBytes,
      ...(this.#options.eventStore && { eventStore: this.#options.eventStore() }),
      ...(this.#options.retryIntervalMs !== undefined && { retryInterval: this.#options.retryIntervalMs }),
      onsessioninitialized: (id) => {
        sessionId = id;
        session = { id, transport, server, lastSeen: Date.now(), openStreams: 0, owner, version };
        this.#sessions.set(id, session);
        this.#ensureSweeper();
      },
      onsessionclosed: (id) => {
        this.#drop(id);
      },
    });
    const server = this.#options.createServer(() => {
      if (sessionId !== undefined) this.#drop(sessionId);
    });
    try {
      await server.connect(transport);
      const response = await transport.handleRequest(request, options);
      if (sessionId === undefined) await server.close().catch(() => {});
      return response;
    } catch (error) {
      this.#options.logger.error({ err: error }, 'failed to open MCP session');
      await server.close().catch(() => {});
      throw error;
    } finally {
      this.#pending--;
    }
  }

  #track(session: Session, response: Response): Response {
    session.openStreams++;
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    response
      .body!.pipeTo(writable)
      .catch(() => {})
      .finally(() => {
        session.openStreams--;
        session.lastSeen = Date.now();
      });
    return new Response(readable, { status: response.status, headers: response.headers });
  }

  #drop(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    void session.server.close().catch(() => {});
    if (this.#sessions.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #ensureSweeper(): void {
    if (this.#sweeper !== undefined || this.#options.idleTimeoutMs <= 0) return;
    const every = Math.max(10, Math.min(this.#options.idleTimeoutMs / 2, 60_000));
    this.#sweeper = setInterval(() => this.sweep(Date.now()), every);
    (this.#sweeper as { unref?: () => void }).unref?.();
  }

  /** Closes sessions idle for longer than the timeout; returns how many. Called by a timer. */
  sweep(now: number): number {
    let closed = 0;
    for (const session of [...this.#sessions.values()]) {
      if (session.openStreams === 0 && now - session.lastSeen > this.#options.idleTimeoutMs) {
        this.#options.logger.debug({ sessionId: session.id }, 'closing idle MCP session');
        this.#drop(session.id);
        closed++;
      }
    }
    return closed;
  }

  /** Ends every session and its open streams. */
  async close(): Promise<void> {
    this.#closed = true;
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await Promise.all(sessions.map((s) => s.server.close().catch(() => {})));
  }
}
