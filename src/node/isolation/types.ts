/**
 * The public shapes of isolated tools: how a tool declares its isolation, and what its handler (in
 * its own module, run in a worker thread or a child process) receives.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { CallOrigin, ClientLog, ToolDefinition, ToolReturn } from '../../catalog/tools.js';
import type { InferSchema, SchemaInput } from '../../schema.js';
import type { CallerIdentity } from '../../types.js';

/** Where an isolated tool runs: a worker thread of a pool, or a child process of a pool. */
export type IsolationLevel = 'worker' | 'process';

/** What a child process of the process level may do (Node's permission model); nothing by default. */
export interface ProcessPermissions {
  /** Files and directories (a directory with its contents) the tool may read, absolute paths. */
  fsRead?: string[];
  /** Files and directories the tool may write, absolute paths. */
  fsWrite?: string[];
  /** Whether the tool may start child processes of its own. Default `false`. */
  childProcess?: boolean;
}

/** How an isolated tool runs and the limits that hold whatever its code does. */
export interface IsolateOptions {
  /** `'worker'` (default): a worker thread; `'process'`: a child process under the permission model. */
  level?: IsolationLevel;
  /** The module's export that is the handler. Default `'default'`. */
  export?: string;
  /**
   * Hard time limit in milliseconds. The handler's `ctx.signal` aborts then; if the handler has not
   * ended `graceMs` later its worker is terminated (its process killed). Default 30 000.
   */
  timeoutMs?: number;
  /** How long a cancelled or timed-out handler has to end before its worker is terminated. Default 100 ms. */
  graceMs?: number;
  /** Heap limit of the worker (V8's old generation) in MB. Default 256. */
  maxMemoryMb?: number;
  /** The longest result (its JSON, in bytes) that may come back. Default 1 MiB. */
  maxResultBytes?: number;
  /** Workers (or processes) of this tool's pool. Default: the isolation's `maxWorkers`. */
  maxWorkers?: number;
  /** Process level only: what the child may do beyond reading its own module. */
  permissions?: ProcessPermissions;
  /** Process level only: the child's environment (it inherits none of the server's). */
  env?: Record<string, string>;
}

/**
 * A tool whose handler lives in its own module: everything of a {@link ToolDefinition} but the
 * handler, plus how it is isolated.
 */
export type IsolatedToolDefinition<TInput extends SchemaInput | undefined = SchemaInput | undefined> = Omit<
  ToolDefinition<TInput>,
  'handler'
> & {
  /** How the tool is isolated. Default: a worker thread with the defaults of {@link IsolateOptions}. */
  isolate?: IsolateOptions;
};

/** MCP logging to the calling client, from an isolated handler: the same as a tool's own. */
export type IsolatedClientLog = ClientLog;

/** The server's log, from an isolated handler (`console.*` in the worker goes there too). */
export interface IsolatedLogger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** The caller as an isolated handler sees it: who, never its token. */
export type IsolatedCaller = Pick<CallerIdentity, 'id' | 'roles' | 'permissions'>;

/** What an isolated handler receives beside its arguments: the main thread's `ctx`, over a link. */
export interface IsolatedContext {
  /** Aborted when the call is cancelled or times out; the worker is terminated `graceMs` later. */
  readonly signal: AbortSignal;
  readonly toolName: string;
  readonly requestId?: string | number;
  readonly sessionId?: string;
  /** Who is calling: its id, roles and permissions (never its credentials). */
  readonly caller?: IsolatedCaller;
  readonly origin: CallOrigin;
  readonly log: IsolatedClientLog;
  readonly logger: IsolatedLogger;
  /** Reports progress to the client (when its request carried a progress token). */
  progress(progress: number, total?: number, message?: string): Promise<void>;
  /** Calls another tool through the main thread, checked as the caller's own call. */
  callTool(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
}

/**
 * The handler an isolated tool's module exports, typed from the tool's input schema.
 *
 * @example
 * ```ts
 * // tools/schemas.ts, shared by the server and the tool module
 * export const primesInput = { below: z.number().int().max(10_000_000) };
 * // tools/primes.ts, loaded in a worker
 * const primes: IsolatedHandler<typeof primesInput> = ({ below }) => ({ count: countPrimes(below) });
 * export default primes;
 * ```
 */
export type IsolatedHandler<TInput extends SchemaInput | undefined = undefined> = (
  args: TInput extends SchemaInput ? InferSchema<TInput> : Record<string, unknown>,
  ctx: IsolatedContext,
) => ToolReturn | Promise<ToolReturn>;

/** The kinds of failure isolation contains, as counted by {@link IsolationStats} and the metrics. */
export type IsolationFault =
  | 'timeout'
  | 'memory'
  | 'exit'
  | 'uncaught'
  | 'uncloneable'
  | 'result-too-large'
  | 'crash'
  | 'busy';

/** A snapshot of an isolation's pools. */
export interface IsolationStats {
  /** Pools started (one per distinct set of limits, and per process-level tool). */
  pools: number;
  /** Workers (or processes) alive. */
  workers: number;
  /** Calls waiting for a worker. */
  queued: number;
  /** Failures contained, by kind. */
  faults: Record<IsolationFault, number>;
}
