/**
 * The tasks extension's runtime (SEP-2663): a TTL'd task table that runs calls through the executor,
 * caps running tasks in all and per owner, forgets finished ones first-finished-first for room and a
 * result byte budget, and answers `tasks/*`. Size: one table and its lifecycle; its bounds are
 * checked against each other in one place.
 */
import {
  type CallToolResult,
  type InputRequest,
  isInputRequiredResult,
  ProtocolError,
  ProtocolErrorCode,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { EventEmitter } from 'eventemitter3';
import type { RegisteredTool } from '../catalog/tools.js';
import { ERROR_CODES, McpKitError, publicErrorMessage, toMcpKitError } from '../core/errors.js';
import { positiveInteger } from '../core/options.js';
import type { ToolExecutor } from '../execution/executor.js';
import type { ExecuteOptions } from '../execution/options.js';
import type { TaskStore } from '../state/shared.js';
import type { Logger } from '../types.js';
import type { TaskWork } from './continuation.js';

/** The extension identifier of the MCP tasks extension (SEP-2663). */
export const TASKS_EXTENSION_ID = 'io.modelcontextprotocol/tasks';

/** Where a task is in its life. `completed`, `failed` and `cancelled` are terminal. */
export type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

/** A protocol-level failure of a task, in JSON-RPC error shape. */
export interface TaskError {
  code: number;
  message: string;
  data?: unknown;
}

/** A task as `server.tasks` reports it (times in epoch milliseconds). */
export interface TaskSnapshot {
  readonly taskId: string;
  /** The tool the task runs. */
  readonly tool: string;
  readonly status: TaskStatus;
  /** The last progress message the handler reported, if any. */
  readonly statusMessage?: string;
  readonly createdAt: number;
  readonly lastUpdatedAt: number;
  /** How long the task is kept after it was created. */
  readonly ttlMs: number;
  /** How often clients are asked to poll. */
  readonly pollIntervalMs: number;
  /** The caller that created the task; only that caller can see it over MCP. */
  readonly owner?: string;
  /** The tool's result, once `completed` (a tool error is a completed task with `isError`). */
  readonly result?: CallToolResult;
  /** The protocol error, once `failed`. */
  readonly error?: TaskError;
  /** The input the task waits for, while `input_required` (answered keys are removed). */
  readonly inputRequests?: Readonly<Record<string, InputRequest>>;
}

/**
 * Options of the task runtime (`createMcpServer({ tasks })`).
 *
 * @example
 * ```ts
 * createMcpServer({
 *   tasks: { maxTasks: 1000, maxRunningPerOwner: 100, maxResultBytes: 64 * 1024 * 1024, ttlMs: 3_600_000 },
 * });
 * ```
 */
export interface TaskOptions {
  /**
   * Tasks held at once, running or finished. A finished task never stands in the way of a new one:
   * when the table is full, the task that finished first is forgotten to make room. New tasks are
   * refused with `BUSY` only while this many are running (`working` or `input_required`). Default 1000.
   */
  maxTasks?: number;
  /**
   * Tasks one owner may have running at once; past it that owner's new tasks are refused with `BUSY`
   * while other owners still start theirs. The owner is the caller that started the task; tasks started
   * without a known caller (stdio, in-process code, remote requests to a server without `auth`) share
   * the owner `local`. Default `Math.ceil(maxTasks / 10)` (100 with the default `maxTasks`).
   */
  maxRunningPerOwner?: number;
  /**
   * Estimated bytes of finished tasks' results (and errors) held at once. A result is measured once,
   * when its task finishes, as the length of its JSON text; past the budget, the tasks that finished
   * first are forgotten until it fits. A task whose own result measures more than the whole budget is
   * kept as `failed` with a `-32016` (`PAYLOAD_TOO_LARGE`) error saying so (`data: { resultBytes, maxResultBytes }`), and its
   * result is dropped; so is one that cannot be written as JSON (`-32603`). Default 67 108 864 (64 MiB).
   */
  maxResultBytes?: number;
  /**
   * How long a task is kept after it was created, in milliseconds. A task still running then is
   * cancelled. Default 3 600 000 (one hour).
   */
  ttlMs?: number;
  /** The poll interval suggested to clients, in milliseconds. Default 500. */
  pollIntervalMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * Why a task was forgotten: its TTL passed (`expired`), or it had finished and was forgotten to make
 * room for a new task or a newer result (`evicted`).
 *
 * @example
 * ```ts
 * server.tasks?.on('expired', (taskId, reason: TaskForgetReason) => {
 *   if (reason === 'evicted') logger.warn({ taskId }, 'finished task forgotten to make room');
 * });
 * ```
 */
export type TaskForgetReason = 'expired' | 'evicted';

/** Events of {@link TaskManager}. */
export interface TaskManagerEvents {
  /** A task was created or changed status (or status message). */
  status: (task: TaskSnapshot) => void;
  /** A task was forgotten: `tasks/get` answers for it as for a task that never existed. */
  expired: (taskId: string, reason: TaskForgetReason) => void;
}

/** What starting a task needs. */
export interface StartTaskOptions {
  tool: RegisteredTool;
  args: unknown;
  /** The executor options of the call that created the task (caller, origin, session, request id). */
  execute: ExecuteOptions;
  /** The SDK context of the request that created the task; the handler sees a task-scoped copy. */
  mcp?: ServerContext;
  /** The caller that owns the task. */
  owner?: string;
  /**
   * Whose share of running tasks the task uses, when it is not simply its owner: the policy layer
   * passes its share key, so anonymous callers count per client address. Default: the owner, else
   * `local`.
   */
  share?: string;
  /** Runs instead of the tool's handler (a `runAsTask` continuation). */
  work?: TaskWork<any>;
}

interface TaskRecord {
  readonly taskId: string;
  readonly tool: string;
  status: TaskStatus;
  statusMessage?: string;
  readonly createdAt: number;
  lastUpdatedAt: number;
  readonly owner?: string;
  /** The owner whose share of running tasks this one uses (`local` without an owner). */
  readonly share: string;
  /** The estimated size of the held result or error, set once the task finishes. */
  bytes: number;
  result?: CallToolResult;
  error?: TaskError;
  /** Pending input requests (the keys not answered yet). */
  inputRequests?: Record<string, InputRequest>;
  /** Answers gathered in the current input round. */
  answers?: Record<string, unknown>;
  /** Resumes the handler once every pending request is answered (or with `undefined` on cancel). */
  resume?: (answers: Record<string, unknown> | undefined) => void;
  readonly controller: AbortController;
  /** Whether the shared store holds the task (its changes are then mirrored there). */
  shared?: boolean;
}

const TERMINAL = new Set<TaskStatus>(['completed', 'failed', 'cancelled']);

/** The owner of tasks started without a caller: the same id the policy layer gives local code. */
const LOCAL_OWNER = 'local';

/** The JSON-RPC code of a result too large to keep (the `PAYLOAD_TOO_LARGE` row of the error table). */
const TOO_LARGE_CODE = ERROR_CODES.PAYLOAD_TOO_LARGE.jsonRpc;

/** Whether a status is terminal. */
export function isTerminalStatus(status: TaskStatus): boolean {
  return TERMINAL.has(status);
}

/**
 * The task runtime (`server.tasks`): runs tool calls in the background through the same
 * {@link ToolExecutor} as every other call, and keeps their state in a bounded in-memory table that
 * forgets each task `ttlMs` after it was created. Running tasks are capped in all (`maxTasks`) and per
 * owner (`maxRunningPerOwner`); finished ones are forgotten first-finished-first when the table is full
 * or their results pass `maxResultBytes`, so they never stand in the way of new work.
 *
 * @example
 * ```ts
 * const server = createMcpServer({ tasks: { maxTasks: 500, maxRunningPerOwner: 20 } });
 * server.tasks.on('status', (task) => console.error(task.taskId, task.status));
 * server.tasks.on('expired', (taskId, reason) => console.error(taskId, 'forgotten:', reason));
 * console.error(server.tasks.running, 'running,', server.tasks.resultBytes, 'result bytes held');
 * server.tasks.cancel(taskId);
 * ```
 */
export class TaskManager extends EventEmitter<TaskManagerEvents> {
  readonly maxTasks: number;
  readonly maxRunningPerOwner: number;
  readonly maxResultBytes: number;
  readonly ttlMs: number;
  readonly pollIntervalMs: number;
  readonly #executor: ToolExecutor;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** In creation order; with one TTL for all, expired tasks are always at the front. */
  readonly #tasks = new Map<string, TaskRecord>();
  /** Finished tasks, in the order they finished: the first is the first forgotten to make room. */
  readonly #finished = new Set<TaskRecord>();
  /** Running tasks per owner (`share`); an owner with none has no entry. */
  readonly #runningByOwner = new Map<string, number>();
  #running = 0;
  #resultBytes = 0;
  /** The store shared with other nodes (`createMcpServer({ state })`), if any. */
  readonly #store: TaskStore | undefined;
  #closing = false;

  /** @internal Built by `createMcpServer`; reach it as `server.tasks`. */
  constructor(
    executor: ToolExecutor,
    logger: Logger,
    options: TaskOptions & { readonly store?: TaskStore | undefined } = {},
  ) {
    super();
    this.#executor = executor;
    this.#logger = logger;
    const store = options.store;
    this.#store = store;
    this.maxTasks = positiveInteger('tasks.maxTasks', options.maxTasks, 1000);
    this.maxRunningPerOwner = positiveInteger(
      'tasks.maxRunningPerOwner',
      options.maxRunningPerOwner,
      Math.ceil(this.maxTasks / 10),
    );
    this.maxResultBytes = positiveInteger('tasks.maxResultBytes', options.maxResultBytes, 64 * 1024 * 1024);
    this.ttlMs = positiveInteger('tasks.ttlMs', options.ttlMs, 60 * 60 * 1000);
    this.pollIntervalMs = positiveInteger('tasks.pollIntervalMs', options.pollIntervalMs, 500);
    this.#now = options.now ?? Date.now;
    store?.serve({
      running: () => this.#runningIds(),
      cancel: (taskId, reason) => {
        const record = this.#tasks.get(taskId);
        if (record) this.#cancel(record, reason);
      },
      ended: (taskId, status, reason) => {
        const record = this.#tasks.get(taskId);
        if (!record) return;
        this.#cancel(record, reason);
        // Cancelled on another node while it finished here: the store says cancelled, so does this node.
        if (status === 'cancelled' && record.status !== 'cancelled') this.#adoptCancel(record);
      },
      update: (taskId, inputResponses) => void this.update(taskId, inputResponses),
      resync: () => {
        for (const record of this.#tasks.values()) if (record.shared) this.#mirror(record);
      },
    });
  }

  /** Whether tasks are shared with other nodes (`createMcpServer({ state })` with a task store). */
  get shared(): boolean {
    return this.#store !== undefined;
  }

  *#runningIds(): Iterable<string> {
    for (const record of this.#tasks.values()) if (!TERMINAL.has(record.status)) yield record.taskId;
  }

  /** Tasks held now, running or finished (expired ones are dropped first). */
  get size(): number {
    this.#sweep();
    return this.#tasks.size;
  }

  /** Tasks running now: `working` or `input_required` (expired ones are dropped first). */
  get running(): number {
    this.#sweep();
    return this.#running;
  }

  /** Estimated bytes of the results and errors finished tasks hold now (see `maxResultBytes`). */
  get resultBytes(): number {
    this.#sweep();
    return this.#resultBytes;
  }

  /**
   * Creates a task and starts its tool in the background. The task exists (and `get` finds it)
   * before this returns. Throws `BUSY` when `maxTasks` tasks are running, or when the owner has
   * `maxRunningPerOwner` running; when the table is merely full, the task that finished first is
   * forgotten to make room.
   */
  start(options: StartTaskOptions): TaskSnapshot {
    this.#sweep();
    if (this.#running >= this.maxTasks) {
      throw new McpKitError('BUSY', `Too many tasks: the server runs at most ${this.maxTasks} at once`);
    }
    const share = options.share ?? options.owner ?? LOCAL_OWNER;
    const mine = this.#runningByOwner.get(share) ?? 0;
    if (mine >= this.maxRunningPerOwner) {
      throw new McpKitError(
        'BUSY',
        `Too many tasks: one caller runs at most ${this.maxRunningPerOwner} at once; wait for one to finish`,
      );
    }
    // Fewer than maxTasks are running, so a full table holds a finished task to forget.
    for (const oldest of this.#finished) {
      if (this.#tasks.size < this.maxTasks) break;
      this.#forget(oldest, 'evicted');
    }
    const now = this.#now();
    const record: TaskRecord = {
      taskId: globalThis.crypto.randomUUID(),
      tool: options.tool.name,
      status: 'working',
      createdAt: now,
      lastUpdatedAt: now,
      ...(options.owner !== undefined && { owner: options.owner }),
      share,
      bytes: 0,
      controller: new AbortController(),
    };
    this.#tasks.set(record.taskId, record);
    this.#running++;
    this.#runningByOwner.set(share, mine + 1);
    this.#emitStatus(record);
    if (this.#store) {
      record.shared = true;
      const created = this.#store.create(this.#snapshot(record));
      this.#created.set(record.taskId, created);
      created.then(
        () => {
          this.#created.delete(record.taskId);
          if (!TERMINAL.has(record.status)) void this.#run(record, options);
          else this.#mirror(record);
        },
        () => {
          this.#created.delete(record.taskId);
          record.shared = false;
          this.#cancel(record, 'The shared task store is unavailable');
          this.#forget(record, 'evicted');
        },
      );
    } else {
      void this.#run(record, options);
    }
    return this.#snapshot(record);
  }

  /** Creations waiting for the shared store, by task id. */
  readonly #created = new Map<string, Promise<void>>();

  /**
   * Starts a task like {@link start}, and with a shared store (`createMcpServer({ state })`) resolves
   * only once the store holds it, so any node can find the task as soon as its id is known. Rejects
   * with `UNAVAILABLE` (and the task never runs) when the store is out of reach.
   */
  async begin(options: StartTaskOptions): Promise<TaskSnapshot> {
    const task = this.start(options);
    const created = this.#created.get(task.taskId);
    if (created) await created;
    return task;
  }

  /**
   * The task, on this node or, with a shared store, on any node: `undefined` when unknown or
   * forgotten. A task whose node stopped heartbeating reads as `failed`. Rejects with `UNAVAILABLE`
   * when the task is not on this node and the shared store is out of reach.
   */
  async find(taskId: string): Promise<TaskSnapshot | undefined> {
    const local = this.get(taskId);
    if (local || !this.#store) return local;
    return this.#store.get(taskId);
  }

  /**
   * Cancels a task on this node or, with a shared store, on the node that runs it (its handler's
   * signal is aborted there). Returns `false` for an unknown task.
   */
  async cancelAnywhere(taskId: string, reason = 'Cancelled by the client'): Promise<boolean> {
    if (this.cancel(taskId, reason)) return true;
    if (!this.#store) return false;
    return (await this.#store.cancel(taskId, reason)) !== undefined;
  }

  /**
   * Delivers input answers to a task on this node or, with a shared store, on the node that runs
   * it. Returns `false` for an unknown task (or one whose node is gone).
   */
  async updateAnywhere(taskId: string, inputResponses: Record<string, unknown>): Promise<boolean> {
    if (this.update(taskId, inputResponses)) return true;
    if (!this.#store) return false;
    return this.#store.update(taskId, inputResponses);
  }

  /** The task, or `undefined` when it is unknown or was forgotten (expired or evicted). */
  get(taskId: string): TaskSnapshot | undefined {
    const record = this.#record(taskId);
    return record && this.#snapshot(record);
  }

  /** Every task held, oldest first. */
  list(): TaskSnapshot[] {
    this.#sweep();
    return [...this.#tasks.values()].map((record) => this.#snapshot(record));
  }

  /**
   * Delivers answers to a task waiting for input. Keys the task does not wait for are ignored;
   * the task resumes once every pending request is answered. Returns `false` for an unknown task.
   */
  update(taskId: string, inputResponses: Record<string, unknown>): boolean {
    const record = this.#record(taskId);
    if (!record) return false;
    const pending = record.inputRequests;
    if (record.status !== 'input_required' || !pending) return true;
    let answered = false;
    for (const key of Object.keys(inputResponses)) {
      if (!Object.hasOwn(pending, key)) continue;
      record.answers ??= {};
      record.answers[key] = inputResponses[key];
      delete pending[key];
      answered = true;
    }
    if (!answered) return true;
    if (Object.keys(pending).length > 0) {
      this.#touch(record);
      return true;
    }
    const answers = record.answers ?? {};
    record.inputRequests = undefined;
    record.answers = undefined;
    this.#setStatus(record, 'working');
    const resume = record.resume;
    record.resume = undefined;
    resume?.(answers);
    return true;
  }

  /**
   * Cancels a task: it settles as `cancelled` at once and its handler's signal is aborted. A task
   * already finished stays as it is. Returns `false` for an unknown task.
   */
  cancel(taskId: string, reason = 'Cancelled by the client'): boolean {
    const record = this.#record(taskId);
    if (!record) return false;
    this.#cancel(record, reason);
    return true;
  }

  /**
   * Cancels every running task and forgets them all. With a shared store, the tasks this node ran
   * read as `failed` on the other nodes once its lease is given up (the state's `close()`).
   */
  close(): void {
    this.#closing = true;
    for (const record of this.#tasks.values()) this.#cancel(record, 'The server is closing');
    this.#tasks.clear();
    this.#finished.clear();
    this.#runningByOwner.clear();
    this.#running = 0;
    this.#resultBytes = 0;
  }

  #cancel(record: TaskRecord, reason: string): void {
    if (TERMINAL.has(record.status)) return;
    record.inputRequests = undefined;
    record.answers = undefined;
    this.#settle(record, 'cancelled');
    record.controller.abort(new McpKitError('CANCELLED', reason));
    const resume = record.resume;
    record.resume = undefined;
    resume?.(undefined);
  }

  /** A task that finished here but was cancelled first in the shared store: it reads as cancelled. */
  #adoptCancel(record: TaskRecord): void {
    this.#resultBytes -= record.bytes;
    record.bytes = 0;
    record.result = undefined;
    record.error = undefined;
    record.status = 'cancelled';
    record.lastUpdatedAt = Math.max(this.#now(), record.lastUpdatedAt);
    this.#emitStatus(record);
  }

  #record(taskId: string): TaskRecord | undefined {
    this.#sweep();
    return this.#tasks.get(taskId);
  }

  /** Drops expired tasks (cancelling those still running). */
  #sweep(): void {
    const cutoff = this.#now() - this.ttlMs;
    for (const record of this.#tasks.values()) {
      if (record.createdAt > cutoff) break;
      this.#cancel(record, 'The task expired');
      this.#forget(record, 'expired');
    }
  }

  /** Removes a finished task from the table; `get` then answers as for a task that never existed. */
  #forget(record: TaskRecord, reason: TaskForgetReason): void {
    this.#tasks.delete(record.taskId);
    this.#finished.delete(record);
    this.#resultBytes -= record.bytes;
    if (this.listenerCount('expired') > 0) this.emit('expired', record.taskId, reason);
  }

  async #run(record: TaskRecord, options: StartTaskOptions): Promise<void> {
    const { tool, args } = options;
    const runTool = options.work
      ? { ...tool, definition: { ...tool.definition, handler: options.work } }
      : tool;
    const signal = record.controller.signal;
    let inputResponses: Record<string, unknown> | undefined;
    let requestState: string | undefined;
    try {
      for (;;) {
        const result = await this.#executor.executeTool(runTool, args, {
          ...options.execute,
          signal,
          // A task is bounded by its TTL, not by the default call timeout; a tool's own still applies.
          timeoutMs: tool.definition.timeoutMs ?? 0,
          onProgress: async (_progress, _total, message) => {
            if (message !== undefined && !TERMINAL.has(record.status)) {
              record.statusMessage = message;
              this.#touch(record);
            }
          },
          ...(options.mcp && { mcp: taskContext(options.mcp, { signal, inputResponses, requestState }) }),
          acceptTaskContinuation: false,
        });
        if (TERMINAL.has(record.status)) return;
        if (!isInputRequiredResult(result)) {
          record.result = result;
          this.#settle(record, 'completed');
          return;
        }
        // The handler asked for input (multi-round-trip style): the task waits in `input_required`
        // until `tasks/update` answers every request, then the handler runs again with the answers.
        const requests = { ...(result.inputRequests ?? {}) } as Record<string, InputRequest>;
        requestState = typeof result.requestState === 'string' ? result.requestState : undefined;
        if (Object.keys(requests).length === 0) {
          throw new ProtocolError(
            ProtocolErrorCode.InternalError,
            'The tool asked for input without any input request',
          );
        }
        const answers = await new Promise<Record<string, unknown> | undefined>((resolve) => {
          record.inputRequests = requests;
          record.answers = undefined;
          record.resume = resolve;
          this.#setStatus(record, 'input_required');
        });
        if (answers === undefined) return;
        inputResponses = { ...inputResponses, ...answers };
      }
    } catch (error) {
      if (TERMINAL.has(record.status)) return;
      record.error = taskError(error, this.#logger, tool.name);
      this.#settle(record, 'failed');
    }
  }

  /**
   * Ends a running task in a terminal status: frees its place in its owner's share, measures what it
   * holds, and forgets the tasks that finished first while the held results are over budget.
   */
  #settle(record: TaskRecord, status: TaskStatus): void {
    const left = (this.#runningByOwner.get(record.share) ?? 1) - 1;
    if (left > 0) this.#runningByOwner.set(record.share, left);
    else this.#runningByOwner.delete(record.share);
    this.#running--;
    record.status = status;
    record.bytes = this.#measure(record);
    this.#finished.add(record);
    this.#resultBytes += record.bytes;
    // The task that just finished fits the budget on its own (#measure saw to it), so it stays.
    for (const oldest of this.#finished) {
      if (this.#resultBytes <= this.maxResultBytes || oldest === record) break;
      this.#forget(oldest, 'evicted');
    }
    this.#touch(record);
  }

  /**
   * The estimated size of a finished task's result or error: the length of its JSON text, taken once.
   * One larger than the whole budget, or one that is not JSON, is replaced by an error saying so.
   */
  #measure(record: TaskRecord): number {
    const held = record.result ?? record.error;
    if (held === undefined) return 0;
    let size: number | undefined;
    try {
      size = JSON.stringify(held)?.length ?? 0;
    } catch {
      // A cycle or a BigInt: no client could be sent it either.
      size = undefined;
    }
    const limit = this.#store
      ? Math.min(this.maxResultBytes, this.#store.maxRecordBytes)
      : this.maxResultBytes;
    if (size !== undefined && size <= limit) return size;
    const what = record.result ? 'result' : 'error';
    this.#logger.warn({ tool: record.tool, taskId: record.taskId, bytes: size }, `task ${what} not kept`);
    record.result = undefined;
    record.status = 'failed';
    record.error =
      size === undefined
        ? { code: ProtocolErrorCode.InternalError, message: `The task's ${what} cannot be written as JSON` }
        : {
            code: TOO_LARGE_CODE,
            message: `The task's ${what} is too large to keep: about ${size} bytes, over the server's limit of ${limit} bytes for task results`,
            data: { resultBytes: size, maxResultBytes: limit },
          };
    return Math.min(JSON.stringify(record.error).length, this.maxResultBytes);
  }

  /** A change that leaves the task running (`working` ⇄ `input_required`). */
  #setStatus(record: TaskRecord, status: TaskStatus): void {
    record.status = status;
    this.#touch(record);
  }

  #touch(record: TaskRecord): void {
    record.lastUpdatedAt = Math.max(this.#now(), record.lastUpdatedAt);
    this.#emitStatus(record);
    if (record.shared) this.#mirror(record);
  }

  /** Writes the task's current state to the shared store (the latest one, when several queue). */
  #mirror(record: TaskRecord): void {
    if (this.#closing || this.#created.has(record.taskId)) return;
    this.#store?.save(record.taskId, () => this.#snapshot(record));
  }

  #emitStatus(record: TaskRecord): void {
    if (this.listenerCount('status') > 0) this.emit('status', this.#snapshot(record));
  }

  #snapshot(record: TaskRecord): TaskSnapshot {
    return {
      taskId: record.taskId,
      tool: record.tool,
      status: record.status,
      ...(record.statusMessage !== undefined && { statusMessage: record.statusMessage }),
      createdAt: record.createdAt,
      lastUpdatedAt: record.lastUpdatedAt,
      ttlMs: this.ttlMs,
      pollIntervalMs: this.pollIntervalMs,
      ...(record.owner !== undefined && { owner: record.owner }),
      ...(record.result && { result: record.result }),
      ...(record.error && { error: record.error }),
      ...(record.inputRequests && { inputRequests: { ...record.inputRequests } }),
    };
  }
}

/** The JSON-RPC error a failed task reports: a protocol error as it was thrown, anything else sanitized. */
function taskError(error: unknown, logger: Logger, tool: string): TaskError {
  if (error instanceof ProtocolError) {
    return {
      code: error.code,
      message: error.message,
      ...(error.data !== undefined && { data: error.data }),
    };
  }
  const e = toMcpKitError(error);
  if (!(error instanceof McpKitError)) logger.error({ tool, err: error }, 'task failed');
  return { code: e.jsonRpcCode, message: publicErrorMessage(e) };
}

async function refuse(): Promise<never> {
  throw new ProtocolError(
    ProtocolErrorCode.InternalError,
    'A task cannot send requests to the client: return inputRequired(...) to ask for input',
  );
}

/**
 * The SDK context a task's handler sees: the creating request's, with the task's signal, the
 * answers gathered so far as `inputResponses`, and no way to reach a client request that has ended.
 */
function taskContext(
  base: ServerContext,
  {
    signal,
    inputResponses,
    requestState,
  }: {
    signal: AbortSignal;
    inputResponses: Record<string, unknown> | undefined;
    requestState: string | undefined;
  },
): ServerContext {
  const mcpReq = {
    ...base.mcpReq,
    signal,
    inputResponses,
    requestState: (() => requestState) as ServerContext['mcpReq']['requestState'],
    notify: async () => {},
    log: async () => {},
    send: refuse as unknown as ServerContext['mcpReq']['send'],
    elicitInput: refuse,
    requestSampling: refuse,
  };
  return { ...base, mcpReq } as ServerContext;
}
