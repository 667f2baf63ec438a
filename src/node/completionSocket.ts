/**
 * Completions over WebSocket: one socket (subprotocol `mcpkit.completions`, on the WebSocket door of
 * `attachWebSocket` / `listen()`) carries many completions at once, each under an id the client
 * chooses. Each start is admitted like `POST /completions/stream` (the policy's permission, rate
 * class and audit, for the caller the upgrade authenticated), its events are the SSE stream's, a
 * cancel stops one completion, and a slow reader first pauses the model streams, then fails the
 * completion whose events would pass the socket's byte budget. Size: one door's protocol; its frame
 * checks, admission, streams and byte budget share one socket's state and are read together.
 */
import type { CompletionEvent, CompletionHandle, CompletionRequest } from '../completions/types.js';
import { McpKitError, publicErrorMessage, toMcpKitError } from '../core/errors.js';
import { nonNegativeInteger, positiveInteger } from '../core/options.js';
import { parseJsonSafe } from '../core/safeJson.js';
import type { Operation, RequestFacts } from '../policy/policy.js';
import type { McpKitServer } from '../server.js';

/**
 * The WebSocket subprotocol of completions: offered by clients, echoed by the server.
 *
 * @example
 * ```ts
 * import { COMPLETIONS_SUBPROTOCOL } from 'mcpkit/node';
 * import { WebSocket } from 'ws';
 *
 * const socket = new WebSocket('ws://127.0.0.1:3000/mcp', [COMPLETIONS_SUBPROTOCOL]);
 * socket.on('open', () =>
 *   socket.send(JSON.stringify({ type: 'start', id: 'c1', request: { messages: [{ role: 'user', content: 'Hi' }] } })),
 * );
 * ```
 */
export const COMPLETIONS_SUBPROTOCOL = 'mcpkit.completions';

/**
 * The prefix of a subprotocol that carries a credential, for clients that cannot set headers (a
 * browser's `WebSocket`): `mcpkit.bearer.<the key or token, base64url>`. It is read as
 * `Authorization: Bearer …` when the upgrade carries no credential header, and never echoed.
 *
 * @example
 * ```ts
 * import { BEARER_SUBPROTOCOL_PREFIX, COMPLETIONS_SUBPROTOCOL } from 'mcpkit/node';
 *
 * const credential = BEARER_SUBPROTOCOL_PREFIX + Buffer.from('my-api-key').toString('base64url');
 * const protocols = [COMPLETIONS_SUBPROTOCOL, credential]; // for new WebSocket(url, protocols)
 * ```
 */
export const BEARER_SUBPROTOCOL_PREFIX = 'mcpkit.bearer.';

const OPEN = 1;
const MAX_ID_LENGTH = 128;
/** What error frames may add past the byte budget before the socket is closed as a slow reader. */
const ERROR_SLACK_BYTES = 64 * 1024;
const SLOW_READER_GRACE_MS = 1_000;

/** What every start is admitted as: the permission and rate class of `POST /completions/stream`. */
const START: Operation = {
  name: 'completions (WebSocket)',
  permission: 'completions:create',
  rate: 'completions',
};

/**
 * Limits of the completion door, per socket.
 *
 * @example
 * ```ts
 * import { listen } from 'mcpkit/node';
 *
 * await listen(server, { websocket: { completions: { maxCompletions: 4, maxBufferedBytes: 256 * 1024 } } });
 * ```
 */
export interface CompletionSocketOptions {
  /** Completions running at once on one socket; a start past it gets an `error` event (`BUSY`). Default 16. */
  maxCompletions?: number;
  /**
   * Outgoing bytes not yet handed to the network, per socket, past which the completion whose event
   * would exceed it is cancelled with an `error` event (`BUSY`, "slow reader"). One event always
   * goes out on an empty buffer. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Outgoing bytes past which the socket's model streams pause (nothing more is read from the
   * providers) until half of it has drained. Default 64 KiB, and never more than `maxBufferedBytes`.
   */
  pauseBufferedBytes?: number;
  /** Ping interval in ms; a peer silent for a whole interval is cut. `0` disables. Default 30 000. */
  heartbeatMs?: number;
}

/** The part of a `ws` socket the completion door uses (any `ws` server socket fits). */
export interface CompletionWebSocket {
  readonly readyState: number;
  send(data: string, callback?: (error?: Error) => void): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'pong', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
}

