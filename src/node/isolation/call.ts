/**
 * One call of an isolated tool: the task sent to its pool, the link its handler talks over (progress,
 * logs, nested calls, the abort of its signal), its hard time limit, and the answer or the fault that
 * ends it. A fault names the limit it hit and is counted; the worker it broke is replaced.
 * Size: about 530 lines, one call's whole life: split, each fault's answer would sit away from
 * the state that decides it.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Tinypool } from 'tinypool';
import type { ToolContext } from '../../catalog/tools.js';
import { ERROR_CODES, McpKitError, type McpKitErrorCode, publicErrorMessage } from '../../core/errors.js';
import { stripPollution } from '../../core/safeJson.js';
import type { CancelSignal } from '../../execution/signal.js';
import type { CallerIdentity } from '../../types.js';
import type { LinkedCall, WorkerLinks } from './links.js';
import type { IsolatedCaller, IsolationFault, IsolationLevel } from './types.js';

/** What a call needs of its tool's isolation, resolved from the tool's `isolate` options. */
export interface CallSpec {
  readonly tool: string;
  readonly level: IsolationLevel;
  readonly module: string;
  readonly exportName: string;
  readonly timeoutMs: number;
  readonly graceMs: number;
  readonly maxMemoryMb: number;
  readonly maxResultBytes: number;
  /** `'idle'` (`SCHED_IDLE`), or how many nice levels below the server's the worker's thread runs. */
  readonly priority: 'idle' | number;
  /** Where its limits are set, as fault messages name them. Default `'isolate'`. */
  readonly option?: string;
}

/** What the call reports to its isolation, and the links of its pool (worker level). */
export interface CallHooks {
  fault(kind: IsolationFault, tool: string): void;
  /** Whether the isolation is closing (its workers are being terminated). */
  closing(): boolean;
  /** The worker level's links to the pool's workers (`links.ts`). */
  readonly links?: WorkerLinks;
}

/** A message from the runner (checked: a worker's messages are not trusted). */
interface RunnerMessage {
  type?: unknown;
  id?: unknown;
  name?: unknown;
  args?: unknown;
  level?: unknown;
  data?: unknown;
  logger?: unknown;
  obj?: unknown;
  msg?: unknown;
  progress?: unknown;
  total?: unknown;
  message?: unknown;
  code?: unknown;
  answer?: unknown;
}

/**
 * What the runner answers a call with. A worker thread that sent messages for the call answers over
 * its link instead (`viaLink`), after them; one that has no link yet asks for one (`needLink`).
 */
type RunnerAnswer =
  | { viaLink: true }
  | { needLink: true }
  | { ok: true; value: unknown }
  | { ok: false; error: { message?: unknown; code?: unknown; expose?: unknown } }
  | { ok: false; fault: 'uncloneable'; message?: unknown }
  | { ok: false; fault: 'result-too-large'; bytes?: unknown };

/**
 * What one call's handler may send the client and the log (progress, log lines), in bytes of JSON:
 * past it, more is dropped (and the server's log says so once), so a chatty or hostile handler
 * cannot fill the main thread's memory or the client's connection.
 */
const MESSAGE_BUDGET_BYTES = 1024 * 1024;

function jsonBytes(value: unknown): number {
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    return MESSAGE_BUDGET_BYTES;
  }
}

const CLIENT_LEVELS = new Set(['debug', 'info', 'warning', 'error']);
const SERVER_LEVELS = new Set(['debug', 'info', 'warn', 'error']);

function firstLine(value: unknown): string {
  const text = typeof value === 'string' ? value : value instanceof Error ? value.message : String(value);
  const end = text.indexOf('\n');
  return (end < 0 ? text : text.slice(0, end)).slice(0, 500);
}

/** What a worker learns of the caller: who it is, never its credentials (an OAuth token). */
function callerCopy(caller: CallerIdentity): IsolatedCaller {
  return {
    id: String(caller.id),
    ...(Array.isArray(caller.roles) && { roles: caller.roles.map(String) }),
    ...(Array.isArray(caller.permissions) && { permissions: caller.permissions.map(String) }),
  };
}

