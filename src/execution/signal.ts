/**
 * The cancellation a call needs of its caller. A type only, with no imports: the doors (the Node
 * bridge, body readers) name it without depending on the executor.
 */

/**
 * What a call needs of its caller's cancellation: an `AbortSignal` is one, and so is anything with
 * its `aborted`, `reason` and `abort` listeners (mcpkit's Node doors pass the client's departure
 * without building a signal for every request).
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const pending = server.executor.execute('slow', {}, { signal: controller.signal });
 * controller.abort(); // the call ends with CANCELLED
 * ```
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
