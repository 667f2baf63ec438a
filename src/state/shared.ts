/**
 * The seam through which several mcpkit processes share state. Each piece of state mcpkit keeps has
 * an interface of its own, implemented in memory by default; a `SharedState` supplies shared
 * implementations of some of them (mcpkit/redis supplies one over Redis). A piece it leaves out stays
 * in memory, per process.
 */

import type { EventStore } from '@modelcontextprotocol/server';
import type { CompletionSnapshot } from '../completions/types.js';
import type { SharedIntegrationStore } from '../integrations/types.js';
import type { RateLimitStore } from '../policy/rateLimit.js';
import type { TaskSnapshot } from '../tasks/manager.js';
import type { UsageShare } from '../telemetry/usage.js';
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

/**
 * What a node's task runtime or completion manager answers the shared store with: the work it runs
 * now, and how to stop it when another node (or the store) asks.
 *
 * @example
 * ```ts
 * import type { TaskStore, WorkRunner } from 'mcpkit';
 *
 * declare const store: TaskStore;
 * const running = new Map<string, AbortController>();
 * const runner: WorkRunner = {
 *   running: () => running.keys(),
 *   cancel: (id, reason) => running.get(id)?.abort(new Error(reason)),
 * };
 * const stop = store.serve(runner);
 * ```
 */
export interface WorkRunner {
  /** The ids of the tasks or jobs this node runs now (not finished). */
  running(): Iterable<string>;
  /** Stops one of them: another node cancelled it, or the store reports it ended elsewhere. */
  cancel(id: string, reason: string): void;
  /**
   * The store holds one of this node's tasks or jobs as ended by another node (`cancelled`, or
   * `failed` because this node's lease lapsed), and it will keep that end: this node adopts it even
   * when the work finished here in the meantime (a cancel that raced the completion), so every node
   * answers the same. Without it, {@link cancel} is called.
   */
  ended?(id: string, status: 'cancelled' | 'failed', reason: string): void;
  /** Delivers a client's answers to a task waiting for input (tasks only). */
  update?(id: string, inputResponses: Record<string, unknown>): void;
  /** Called on each heartbeat of the node (every few seconds while the store answers). */
  beat?(): void;
  /** Writes every task or job held again: the store came back and may have lost its records. */
  resync?(): void;
}

/**
 * MCP tasks shared between nodes. The node that runs a task keeps it in its own table (the
 * in-memory runtime is unchanged) and mirrors each change into the store; another node reads the
 * task from the store, and cancels it or answers its input requests through the store, which tells
 * the node that runs it. A task whose node stopped heartbeating is reported `failed`.
 *
 * Methods that answer a request reject with an `UNAVAILABLE` `McpKitError` (503, JSON-RPC `-32019`)
 * while the store is out of reach; `save` never rejects: it keeps the latest write of each task and
 * retries it until the store takes it.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { redisState } from 'mcpkit/redis';
 *
 * // redisState() supplies a TaskStore (and a JobStore): tasks/get, tasks/update and tasks/cancel
 * // then answer on every node for a task started on any of them.
 * const state = redisState({ url: 'redis://127.0.0.1:6379' });
 * const server = createMcpServer({ state });
 * console.log(state.tasks?.maxRecordBytes); // 8388608
 * ```
 */
export interface TaskStore {
  /** The largest task (its JSON) the store keeps; a larger result fails the task as too large. */
  readonly maxRecordBytes: number;
  /** Records a new task; the task runs (and is announced) only once this resolves. */
  create(task: TaskSnapshot): Promise<void>;
  /** Records the task's current state (coalesced, retried while the store is down). */
  save(taskId: string, task: () => TaskSnapshot): void;
  /** The task as its node last recorded it, or `undefined` when unknown or expired. */
  get(taskId: string): Promise<TaskSnapshot | undefined>;
  /** Cancels a task another node runs; answers the task after, or `undefined` when unknown. */
  cancel(taskId: string, reason: string): Promise<TaskSnapshot | undefined>;
  /** Delivers input answers to the node running the task; `false` when that node is gone. */
  update(taskId: string, inputResponses: Record<string, unknown>): Promise<boolean>;
  /** Serves requests for the tasks this node runs; returns a function that stops serving. */
  serve(runner: WorkRunner): () => void;
}

/**
 * A completion job as the shared store keeps it: the snapshot and the caller who started it.
 *
 * @example
 * ```ts
 * import type { JobStore } from 'mcpkit';
 *
 * declare const jobs: JobStore;
 * const job = await jobs.get('0b0c…');
 * if (job?.owner === 'alice') console.log(job.snapshot.status);
 * ```
 */
export interface SharedJob {
  readonly snapshot: CompletionSnapshot;
  /** The id of the caller who started the job, when one was named. */
  readonly owner?: string;
}

/**
 * Completion jobs shared between nodes, as {@link TaskStore} shares tasks: status and result
 * readable, and the job cancellable, from any node; a job whose node stopped heartbeating is
 * reported `failed`.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { redisState } from 'mcpkit/redis';
 *
 * // GET and DELETE /completions/{id} then find and cancel a job started on any node.
 * const server = createMcpServer({ state: redisState({ url: 'redis://127.0.0.1:6379' }) });
 * ```
 */
export interface JobStore {
  /** The largest job (its JSON) the store keeps; a larger one is kept without its steps. */
  readonly maxRecordBytes: number;
  /** Records a new running job; it runs only once this resolves. */
  create(job: SharedJob, keepFinishedMs: number): Promise<void>;
  /** Records the job's current state (coalesced, retried while the store is down). */
  save(id: string, job: () => SharedJob, keepFinishedMs: number): void;
  /** The job as its node last recorded it, or `undefined` when unknown or expired. */
  get(id: string): Promise<SharedJob | undefined>;
  /** Cancels a job another node runs; answers it after, or `undefined` when unknown. */
  cancel(id: string): Promise<CompletionSnapshot | undefined>;
  /** Serves requests for the jobs this node runs; returns a function that stops serving. */
  serve(runner: WorkRunner): () => void;
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
 * The seams: `rateLimits` (token buckets, so a limit holds once across every node; a
 * `rateLimit.store` given explicitly wins over it), `changes` (catalog notifications),
 * `integrations` (the integration store, with compare-and-set writes and a change feed), `catalog`
 * (the entries written over REST), `sessions` (which node holds each 2025-era session, for
 * forwarding), `eventStore` (resumable streams), `tasks` (MCP tasks) and `jobs` (completion jobs).
 * A seam left out stays in memory, per node.
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
  /**
   * Usage analytics added up across nodes: each node publishes its counts here, and `GET /usage` on
   * any node reports every live node's (`scope: 'cluster'`).
   */
  readonly usage?: UsageShare;
  /** MCP tasks readable, cancellable and answerable from every node. */
  readonly tasks?: TaskStore;
  /** Completion jobs readable and cancellable from every node. */
  readonly jobs?: JobStore;
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
