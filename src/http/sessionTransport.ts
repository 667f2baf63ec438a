/**
 * The 2025-era Streamable HTTP transport of one session: JSON or SSE answers per POST, the standalone
 * GET stream with resumption from the event store, repeated ids under private ones, keep-alives.
 * Size: one SDK `Transport` implementation, whose exchanges and streams share their state.
 */
import {
  type AuthInfo,
  isInitializeRequest,
  type JSONRPCMessage,
  parseJSONRPCMessage,
  SUPPORTED_PROTOCOL_VERSIONS,
  specTypeSchemas,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/server';
import { isJsonRpcId } from '../core/plainJson.js';
import { messageBody, messageJson } from '../protocol/wireJson.js';
import { textResponse } from './bodyText.js';
import { jsonRpcError } from './jsonrpc.js';

/** The most messages one POST may carry (the SDK's bound). */
const MAX_BATCH = 100;
/** How long a request may run before its answer turns into an SSE stream carrying keep-alives. */
export const DEFAULT_KEEP_ALIVE_MS = 15_000;
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;
/** The error a pending answer carries for a request the client cancelled. */
const REQUEST_CANCELLED = -32800;
const REQUEST_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);
const encoder = new TextEncoder();

/**
 * How many bytes of an SSE answer may wait unread (the client reads slower than the handler sends)
 * before notifications and keep-alives are dropped; responses and requests to the client always go
 * out.
 */
export const MAX_UNREAD_SSE_BYTES = 4 * 1024 * 1024;
/** The SDK's own schema of `notifications/cancelled`: a cancellation it ignores is ignored here too. */
const CANCELLED = specTypeSchemas.CancelledNotification;

type Id = string | number;
type Message = JSONRPCMessage & { id?: Id; method?: string };

/** Options of {@link SessionTransport}. */
export interface SessionTransportOptions {
  /** Called once the session has its id (on `initialize`). */
  onsessioninitialized(id: string): void;
  /** Called when the client ends the session (`DELETE`). */
  onsessionclosed(id: string): void;
  /** Answer every POST with JSON, dropping what would precede the result (`http.jsonResponse`). */
  jsonResponse: boolean;
  /** Keep-alive interval of SSE streams (and how long an answer may stay pending before it becomes one). */
  keepAliveMs?: number;
}

/** What an exchange's resolver becomes once it has answered: nothing more goes out. */
function settled(): void {}

/**
 * The answer to one POST that carried requests. It stays pending (nothing sent) until its responses
 * are all in, and is then one JSON body; anything that must go out before them (a progress or log
 * notification, a server-to-client request, a keep-alive on a long call) turns it into an SSE stream
 * first, so the spec's either-JSON-or-SSE choice is made lazily, before the first byte.
 */
export class Exchange {
  readonly ids: readonly Id[];
  /** Called once when the exchange is over: answered, cancelled whole, or abandoned. */
  onEnd: (() => void) | undefined;
  readonly #responses = new Map<Id, JSONRPCMessage>();
  readonly #headers: Record<string, string>;
  /** Answers the POST; once the exchange is over, a no-op (see {@link Exchange.#over}). */
  #resolve: (response: Response) => void;
  readonly started = Date.now();
  #stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  #done = false;
  /** The client stopped reading the stream: nothing more is written. */
  gone = false;
  /** The HTTP status of a JSON answer. */
  status = 200;

  /** The ids the client sent, for requests the server saw under a private id (a repeated id). */
  readonly #originals: ReadonlyMap<Id, Id> | undefined;

  constructor(
    {
      ids,
      headers,
      originals,
    }: { ids: readonly Id[]; headers: Record<string, string>; originals?: ReadonlyMap<Id, Id> | undefined },
    resolve: (response: Response) => void,
  ) {
    this.ids = ids;
    this.#headers = headers;
    this.#resolve = resolve;
    this.#originals = originals;
  }

  /** The id the client sent for the request the server sees as `id`, when that is a private one. */
  originalOf(id: Id): Id | undefined {
    return this.#originals?.get(id);
  }

