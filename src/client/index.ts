/**
 * mcpkit/client: a small typed client for streamed completions, runtime-neutral (web globals only:
 * `WebSocket`, `fetch`, `TextDecoder`), so the same module runs in a browser, in Node and on edge
 * runtimes. One parser (`parseCompletionEvent`) reads the events of both doors: the WebSocket
 * completion socket (`connectCompletions`) and the SSE stream of `POST /completions/stream`
 * (`readCompletionEvents`).
 */
import type { CompletionEvent, CompletionRequest, CompletionSnapshot } from '../completions/types.js';

export type {
  CompletionEvent,
  CompletionRequest,
  CompletionSnapshot,
  CompletionStatus,
  CompletionStep,
  CompletionStopReason,
  CompletionToolCall,
  ModelConfig,
} from '../completions/types.js';

/**
 * The WebSocket subprotocol of completions (the server's `COMPLETIONS_SUBPROTOCOL`), for a client
 * of your own.
 *
 * @example
 * ```ts
 * import { COMPLETIONS_SUBPROTOCOL } from 'mcpkit/client';
 *
 * const socket = new WebSocket('ws://127.0.0.1:3000/mcp', [COMPLETIONS_SUBPROTOCOL]);
 * ```
 */
export const COMPLETIONS_SUBPROTOCOL = 'mcpkit.completions';

/**
 * The subprotocol prefix that carries a credential where headers cannot be set (a browser):
 * `mcpkit.bearer.<the key, base64url>`. `connectCompletions({ apiKey })` sends it for you.
 *
 * @example
 * ```ts
 * import { BEARER_SUBPROTOCOL_PREFIX, COMPLETIONS_SUBPROTOCOL } from 'mcpkit/client';
 *
 * const key = btoa('my-api-key').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
 * const socket = new WebSocket('ws://127.0.0.1:3000/mcp', [COMPLETIONS_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX + key]);
 * ```
 */
export const BEARER_SUBPROTOCOL_PREFIX = 'mcpkit.bearer.';

/**
 * Why a stream ended without its job's result: a refused start (`UNAUTHORIZED`, `FORBIDDEN`,
 * `RATE_LIMITED` with `retryAfterSeconds`, `INVALID_ARGUMENT`, `BUSY`), a slow reader (`BUSY`,
 * `reason: 'slow_reader'`), or the socket closing (`UNAVAILABLE`).
 */
export interface CompletionErrorEvent {
  type: 'error';
  code: string;
  message: string;
  retryAfterSeconds?: number;
  reason?: string;
}

/** Every event a completion stream carries, whichever door it came through. */
export type CompletionStreamEvent = CompletionEvent | CompletionErrorEvent;

const EVENT_TYPES = new Set(['start', 'text', 'tool_call', 'tool_result', 'usage', 'done', 'error']);

/**
 * One event from its name and data, as both doors carry them: an SSE event's `event:` and parsed
 * `data:`, or a socket frame's `event` and `data`. Throws a `TypeError` for an unknown event name or
 * data that is not an object.
 *
 * @example
 * ```ts
 * import { parseCompletionEvent } from 'mcpkit/client';
 *
 * const event = parseCompletionEvent('text', { step: 0, delta: 'Hel' });
 * if (event.type === 'text') console.log(event.delta);
 * ```
 */
export function parseCompletionEvent(event: string, data: unknown): CompletionStreamEvent {
  if (!EVENT_TYPES.has(event))
    throw new TypeError(`Unknown completion event "${String(event).slice(0, 40)}"`);
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new TypeError(`The data of a "${event}" event must be an object`);
  return { ...(data as object), type: event } as CompletionStreamEvent;
}

/**
 * The events of a `POST /completions/stream` answer, parsed with the same {@link parseCompletionEvent}
 * as the socket's. Ends after `done`, or when the stream ends.
 *
 * @example
 * ```ts
 * import { readCompletionEvents } from 'mcpkit/client';
 *
 * const response = await fetch('http://127.0.0.1:3000/completions/stream', {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json', 'x-api-key': 'my-key' },
 *   body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }] }),
 * });
 * for await (const event of readCompletionEvents(response)) {
 *   if (event.type === 'text') console.log(event.delta);
 * }
 * ```
 */
