/**
 * MCP over WebSocket: the server transport (framing, limits, heartbeat, backpressure, the notification
 * fence) and `attachWebSocket`, the upgrade door (admission, subprotocol, connection caps). Size: one
 * door; the transport and its door share their limits and close codes, and are read together.
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  AuthInfo,
  JSONRPCMessage,
  MessageExtraInfo,
  Transport,
  TransportSendOptions,
} from '@modelcontextprotocol/server';
import { isJSONRPCRequest } from '@modelcontextprotocol/server';
import type { WebSocket, WebSocketServer } from 'ws';
import { envMaxConnections } from '../config.js';
import { ERROR_CODES } from '../core/errors.js';
import { nonNegativeInteger, positiveInteger } from '../core/options.js';
import { normalisePath } from '../core/paths.js';
import { type Refusal, refuse } from '../core/refusal.js';
import { JsonDepthError, parseJsonSafe } from '../core/safeJson.js';
import { upgradeRefusal } from '../http/answers.js';
import { Shares } from '../policy/shares.js';
import { NotificationFence } from '../protocol/fence.js';
import { SETTLING_METHODS } from '../protocol/methods.js';
import { messageJson } from '../protocol/wireJson.js';
import type { McpKitServer } from '../server.js';
import type { CallerIdentity } from '../types.js';
import { requestSource, toWebRequest } from './bridge.js';
import {
  BEARER_SUBPROTOCOL_PREFIX,
  COMPLETIONS_SUBPROTOCOL,
  CompletionSocket,
  type CompletionSocketOptions,
} from './completionSocket.js';

/** The WebSocket subprotocol of MCP: offered by clients, echoed by the server. */
export const MCP_SUBPROTOCOL = 'mcp';

const OPEN = 1;
const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const DEFAULT_MAX_IN_FLIGHT = 100;
const DEFAULT_HEARTBEAT_MS = 30_000;
const DEFAULT_MAX_CONNECTIONS = 10_000;
/** How long a slow reader gets to take its close frame before its socket is cut. */
const SLOW_READER_GRACE_MS = 1_000;
/** How long a closing handshake may take before the socket is cut (ws's own default is 30 s). */
const CLOSE_TIMEOUT_MS = 5_000;

/** WebSocket close codes mcpkit sends. */
export const WebSocketCloseCode = {
  /** Normal closure: the server or the client ended the connection. */
  normal: 1000,
  /** The server is shutting down (`attachment.close()`, `listening.close()`). */
  goingAway: 1001,
  /** A binary frame arrived: MCP over WebSocket is JSON text, one message per frame. */
  unsupportedData: 1003,
  /** No close frame: the peer vanished (heartbeat timeout) or the socket was cut. */
  abnormal: 1006,
  /** The client did not read its messages and the outgoing buffer passed `maxBufferedBytes`. */
  policyViolation: 1008,
  /** A frame over `maxPayloadBytes` (sent by `ws` itself). */
  messageTooBig: 1009,
} as const;

/** How a WebSocket connection ended. */
export interface WebSocketCloseInfo {
  /** The close code sent by whichever side closed first (1006 when no close frame was exchanged). */
  code: number;
  /** The close reason, possibly empty. */
  reason: string;
}

/** A message as `ws` delivers it: one buffer, or fragments (`ArrayBuffer` with `binaryType` set so). */
export type ServerWebSocketData = Buffer | ArrayBuffer | Buffer[];

/**
 * The server side of one WebSocket connection, as {@link WebSocketServerTransport} uses it: the part
 * of a `WebSocket` of the `ws` package the transport calls. Any `ws` socket fits; mcpkit's types
 * name nothing of `ws` itself, so a program that never opens a socket needs neither `ws` nor
 * `@types/ws`.
 *
 * @example
 * ```ts
 * import { type ServerWebSocket, WebSocketServerTransport } from 'mcpkit/node';
 * import { WebSocketServer } from 'ws';
 *
 * const serve = (socket: ServerWebSocket) =>
 *   server.connect(new WebSocketServerTransport(socket), { origin: 'websocket' });
 * new WebSocketServer({ port: 8080, handleProtocols: () => 'mcp' }).on('connection', serve);
 * ```
 */
