/**
 * The seam through which several mcpkit processes share state. Each piece of state mcpkit keeps has
 * an interface of its own, implemented in memory by default; a `SharedState` supplies shared
 * implementations of some of them (mcpkit/redis supplies one over Redis). A piece it leaves out stays
 * in memory, per process.
 */

import type { SharedIntegrationStore } from '../integrations/types.js';
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
 * The kinds of catalog entry written over REST (`POST /tools`, `/resources`, `/prompts`).
 *
 * @example
 * ```ts
 * import type { CatalogEntryKind } from 'mcpkit';
 *
 * const kind: CatalogEntryKind = 'prompts';
 * ```
 */
export type CatalogEntryKind = 'tools' | 'resources' | 'prompts';

/**
 * The catalog entries written over REST, stored once for every node: each is its JSON body (a
 * declarative tool, a resource with fixed content, a template prompt), keyed by kind and name.
 * `add` and `remove` are atomic across nodes; `watch` hears the other nodes' (`changed` with the
 * kind and name of each entry they added or removed, read again with `fetch`), and `resync` when
 * some may have been missed.
 *
 * @example
 * ```ts
 * import type { SharedCatalogEntries } from 'mcpkit';
 *
 * // How many tools were added over REST, on every node.
 * async function restTools(store: SharedCatalogEntries): Promise<number> {
 *   const loaded = await store.load();
 *   return (loaded?.entries ?? []).filter((entry) => entry.kind === 'tools').length;
 * }
 * ```
 */
export interface SharedCatalogEntries {
  /** Stores the entry unless one of this kind and name is stored; resolves whether it was. */
  add(kind: CatalogEntryKind, name: string, spec: unknown): Promise<boolean>;
  /** Removes the entry; resolves whether one was stored. */
  remove(kind: CatalogEntryKind, name: string): Promise<boolean>;
  /**
   * Every stored entry, and the epoch of the data (a new one once the store lost its data and was
   * written again); `undefined` while it holds none.
   */
  load(): Promise<
    { entries: Array<{ kind: CatalogEntryKind; name: string; spec: unknown }>; epoch: string } | undefined
  >;
  /** The entry as stored now. */
  fetch(kind: CatalogEntryKind, name: string): Promise<unknown>;
  watch(listener: { changed(kind: CatalogEntryKind, name: string): void; resync(): void }): () => void;
}

/** What `createMcpServer` hands a shared state when it adopts it. */
export interface SharedStateContext {
  /** The server's logger: a shared state reports its outages and recoveries here. */
  logger: Logger;
}

/**
 * Shared implementations of mcpkit's state seams, passed as `createMcpServer({ state })`.
 *
 * Four seams are shared: `rateLimits` (token buckets, so a limit holds once across every node; a
 * `rateLimit.store` given explicitly wins over it), `changes` (catalog notifications),
 * `integrations` (the integration store, with compare-and-set writes and a change feed) and
 * `catalog` (the entries written over REST).
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
   * The integrations, stored once for every node: writes are compare-and-set (of two racing
   * conditional writes exactly one wins), and each node applies the others' writes to its own
   * catalogs. An `integrations.store` given explicitly wins over it. Needs `integrations.cipher`
   * (the same key on every node).
   */
  readonly integrations?: SharedIntegrationStore;
  /**
   * The entries written over REST (`POST /tools`, `/resources`, `/prompts` and their `DELETE`),
   * registered on every node. With it, `DELETE` refuses (409) an entry registered in code, which
   * every node registers for itself.
   */
  readonly catalog?: SharedCatalogEntries;
  /** Called once by `createMcpServer` before any request. */
  attach?(context: SharedStateContext): void;
  /** Whether the shared store answers now; `/health` reports it. */
  healthy?(): boolean;
  /** Called by the server's `close()`: releases what the state opened (connections, timers). */
  close?(): Promise<void>;
}
