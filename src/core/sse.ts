/**
 * The one server-sent-events writer of the REST routes (resource subscriptions, streamed
 * completions): named events with JSON data, a comment every 15 s so proxies keep the stream open,
 * and one end however the stream ends. Runtime-neutral: web streams and timers only. (The MCP
 * transports write their JSON-RPC events through the SDK's or their own framing.)
 */

/** How often an open event stream sends a keepalive comment. */
export const SSE_KEEPALIVE_MS = 15_000;

/** Options of {@link openEventStream}. */
export interface EventStreamOptions {
  /**
   * Called once when the stream ends: `cancelled` is `true` when its reader went away, `false` when
   * the writer closed it or a write failed.
   */
  onEnd?: (cancelled: boolean) => void;
  /** Interval of the keepalive comment in ms. Default {@link SSE_KEEPALIVE_MS}. */
  keepaliveMs?: number;
  /**
   * Bytes written and not yet taken by the reader past which {@link EventStream.ready} asks the
   * writer to wait. Default 64 KiB.
   */
  highWaterBytes?: number;
}

/** An open `text/event-stream` body and its writer. */
export interface EventStream {
  /** The body to answer with (see {@link eventStreamResponse}). */
  readonly stream: ReadableStream<Uint8Array>;
  /** Whether the stream has ended; writes after the end are dropped. */
  readonly closed: boolean;
  /** Writes one event: `event: <event>` and its data as one line of JSON. */
  send(event: string, data: unknown): void;
  /** Ends the stream (the reader sees its end); a second call does nothing. */
  close(): void;
  /**
   * Backpressure: `undefined` while the reader keeps up, else a promise that settles once it has
   * taken what waits (or the stream ended). A writer that can wait (a model stream) awaits it;
   * writes never block.
   */
  ready(): Promise<void> | undefined;
}

/**
 * Opens an event stream. The keepalive timer is unref'd where the runtime can, so an open stream
 * never holds a process up.
 *
 * @example
 * ```ts
 * let stop = () => {};
 * const events = openEventStream({ onEnd: () => stop() });
 * stop = catalog.onUpdate((uri) => events.send('updated', { uri }));
 * return eventStreamResponse(events.stream);
 * ```
 */
export function openEventStream(options: EventStreamOptions = {}): EventStream {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let waiters: Array<() => void> = [];
  const wake = () => {
    const woken = waiters;
    waiters = [];
    for (const resolve of woken) resolve();
  };
  const end = (cancelled: boolean): boolean => {
    if (closed) return false;
    closed = true;
    clearInterval(keepalive);
    wake();
    options.onEnd?.(cancelled);
    return true;
  };
  const close = () => {
    if (!end(false)) return;
    try {
      controller.close();
    } catch {
      // already closed
    }
  };
  const write = (text: string) => {
    if (closed) return;
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      close();
    }
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      // The reader took what waited: writers held back by ready() go on.
      pull() {
        wake();
      },
      cancel() {
        end(true);
      },
    },
    { highWaterMark: options.highWaterBytes ?? 64 * 1024, size: (chunk) => chunk.byteLength },
  );
  const keepalive = setInterval(() => write(': keepalive\n\n'), options.keepaliveMs ?? SSE_KEEPALIVE_MS);
  (keepalive as { unref?: () => void }).unref?.();
  return {
    stream,
    get closed() {
      return closed;
    },
    send(event, data) {
      let text: string;
      try {
        text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
      } catch {
        // data that cannot be written as JSON ends the stream rather than the writer's caller
        close();
        return;
      }
      write(text);
    },
    close,
    ready() {
      if (closed || (controller.desiredSize ?? 1) > 0) return undefined;
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

/**
 * A `200` answer streaming `stream` as `text/event-stream`, uncached, with `headers` added.
 *
 * @example
 * ```ts
 * return eventStreamResponse(events.stream, { 'x-completion-id': job.id });
 * ```
 */
export function eventStreamResponse(
  stream: ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
): Response {
  return new Response(stream, {
    headers: {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...headers,
    },
  });
}
