import type { AuthInfo } from '@modelcontextprotocol/server';
import {
  type EventStore,
  isInitializeRequest,
  LATEST_PROTOCOL_VERSION,
  type Server,
  SUPPORTED_PROTOCOL_VERSIONS,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { refuse } from '../core/refusal.js';
import type { Shares } from '../policy/shares.js';
import type { Logger } from '../types.js';
import { mcpRequestRefusal } from './answers.js';
import { JSONRPC_SESSION_NOT_FOUND, jsonRpcError } from './jsonrpc.js';
import { SessionTransport } from './sessionTransport.js';

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
  /** Sessions one caller may hold at once (its least recently used idle one goes for a new one). */
  maxSessionsPerCaller: number;
  /** Streams one caller may hold open at once (the standalone GET streams, with every other stream). */
  streams: Shares;
  /** Told of every session opened and closed here, so other nodes can forward to it. */
  directory?: { hold(id: string): void; release(id: string): void };
  logger: Logger;
}

/** Who a request comes from, as the session table needs it. */
export interface SessionCaller {
  /** The caller's id: a session answers only the caller that opened it. */
  readonly id: string | undefined;
  /** The key its share of sessions and streams is counted under (its id, or its address). */
  readonly shareKey: string;
}

interface Session {
  readonly id: string;
  /** Its event store, given back its bytes when the session closes. */
  readonly events: (EventStore & { close?(): void }) | undefined;
  readonly transport: WebStandardStreamableHTTPServerTransport | SessionTransport;
  readonly server: Server;
  lastSeen: number;
  openStreams: number;
  /** The caller that opened it; only that caller may use it. */
  readonly owner: string | undefined;
  /** The key its caller's share is counted under, when the policy layer identified one. */
  readonly shareKey: string | undefined;
  /** The protocol version the session negotiated at `initialize`. */
  readonly version: string;
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
  /** Sessions by the share key of their caller, in the order they were last used. */
  readonly #byCaller = new Map<string, Set<Session>>();
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

  /** Whether this node holds session `id`. */
  has(id: string): boolean {
    return this.#sessions.has(id);
  }

  /**
   * Serves one request of the 2025-era protocol. `parsedBody` is set for POST. `caller` is set when
   * the policy layer identified one: a session answers only the caller that opened it, and to anyone
   * else it does not exist (404, like an unknown id); each caller holds at most its share of
   * sessions and of open streams.
   */
  async handle(
    request: Request,
    {
      parsedBody,
      authInfo,
      caller,
    }: { parsedBody: unknown; authInfo: AuthInfo | undefined; caller?: SessionCaller | undefined },
  ): Promise<Response> {
    const id = request.headers.get('mcp-session-id');
    const options = authInfo ? { parsedBody, authInfo } : { parsedBody };
    if (id === null) {
      if (request.method === 'POST' && isInitialize(parsedBody)) return this.#open(request, options, caller);
      return mcpRequestRefusal(refuse('INVALID_REQUEST', 'Bad Request: Mcp-Session-Id header is required'));
    }
    const session = this.#sessions.get(id);
    if (!session || session.owner !== caller?.id) {
      return jsonRpcError(404, { code: JSONRPC_SESSION_NOT_FOUND, message: 'Session not found' });
    }
    // Batches went away in 2025-06-18: a session that negotiated it or later refuses them even when a
    // request leaves its MCP-Protocol-Version header off.
    if (Array.isArray(parsedBody) && session.version >= '2025-06-18') {
      return mcpRequestRefusal(
        refuse(
          'INVALID_REQUEST',
          `Invalid Request: JSON-RPC batches are not allowed in protocol version ${session.version}`,
        ),
      );
    }
    this.#touch(session);
    let release: (() => void) | undefined;
    if (request.method === 'GET' && session.shareKey !== undefined) {
      release = this.#options.streams.take(session.shareKey);
      if (!release) return mcpRequestRefusal(tooMany('streams', this.#options.streams.limit));
    }
    const response = await session.transport.handleRequest(request, options);
    if (request.method === 'GET' && response.body && response.ok)
      return this.#track(session, response, release);
    release?.();
    return response;
  }

  /** Marks `session` used now: the most recently used of its caller's. */
  #touch(session: Session): void {
    session.lastSeen = Date.now();
    if (session.shareKey === undefined) return;
    const mine = this.#byCaller.get(session.shareKey);
    if (mine?.delete(session)) mine.add(session);
  }

  /**
   * Makes room for one more session of `shareKey`: nothing to do under its share; otherwise its least
   * recently used session without an open stream is closed. `false` when every one holds a stream.
   */
  #makeRoom(shareKey: string): boolean {
    const mine = this.#byCaller.get(shareKey);
    if (!mine || mine.size + this.#pendingOf(shareKey) < this.#options.maxSessionsPerCaller) return true;
    for (const session of mine) {
      if (session.openStreams > 0) continue;
      this.#options.logger.debug(
        { sessionId: session.id },
        'closing the least recently used session of a caller at its share',
      );
      this.#drop(session.id);
      return true;
    }
    return false;
  }