export async function* readCompletionEvents(response: Response): AsyncGenerator<CompletionStreamEvent> {
  if (!response.ok || !response.body) {
    const problem = (await response.json().catch(() => ({}))) as { code?: string; detail?: string };
    yield {
      type: 'error',
      code: problem.code ?? 'INTERNAL',
      message: problem.detail ?? `HTTP ${response.status}`,
    };
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const blocks = new EventBlocks();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      for (const block of done ? blocks.end() : blocks.push(value)) {
        const parsed = sseBlock(block);
        if (parsed) {
          yield parsed;
          if (parsed.type === 'done') return;
        }
      }
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Splits an event stream's text into its blocks (the text between blank lines), in time linear in
 * the text however it is cut into reads: a large event (a `done` with a long answer) arrives in many
 * reads, which are kept apart and joined once. Line ends are CRLF, CR or LF.
 */
class EventBlocks {
  #parts: string[] = [];
  /** The text held ends with a line end. */
  #endsWithNewline = false;
  /** A CR ended the last read: whether it is a CRLF is known only with the next one. */
  #pendingCr = false;

  push(text: string): string[] {
    let chunk = this.#pendingCr ? `\r${text}` : text;
    this.#pendingCr = chunk.endsWith('\r');
    if (this.#pendingCr) chunk = chunk.slice(0, -1);
    chunk = chunk.replace(/\r\n?/g, '\n');
    const blocks: string[] = [];
    let start = 0;
    if (this.#endsWithNewline && chunk.startsWith('\n')) {
      // The blank line falls between two reads.
      blocks.push(this.#parts.join('').slice(0, -1));
      this.#parts = [];
      start = 1;
    }
    for (let end = chunk.indexOf('\n\n', start); end !== -1; end = chunk.indexOf('\n\n', start)) {
      blocks.push(this.#parts.join('') + chunk.slice(start, end));
      this.#parts = [];
      start = end + 2;
    }
    const rest = chunk.slice(start);
    if (rest !== '') this.#parts.push(rest);
    if (this.#parts.length > 0) this.#endsWithNewline = (this.#parts.at(-1) ?? '').endsWith('\n');
    else this.#endsWithNewline = false;
    return blocks;
  }

  /** The stream ended: a CR held back was a line end. */
  end(): string[] {
    if (!this.#pendingCr) return [];
    this.#pendingCr = false;
    return this.push('\n');
  }
}

/** One SSE block (`event:` and `data:` lines) as an event; comments and keepalives are `undefined`. */
function sseBlock(block: string): CompletionStreamEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return undefined;
  return parseCompletionEvent(event, JSON.parse(data.join('\n')));
}

/**
 * A stream that ended with an `error` event (or lost its socket) rejects its `result` with this.
 *
 * @example
 * ```ts
 * import { CompletionStreamError } from 'mcpkit/client';
 *
 * try {
 *   await client.stream({ messages: [{ role: 'user', content: 'Hi' }] }).result;
 * } catch (error) {
 *   if (error instanceof CompletionStreamError && error.code === 'RATE_LIMITED') {
 *     console.log(`retry in ${error.retryAfterSeconds} s`);
 *   }
 * }
 * ```
 */
export class CompletionStreamError extends Error {
  readonly code: string;
  readonly retryAfterSeconds: number | undefined;
  constructor(event: CompletionErrorEvent) {
    super(event.message);
    this.name = 'CompletionStreamError';
    this.code = event.code;
    this.retryAfterSeconds = event.retryAfterSeconds;
  }
}

/** The part of the WebSocket API the client uses: the browser's, or the `ws` package's in Node 20. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
}

/** A `WebSocket` constructor: `globalThis.WebSocket`, or `WebSocket` of the `ws` package. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of {@link connectCompletions}. */
export interface ConnectCompletionsOptions {
  /** An API key or bearer token, sent in a `mcpkit.bearer.*` subprotocol (browsers cannot set headers). */
  apiKey?: string;
  /** The WebSocket implementation. Default `globalThis.WebSocket` (browsers, Node ≥ 22, Deno, Bun). */
  WebSocket?: WebSocketConstructor;
}

/** Options of one {@link CompletionSocketClient.stream}. */
export interface CompletionStreamOptions {
  /** The stream's id on the socket. Default: the next of a counter. */
  id?: string;
  /** Cancels the completion (like `cancel()`). */
  signal?: AbortSignal;
  /**
   * Receives each event as it arrives. With it, events are kept for iteration only once the stream
   * is iterated, so a listener alone holds no events in memory.
   */
  onEvent?: (event: CompletionStreamEvent) => void;
}

/** One completion on a socket: iterate it for its events; `result` settles with the final job. */
export interface CompletionStream extends AsyncIterable<CompletionStreamEvent> {
  readonly id: string;
  /** The final job (any status: a cancelled job resolves too); rejects with {@link CompletionStreamError}. */
  readonly result: Promise<CompletionSnapshot>;
  /** Asks the server to cancel this completion; the socket and its other completions go on. */
  cancel(): void;
}

interface Pending {
  readonly events: CompletionStreamEvent[];
  /** Whether events are kept for an iterator: not when only `onEvent` listens and nobody iterates. */
  queue: boolean;
  wake: (() => void) | undefined;
  ended: boolean;
  readonly onEvent: ((event: CompletionStreamEvent) => void) | undefined;
  readonly resolve: (job: CompletionSnapshot) => void;
  readonly reject: (error: CompletionStreamError) => void;
}

/**
 * Opens a completion socket: many completions at once over one WebSocket, each cancellable alone.
 * Rejects when the upgrade is refused (wrong key, Origin, connection caps).
 *
 * @example
 * ```ts
 * import { connectCompletions } from 'mcpkit/client';
 * import WebSocket from 'ws'; // not needed in a browser
 *
 * const client = await connectCompletions('ws://127.0.0.1:3000/mcp', { apiKey: 'my-key', WebSocket });
 * const stream = client.stream({ messages: [{ role: 'user', content: 'Hello' }] });
 * for await (const event of stream) if (event.type === 'text') process.stdout.write(event.delta);
 * console.log((await stream.result).status);
 * client.close();
 * ```
 */
export function connectCompletions(
  url: string | URL,
  options: ConnectCompletionsOptions = {},
): Promise<CompletionSocketClient> {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!Ctor) {
    return Promise.reject(
      new TypeError('No WebSocket implementation: pass options.WebSocket (the ws package on Node 20)'),
    );
  }
  const protocols = [COMPLETIONS_SUBPROTOCOL];
  if (options.apiKey !== undefined) protocols.push(BEARER_SUBPROTOCOL_PREFIX + base64url(options.apiKey));
  const socket = new Ctor(String(url), protocols);
  return new Promise((resolve, reject) => {
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      if (socket.protocol !== COMPLETIONS_SUBPROTOCOL) {
        socket.close(1000);
        reject(new Error('The server does not serve completions over WebSocket on this path'));
        return;
      }
      resolve(new CompletionSocketClient(socket));
    });
    // A refused upgrade fires `error`, then `close`: the close says it (and `ws` throws an unheard error).
    socket.addEventListener('error', () => {});
    socket.addEventListener('close', (event) => {
      if (!opened)
        reject(new Error(`The WebSocket upgrade was refused or failed (close code ${event.code})`));
    });
  });
}

function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * An open completion socket (see {@link connectCompletions}): `stream()` starts completions on it,
 * any number at once.
 *
 * @example
 * ```ts
 * import { connectCompletions } from 'mcpkit/client';
 *
 * const client = await connectCompletions('wss://example.com/mcp', { apiKey: 'my-key' });
 * const stream = client.stream({ messages: [{ role: 'user', content: 'Hi' }] }, {
 *   onEvent: (event) => event.type === 'text' && console.log(event.delta),
 * });
 * setTimeout(() => stream.cancel(), 5_000);
 * console.log((await stream.result).status);
 * ```
 */
export class CompletionSocketClient {
  readonly #socket: WebSocketLike;
  readonly #pending = new Map<string, Pending>();
  #next = 0;
  #closed: { code: number; reason: string } | undefined;
  /** Errors the server sent about frames that named no stream. */
  readonly socketErrors: CompletionErrorEvent[] = [];

  /** Wraps an open socket that agreed on `mcpkit.completions`; {@link connectCompletions} builds it. */
  constructor(socket: WebSocketLike) {
    this.#socket = socket;
    socket.addEventListener('message', (event) => this.#frame(event.data));
    socket.addEventListener('close', (event) => {
      this.#closed = { code: event.code, reason: event.reason };
      const lost: CompletionErrorEvent = {
        type: 'error',
        code: 'UNAVAILABLE',
        message: `The WebSocket connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`,
      };
      for (const id of [...this.#pending.keys()]) this.#deliver(id, lost);
    });
  }

  /** Completions started on this socket and not yet ended. */
  get active(): number {
    return this.#pending.size;
  }

  /** Starts a completion (the request is the body of `POST /completions`) and streams its events. */
  stream(request: CompletionRequest, options: CompletionStreamOptions = {}): CompletionStream {
    const id = options.id ?? `c${++this.#next}`;
    if (this.#pending.has(id))
      throw new TypeError(`A completion with id "${id}" is still running on this socket`);
    let resolve!: (job: CompletionSnapshot) => void;
    let reject!: (error: CompletionStreamError) => void;
    const result = new Promise<CompletionSnapshot>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that only iterates still sees the error as an event: no unhandled rejection.
    result.catch(() => {});
    const pending: Pending = {
      events: [],
      queue: options.onEvent === undefined,
      wake: undefined,
      ended: false,
      onEvent: options.onEvent,
      resolve,
      reject,
    };
    this.#pending.set(id, pending);
    const cancel = () => {
      if (!pending.ended) this.#sendFrame({ type: 'cancel', id });
    };
    options.signal?.addEventListener('abort', cancel, { once: true });
    if (this.#closed) {
      this.#deliver(id, {
        type: 'error',
        code: 'UNAVAILABLE',
        message: 'The WebSocket connection is closed',
      });
    } else {
      this.#sendFrame({ type: 'start', id, request });
    }
    return {
      id,
      result,
      cancel,
      [Symbol.asyncIterator]: () => {
        pending.queue = true;
        return iterate(pending);
      },
    };
  }

  /** Closes the socket; the server cancels every completion still running on it. */
  close(): void {
    this.#socket.close(1000);
  }

  #sendFrame(frame: object): void {
    if (this.#socket.readyState === 1) this.#socket.send(JSON.stringify(frame));
  }

  #frame(data: unknown): void {
    if (typeof data !== 'string') return;
    let frame: { id?: unknown; event?: unknown; data?: unknown };
    try {
      frame = JSON.parse(data) as typeof frame;
    } catch {
      return;
    }
    if (typeof frame.event !== 'string') return;
    let event: CompletionStreamEvent;
    try {
      event = parseCompletionEvent(frame.event, frame.data);
    } catch {
      return;
    }
    if (typeof frame.id !== 'string') {
      if (event.type === 'error') this.socketErrors.push(event);
      return;
    }
    this.#deliver(frame.id, event);
  }

  #deliver(id: string, event: CompletionStreamEvent): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    if (pending.queue) pending.events.push(event);
    pending.onEvent?.(event);
    if (event.type === 'done' || event.type === 'error') {
      pending.ended = true;
      this.#pending.delete(id);
      if (event.type === 'done') pending.resolve(event.job);
      else pending.reject(new CompletionStreamError(event));
    }
    pending.wake?.();
  }
}

async function* iterate(pending: Pending): AsyncGenerator<CompletionStreamEvent> {
  for (;;) {
    const event = pending.events.shift();
    if (event) {
      yield event;
      if (event.type === 'done' || event.type === 'error') return;
      continue;
    }
    if (pending.ended) return;
    await new Promise<void>((resolve) => {
      pending.wake = resolve;
    });
    pending.wake = undefined;
  }
}