  /** `message` as the client must see it: the id it sent. */
  #outward(message: JSONRPCMessage, id: Id): JSONRPCMessage {
    const original = this.#originals?.get(id);
    return original === undefined ? message : ({ ...message, id: original } as JSONRPCMessage);
  }

  get streaming(): boolean {
    return this.#stream !== undefined;
  }

  /** A message for this exchange; true when it was the last response it waited for. */
  deliver(message: JSONRPCMessage, response: Id | undefined, jsonOnly: boolean): boolean {
    if (this.#done) return false;
    if (response !== undefined) {
      const outward = this.#outward(message, response);
      this.#responses.set(response, outward);
      if (this.#stream) this.#write(outward, false);
      if (this.#responses.size < this.ids.length) return false;
      this.#finish();
      return true;
    }
    if (jsonOnly) return false;
    this.#upgrade();
    // A notification may be dropped for a slow reader; a request to the client (sampling,
    // elicitation) never is: the tool waits for its answer.
    this.#write(message, !('id' in message));
    return false;
  }

  /**
   * The client cancelled request `id` (`notifications/cancelled`): no response will come for it, so
   * it stops being waited for. True when nothing is left to wait for; a pending answer then carries
   * an error for each cancelled request, since the client may still be reading it.
   */
  cancel(id: Id): boolean {
    if (this.#done || this.#responses.has(id)) return false;
    this.#responses.set(
      id,
      this.#outward(
        {
          jsonrpc: '2.0',
          id,
          error: { code: REQUEST_CANCELLED, message: 'Request cancelled' },
        } as JSONRPCMessage,
        id,
      ),
    );
    if (this.#responses.size < this.ids.length) return false;
    this.#finish();
    return true;
  }

  /** Whether the response to `id` is in (or the exchange is over). */
  answered(id: Id): boolean {
    return this.#done || this.#responses.has(id);
  }

  /** A keep-alive comment: opens the stream first when the answer is still pending. */
  keepAlive(): void {
    if (this.#done) return;
    this.#upgrade();
    this.#enqueue(': keepalive\n\n');
  }

  /**
   * Ends the exchange without its responses (the session or the server closed): `answer` (by default
   * 404 `Session not found`) for a pending answer.
   */
  abandon(answer?: Response): void {
    if (this.#done) return;
    this.#over()?.(answer ?? sessionGone());
  }

  /** Ends the exchange without answering it: its caller answers the POST some other way. */
  end(): void {
    if (!this.#done) this.#over();
  }

  /**
   * Marks the exchange over: runs `onEnd`, ends its stream, and lets go of what it held (responses,
   * the POST's resolver, `onEnd`). Returns the resolver when the answer is still to be given (it never
   * became a stream).
   *
   * Letting go matters for speed: an exchange can outlive its request (whatever still points at it),
   * and V8 keeps every young object an older one points at through each young-generation collection,
   * until a full one. An exchange that kept its request reachable so made the stateless paths
   * promote twice the bytes per request a session did (see docs/benchmarks.md).
   */
  #over(): ((response: Response) => void) | undefined {
    this.#done = true;
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.();
    const resolve = this.#resolve;
    this.#resolve = settled;
    this.#responses.clear();
    const stream = this.#stream;
    this.#stream = undefined;
    if (!stream) return resolve;
    try {
      stream.close();
    } catch {
      // already closed, or the client left
    }
    return undefined;
  }

  #finish(): void {
    const bodies = this.ids.map((id) => this.#responses.get(id));
    const resolve = this.#over();
    if (!resolve) return;
    const text = bodies.length === 1 ? messageBody(bodies[0]) : `[${bodies.map(messageJson).join(',')}]`;
    resolve(
      textResponse(text, {
        status: this.status,
        headers: { ...this.#headers, 'content-type': 'application/json' },
      }),
    );
  }

  #upgrade(): void {
    if (this.#stream) return;
    // Counted in bytes, so `desiredSize` is minus what waits unread.
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#stream = controller;
        },
        cancel: () => {
          this.gone = true;
        },
      },
      { highWaterMark: 0, size: (chunk) => chunk.byteLength },
    );
    this.#resolve(new Response(stream, { status: 200, headers: { ...SSE_HEADERS, ...this.#headers } }));
    // Responses already in (part of a batch) go first.
    for (const message of this.#responses.values()) this.#write(message, false);
  }

  #write(message: JSONRPCMessage, droppable: boolean): void {
    this.#enqueue(`event: message\ndata: ${messageJson(message)}\n\n`, droppable);
  }

  /** Queues `text`; past {@link MAX_UNREAD_SSE_BYTES} unread, a droppable one is dropped. */
  #enqueue(text: string, droppable = true): void {
    if (this.gone) return;
    const unread = -(this.#stream!.desiredSize ?? 0);
    if (droppable && unread > MAX_UNREAD_SSE_BYTES) return;
    try {
      this.#stream!.enqueue(encoder.encode(text));
    } catch {
      this.gone = true;
    }
  }
}

/**
 * mcpkit's Streamable HTTP server transport for one 2025-era session without an event store (a
 * session with one is served by the SDK's `WebStandardStreamableHTTPServerTransport`, which keeps
 * the events resumable). It answers what the SDK's transport answers, message for message and code
 * for code, with two differences: a POST's answer is JSON unless something must precede the result
 * (see {@link Exchange}), and a request id already in flight in the session is served under a
 * private id (the client gets its own id back) rather than taking over the first one's answer.
 */
export class SessionTransport implements Transport {
  sessionId: string | undefined;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: Transport['onmessage'];

  readonly #options: SessionTransportOptions;
  readonly #keepAliveMs: number;
  readonly #inFlight = new Map<Id, Exchange>();
  #aliases = 0;
  #versions: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
  #standalone: ReadableStreamDefaultController<Uint8Array> | undefined;
  #standaloneTimer: ReturnType<typeof setInterval> | undefined;
  readonly #keepAlives: KeepAlives;
  #started = false;
  #closed = false;

  constructor(options: SessionTransportOptions) {
    this.#options = options;
    this.#keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
    // A batch's exchange is in flight under each of its ids: each gets its keep-alive once.
    this.#keepAlives = new KeepAlives(this.#keepAliveMs, () => new Set(this.#inFlight.values()));
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('Transport already started');
    this.#started = true;
  }

  setSupportedProtocolVersions(versions: string[]): void {
    this.#versions = versions;
  }

  /** The id the client sent for a request served under private id `id`, if it is one. */
  clientIdOf(id: Id): Id | undefined {
    return this.#inFlight.get(id)?.originalOf(id);
  }

  /** Serves one request of the session: POST (with its parsed body), GET or DELETE. */
  async handleRequest(
    request: Request,
    options: { parsedBody?: unknown; authInfo?: AuthInfo },
  ): Promise<Response> {
    if (this.#closed) return sessionGone();
    switch (request.method) {
      case 'POST':
        return this.#post(request, options.parsedBody, options.authInfo);
      case 'GET':
        return this.#get(request);
      case 'DELETE':
        return this.#delete(request);
      default:
        return jsonRpcError(
          405,
          { code: -32000, message: 'Method not allowed.' },
          { allow: 'GET, POST, DELETE' },
        );
    }
  }

  #post(request: Request, body: unknown, authInfo: AuthInfo | undefined): Promise<Response> | Response {
    const unacceptable = checkAccept(request.headers.get('accept'));
    if (unacceptable) return unacceptable;
    if (Array.isArray(body) && body.length > MAX_BATCH) {
      return jsonRpcError(400, {
        code: -32600,
        message: `Invalid Request: Batch must not exceed ${MAX_BATCH} messages`,
      });
    }
    const messages = validMessages(body);
    if (!messages)
      return jsonRpcError(400, { code: -32700, message: 'Parse error: Invalid JSON-RPC message' });
    const initializing = messages.some((m) => m.method === 'initialize' && isInitializeRequest(m));
    if (initializing) {
      if (this.sessionId !== undefined)
        return jsonRpcError(400, { code: -32600, message: 'Invalid Request: Server already initialized' });
      if (messages.length > 1) {
        return jsonRpcError(400, {
          code: -32600,
          message: 'Invalid Request: Only one initialization request is allowed',
        });
      }
      this.sessionId = globalThis.crypto.randomUUID();
      this.#options.onsessioninitialized(this.sessionId);
    } else {
      const refused = this.#checkSession(request) ?? this.#checkVersion(request);
      if (refused) return refused;
    }
    const extra = authInfo ? { authInfo, request } : { request };
    const ids: Id[] = [];
    let originals: Map<Id, Id> | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.method === undefined || m.id === undefined) continue;
      if (this.#inFlight.has(m.id) || ids.includes(m.id)) {
        // The same id twice in flight (a client's mistake, or a load tester's constant body): the
        // server sees a private id, the client gets its own back, and neither answer is lost.
        const alias = this.#alias(messages, ids);
        originals ??= new Map();
        originals.set(alias, m.id);
        messages[i] = { ...m, id: alias } as Message;
        ids.push(alias);
      } else ids.push(m.id);
    }
    if (ids.length === 0) {
      for (const m of messages) this.#dispatch(m, extra);
      return new Response(null, { status: 202 });
    }
    const headers: Record<string, string> = { 'mcp-session-id': this.sessionId! };
    return new Promise<Response>((resolve) => {
      const exchange = new Exchange({ ids, headers, originals }, resolve);
      for (const id of ids) this.#inFlight.set(id, exchange);
      this.#armKeepAlive();
      for (const m of messages) this.#dispatch(m, extra);
    });
  }

  /** An id that no request in flight, in this body or already chosen (`taken`) has, for a repeated one. */
  #alias(sent: readonly Message[], taken: readonly Id[]): string {
    let alias: string;
    do alias = `mcpkit-repeated-id-${++this.#aliases}`;
    while (this.#inFlight.has(alias) || taken.includes(alias) || sent.some((m) => m.id === alias));
    return alias;
  }

  /**
   * Hands `message` to the server. A cancellation the SDK accepts (its own schema decides) also ends
   * the wait for the request it names; one naming a repeated id reaches that request under its
   * private id (the first one in flight, when several share it).
   */
  #dispatch(message: Message, extra: { authInfo?: AuthInfo; request: Request }): void {
    if (message.method !== 'notifications/cancelled' || message.id !== undefined) {
      this.onmessage?.(message, extra);
      return;
    }
    const target = this.#cancelTarget(message);
    if (target === undefined) {
      this.onmessage?.(message, extra);
      return;
    }
    const named = (message as unknown as { params: { requestId: Id } }).params.requestId;
    const forServer =
      target === named
        ? message
        : ({
            ...message,
            params: { ...(message as { params: object }).params, requestId: target },
          } as Message);
    this.onmessage?.(forServer, extra);
    const exchange = this.#inFlight.get(target);
    if (!exchange) return;
    if (exchange.cancel(target)) this.#release(exchange);
    else this.#forget(target, exchange);
  }

  /** The in-flight id a valid `notifications/cancelled` names: its own, or the private id of a repeat. */
  #cancelTarget(message: Message): Id | undefined {
    const checked = CANCELLED['~standard'].validate(message);
    if (checked instanceof Promise || checked.issues) return undefined;
    const named = (message as unknown as { params: { requestId: Id } }).params.requestId;
    const exchange = this.#inFlight.get(named);
    if (exchange && !exchange.answered(named)) return named;
    for (const [id, holder] of this.#inFlight) {
      if (holder.originalOf(id) === named && !holder.answered(id)) return id;
    }
    return undefined;
  }

  /** Stops routing `id` to `exchange` (its answer is settled; others of the exchange still run). */
  #forget(id: Id, exchange: Exchange): void {
    if (this.#inFlight.get(id) === exchange) this.#inFlight.delete(id);
  }

  /** An exchange that is over: none of its ids routes to it any more. */
  #release(exchange: Exchange): void {
    for (const id of exchange.ids) this.#forget(id, exchange);
  }

  #get(request: Request): Response {
    if (!request.headers.get('accept')?.includes('text/event-stream')) {
      return jsonRpcError(406, {
        code: -32000,
        message: 'Not Acceptable: Client must accept text/event-stream',
      });
    }
    const refused = this.#checkSession(request) ?? this.#checkVersion(request);
    if (refused) return refused;
    if (this.#standalone)
      return jsonRpcError(409, {
        code: -32000,
        message: 'Conflict: Only one SSE stream is allowed per session',
      });
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      cancel: () => {
        if (this.#standalone === controller) this.#endStandalone();
      },
    });
    this.#standalone = controller;
    this.#standaloneTimer = setInterval(() => {
      try {
        controller!.enqueue(encoder.encode(': keepalive\n\n'));
      } catch {
        if (this.#standalone === controller) this.#endStandalone();
      }
    }, this.#keepAliveMs);
    (this.#standaloneTimer as { unref?: () => void }).unref?.();
    return new Response(stream, {
      status: 200,
      headers: { ...SSE_HEADERS, 'mcp-session-id': this.sessionId! },
    });
  }

  async #delete(request: Request): Promise<Response> {
    const refused = this.#checkSession(request) ?? this.#checkVersion(request);
    if (refused) return refused;
    try {
      this.#options.onsessionclosed(this.sessionId!);
      return new Response(null, { status: 200 });
    } finally {
      await this.close();
    }
  }

  #checkSession(request: Request): Response | undefined {
    if (this.sessionId === undefined)
      return jsonRpcError(400, { code: -32000, message: 'Bad Request: Server not initialized' });
    const id = request.headers.get('mcp-session-id');
    if (!id)
      return jsonRpcError(400, { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' });
    if (id !== this.sessionId) return sessionGone();
    return undefined;
  }

  #checkVersion(request: Request): Response | undefined {
    return unsupportedVersion(request.headers.get('mcp-protocol-version'), this.#versions);
  }

  /** One timer per session while answers are pending: long calls get an SSE stream and keep-alives. */
  #armKeepAlive(): void {
    if (!this.#options.jsonResponse) this.#keepAlives.arm();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as Message;
    const isResponse = m.method === undefined && m.id !== undefined;
    const related = isResponse ? m.id : options?.relatedRequestId;
    if (related === undefined) {
      if (isResponse) {
        throw new Error(
          'Cannot send a response on a standalone SSE stream unless resuming a previous client request',
        );
      }
      if (!this.#standalone) return;
      try {
        this.#standalone.enqueue(encoder.encode(`event: message\ndata: ${JSON.stringify(message)}\n\n`));
      } catch {
        this.#endStandalone();
      }
      return;
    }
    const exchange = this.#inFlight.get(related);
    // Nothing waits for it: the session closed, or the client cancelled the request.
    if (!exchange) return;
    if (exchange.deliver(message, isResponse ? related : undefined, this.#options.jsonResponse)) {
      this.#release(exchange);
    }
  }

  #endStandalone(): void {
    clearInterval(this.#standaloneTimer);
    this.#standaloneTimer = undefined;
    const controller = this.#standalone;
    this.#standalone = undefined;
    try {
      controller?.close();
    } catch {
      // already closed or cancelled
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#keepAlives.stop();
    this.#endStandalone();
    for (const exchange of new Set(this.#inFlight.values())) exchange.abandon();
    this.#inFlight.clear();
    this.onclose?.();
  }
}

/**
 * The messages of a POST body when every one is a valid JSON-RPC message, else `undefined`. The
 * common shapes (a request or notification with plain params) are checked here; anything else goes
 * through the SDK's own schema, so what is accepted is exactly what the SDK accepts.
 */
function validMessages(body: unknown): Message[] | undefined {
  const list = Array.isArray(body) ? body : [body];
  for (const message of list) {
    if (!isPlainJsonRpc(message)) {
      try {
        parseJSONRPCMessage(message);
      } catch {
        return undefined;
      }
    }
  }
  return (list === body ? [...list] : list) as Message[];
}

/**
 * Whether `message` is a JSON-RPC request or notification in its plainest form: only the four
 * members, a string or safe-integer id, params (if any) an object without `_meta`. Everything this
 * accepts the SDK's schema accepts too, and none of it carries a 2026-07-28 envelope claim.
 */
export function isPlainJsonRpc(message: unknown): boolean {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return false;
  const m = message as Record<string, unknown>;
  if (m.jsonrpc !== '2.0' || typeof m.method !== 'string') return false;
  for (const key in m) if (!REQUEST_KEYS.has(key)) return false;
  if ('id' in m && !isJsonRpcId(m.id)) return false;
  if ('params' in m) {
    const params = m.params;
    if (typeof params !== 'object' || params === null || Array.isArray(params) || '_meta' in params)
      return false;
  }
  return true;
}

/**
 * The keep-alive timer of a transport's pending answers: one timer while any is pending (it stops
 * itself once none is), which turns an answer still pending after the interval into an SSE stream
 * and sends keep-alives on streams.
 */
export class KeepAlives {
  readonly #intervalMs: number;
  readonly #pending: () => Iterable<Exchange>;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(intervalMs: number, pending: () => Iterable<Exchange>) {
    this.#intervalMs = intervalMs;
    this.#pending = pending;
  }

  /** Starts the timer unless it runs. */
  arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      const due = Date.now() - this.#intervalMs;
      let pending = false;
      for (const exchange of this.#pending()) {
        pending = true;
        if (exchange.streaming || exchange.started <= due) exchange.keepAlive();
      }
      if (!pending) this.stop();
    }, this.#intervalMs / 2);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** 406 unless the client accepts both JSON and SSE answers, as a POST's may be either. */
export function checkAccept(accept: string | null): Response | undefined {
  if (accept?.includes('application/json') && accept.includes('text/event-stream')) return undefined;
  return jsonRpcError(406, {
    code: -32000,
    message: 'Not Acceptable: Client must accept both application/json and text/event-stream',
  });
}

/** 400 when the request names a protocol version the server does not speak (none named is fine). */
export function unsupportedVersion(
  version: string | null,
  versions: readonly string[],
): Response | undefined {
  if (version === null || versions.includes(version)) return undefined;
  return jsonRpcError(400, {
    code: -32000,
    message: `Bad Request: Unsupported protocol version: ${version.slice(0, 64)} (supported versions: ${versions.join(', ')})`,
  });
}

function sessionGone(): Response {
  return jsonRpcError(404, { code: -32001, message: 'Session not found' });
}