export interface ServerWebSocket {
  /** 1 while open (the `readyState` of the WebSocket API). */
  readonly readyState: number;
  /** The subprotocol agreed at the upgrade. */
  readonly protocol: string;
  /** Bytes queued to send. */
  readonly bufferedAmount: number;
  send(data: string): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  /** Cuts the connection without a closing handshake. */
  terminate(): void;
  on(event: 'message', listener: (data: ServerWebSocketData, isBinary: boolean) => void): unknown;
  on(event: 'pong', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
}

/** Options for {@link WebSocketServerTransport}. */
export interface WebSocketServerTransportOptions {
  /**
   * Outgoing bytes that may wait in the socket's buffer before the client counts as a slow reader and
   * is closed with 1008. One message always goes out on an empty buffer, however large. Default 8 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Requests from the client still being served; past it, new requests are answered at once with a
   * JSON-RPC error (`-32005`, busy) and never reach a handler. A request counts until its response
   * is sent, or, when the client cancelled it, until its handler has really finished (a handler that
   * ignores its signal keeps its slot). A request reusing the id of one still in flight is refused
   * (`-32600`). Default 100.
   */
  maxInFlight?: number;
  /**
   * Interval of the ping/pong heartbeat in ms: a peer that has answered neither a ping nor sent
   * anything for one whole interval is cut. `0` disables. Default 30 000.
   */
  heartbeatMs?: number;
  /** Authentication established at the upgrade, handed to handlers as `ctx.http.authInfo`. */
  authInfo?: AuthInfo;
  /** How deep a message may nest; deeper is answered with `-32600`. Default 64. */
  maxJsonDepth?: number;
}

type MessageKind = 'request' | 'notification' | 'response';

/** The methods whose handlers report when they end (`requestSettled`): the ones mcpkit serves. */
const SETTLES = new Set<string>(SETTLING_METHODS);

/** Where a request in flight stands. */
const InFlight = {
  /** Running; one of the SDK's own methods, which gives its slot back with its response. */
  answering: 0,
  /** Running; its handler reports its end (`requestSettled`), even after a cancellation. */
  settling: 1,
  /** Cancelled by the client; its slot is held until its handler reports its end. */
  cancelled: 2,
} as const;
type InFlight = (typeof InFlight)[keyof typeof InFlight];

/** A cheap structural check of one JSON-RPC 2.0 message; the SDK validates each method's params. */
function classify(value: unknown): MessageKind | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const m = value as { jsonrpc?: unknown; method?: unknown; id?: unknown };
  if (m.jsonrpc !== '2.0') return undefined;
  const hasId = typeof m.id === 'string' || typeof m.id === 'number';
  if (typeof m.method === 'string') {
    if (!('id' in m)) return 'notification';
    return hasId ? 'request' : undefined;
  }
  if (hasId && ('result' in m || 'error' in m)) return 'response';
  // an error response to a message whose id could not be read carries `id: null`
  if (m.id === null && 'error' in m) return 'response';
  return undefined;
}