/** A fault's error: the code callers already know, a message naming the limit, counted once. */
function faultError(kind: IsolationFault, message: string): McpKitError {
  const code: McpKitErrorCode =
    kind === 'timeout'
      ? 'TIMEOUT'
      : kind === 'busy'
        ? 'BUSY'
        : kind === 'result-too-large'
          ? 'PAYLOAD_TOO_LARGE'
          : 'INTERNAL';
  return new McpKitError(code, message, { expose: true, details: { fault: kind } });
}

/** A handler's failure as it came back: its code when it is one of mcpkit's, its first line. */
function handlerError(error: { message?: unknown; code?: unknown; expose?: unknown }): Error {
  const message = firstLine(error.message ?? 'Tool failed');
  const code =
    typeof error.code === 'string' && Object.hasOwn(ERROR_CODES, error.code) ? error.code : undefined;
  if (code) {
    return new McpKitError(code as McpKitErrorCode, message, {
      expose: code !== 'INTERNAL' || error.expose === true,
    });
  }
  return new Error(message);
}

/**
 * How a call has its pool terminate its worker: the signal tinypool's `run` takes, as the least
 * object its types accept (an `AbortController` with its `AbortSignal` cost a few microseconds of
 * every call's main thread, for an abort that almost never comes).
 */
class Terminator {
  aborted = false;
  #listener: (() => void) | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listener = listener;
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = undefined;
  }

  /** Terminates the worker running the task (tinypool starts another when one is needed). */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }
}

/** One call of an isolated tool, from its task to its answer. */
export class IsolatedCall implements LinkedCall {
  readonly #spec: CallSpec;
  readonly #ctx: ToolContext;
  readonly #hooks: CallHooks;
  /**
   * The call's end (its timeout or its caller's cancel): the executor's `cancellation` where it has
   * one, which costs no `AbortController` the way `ctx.signal` does.
   */
  readonly #cancel: CancelSignal;
  /** Aborting it makes tinypool terminate the worker (and start another when needed). */
  readonly #terminate = new Terminator();
  /** Worker level: the call's id on its pool's links. */
  #id = 0;
  #sendToChild: ((message: unknown) => void) | undefined;
  #settled = false;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;
  #hardTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Why the call was stopped from outside: its time limit, or its caller's cancel. */
  #stopped: 'timeout' | 'cancel' | undefined;
  /** What is left of {@link MESSAGE_BUDGET_BYTES} for this call. */
  #budget = MESSAGE_BUDGET_BYTES;
  /** The runner said the handler called `process.exit` (or threw outside the call). */
  #ended: { kind: 'exit' | 'uncaught'; detail: string } | undefined;

  constructor(spec: CallSpec, ctx: ToolContext, hooks: CallHooks) {
    this.#spec = spec;
    this.#ctx = ctx;
    this.#hooks = hooks;
    this.#cancel = (ctx as { cancellation?: CancelSignal }).cancellation ?? ctx.signal;
  }

