/**
 * Timeouts and cancellation: the life of one call, which ends when its timeout passes or its caller's
 * signal aborts, whichever comes first.
 */
import { McpKitError } from '../core/errors.js';
import type { Call } from './events.js';
import type { CancelSignal } from './signal.js';

/** Whether `value` is a promise (or any thenable) rather than a value answered at once. */
export function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * The life of one call: its timeout, its caller's signal, and an `AbortSignal` for the handler that
 * is only built when the handler asks for it (building one costs more than the rest of a call).
 *
 * The timeout's timer is armed only once the handler has returned a promise (or thrown, since
 * retries may follow), for what is left of the timeout by then: a handler that answers
 * synchronously is done before any timer could fire, so it costs no timer at all.
 */
export class CallScope implements CancelSignal {
  ended = false;
  timedOut = false;
  /** The handler's own promise, when it answered with one (the last attempt's). */
  handler: PromiseLike<unknown> | undefined;
  #reason: unknown;
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #started: number;
  /** The call's timeout in milliseconds; `0` (or less) for none. */
  readonly timeoutMs: number;
  readonly #toolName: string;
  readonly #parent: CancelSignal | undefined;
  #onParentAbort: (() => void) | undefined;
  #reject: ((reason: unknown) => void) | undefined;
  /** Listeners of {@link cancellation}: told once, when the call ends. */
  #listeners: Array<() => void> | undefined;

  /**
   * `eager` joins the caller's signal at once, so a cancel ends the call even before the handler asks
   * for `ctx.signal` (a call that holds a concurrency slot, or may be retried, must free it).
   */
  constructor(call: Call, timeoutMs: number, eager: boolean) {
    this.#started = performance.now();
    this.timeoutMs = timeoutMs;
    this.#toolName = call.tool.name;
    const parent = call.options.signal;
    this.#parent = parent;
    if (parent?.aborted) this.#end(parent.reason, false);
    else if (eager) this.#joinParent();
  }

  /** Starts the timeout's clock, once, for the time the call has left. */
  #arm(): void {
    if (this.#timer !== undefined || !(this.timeoutMs > 0) || this.ended) return;
    const left = this.timeoutMs - (performance.now() - this.#started);
    this.#timer = setTimeout(
      () =>
        this.#end(
          new McpKitError('TIMEOUT', `Tool ${this.#toolName} timed out after ${this.timeoutMs} ms`),
          true,
        ),
      Math.max(0, left),
    );
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.ended) this.#controller.abort(this.#reason);
      else this.#joinParent();
    }
    return this.#controller.signal;
  }

  /**
   * The call's end as a {@link CancelSignal} (`aborted`, `reason`, `abort` listeners), without the
   * `AbortController` that {@link signal} builds (which costs several microseconds a call): for
   * mcpkit's own handlers that only pass cancellation on, as the gateway does to an upstream.
   * Aborts when the call times out or its caller cancels, as {@link signal} does.
   */
  get cancellation(): CancelSignal {
    if (!this.ended) this.#joinParent();
    return this;
  }

  /** Whether the call has ended (timed out or cancelled): {@link cancellation}'s `aborted`. */
  get aborted(): boolean {
    return this.ended;
  }

  /** Why the call ended, once it has: {@link cancellation}'s `reason`. */
  get reason(): unknown {
    return this.#reason;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.ended) return;
    if (this.#listeners) this.#listeners.push(listener);
    else this.#listeners = [listener];
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.#listeners;
    const at = listeners ? listeners.indexOf(listener) : -1;
    if (at >= 0) listeners!.splice(at, 1);
  }

  /** Ends this call when the caller's signal aborts (once). */
  #joinParent(): void {
    const parent = this.#parent;
    if (!parent || this.#onParentAbort) return;
    if (parent.aborted) {
      this.#end(parent.reason, false);
      return;
    }
    this.#onParentAbort = () => this.#end(parent.reason, false);
    parent.addEventListener('abort', this.#onParentAbort, { once: true });
  }

  /**
   * Runs `fn`. A synchronous answer comes back as it is (no promise to await); a promise loses to a
   * timeout or an abort. Throws when the call has already ended, or when `fn` throws.
   */
  run<T>(fn: () => T | Promise<T>): T | Promise<T> {
    if (this.ended) throw this.#reason;
    let value: T | Promise<T>;
    try {
      value = fn();
    } catch (error) {
      this.#arm();
      throw error;
    }
    if (!isPromiseLike(value)) return value;
    this.handler = value;
    this.#arm();
    if (this.#timer === undefined && this.#onParentAbort === undefined) return value;
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      value.then(resolve, reject);
    });
  }

  #end(reason: unknown, timedOut: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.timedOut = timedOut;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
    this.#reject?.(reason);
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#onParentAbort) this.#parent?.removeEventListener('abort', this.#onParentAbort);
    this.#reject = undefined;
  }
}