function idOf(value: unknown): string | number | null {
  if (value === null || typeof value !== 'object') return null;
  const id = (value as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

/**
 * The SDK `Transport` over one `ws` WebSocket: one JSON-RPC message per text frame.
 *
 * - A binary frame closes the connection with 1003; a frame over the server's `maxPayload` is closed
 *   by `ws` with 1009.
 * - A text frame that is not JSON gets a JSON-RPC parse error (`-32700`, `id: null`) and the
 *   connection stays open; a JSON value that is not one JSON-RPC message (a batch array included)
 *   gets `-32600`. `__proto__` and `constructor.prototype` keys are dropped from every message.
 * - At most `maxInFlight` client requests wait for a response at once; the excess is answered with
 *   `-32005` at once.
 * - When more than `maxBufferedBytes` wait in the outgoing buffer (the client stopped reading), the
 *   connection is closed with 1008 and cut a second later, so memory does not grow.
 * - A ping every `heartbeatMs`; a peer silent for a whole interval is cut (close info 1006).
 *
 * `attachWebSocket` builds one per accepted upgrade; build your own to serve sockets from a
 * `WebSocketServer` you manage (negotiate the `mcp` subprotocol there).
 *
 * @example
 * ```ts
 * import { WebSocketServer } from 'ws';
 * import { WebSocketServerTransport } from 'mcpkit/node';
 *
 * const wss = new WebSocketServer({ port: 8080, handleProtocols: (p) => (p.has('mcp') ? 'mcp' : false) });
 * wss.on('connection', (socket) => {
 *   void server.connect(new WebSocketServerTransport(socket), { origin: 'websocket' });
 * });
 * ```
 */
export class WebSocketServerTransport implements Transport {
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  /** A random id for this connection, seen by handlers as `ctx.sessionId`. */
  readonly sessionId: string = crypto.randomUUID();
  /** Settles once when the connection ends, with the close code of whichever side ended it. */
  readonly closed: Promise<WebSocketCloseInfo>;

  readonly #socket: ServerWebSocket;
  readonly #maxBuffered: number;
  readonly #maxInFlight: number;
  readonly #maxJsonDepth: number;
  readonly #extra: MessageExtraInfo | undefined;
  /**
   * Requests in flight by id and their state; made when one arrives and dropped when the last ends,
   * so an idle connection carries none.
   */
  #inFlight: Map<string | number, InFlight> | undefined;
  #pending: string[] | undefined = [];
  /**
   * Holds a response until the client has dispatched its request's progress (see
   * NotificationFence); made at the connection's first progress, so an idle connection carries none.
   */
  #fence: NotificationFence | undefined;
  /** The client's `initialize` request until it is answered; then whether it succeeded (`true`). */
  #handshake: string | number | boolean | undefined;
  #alive = true;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closeInfo: WebSocketCloseInfo | undefined;
  #finished = false;
  #resolveClosed!: (info: WebSocketCloseInfo) => void;

  constructor(socket: ServerWebSocket, options: WebSocketServerTransportOptions = {}) {
    this.#socket = socket;
    this.#maxBuffered = positiveInteger(
      'maxBufferedBytes',
      options.maxBufferedBytes,
      DEFAULT_MAX_BUFFERED_BYTES,
    );
    this.#maxInFlight = positiveInteger('maxInFlight', options.maxInFlight, DEFAULT_MAX_IN_FLIGHT);
    this.#maxJsonDepth = positiveInteger('maxJsonDepth', options.maxJsonDepth, 64);
    const heartbeatMs = nonNegativeInteger('heartbeatMs', options.heartbeatMs, DEFAULT_HEARTBEAT_MS);
    this.#extra = options.authInfo ? { authInfo: options.authInfo } : undefined;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    // Listen at once: frames that arrive before start() are held, not lost.
    socket.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
    socket.on('pong', () => {
      this.#alive = true;
    });
    socket.on('error', (error: Error) => this.onerror?.(error));
    socket.once('close', (code: number, reason: Buffer) => {
      this.#finish(this.#closeInfo ?? { code, reason: reason.toString() });
    });
    if (socket.readyState !== OPEN) {
      this.#finish({ code: WebSocketCloseCode.abnormal, reason: 'socket was not open' });
      return;
    }
    if (heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  /** The subprotocol agreed at the upgrade (`mcp` when served by `attachWebSocket`). */
  get protocol(): string {
    return this.#socket.protocol;
  }

  /** Client requests waiting for their response. */
  get inFlight(): number {
    return this.#inFlight?.size ?? 0;
  }

  /** Bytes waiting in the outgoing buffer. */
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  async start(): Promise<void> {
    const pending = this.#pending;
    this.#pending = undefined;
    for (const text of pending ?? []) {
      if (this.#finished) return;
      this.#handle(text);
    }
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.#fence) return this.#fence.send(message, options);
    const m = message as { method?: string; id?: string | number };
    if (m.method === 'notifications/progress' && options?.relatedRequestId !== undefined) {
      // An answered `initialize` makes a 2025-era connection, where the fence may send `ping`.
      this.#fence = new NotificationFence((out) => this.#write(out), { pingable: this.#handshake === true });
      return this.#fence.send(message, options);
    }
    if (m.method === undefined && m.id !== undefined && m.id === this.#handshake) {
      this.#handshake = 'result' in message;
    }
    return this.#write(message);
  }

  async #write(message: JSONRPCMessage): Promise<void> {
    const socket = this.#socket;
    if (this.#finished || socket.readyState !== OPEN) throw new Error('WebSocket connection is closed');
    if (socket.bufferedAmount > this.#maxBuffered) {
      this.#close(
        WebSocketCloseCode.policyViolation,
        'slow reader: outgoing buffer over its limit',
        SLOW_READER_GRACE_MS,
      );
      throw new Error('WebSocket connection closed: the client is not reading its messages');
    }
    if ('id' in message && !('method' in message)) this.#ended(message.id as string | number);
    socket.send(messageJson(message));
  }

  /**
   * Tells the transport that the handler of request `id` has finished: a request the client
   * cancelled (which gets no response) gives its slot back only now. `server.connect` wires it for
   * the sessions it serves on this transport.
   */
  requestSettled(id: string | number): void {
    if (this.#inFlight?.get(id) === InFlight.cancelled) this.#ended(id);
  }

  async close(): Promise<void> {
    this.#close(WebSocketCloseCode.normal, '');
  }

  /** Closes the connection with `code` (1000, 1001, or 3000–4999) and `reason`. */
  closeWith(code: number, reason = ''): void {
    this.#close(code, reason);
  }

  #onFrame(data: ServerWebSocketData, isBinary: boolean): void {
    this.#alive = true;
    if (this.#finished) return;
    if (isBinary) {
      this.#close(
        WebSocketCloseCode.unsupportedData,
        'binary frames are not supported: send each JSON-RPC message as one text frame',
      );
      return;
    }
    const text = Buffer.isBuffer(data)
      ? data.toString()
      : Array.isArray(data)
        ? Buffer.concat(data).toString()
        : Buffer.from(data).toString();
    if (this.#pending) this.#pending.push(text);
    else this.#handle(text);
  }

  #handle(text: string): void {
    let message: unknown;
    try {
      message = parseJsonSafe(text, this.#maxJsonDepth);
    } catch (error) {
      if (error instanceof JsonDepthError) this.#reply(null, -32600, `Invalid Request: ${error.message}`);
      else this.#reply(null, -32700, 'Parse error: the message is not valid JSON');
      return;
    }
    // JSON-RPC batches are refused whatever version the connection negotiated. 2025-06-18 and later
    // forbid them; 2025-03-26 allowed them on its own transports (stdio, Streamable HTTP), which
    // WebSocket is not: MCP over WebSocket is one message per frame, and no client batches on it.
    // One rule for every version also avoids tracking the negotiated one here (and a batch that
    // arrives before `initialize` would have no version to check against).
    if (Array.isArray(message)) {
      this.#reply(
        null,
        -32600,
        'Invalid Request: JSON-RPC batches are not allowed over WebSocket; send one message per frame',
      );
      return;
    }
    const kind = classify(message);
    if (kind === undefined) {
      this.#reply(idOf(message), -32600, 'Invalid Request: expected one JSON-RPC 2.0 message object');
      return;
    }
    if (kind === 'request') {
      const { id, method } = message as { id: string | number; method: string };
      if (!isJSONRPCRequest(message)) {
        // What the SDK's schema refuses (a fractional id, a progress token that is an object, params
        // that are not an object) it would drop without an answer, the request left in flight.
        this.#reply(
          id,
          -32600,
          'Invalid Request: not a valid JSON-RPC request (an id and a progress token are strings or integers, params an object)',
        );
        return;
      }
      this.#inFlight ??= new Map();
      const inFlight = this.#inFlight;
      if (inFlight.has(id)) {
        // Two requests with one id cannot both be answered: the second is refused, the first runs on.
        this.#reply(
          id,
          ERROR_CODES.INVALID_REQUEST.jsonRpc,
          'Invalid Request: a request with this id is still in flight',
        );
        return;
      }
      if (inFlight.size >= this.#maxInFlight) {
        this.#reply(
          id,
          ERROR_CODES.BUSY.jsonRpc,
          `Too many requests in flight on this connection (limit ${this.#maxInFlight})`,
        );
        return;
      }
      inFlight.set(id, SETTLES.has(method) ? InFlight.settling : InFlight.answering);
      if (method === 'initialize' && this.#handshake === undefined) this.#handshake = id;
    } else if (kind === 'notification') {
      const m = message as { method: string; params?: { requestId?: unknown } };
      if (m.method === 'notifications/cancelled') this.#cancelled(m.params?.requestId);
    }
    if (this.#fence?.receive(message as JSONRPCMessage)) return;
    this.onmessage?.(message as JSONRPCMessage, this.#extra);
  }

  /**
   * A cancelled request gets no response, but its handler may still be running: one that mcpkit
   * serves keeps its slot until it reports its end (`requestSettled`); the SDK's own methods (which
   * answer at once) give it back now.
   */
  #cancelled(id: unknown): void {
    if (typeof id !== 'string' && typeof id !== 'number') return;
    const inFlight = this.#inFlight;
    const state = inFlight?.get(id);
    if (state === undefined) return;
    if (state === InFlight.answering) this.#ended(id);
    else inFlight?.set(id, InFlight.cancelled);
  }

  /** Request `id` no longer holds a slot. */
  #ended(id: string | number): void {
    const inFlight = this.#inFlight;
    if (inFlight?.delete(id) && inFlight.size === 0) this.#inFlight = undefined;
  }

  #reply(id: string | number | null, code: number, message: string): void {
    if (this.#socket.readyState !== OPEN) return;
    this.#socket.send(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }));
  }

  #beat(): void {
    if (this.#finished) return;
    if (!this.#alive) {
      this.#closeInfo ??= { code: WebSocketCloseCode.abnormal, reason: 'heartbeat timeout' };
      this.#socket.terminate();
      this.#finish(this.#closeInfo);
      return;
    }
    this.#alive = false;
    this.#socket.ping();
  }

  #close(code: number, reason: string, cutAfterMs?: number): void {
    this.#closeInfo ??= { code, reason };
    const socket = this.#socket;
    if (socket.readyState === OPEN) {
      socket.close(code, reason);
      if (cutAfterMs !== undefined) {
        setTimeout(() => socket.terminate(), cutAfterMs).unref();
      }
    }
    this.#finish(this.#closeInfo);
  }

  #finish(info: WebSocketCloseInfo): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#pending = undefined;
    this.#fence?.close();
    this.#inFlight = undefined;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#resolveClosed(info);
    this.onclose?.();
  }
}

