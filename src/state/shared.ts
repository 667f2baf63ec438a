/**
 * The seam through which several mcpkit processes share state. Each piece of state mcpkit keeps has
 * an interface of its own, implemented in memory by default; a `SharedState` supplies shared
 * implementations of some of them (mcpkit/redis supplies one over Redis). A piece it leaves out stays
 * in memory, per process.
 */

import type { EventStore } from '@modelcontextprotocol/server';
import type { RateLimitStore } from '../policy/rateLimit.js';
import type { Logger } from '../types.js';

/**
 * One change to the catalog, as nodes tell each other: a list changed, or one resource's content.
 */
export type CatalogChange =
  | { readonly kind: 'tools' | 'resources' | 'prompts' }
  | { readonly kind: 'resourceUpdated'; readonly uri: string };

/**
 * Catalog changes between nodes. `publish` tells every other node (a node never hears its own
 * changes back); `subscribe` hears the others'. Delivery is at most once: a change published while
 * the bus is down is lost, and the bus calls `onResync` when it is back so the node can tell its
 * clients to list again.
 */
export interface ChangeBus {
  publish(change: CatalogChange): void;
  subscribe(listener: (change: CatalogChange) => void, onResync?: () => void): () => void;
}

/**
 * Where 2025-era sessions live across nodes: each node records the sessions it holds under the
 * address it advertises, and a node asked for a session it does not hold looks up its owner and
 * forwards the request there, signed with the shared secret (docs/scale-out.md, "Sessions").
 */
export interface SessionDirectory {
  /** This node's base URL as the other nodes reach it (`http://10.0.0.11:3000`), an origin. */
  readonly advertise: string;
  /** The secret every node signs forwarded requests with (at least 32 characters). */
  readonly secret: string;
  /**
   * How long a forwarding node waits for the owner's response headers, in ms (a JSON answer's
   * headers come with its result, so this bounds a forwarded call).
   */
  readonly forwardTimeoutMs: number;
  /** Records that this node holds `id`; the record is kept alive while it does. Never throws. */
  hold(id: string): void;
  /** Forgets `id` (closed, expired, or this node is closing). Never throws. */
  release(id: string): void;
  /**
   * The advertised address of the node holding `id`, or `undefined` when none does. Rejects when
   * the directory cannot be reached (the request then gets a retryable 503).
   */
  owner(id: string): Promise<string | undefined>;
  /** Forgets `id` if the record still names `address` (that node no longer answers). Never throws. */
  forget(id: string, address: string): void;
}

/** An event store for one 2025-era session's resumable streams; `close()` when the session ends. */
export type SharedEventStore = EventStore & { close?(): void };

/** What `createMcpServer` hands a shared state when it adopts it. */
export interface SharedStateContext {
  /** The server's logger: a shared state reports its outages and recoveries here. */
  logger: Logger;
}

/**
 * Shared implementations of mcpkit's state seams, passed as `createMcpServer({ state })`.
 *
 * The seams: `rateLimits` (token buckets, so a limit holds once across every node; a
 * `rateLimit.store` given explicitly wins over it), `changes` (catalog notifications), `sessions`
 * (which node holds each 2025-era session, for forwarding) and `eventStore` (resumable streams).
 *
 * @example
 * ```ts
 * import { createMcpServer, createMemoryRateLimitStore, type SharedState } from 'mcpkit';
 *
 * // The in-memory store behind the interface: what every process uses when no state is given.
 * const state: SharedState = { name: 'memory', rateLimits: createMemoryRateLimitStore() };
 * const server = createMcpServer({ state, rateLimit: { execute: 60 } });
 * ```
 */
export interface SharedState {
  /** A short name for logs and `/health` (`redis`). */
  readonly name: string;
  /** Token buckets shared by every node. */
  readonly rateLimits?: RateLimitStore;
  /**
   * Catalog changes fanned out to every node: `list_changed` and `resources/updated` reach the
   * subscribers on every node and every transport, and each node drops its cached read of an updated
   * resource.
   */
  readonly changes?: ChangeBus;
  /**
   * 2025-era sessions served by any node: the owner of each session is recorded here and the other
   * nodes forward its requests to it. Absent: a session is served only by the node that opened it.
   */
  readonly sessions?: SessionDirectory;
  /**
   * The event store of each new 2025-era session (resumable streams, `Last-Event-ID`), used when
   * `http.eventStore` is not set.
   */
  readonly eventStore?: () => SharedEventStore;
  /** Called once by `createMcpServer` before any request. */
  attach?(context: SharedStateContext): void;
  /** Whether the shared store answers now; `/health` reports it. */
  healthy?(): boolean;
  /** Called by the server's `close()`: releases what the state opened (connections, timers). */
  close?(): Promise<void>;
}
