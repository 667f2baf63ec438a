/**
 * The HTTP layer's options (`http` of `createMcpServer`), their defaults, and what adapters pass per
 * request (`FetchOptions`).
 */
import {
  type AuthInfo,
  type EventStore,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
} from '@modelcontextprotocol/server';
import { DEFAULT_BODY_TIMEOUT_MS } from '../core/bodyLimit.js';
import type { TrustProxy } from '../core/forwarded.js';
import type { Refusal } from '../core/refusal.js';
import { MAX_JSON_DEPTH } from '../core/safeJson.js';
import { EventBytes, MemoryEventStore } from './eventStore.js';

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
   * Default: the shared state's store when it brings one (`redisState({ eventStore: true })`, events
   * in Redis; docs/scale-out.md), else `false`.
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
   * completions (over SSE, and each one running on a completion socket). Past it, a new one gets 429. Default 100.
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

/** The byte bounds of the memory event store (`http.eventStore`). */
export interface MemoryEventStoreLimits {
  /** Bytes of events one session keeps; its oldest go first. Default 1 MiB. */
  maxBytesPerSession?: number;
  /** Bytes of events all sessions keep together; a session makes room from its own first. Default 64 MiB. */
  maxBytes?: number;
}

/** The event store of each new session, from the `http.eventStore` option. */
export function eventStoreFactory(
  option: 'memory' | MemoryEventStoreLimits | (() => EventStore),
): () => EventStore {
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