/** Options for {@link attachWebSocket}. */
export interface AttachWebSocketOptions {
  /** Path that accepts upgrades; others are left to other listeners. Default: the server's `/mcp`. */
  path?: string;
  /**
   * Open WebSocket connections (upgrades in progress included); past it, upgrades get 503.
   * Default `MCP_MAX_CONNECTIONS`, else 10 000.
   */
  maxConnections?: number;
  /** Largest incoming frame in bytes; a larger one closes the socket with 1009. Default: `http.maxBodyBytes` (4 MiB). */
  maxPayloadBytes?: number;
  /** Ping interval in ms; a peer silent for a whole interval is cut. `0` disables. Default 30 000. */
  heartbeatMs?: number;
  /** Outgoing bytes queued for one socket before it is closed as a slow reader (1008). Default 8 MiB. */
  maxBufferedBytes?: number;
  /**
   * Client requests in flight per socket; the excess gets JSON-RPC `-32005`. A cancelled request
   * counts until its handler has finished. Default 100.
   */
  maxInFlight?: number;
  /**
   * Connections one caller (an API key, or an anonymous client's address) may hold open at once,
   * when the policy layer is on; past it, upgrades get 429. Default: a tenth of `maxConnections`.
   */
  maxConnectionsPerCaller?: number;
  /**
   * Refuse (400) an upgrade that offers no subprotocol. An upgrade that offers subprotocols without
   * `mcp` is always refused. Default `true`.
   */
  requireSubprotocol?: boolean;
  /** Called with each accepted connection, once its MCP session is being served. */
  onConnection?: (transport: WebSocketServerTransport, request: IncomingMessage) => void;
  /**
   * Completions over WebSocket on the same path, for clients that offer the `mcpkit.completions`
   * subprotocol (docs/completions.md): `true`, `false`, or the door's per-socket limits. Each start
   * is admitted like `POST /completions/stream`. Default `true`.
   */
  completions?: boolean | CompletionSocketOptions;
  /** Called with each accepted completion socket (subprotocol `mcpkit.completions`). */
  onCompletionSocket?: (socket: CompletionSocket, request: IncomingMessage) => void;
}