  /** Runs the call on `pool`; settles with the handler's value or a fault's error. */
  run(pool: Tinypool, args: unknown): Promise<unknown> {
    const answer = new Promise<unknown>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const cancel = this.#cancel;
    if (cancel.aborted) {
      this.#settle(() => this.#reject(cancel.reason));
      return answer;
    }
    const spec = this.#spec;
    const ctx = this.#ctx;
    const task: Record<string, unknown> = {
      module: spec.module,
      exportName: spec.exportName,
      args,
      maxResultBytes: spec.maxResultBytes,
      priority: spec.priority,
      meta: {
        toolName: ctx.toolName,
        origin: ctx.origin,
        ...(ctx.requestId !== undefined && { requestId: ctx.requestId }),
        ...(ctx.sessionId !== undefined && { sessionId: ctx.sessionId }),
        ...(ctx.caller && { caller: callerCopy(ctx.caller) }),
      },
    };
    const links = this.#hooks.links;
    if (spec.level === 'worker' && links) {
      this.#id = links.add(this);
      task.call = this.#id;
      this.#submit(pool, task, links.offer(pool.threads.length));
    } else {
      pool
        .run(task, {
          signal: this.#terminate,
          channel: {
            onMessage: (send) => {
              this.#sendToChild = send;
            },
            postMessage: (message: RunnerMessage) => {
              if (message && (message as { mcpkit?: unknown }).mcpkit === 1) this.#receive(message);
            },
          },
        })
        .then(
          (result) => this.#answered(result as RunnerAnswer),
          (error: unknown) => this.#crashed(error),
        );
    }
    cancel.addEventListener('abort', this.#onAbort, { once: true });
    this.#hardTimer = setTimeout(() => this.#stop('timeout'), spec.timeoutMs);
    this.#hardTimer.unref?.();
    return answer;
  }

  /**
   * Sends the task to a worker thread, with a link's worker end when the pool may have a worker
   * without one; sent again, with a link, when the worker that took it has none.
   */
  #submit(pool: Tinypool, task: Record<string, unknown>, port: MessagePort | undefined): void {
    if (port) task.port = port;
    else delete task.port;
    pool.run(task, { ...(port && { transferList: [port] }), signal: this.#terminate }).then(
      (result) => {
        if ((result as { needLink?: unknown } | null)?.needLink === true && !this.#settled) {
          this.#submit(pool, task, this.#hooks.links!.fresh());
        } else this.#answered(result as RunnerAnswer);
      },
      (error: unknown) => {
        // A port that never reached a worker is closed, so its link is not counted; once
        // transferred, closing it here does nothing.
        port?.close();
        this.#crashed(error);
      },
    );
  }

  readonly #onAbort = (): void => {
    const reason = this.#cancel.reason as { code?: unknown } | undefined;
    this.#stop(reason?.code === 'TIMEOUT' ? 'timeout' : 'cancel');
  };

