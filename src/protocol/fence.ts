import type { JSONRPCMessage, RequestId, TransportSendOptions } from '@modelcontextprotocol/server';

/** Options for {@link NotificationFence}. */
export interface NotificationFenceOptions {
  /**
   * How long a held response waits for the client to answer the fence's `ping` before it is written
   * anyway. Until the client answers one, later fences wait `delayMs` instead. Default 2000.
   */
  pingTimeoutMs?: number;
  /**
   * How long a held response waits where a `ping` cannot be used: the 2026-07-28 era (which has no
   * server-to-client requests) and clients that did not answer one. Default 5.
   */
  delayMs?: number;
  /**
   * The connection already answered an `initialize` (a 2025-era connection, where a server may send
   * `ping`): for a fence made after the handshake. Default `false`, until it sees one answered.
   */
  pingable?: boolean;
}

type Write = (message: JSONRPCMessage, options?: TransportSendOptions) => Promise<void>;

interface Held {
  readonly message: JSONRPCMessage;
  readonly options: TransportSendOptions | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** The ids of the fence's pings: strings, where the SDK numbers its own requests. */
const FENCE_ID_PREFIX = 'mcpkit/fence/';
/**
 * Requests with progress on the wire remembered at most (a cancelled request never gets its
 * response, so never leaves the set): past it, the next response fences whichever it is.
 */
const MAX_NOTED = 1024;
/**
 * Bytes of JSON a fence holds at most. Past it the fence comes down and everything held is written:
 * a client that is slow to answer (or a handler that keeps writing meanwhile) may then lose a last
 * progress, never the server its memory.
 */
export const MAX_HELD_BYTES = 1024 * 1024;
const UTF8 = new TextEncoder();

/**
 * Makes sure a client has dispatched a request's progress notifications before it reads the
 * request's response, on connections that a client reads in chunks (stdio, WebSocket).
 *
 * The SDK clients (1.x, which most MCP clients run, and v2 alike) dispatch a notification in a
 * microtask but a response at once, and a response removes its request's progress handler. When one
 * read holds a call's last `notifications/progress` and then its result, the progress is lost.
 * Writing the two on different turns of the event loop does not help: whether they arrive in one
 * read depends on when the client's process gets to read, not on the server. Other notifications
 * (`notifications/message` among them) keep their handlers, and are dispatched before the caller
 * sees the result, so they need nothing.
 *
 * So when a response is about to be written for a request whose progress went out since the last
 * fence, the fence goes up: the server sends the client a `ping` and holds the response, and every
 * message after it, until the client answers. A client answers a request only after it has
 * dispatched everything it read before it, so the progress handlers have run by then. Where a `ping`
 * cannot be used (the 2026-07-28 era has no server-to-client requests; a client that did not answer
 * one) the fence is a short delay, which makes a loss rare but cannot rule it out. Messages are
 * never reordered, and a response with no progress before it costs a size check.
 *
 * @internal Built by the stdio and WebSocket transports.
 */
export class NotificationFence {
  readonly #write: Write;
  readonly #pingTimeoutMs: number;
  readonly #delayMs: number;
  /**
   * Requests whose progress was written since the last fence; made on the first, since most
   * connections never report progress.
   */
  #noted: Set<RequestId> | undefined;
  /** More requests were noted than remembered: the next response fences, whichever it is. */
  #overflow = false;
  /** Messages held behind the fence, in the order they were sent. */
  #held: Held[] | undefined;
  /** Bytes of JSON in {@link #held}. */
  #heldBytes = 0;
  #fenceId: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pings = 0;
  /** The id of the client's `initialize` request, until it is answered. */
  #initializeId: RequestId | undefined;
  /** The connection speaks a 2025-era version, where a server may send `ping`. */
  #pingable = false;
  /** A ping went unanswered; fences wait `delayMs` until the client answers one. */
  #unanswered = false;
  #closed = false;

  constructor(write: Write, options: NotificationFenceOptions = {}) {
    this.#write = write;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 2000;
    this.#delayMs = options.delayMs ?? 5;
    this.#pingable = options.pingable ?? false;
  }

  /** Writes `message`, or holds it behind the fence. */
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.#held) return this.#hold(message, options);
    if ('method' in message) {
      if (message.method === 'notifications/progress' && !('id' in message)) {
        const related = options?.relatedRequestId;
        if (related !== undefined) this.#note(related);
      }
      return this.#write(message, options);
    }
    const id = (message as { id?: RequestId }).id;
    const noted = this.#noted;
    if (noted !== undefined && noted.size > 0 && (this.#overflow || (id !== undefined && noted.has(id)))) {
      this.#raise();
      return this.#hold(message, options);
    }
    if (id !== undefined && id === this.#initializeId) {
      this.#initializeId = undefined;
      // An answered `initialize` is a 2025-era connection: the 2026-07-28 era has no such method.
      if ('result' in message) this.#pingable = true;
    }
    return this.#write(message, options);
  }

  /**
   * Looks at a message from the client before the server does. Returns `true` for the answer to a
   * fence's `ping`, which is the fence's own and must not reach the server.
   */
  receive(message: JSONRPCMessage): boolean {
    if ('method' in message) {
      if (message.method === 'initialize' && 'id' in message) this.#initializeId = message.id;
      return false;
    }
    const id = (message as { id?: unknown }).id;
    if (typeof id !== 'string' || !id.startsWith(FENCE_ID_PREFIX)) return false;
    this.#unanswered = false;
    if (id === this.#fenceId) this.#lower();
    return true;
  }

  /** Drops what is held: the connection is gone. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#fenceId = undefined;
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#heldBytes = 0;
    for (const { reject } of held) reject(new Error('The connection is closed'));
  }

  #note(id: RequestId): void {
    this.#noted ??= new Set();
    if (this.#noted.size >= MAX_NOTED) this.#overflow = true;
    else this.#noted.add(id);
  }

  #hold(message: JSONRPCMessage, options: TransportSendOptions | undefined): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('The connection is closed'));
    const held = new Promise<void>((resolve, reject) => {
      this.#held!.push({ message, options, resolve, reject });
    });
    // Measured only while a fence is up, which is the rare case.
    this.#heldBytes += UTF8.encode(JSON.stringify(message)).byteLength;
    if (this.#heldBytes > MAX_HELD_BYTES) this.#lower();
    return held;
  }

  /** Holds what follows until the client has taken in every notification written so far. */
  #raise(): void {
    this.#held = [];
    this.#noted?.clear();
    this.#overflow = false;
    if (!this.#pingable || this.#unanswered) {
      this.#timer = setTimeout(() => this.#lower(), this.#delayMs);
      return;
    }
    const id = `${FENCE_ID_PREFIX}${++this.#pings}`;
    this.#fenceId = id;
    this.#timer = setTimeout(() => {
      this.#unanswered = true;
      this.#lower();
    }, this.#pingTimeoutMs);
    // A ping that cannot be written leaves nothing to wait for: what is held fails the same way.
    this.#write({ jsonrpc: '2.0', id, method: 'ping' }).catch(() => this.#lower());
  }

  /** Writes what was held, in order, until a response needs a fence again. */
  #lower(): void {
    const held = this.#held;
    if (!held) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#fenceId = undefined;
    this.#held = undefined;
    this.#heldBytes = 0;
    for (let i = 0; i < held.length; i++) {
      if (this.#held) {
        (this.#held as Held[]).push(...held.slice(i));
        return;
      }
      const { message, options, resolve, reject } = held[i]!;
      this.send(message, options).then(resolve, reject);
    }
  }
}