/** A WebSocket door attached to an HTTP server. */
export interface WebSocketAttachment {
  /** The path that accepts upgrades. */
  readonly path: string;
  /** Open connections, upgrades in progress included. */
  readonly connections: number;
  /**
   * Stops accepting upgrades, closes every connection with 1001 and waits for them (cutting those
   * that do not answer within 5 s). The HTTP server itself is left running.
   */
  close(): Promise<void>;
}

type WsModule = typeof import('ws');

let wsModule: Promise<WsModule | undefined> | undefined;

/** The `ws` module, or `undefined` when it is not installed (it is an optional peer dependency). */
export function loadWs(): Promise<WsModule | undefined> {
  wsModule ??= import('ws').then(
    (mod) => {
      const m = mod as WsModule & { default?: WsModule };
      return m.WebSocketServer ? m : m.default;
    },
    () => undefined,
  );
  return wsModule;
}

/** The path upgrades are taken on unless `options.path` says otherwise: the MCP endpoint's. */
function defaultPath(server: McpKitServer): string {
  const { basePath, mcpPath } = server.httpOptions;
  return normalisePath(normalisePath(basePath) + (normalisePath(mcpPath) || '/')) || '/';
}

function pathnameOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/** Answers an upgrade request with the pipeline's refusal on the raw socket, and closes it. */
function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { status, headers, body } = upgradeRefusal(refusal);
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