/** Who the socket serves: what the upgrade's admission learnt. */
export interface CompletionSocketPeer {
  /** The request facts of the upgrade (caller, address, door), `undefined` without a policy. */
  readonly facts: RequestFacts | undefined;
  /** The client's network address. */
  readonly clientAddress?: string | undefined;
  /**
   * Takes one of the caller's `http.maxStreamsPerCaller` streams for a completion, as
   * `POST /completions/stream` does (the upgrade's admission decision supplies it); `undefined`
   * when the caller holds its whole share. Without it completions count against no share.
   */
  readonly holdStream?: (() => (() => void) | undefined) | undefined;
}

/** One completion the socket carries. */
interface Stream {
  readonly id: string;
  readonly abort: AbortController;
  handle?: CompletionHandle;
  /** Gives back the caller's stream share the completion holds. */
  release?: () => void;
  /** Its events are no longer sent (it ended, or failed as a slow reader). */
  over: boolean;
}

/** The text of a frame as `ws` delivers it. */
function textOf(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/** A stream id: 1–128 characters, no control characters. */
function validId(id: unknown): id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** Why a stream (or a frame) was refused: an `error` event's data. */
interface StreamError {
  readonly code: string;
  /** Safe to show the client. */
  readonly message: string;
  /** What a refusal adds (`retryAfterSeconds`, `limit`), or `reason`. */
  readonly data?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * The server side of one completion socket. `attachWebSocket` builds one for every accepted upgrade
 * that chose the `mcpkit.completions` subprotocol, and hands it to `onCompletionSocket`.
 *
 * Client frames (JSON text): `{ "type": "start", "id": "c1", "request": { …as POST /completions… } }`
 * and `{ "type": "cancel", "id": "c1" }`. Server frames: `{ "id": "c1", "event": <name>, "data": … }`,
 * where `event` and `data` are exactly the SSE stream's (`start`, `text`, `tool_call`, `tool_result`,
 * `usage`, `done`), plus `error` for a completion that ends without a job result (a refused start, a
 * slow reader) and, with `id: null`, for a frame that names no stream.
 *
 * @example
 * ```ts
 * import { listen } from 'mcpkit/node';
 *
 * await listen(server, {
 *   websocket: {
 *     onCompletionSocket: (socket) => {
 *       const timer = setInterval(() => console.log(socket.active, socket.bufferedBytes), 10_000);
 *       void socket.closed.then(() => clearInterval(timer));
 *     },
 *   },
 * });
 * ```
 */
export class CompletionSocket {
  readonly #socket: CompletionWebSocket;
  readonly #server: McpKitServer;
  readonly #peer: CompletionSocketPeer;
  readonly #maxCompletions: number;
  readonly #maxBuffered: number;
  readonly #pauseAt: number;
  readonly #streams = new Map<string, Stream>();
  readonly #waiters = new Set<() => void>();
  /** Bytes handed to `ws` whose write has not completed (in its buffer or the socket's). */
  #buffered = 0;
  /** Frames waiting for room in the socket's buffer, in order, and their bytes. */
  readonly #queue: Array<{ frame: string; bytes: number }> = [];
  #queued = 0;
  #peak = 0;
  #closed = false;
  #alive = true;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #resolveClosed!: () => void;
  /** Settles once when the socket has closed (every completion it carried is cancelled by then). */
  readonly closed: Promise<void>;

  constructor(
    socket: CompletionWebSocket,
    server: McpKitServer,
    options: CompletionSocketOptions & CompletionSocketPeer,
  ) {
    this.#socket = socket;
    this.#server = server;
    this.#peer = options;
    this.#maxCompletions = positiveInteger('completions.maxCompletions', options.maxCompletions, 16);
    this.#maxBuffered = positiveInteger(
      'completions.maxBufferedBytes',
      options.maxBufferedBytes,
      1024 * 1024,
    );
    this.#pauseAt = Math.min(
      this.#maxBuffered,
      positiveInteger('completions.pauseBufferedBytes', options.pauseBufferedBytes, 64 * 1024),
    );
    const heartbeatMs = nonNegativeInteger('heartbeatMs', options.heartbeatMs, 30_000);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    socket.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
    socket.on('pong', () => {
      this.#alive = true;
    });
    socket.on('error', () => {});
    socket.once('close', () => this.#finish());
    if (socket.readyState !== OPEN) {
      this.#finish();
      return;
    }
    if (heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  /** Completions running on this socket (starts still being admitted included). */
  get active(): number {
    return this.#streams.size;
  }

  /** Outgoing bytes not yet handed to the network (in the socket's buffer or waiting their turn). */
  get bufferedBytes(): number {
    return this.#buffered + this.#queued;
  }

  /** The most outgoing bytes that ever waited at once: what a slow reader cost this socket. */
  get peakBufferedBytes(): number {
    return this.#peak;
  }

  /** Closes the socket with `code` (1000, 1001, or 3000–4999); its completions are cancelled. */
  closeWith(code: number, reason = ''): void {
    if (this.#socket.readyState === OPEN) this.#socket.close(code, reason);
    this.#finish();
  }

  #onFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    this.#alive = true;
    if (this.#closed) return;
    if (isBinary) {
      this.closeWith(1003, 'binary frames are not supported: send each message as one JSON text frame');
      return;
    }
    let message: unknown;
    try {
      message = parseJsonSafe(textOf(data), this.#server.httpOptions.maxJsonDepth);
    } catch {
      this.#error(null, { code: 'INVALID_REQUEST', message: 'The frame is not JSON (or nests too deeply)' });
      return;
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      this.#error(null, {
        code: 'INVALID_REQUEST',
        message: 'Each frame is one JSON object: { "type": "start" | "cancel", "id", … }',
      });
      return;
    }
    const { type, id, request } = message as { type?: unknown; id?: unknown; request?: unknown };
    if (!validId(id)) {
      this.#error(null, {
        code: 'INVALID_REQUEST',
        message: `id must be a string of 1 to ${MAX_ID_LENGTH} characters without control characters`,
      });
      return;
    }
    if (type === 'cancel') {
      this.#cancel(id);
      return;
    }
    if (type !== 'start') {
      this.#error(null, { code: 'INVALID_REQUEST', message: 'type must be "start" or "cancel"' });
      return;
    }
    if (this.#streams.has(id)) {
      // The running stream owns its id: this refusal names no stream, so it cannot end that one.
      this.#error(null, {
        code: 'INVALID_REQUEST',
        message: 'A completion with this id is still running on this socket',
        data: { streamId: id },
      });
      return;
    }
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      this.#error(id, {
        code: 'INVALID_ARGUMENT',
        message: 'request must be a JSON object, as the body of POST /completions',
      });
      return;
    }
    if (this.#streams.size >= this.#maxCompletions) {
      this.#error(id, {
        code: 'BUSY',
        message: `Too many completions running on this socket (limit ${this.#maxCompletions})`,
      });
      return;
    }
    const stream: Stream = { id, abort: new AbortController(), over: false };
    this.#streams.set(id, stream);
    this.#start(stream, request as CompletionRequest).catch((error: unknown) => {
      this.#server.logger.error({ err: error }, 'WebSocket completion failed to start');
      this.#fail(stream, { code: 'INTERNAL', message: 'Internal error' });
    });
  }

  /** Admits a start as `POST /completions/stream` is admitted, then runs it. */
  async #start(stream: Stream, request: CompletionRequest): Promise<void> {
    const server = this.#server;
    const { facts, clientAddress } = this.#peer;
    const requestId = globalThis.crypto.randomUUID();
    if (facts && server.policy.active) {
      const decision = await server.policy.admit(START, { ...facts, requestId });
      if (!decision.ok) {
        const { refusal } = decision;
        this.#fail(stream, refusal);
        return;
      }
    }
    if (stream.over) return;
    // A streamed completion holds one of the caller's streams, on this door as over SSE.
    const { holdStream } = this.#peer;
    if (holdStream) {
      const release = holdStream();
      if (!release) {
        const limit = server.httpOptions.maxStreamsPerCaller;
        this.#fail(stream, {
          code: 'RATE_LIMITED',
          message: `Too many open streams for this caller (limit ${limit}); close one first`,
          data: { retryAfterSeconds: 5, limit },
        });
        return;
      }
      stream.release = release;
    }
    const caller = facts?.caller;
    try {
      stream.handle = await server.completions.start(request, {
        origin: 'websocket',
        requestId,
        stream: true,
        signal: stream.abort.signal,
        ...(caller && { caller }),
        ...(clientAddress !== undefined && { clientAddress }),
        onEvent: (event) => this.#event(stream, event),
        ready: () => this.#ready(stream),
      });
    } catch (error) {
      const e = toMcpKitError(error);
      if (e.code === 'INTERNAL') server.logger.error({ err: error }, 'WebSocket completion refused');
      this.#fail(stream, { code: e.code, message: publicErrorMessage(e) });
    }
  }

  /** Cancels one stream; an id that is not running (finished, never started) changes nothing. */
  #cancel(id: string): void {
    const stream = this.#streams.get(id);
    if (!stream) return;
    // Before admission ends the signal stops the job as soon as it exists; after, at once.
    stream.abort.abort(new McpKitError('CANCELLED', 'The completion was cancelled'));
    stream.handle?.cancel();
  }

  /** One event of a stream's job, as a frame; `done` ends the stream. */
  #event(stream: Stream, event: CompletionEvent): void {
    if (stream.over) return;
    const { type, ...data } = event;
    let frame: string;
    try {
      frame = JSON.stringify({ id: stream.id, event: type, data });
    } catch {
      this.#fail(stream, {
        code: 'INTERNAL',
        message: 'An event of this completion could not be written as JSON',
      });
      return;
    }
    const bytes = Buffer.byteLength(frame);
    // Frames already waiting their turn and this one may not pass the budget (one frame alone may).
    if (this.#queued > 0 && this.#queued + bytes > this.#maxBuffered) {
      this.#fail(stream, {
        code: 'BUSY',
        message: `Slow reader: more than ${this.#maxBuffered} bytes of this socket's events are waiting to be read; the completion was cancelled`,
        data: { reason: 'slow_reader' },
      });
      return;
    }
    if (type === 'done') this.#end(stream);
    this.#enqueue(frame, bytes);
  }

  /** Whether a stream may read on from its model: a promise while the socket's buffer is past its mark. */
  #ready(stream: Stream): Promise<void> | undefined {
    if (this.#buffered + this.#queued <= this.#pauseAt || stream.over || this.#closed) return undefined;
    const signal = stream.abort.signal;
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.#waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.#waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  /** Ends a stream that will send nothing more, and cancels its job if it still runs. */
  #fail(stream: Stream, error: StreamError): void {
    if (stream.over) return;
    this.#end(stream);
    stream.abort.abort(new McpKitError('CANCELLED', 'The completion was cancelled'));
    stream.handle?.cancel();
    this.#error(stream.id, error);
  }

  #end(stream: Stream): void {
    stream.over = true;
    stream.release?.();
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
  }

  /** Sends an `error` event: for a stream (which it ends), or with `id: null` for a frame that named none. */
  #error(id: string | null, { code, message, data }: StreamError): void {
    const frame = JSON.stringify({ id, event: 'error', data: { code, message, ...data } });
    const bytes = Buffer.byteLength(frame);
    if (this.#queued + bytes > this.#maxBuffered + ERROR_SLACK_BYTES) {
      // Even the errors are not being read: the client is not reading at all.
      this.closeWith(1008, 'slow reader: outgoing buffer over its limit');
      const socket = this.#socket;
      setTimeout(() => socket.terminate(), SLOW_READER_GRACE_MS).unref();
      return;
    }
    this.#enqueue(frame, bytes);
  }

  /** Queues a frame behind those waiting, and sends what fits. */
  #enqueue(frame: string, bytes: number): void {
    if (this.#closed) return;
    this.#queue.push({ frame, bytes });
    this.#queued += bytes;
    const held = this.#buffered + this.#queued;
    if (held > this.#peak) this.#peak = held;
    this.#flush();
  }

  /**
   * Hands queued frames to `ws` while the socket's buffer has room for them (`maxBufferedBytes`);
   * a frame larger than that goes alone, on an empty buffer.
   */
  #flush(): void {
    const socket = this.#socket;
    while (this.#queue.length > 0) {
      if (this.#closed || socket.readyState !== OPEN) return;
      const head = this.#queue[0]!;
      if (this.#buffered > 0 && this.#buffered + head.bytes > this.#maxBuffered) return;
      this.#queue.shift();
      this.#queued -= head.bytes;
      this.#buffered += head.bytes;
      socket.send(head.frame, () => {
        this.#buffered -= head.bytes;
        this.#flush();
        if (this.#buffered + this.#queued <= this.#pauseAt / 2) this.#wakeAll();
      });
    }
  }

  #wakeAll(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #beat(): void {
    if (this.#closed) return;
    if (!this.#alive) {
      this.#socket.terminate();
      this.#finish();
      return;
    }
    this.#alive = false;
    this.#socket.ping();
  }

  /** The socket is gone: every completion it carried is cancelled (its job ends `cancelled`). */
  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    for (const stream of [...this.#streams.values()]) {
      this.#end(stream);
      stream.abort.abort(new McpKitError('CANCELLED', 'The WebSocket connection closed'));
      stream.handle?.cancel();
    }
    this.#queue.length = 0;
    this.#queued = 0;
    this.#wakeAll();
    this.#resolveClosed();
  }
}
