/**
 * Request handlers shared by every SDK server of one kind, installed on each server only when a
 * request for their method first arrives.
 *
 * The SDK keeps, per server, each request handler as three closures (mcpkit's, the SDK's parsing
 * one, and the `Server`'s result wrapper) in a map of its own. A WebSocket or stdio connection holds
 * its server as long as it is open, so an idle connection used to carry every method's closures. Here
 * the methods' handlers live once, in a table shared by all sessions of a host (each handler is given
 * its session's state), and a server's handler map is a view that installs a method's handler through
 * the SDK's own `setRequestHandler` the first time the SDK looks it up: an idle connection carries
 * only the handlers its client used.
 *
 * The view replaces a member the SDK declares private (`_requestHandlers`, a `Map` the SDK reads with
 * `get`, `has`, `set` and `delete`); when it is not a `Map`, every handler is installed at once, as
 * before (`serveShared` returns `false`).
 */
import type { CatalogServer } from './fastServer.js';

/** Registers one method's handler on `server`, bound to the state of the session it serves. */
export type Install<S> = (server: CatalogServer, session: S) => void;

/** How a shared handler is registered. */
export interface SharedHandler<S> {
  readonly install: Install<S>;
  /**
   * Registered with a params schema (the SDK's custom-method form): installed with the server, since
   * the SDK consults the custom methods it knows before it looks up a handler.
   */
  readonly custom?: boolean;
}

/** A table of shared handlers by method. */
export type SharedHandlers<S> = ReadonlyMap<string, SharedHandler<S>>;

/**
 * A server's request handler map that installs a shared handler the first time its method is looked
 * up. `delete` (the SDK's `removeRequestHandler`) also hides a shared handler not yet installed.
 */
class InstallingHandlers<S> extends Map<string, unknown> {
  readonly #server: CatalogServer;
  readonly #session: S;
  readonly #table: SharedHandlers<S>;
  /** Shared methods removed before they were installed; made at the first removal. */
  #removed: Set<string> | undefined;

  constructor(server: CatalogServer, table: SharedHandlers<S>, session: S) {
    super();
    this.#server = server;
    this.#table = table;
    this.#session = session;
  }

  /** The shared handler of `method` not yet installed on this server, if any. */
  #pending(method: string): SharedHandler<S> | undefined {
    if (super.has(method) || this.#removed?.has(method)) return undefined;
    return this.#table.get(method);
  }

  override get(method: string): unknown {
    const handler = super.get(method);
    if (handler !== undefined) return handler;
    const shared = this.#pending(method);
    if (!shared) return undefined;
    shared.install(this.#server, this.#session);
    return super.get(method);
  }

  override has(method: string): boolean {
    return super.has(method) || this.#pending(method) !== undefined;
  }

  override delete(method: string): boolean {
    const had = this.has(method);
    if (this.#table.has(method)) {
      this.#removed ??= new Set();
      this.#removed.add(method);
    }
    super.delete(method);
    return had;
  }
}

/**
 * Serves the handlers of `table` on `server` for `session`: those in the custom-method form at once,
 * the others when a request for their method first arrives. Call it once, right after constructing
 * the server and before connecting it.
 *
 * @returns `true` when the handlers are installed on first use; `false` when the installed SDK keeps
 *   its handlers differently and every handler was installed at once.
 * @example
 * ```ts
 * const table = new Map([['tools/list', { install: (server, session) => server.setRequestHandler('tools/list', list(session)) }]]);
 * serveShared(new CatalogServer(info, options), table, session);
 * ```
 */
export function serveShared<S>(server: CatalogServer, table: SharedHandlers<S>, session: S): boolean {
  const internals = server as unknown as { _requestHandlers?: unknown };
  const installed = internals._requestHandlers;
  const lazy = installed instanceof Map && installed.constructor === Map;
  if (lazy) {
    const view = new InstallingHandlers(server, table, session);
    for (const [method, handler] of installed) view.set(method, handler);
    internals._requestHandlers = view;
  }
  for (const shared of table.values()) if (!lazy || shared.custom) shared.install(server, session);
  return lazy;
}
