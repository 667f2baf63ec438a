import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';

/**
 * Bytes shared by the event stores of one server, so that all sessions together hold at most
 * `limit`. A store takes bytes for each event it keeps and gives them back as it drops events or
 * closes.
 *
 * @example
 * ```ts
 * const shared = new EventBytes(32 * 1024 * 1024);
 * createMcpServer({ http: { eventStore: () => new MemoryEventStore({ maxBytes: 256 * 1024, shared }) } });
 * ```
 */
export class EventBytes {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    if (!(Number.isInteger(limit) && limit > 0))
      throw new TypeError('the event store byte limit must be a positive integer');
    this.limit = limit;
  }

  /** Bytes held by every store drawing on this budget. */
  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` when they fit; `false` when they do not. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/** Options of {@link MemoryEventStore}. */
export interface MemoryEventStoreOptions {
  /** Bytes of events one session keeps (the oldest go first). Default 1 MiB. */
  maxBytes?: number;
  /** The budget shared with the other sessions' stores. Default: none beyond `maxBytes`. */
  shared?: EventBytes;
}

interface Held {
  readonly streamId: string;
  readonly message: JSONRPCMessage;
  readonly bytes: number;
}

const UTF8 = new TextEncoder();

/**
 * A bounded in-memory {@link EventStore} for one 2025-era session: keeps the latest events up to
 * `maxBytes` (and within a budget `shared` by every session of a server), so a client whose stream
 * dropped can resume with `Last-Event-ID` (SEP-1699). The oldest events go first; an event larger
 * than the whole budget is not kept at all. Resuming from an id that is no longer held replays
 * nothing (the stream goes on from there): a partial replay would hide the gap.
 *
 * @example
 * ```ts
 * createMcpServer({ http: { eventStore: { maxBytesPerSession: 512 * 1024, maxBytes: 32 * 1024 * 1024 } } });
 * ```
 */
export class MemoryEventStore implements EventStore {
  readonly #events = new Map<string, Held>();
  readonly #maxBytes: number;
  readonly #shared: EventBytes | undefined;
  #bytes = 0;
  #next = 0;
  #closed = false;

  constructor(options: MemoryEventStoreOptions | number = {}) {
    // A number is the old form: a count of events, kept as a byte budget of 1 KiB each.
    const settings = typeof options === 'number' ? { maxBytes: options * 1024 } : options;
    const maxBytes = settings.maxBytes ?? 1024 * 1024;
    if (!(Number.isInteger(maxBytes) && maxBytes > 0))
      throw new TypeError('maxBytes must be a positive integer');
    this.#maxBytes = maxBytes;
    this.#shared = settings.shared;
  }

  /** Number of events held. */
  get size(): number {
    return this.#events.size;
  }

  /** Bytes of events held. */
  get bytes(): number {
    return this.#bytes;
  }

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const eventId = `${streamId}::${++this.#next}`;
    if (this.#closed) return eventId;
    const bytes = UTF8.encode(JSON.stringify(message)).byteLength + eventId.length + 32;
    // Larger than this session may ever hold: never kept (resuming past it replays nothing of it).
    if (bytes > this.#maxBytes || (this.#shared && bytes > this.#shared.limit)) return eventId;
    while (this.#bytes + bytes > this.#maxBytes) this.#dropOldest();
    if (this.#shared) {
      // The server's budget is full: this session makes room from its own oldest events first.
      while (!this.#shared.take(bytes)) {
        if (this.#events.size === 0) return eventId;
        this.#dropOldest();
      }
    }
    this.#events.set(eventId, { streamId, message, bytes });
    this.#bytes += bytes;
    return eventId;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const held = this.#events.get(eventId);
    if (held) return held.streamId;
    // An evicted id still names its stream: `<streamId>::<n>`.
    const cut = eventId.lastIndexOf('::');
    return cut > 0 && /^\d+$/.test(eventId.slice(cut + 2)) ? eventId.slice(0, cut) : undefined;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const streamId = await this.getStreamIdForEventId(lastEventId);
    if (streamId === undefined) throw new Error('Unknown event id');
    // From an event no longer held, nothing is replayed: a partial replay would hide the gap.
    let found = false;
    for (const [eventId, event] of [...this.#events]) {
      if (!found) {
        found = eventId === lastEventId;
        continue;
      }
      // Priming events carry an empty message: they mark a position, there is nothing to resend.
      if (event.streamId === streamId && 'jsonrpc' in event.message) await send(eventId, event.message);
    }
    return streamId;
  }

  /** Drops every event and gives their bytes back to the shared budget (the session closed). */
  close(): void {
    this.#closed = true;
    this.#shared?.give(this.#bytes);
    this.#bytes = 0;
    this.#events.clear();
  }

  #dropOldest(): void {
    const oldest = this.#events.entries().next().value as [string, Held] | undefined;
    if (!oldest) return;
    this.#events.delete(oldest[0]);
    this.#bytes -= oldest[1].bytes;
    this.#shared?.give(oldest[1].bytes);
  }
}