const SHUTTING_DOWN = refuse('UNAVAILABLE', 'Server is shutting down');

function offeredProtocols(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/** One connection's place under the connection caps: the server's, and its caller's share. */
interface Slot {
  released: boolean;
  share?: (() => void) | undefined;
}

/** A base64url credential of at most 4 KiB, as a bearer subprotocol carries it. */
const BEARER_TOKEN = /^[A-Za-z0-9_-]{1,5462}$/;

/**
 * The credential a browser put in a subprotocol (`mcpkit.bearer.<base64url>`), when the upgrade
 * carries no credential header: `undefined` when there is none, `null` when it is malformed.
 */
function subprotocolBearer(req: IncomingMessage, offered: readonly string[]): string | null | undefined {
  const carriers = offered.filter((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
  if (carriers.length === 0) return undefined;
  if (
    carriers.length > 1 ||
    req.headers.authorization !== undefined ||
    req.headers['x-api-key'] !== undefined
  )
    return null;
  const encoded = carriers[0]!.slice(BEARER_SUBPROTOCOL_PREFIX.length);
  if (!BEARER_TOKEN.test(encoded)) return null;
  const token = Buffer.from(encoded, 'base64url').toString('utf8');
  // The token travels in an HTTP header: nothing but visible ASCII.
  return /^[\x21-\x7e]+$/.test(token) ? token : null;
}

/** The upgrade as the admission pipeline reads it, with a subprotocol's credential as its header. */
function admissionRequest(
  req: IncomingMessage,
  source: ReturnType<typeof requestSource>,
  bearer: string | undefined,
): Request {
  const request = toWebRequest(req, undefined, { source });
  if (bearer === undefined) return request;
  const headers = new Headers(request.headers);
  headers.set('authorization', `Bearer ${bearer}`);
  return new Request(request.url, { method: request.method, headers });
}

/**
 * Serves MCP over WebSocket on an HTTP server's `upgrade` event, on the same port as its HTTP routes:
 * a plain node:http server, the one `app.listen()` returns in Express, `fastify.server`, or the server
 * `serve()` returns in `@hono/node-server`. Only upgrades to `path` are handled; other paths are left
 * to other `upgrade` listeners (or answered 404 when there is none).
 *
 * Before an upgrade completes it is checked, in order: Host (403), Origin (403), subprotocol `mcp`
 * offered (400), connection cap (503 with `Retry-After`), the `authenticate` hook (401, or 500 when
 * it throws). A refused upgrade gets an HTTP status and a JSON-RPC error body, never an open socket.
 * Each accepted socket is one MCP connection (`server.connect(transport, { origin: 'websocket' })`)
 * in whichever protocol era the client speaks.
 *
 * Needs the `ws` package (an optional peer dependency): `npm install ws`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createMcpServer } from 'mcpkit';
 * import { attachWebSocket, toNodeListener } from 'mcpkit/node';
 *
 * const server = createMcpServer({ name: 'demo' });
 * const httpServer = createServer(toNodeListener((req) => server.fetch(req)));
 * const ws = await attachWebSocket(httpServer, server, { heartbeatMs: 15_000 });
 * httpServer.listen(3000, '127.0.0.1'); // ws://127.0.0.1:3000/mcp, subprotocol "mcp"
 * ```
 */
export async function attachWebSocket(
  httpServer: HttpServer,
  server: McpKitServer,
  options: AttachWebSocketOptions = {},
): Promise<WebSocketAttachment> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (typeof httpServer?.on !== 'function') throw new TypeError('httpServer must be a node:http server');
  const http = server.httpOptions;
  const path = options.path === undefined ? defaultPath(server) : normalisePath(options.path) || '/';
  const maxConnections = positiveInteger(
    'maxConnections',
    options.maxConnections,
    envMaxConnections() ?? DEFAULT_MAX_CONNECTIONS,
  );
  const maxPayload = positiveInteger('maxPayloadBytes', options.maxPayloadBytes, http.maxBodyBytes);
  const transportOptions = {
    maxBufferedBytes: positiveInteger(
      'maxBufferedBytes',
      options.maxBufferedBytes,
      DEFAULT_MAX_BUFFERED_BYTES,
    ),
    maxInFlight: positiveInteger('maxInFlight', options.maxInFlight, DEFAULT_MAX_IN_FLIGHT),
    heartbeatMs: nonNegativeInteger('heartbeatMs', options.heartbeatMs, DEFAULT_HEARTBEAT_MS),
  };
  const requireSubprotocol = options.requireSubprotocol ?? true;
  const { onConnection, onCompletionSocket } = options;
  const completionOptions: CompletionSocketOptions | undefined =
    options.completions === false
      ? undefined
      : {
          heartbeatMs: transportOptions.heartbeatMs,
          ...(typeof options.completions === 'object' && options.completions),
        };
  const served = completionOptions ? [MCP_SUBPROTOCOL, COMPLETIONS_SUBPROTOCOL] : [MCP_SUBPROTOCOL];
  const perCaller = new Shares(
    positiveInteger(
      'maxConnectionsPerCaller',
      options.maxConnectionsPerCaller,
      Math.max(1, Math.ceil(maxConnections / 10)),
    ),
    'maxConnectionsPerCaller',
  );

  const ws = await loadWs();
  if (!ws) {
    throw new Error('attachWebSocket needs the "ws" package, an optional peer dependency: npm install ws');
  }
  const wss: WebSocketServer = new ws.WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload,
    // The client's first choice among the doors served; a credential carrier is never echoed.
    handleProtocols: (protocols: Set<string>) => [...protocols].find((p) => served.includes(p)) ?? false,
    // ws ≥ 8.19: how long a closing handshake may take before the socket is cut
    ...({ closeTimeout: CLOSE_TIMEOUT_MS } as object),
  });

  const logger = server.logger;
  const live = new Set<{ closeWith(code: number, reason?: string): void }>();
  /** Accepted sockets until they are really gone (a closing handshake can outlive the session). */
  const sockets = new Set<WebSocket>();
  let count = 0;
  let closing: Promise<void> | undefined;

  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const pathname = pathnameOf(req.url);
    if (pathname !== path && pathname !== `${path}/`) {
      // Another listener may serve this path; with none, Node would leave the socket hanging.
      if (httpServer.listenerCount('upgrade') === 1) refuseUpgrade(socket, refuse('NOT_FOUND', 'Not found'));
      return;
    }
    const swallow = () => {};
    socket.on('error', swallow);
    if (closing) return refuseUpgrade(socket, SHUTTING_DOWN);
    const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
    if (offered.length > 0 ? !offered.some((p) => served.includes(p)) : requireSubprotocol) {
      return refuseUpgrade(
        socket,
        refuse(
          'INVALID_REQUEST',
          `Sec-WebSocket-Protocol must offer ${served.map((p) => `"${p}"`).join(' or ')}`,
        ),
      );
    }
    const bearer = subprotocolBearer(req, offered);
    if (bearer === null) {
      return refuseUpgrade(
        socket,
        refuse(
          'INVALID_REQUEST',
          `A ${BEARER_SUBPROTOCOL_PREFIX}* subprotocol must carry one base64url credential, and only when no Authorization or X-API-Key header is sent`,
        ),
      );
    }
    if (count >= maxConnections) {
      return refuseUpgrade(
        socket,
        refuse('BUSY', `Too many WebSocket connections (limit ${maxConnections})`, {
          headers: { 'retry-after': '5' },
        }),
      );
    }
    count++;
    const slot: Slot = { released: false };
    const release = () => releaseSlot(slot);
    // The same request stages as every HTTP request: Host, Origin, then the server's credentials.
    const source = requestSource(req, http.trustProxy);
    const decision = await server.admit(admissionRequest(req, source, bearer), {
      door: 'websocket',
      ...(source.address !== undefined && { clientAddress: source.address }),
    });
    if (!decision.ok) {
      release();
      return refuseUpgrade(socket, decision.refusal);
    }
    const { caller, facts, holdStream } = decision;
    if (facts) {
      slot.share = perCaller.take(server.policy.shareKey(facts));
      if (!slot.share) {
        release();
        return refuseUpgrade(
          socket,
          refuse(
            'RATE_LIMITED',
            `Too many WebSocket connections for this caller (limit ${perCaller.limit})`,
            {
              headers: { 'retry-after': '5' },
              data: { retryAfterSeconds: 5, limit: perCaller.limit },
            },
          ),
        );
      }
    }
    // The decision took time: the client may have gone, or the server begun closing.
    if (socket.destroyed || closing) {
      release();
      if (closing) refuseUpgrade(socket, SHUTTING_DOWN);
      return;
    }
    let accepted = false;
    wss.handleUpgrade(req, socket, head, (websocket) => {
      accepted = true;
      socket.off('error', swallow);
      track(websocket, slot);
      if (completionOptions && websocket.protocol === COMPLETIONS_SUBPROTOCOL) {
        const door = new CompletionSocket(websocket, server, {
          ...completionOptions,
          facts,
          holdStream,
          ...(source.address !== undefined && { clientAddress: source.address }),
        });
        live.add(door);
        void door.closed.then(() => live.delete(door));
        onCompletionSocket?.(door, req);
        return;
      }
      const transport = serveMcp(websocket, caller, source.address);
      if (onConnection) void transport.started.then((ok) => ok && onConnection(transport.transport, req));
    });
    // ws refused the handshake itself (bad key or version) and already answered it
    if (!accepted) release();
  };

  // What an open socket keeps until it closes is made below, apart from the upgrade's scope: a
  // closure made inside `upgrade` would keep its whole scope (the request, its headers, the
  // admission decision) alive as long as the connection.

  /** Gives a connection's place back, once. */
  const releaseSlot = (slot: Slot): void => {
    if (slot.released) return;
    slot.released = true;
    count--;
    slot.share?.();
  };

  /** Keeps `websocket` among the open sockets until it is really gone, and its slot until then. */
  const track = (websocket: WebSocket, slot: Slot): void => {
    sockets.add(websocket);
    websocket.once('close', () => {
      sockets.delete(websocket);
      releaseSlot(slot);
    });
  };

  /** Serves MCP on an accepted socket; `started` says whether its session began. */
  const serveMcp = (
    websocket: WebSocket,
    caller: CallerIdentity | undefined,
    clientAddress: string | undefined,
  ): { transport: WebSocketServerTransport; started: Promise<boolean> } => {
    const transport = new WebSocketServerTransport(websocket, {
      ...transportOptions,
      maxJsonDepth: http.maxJsonDepth,
      ...(caller?.authInfo && { authInfo: caller.authInfo }),
    });
    live.add(transport);
    void transport.closed.then((info) => {
      live.delete(transport);
      logger.debug({ code: info.code, reason: info.reason }, 'WebSocket connection closed');
    });
    const started = server
      .connect(transport, {
        origin: 'websocket',
        ...(caller && { caller }),
        ...(clientAddress !== undefined && { clientAddress }),
        onRequestSettled: (id) => transport.requestSettled(id),
      })
      .then(
        () => true,
        (error: unknown) => {
          logger.debug({ err: error }, 'WebSocket connection failed to start');
          websocket.terminate();
          return false;
        },
      );
    return { transport, started };
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(req, socket, head).catch((error: unknown) => {
      logger.error({ err: error }, 'WebSocket upgrade failed');
      if (!socket.destroyed) socket.destroy();
    });
  };
  httpServer.on('upgrade', onUpgrade);

  return {
    path,
    get connections() {
      return count;
    },
    close() {
      closing ??= (async () => {
        httpServer.off('upgrade', onUpgrade);
        const gone = [...sockets].map(
          (s) => new Promise<void>((resolve) => s.once('close', () => resolve())),
        );
        for (const transport of [...live]) {
          transport.closeWith(WebSocketCloseCode.goingAway, 'server shutting down');
        }
        const timer = setTimeout(() => {
          for (const s of sockets) s.terminate();
        }, CLOSE_TIMEOUT_MS);
        timer.unref();
        await Promise.all(gone);
        clearTimeout(timer);
        wss.close();
      })();
      return closing;
    },
  };
}