  readonly #pendingByCaller = new Map<string, number>();

  #pendingOf(shareKey: string): number {
    return this.#pendingByCaller.get(shareKey) ?? 0;
  }

  async #open(
    request: Request,
    options: { parsedBody: unknown; authInfo?: AuthInfo },
    caller: SessionCaller | undefined,
  ): Promise<Response> {
    if (this.#closed) return mcpRequestRefusal(refuse('UNAVAILABLE', 'Server is shutting down'));
    const shareKey = caller?.shareKey;
    if (shareKey !== undefined && !this.#makeRoom(shareKey)) {
      return mcpRequestRefusal(tooMany('sessions', this.#options.maxSessionsPerCaller));
    }
    if (this.#sessions.size + this.#pending >= this.#options.maxSessions) {
      return mcpRequestRefusal(
        refuse('BUSY', 'Too many sessions; try again later', { headers: { 'retry-after': '5' } }),
      );
    }
    const owner = caller?.id;
    this.#pending++;
    if (shareKey !== undefined) this.#pendingByCaller.set(shareKey, this.#pendingOf(shareKey) + 1);
    const requested = (options.parsedBody as { params?: { protocolVersion?: unknown } }).params
      ?.protocolVersion;
    // The version the session speaks: the one asked for when the server supports it, else the
    // server's latest (what its initialize answer counter-offers).
    const version =
      typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested)
        ? requested
        : LATEST_PROTOCOL_VERSION;
    let sessionId: string | undefined;
    let session: Session | undefined;
    const events: Session['events'] = this.#options.eventStore?.();
    const initialized = (id: string) => {
      sessionId = id;
      session = {
        id,
        events,
        transport,
        server,
        lastSeen: Date.now(),
        openStreams: 0,
        owner,
        shareKey,
        version,
      };
      this.#sessions.set(id, session);
      this.#options.directory?.hold(id);
      if (shareKey !== undefined) {
        let mine = this.#byCaller.get(shareKey);
        if (!mine) {
          mine = new Set();
          this.#byCaller.set(shareKey, mine);
        }
        mine.add(session);
      }
      this.#ensureSweeper();
    };
    const closed = (id: string) => this.#drop(id);
    // Resumable sessions keep the SDK's transport, which stores and replays their events; the others
    // get mcpkit's, which answers with JSON unless something must precede the result.
    const transport = events
      ? new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: () => globalThis.crypto.randomUUID(),
          enableJsonResponse: this.#options.jsonResponse,
          maxRequestBodySize: this.#options.maxBodyBytes,
          eventStore: events,
          ...(this.#options.retryIntervalMs !== undefined && {
            retryInterval: this.#options.retryIntervalMs,
          }),
          onsessioninitialized: initialized,
          onsessionclosed: closed,
        })
      : new SessionTransport({
          jsonResponse: this.#options.jsonResponse,
          onsessioninitialized: initialized,
          onsessionclosed: closed,
        });
    const server = this.#options.createServer(() => {
      if (sessionId !== undefined) this.#drop(sessionId);
    });
    try {
      await server.connect(transport);
      const response = await transport.handleRequest(request, options);
      if (sessionId === undefined) {
        await server.close().catch(() => {});
        events?.close?.();
      }
      return response;
    } catch (error) {
      this.#options.logger.error({ err: error }, 'failed to open MCP session');
      await server.close().catch(() => {});
      events?.close?.();
      throw error;
    } finally {
      this.#pending--;
      if (shareKey !== undefined) {
        const left = this.#pendingOf(shareKey) - 1;
        if (left > 0) this.#pendingByCaller.set(shareKey, left);
        else this.#pendingByCaller.delete(shareKey);
      }
    }
  }

  #track(session: Session, response: Response, release: (() => void) | undefined): Response {
    session.openStreams++;
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    response
      .body!.pipeTo(writable)
      .catch(() => {})
      .finally(() => {
        session.openStreams--;
        session.lastSeen = Date.now();
        release?.();
      });
    return new Response(readable, { status: response.status, headers: response.headers });
  }

  #drop(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    this.#options.directory?.release(id);
    session.events?.close?.();
    if (session.shareKey !== undefined) {
      const mine = this.#byCaller.get(session.shareKey);
      mine?.delete(session);
      if (mine?.size === 0) this.#byCaller.delete(session.shareKey);
    }
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
    for (const session of sessions) this.#options.directory?.release(session.id);
    this.#byCaller.clear();
    for (const session of sessions) session.events?.close?.();
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await Promise.all(sessions.map((s) => s.server.close().catch(() => {})));
  }
}

/** The refusal of a caller at its share of sessions or streams. */
function tooMany(what: 'sessions' | 'streams', limit: number) {
  return refuse('RATE_LIMITED', `Too many open ${what} for this caller (limit ${limit}); close one first`, {
    headers: { 'retry-after': '5' },
    data: { retryAfterSeconds: 5, limit },
  });
}