  /** Asks the handler to stop (its signal aborts); terminates its worker if it has not `graceMs` later. */
  #stop(why: 'timeout' | 'cancel'): void {
    if (this.#settled || this.#stopped) return;
    this.#stopped = why;
    // Counted when the limit passes, before the call answers: whether the handler then stops by
    // itself, had not started yet (its module loading, or its worker starved of CPU), or must be
    // terminated, the tool ran out of time.
    if (why === 'timeout') this.#hooks.fault('timeout', this.#spec.tool);
    this.#send({
      type: 'abort',
      reason: why === 'timeout' ? 'The call timed out' : 'The call was cancelled',
    });
    this.#graceTimer = setTimeout(() => {
      if (this.#settled) return;
      this.#fail(
        why === 'timeout'
          ? faultError(
              'timeout',
              `Tool ${this.#spec.tool} exceeded its time limit of ${this.#spec.timeoutMs} ms; its worker was terminated`,
            )
          : new McpKitError('CANCELLED', `Tool ${this.#spec.tool} was cancelled; its worker was terminated`),
        true,
      );
    }, this.#spec.graceMs);
    this.#graceTimer.unref?.();
  }

  #send(message: Record<string, unknown>): void {
    // After the answer the worker (a child process's one channel above all) may serve another call,
    // another caller's: the answer of a nested call this one left running must not reach it.
    if (this.#settled) return;
    try {
      if (this.#id) this.#hooks.links!.send(this.#id, message);
      else this.#sendToChild?.({ mcpkit: 1, ...message });
    } catch {
      // The worker is gone: its end is reported by its pool.
    }
  }

  /** A message from the handler over its worker's link (`links.ts` checked whose it is). */
  receive(message: object): void {
    this.#receive(message as RunnerMessage);
  }

  /** A message from the handler: progress, a log line, a nested call, or the news that it is exiting. */
  #receive(message: RunnerMessage): void {
    if (this.#settled || typeof message !== 'object' || message === null) return;
    const ctx = this.#ctx;
    if (
      (message.type === 'progress' || message.type === 'log' || message.type === 'logger') &&
      !this.#spend(message)
    ) {
      return;
    }
    switch (message.type) {
      case 'progress':
        if (typeof message.progress === 'number') {
          void ctx.progress(
            message.progress,
            typeof message.total === 'number' ? message.total : undefined,
            typeof message.message === 'string' ? message.message : undefined,
          );
        }
        return;
      case 'log':
        if (typeof message.level === 'string' && CLIENT_LEVELS.has(message.level)) {
          const level = message.level as 'debug' | 'info' | 'warning' | 'error';
          void ctx.log[level](message.data, typeof message.logger === 'string' ? message.logger : undefined);
        }
        return;
      case 'logger':
        if (typeof message.level === 'string' && SERVER_LEVELS.has(message.level)) {
          const level = message.level as 'debug' | 'info' | 'warn' | 'error';
          const msg = typeof message.msg === 'string' ? message.msg : undefined;
          if (typeof message.obj === 'object' && message.obj !== null) ctx.logger[level](message.obj, msg);
          else ctx.logger[level](msg ?? '');
        }
        return;
      case 'answer':
        // A worker thread that sent messages for the call answers over its link, after them.
        if (this.#id) this.#answered(message.answer as RunnerAnswer);
        return;
      case 'call':
        this.#nested(message);
        return;
      case 'exit':
        this.#ended ??= { kind: 'exit', detail: `process.exit(${Number(message.code) || 0})` };
        return;
      case 'uncaught':
        this.#ended ??= { kind: 'uncaught', detail: firstLine(message.message ?? 'an error') };
        return;
    }
  }

  /** Takes a message's size from the call's budget; `false` (and one warning) once it is spent. */
  #spend(message: RunnerMessage): boolean {
    if (this.#budget <= 0) return false;
    this.#budget -= jsonBytes(message) + 16;
    if (this.#budget > 0) return true;
    this.#ctx.logger.warn(
      { tool: this.#spec.tool, budgetBytes: MESSAGE_BUDGET_BYTES },
      'isolated tool sent more progress and log messages than its budget; the rest are dropped',
    );
    return false;
  }

  /** A nested `ctx.callTool` from the handler, run here under the call's own context and rights. */
  #nested(message: RunnerMessage): void {
    const id = message.id;
    if (typeof message.name !== 'string') {
      this.#send({
        type: 'called',
        id,
        error: { message: 'callTool needs a tool name', code: 'INVALID_ARGUMENT' },
      });
      return;
    }
    // A worker's objects are not JSON the doors cleaned: `__proto__` keys go here as they do there.
    const args =
      typeof message.args === 'object' && message.args !== null && !Array.isArray(message.args)
        ? stripPollution(message.args as Record<string, unknown>)
        : {};
    this.#ctx.callTool(message.name, args).then(
      (result) => this.#send({ type: 'called', id, result }),
      (error: unknown) =>
        this.#send({
          type: 'called',
          id,
          error: {
            message: publicErrorMessage(error),
            code: error instanceof McpKitError ? error.code : 'INTERNAL',
          },
        }),
    );
  }

  /** The runner's answer: the handler's value, its failure, or a result that could not come back. */
  #answered(answer: RunnerAnswer): void {
    if (this.#settled || (answer && ('viaLink' in answer || 'needLink' in answer))) return;
    const tool = this.#spec.tool;
    if (answer?.ok === true) {
      this.#settle(() => this.#resolve(stripPollution(answer.value)));
      return;
    }
    if (answer && 'fault' in answer && answer.fault === 'result-too-large') {
      this.#hooks.fault('result-too-large', tool);
      this.#fail(
        faultError(
          'result-too-large',
          `Tool ${tool}'s result is ${Number(answer.bytes)} bytes, over its limit of ${this.#spec.maxResultBytes} bytes (${this.#spec.option ?? 'isolate'}.maxResultBytes)`,
        ),
      );
      return;
    }
    if (answer && 'fault' in answer && answer.fault === 'uncloneable') {
      this.#hooks.fault('uncloneable', tool);
      this.#fail(
        faultError(
          'uncloneable',
          `Tool ${tool} returned a value that cannot be copied out of its worker (${firstLine(answer.message ?? 'not cloneable')})`,
        ),
      );
      return;
    }
    const error = answer && 'error' in answer ? answer.error : { message: 'Tool failed' };
    this.#fail(handlerError(error ?? {}));
  }

  /** The pool failed the task: the worker died (memory, an uncaught error, an exit) or was terminated. */
  #crashed(error: unknown): void {
    if (this.#settled) return;
    const tool = this.#spec.tool;
    const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
    if (name === 'AbortError') return; // we terminated it; #stop or linkClosed answers
    if (this.#hooks.closing()) {
      this.#fail(
        new McpKitError('UNAVAILABLE', `Tool ${tool} was stopped: the server's isolation is closing`),
      );
      return;
    }
    if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
      this.#memoryFault();
      return;
    }
    if (this.#ended) {
      this.#endedFault();
      return;
    }
    if (this.#spec.level === 'process') {
      // A child that ends without a word from its runner ran out of heap (V8 aborts it) or was killed.
      this.#memoryFault();
      return;
    }
    this.#hooks.fault('uncaught', tool);
    this.#fail(
      faultError(
        'uncaught',
        `Tool ${tool}'s worker crashed: an error was thrown outside the call (${firstLine(error)}); the worker was replaced`,
      ),
    );
  }

  #memoryFault(): void {
    const tool = this.#spec.tool;
    this.#hooks.fault('memory', tool);
    const where = this.#spec.level === 'worker' ? 'worker' : 'process';
    const more =
      this.#spec.level === 'worker'
        ? 'and was terminated'
        : 'or was killed (a process that ends without answering is most often out of memory)';
    this.#fail(
      faultError(
        'memory',
        `Tool ${tool}'s ${where} ran out of memory: it reached its heap limit of ${this.#spec.maxMemoryMb} MB (${this.#spec.option ?? 'isolate'}.maxMemoryMb) ${more}`,
      ),
      true,
    );
  }

  #endedFault(): void {
    const ended = this.#ended!;
    const tool = this.#spec.tool;
    this.#hooks.fault(ended.kind, tool);
    const what =
      ended.kind === 'exit'
        ? `called ${ended.detail}, which ended its ${this.#spec.level}`
        : `threw outside the call (${ended.detail}), which ended its ${this.#spec.level}`;
    this.#fail(faultError(ended.kind, `Tool ${tool} ${what}; a fresh one replaces it`), true);
  }

  /** The link of the call's worker thread closed before its answer: the thread ended (`process.exit`). */
  linkClosed(): void {
    if (this.#settled) return;
    if (this.#ended) {
      this.#endedFault();
      return;
    }
    // A thread that ran out of heap closes its port too, and its pool's verdict may come a moment
    // later: that verdict wins. `process.exit` and an error outside the call always send word first
    // (the runner's), so a thread that ended without one was ended by V8: out of heap.
    const verdict = setTimeout(() => {
      if (this.#settled) return;
      // tinypool may not notice a thread that ended on its own: terminating it frees its slot.
      this.#memoryFault();
    }, 100);
    verdict.unref?.();
  }

  #fail(error: unknown, terminate = false): void {
    this.#settle(() => this.#reject(error));
    if (terminate) this.#terminate.abort();
  }

  #settle(answer: () => void): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#hardTimer !== undefined) clearTimeout(this.#hardTimer);
    if (this.#graceTimer !== undefined) clearTimeout(this.#graceTimer);
    this.#cancel.removeEventListener('abort', this.#onAbort);
    if (this.#id) this.#hooks.links!.remove(this.#id);
    answer();
  }
}
