import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';

/** A store drawing on an {@link EventBytes} budget: what it holds, and how to make it drop some. */
interface EventHolder {
  readonly bytes: number;
  /** Drops its oldest event; `false` when it holds none. */
  dropOldest(): boolean;
}

/**
 * Bytes shared by the event stores of one server, so that all sessions together hold at most
 * `limit`. A store takes bytes for each event it keeps and gives them back as it drops events or
 * closes. When the budget is full, room is made in the store that holds the most, so sessions
 * that fill it first cannot leave a new session without a history.
 *
 * @example
 * ```ts
 * const shared = new EventBytes(32 * 1024 * 1024);
 * createMcpServer({ http: { eventStore: () => new MemoryEventStore({ maxBytes: 256 * 1024, shared }) } });
 * ```
 */
export class EventBytes {
  readonly limit: number;
  readonly #holders = new Set<EventHolder>();
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

  /** Registers a store that may be asked to drop events to make room for others. */
  join(holder: EventHolder): void {
    this.#holders.add(holder);
  }

  leave(holder: EventHolder): void {
    this.#holders.delete(holder);
  }

  /**
   * Takes `bytes`, making room by dropping the oldest events of whichever store holds the most
   * (the one asking included); `false` if they cannot fit even then.
   */
  claim(bytes: number): boolean {
    if (bytes > this.limit) return false;
    while (!this.take(bytes)) {
      let largest: EventHolder | undefined;
      for (const holder of this.#holders) if (!largest || holder.bytes > largest.bytes) largest = holder;
      if (!largest?.dropOldest()) return false;
    }
    return true;
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
  readonly seq: number;
  readonly message: JSONRPCMessage;
  readonly bytes: number;
}

const UTF8 = new TextEncoder();

/**
 * A bounded in-memory {@link EventStore} for one 2025-era session: keeps the latest events up to
 * `maxBytes` (and within a budget `shared` by every session of a server), so a client whose stream
 * dropped can resume with `Last-Event-ID` (SEP-1699). The oldest events go first; an event larger
 * than the whole budget is not kept at all. When the shared budget is full, the session holding the
 * most gives up its oldest events. Resuming from an id that is no longer held replays the events
 * of that stream that are still held after it: a final response still arrives, though what was
 * dropped before it does not.
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
    this.#shared?.join(this);
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
    const seq = ++this.#next;
    const eventId = `${streamId}::${seq}`;
    if (this.#closed) return eventId;
    const bytes = UTF8.encode(JSON.stringify(message)).byteLength + eventId.length + 32;
    // Larger than this session may ever hold: never kept.
    if (bytes > this.#maxBytes) return eventId;
    while (this.#bytes + bytes > this.#maxBytes) this.dropOldest();
    // The server's budget is full: the session holding the most (maybe this one) makes room.
    if (this.#shared && !this.#shared.claim(bytes)) return eventId;
    this.#events.set(eventId, { streamId, seq, message, bytes });
    this.#bytes += bytes;
    return eventId;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const held = this.#events.get(eventId);
    if (held) return held.streamId;
    // An evicted id still names its stream: `<streamId>::<n>`.
    return parseEventId(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const last = parseEventId(lastEventId);
    if (!last) throw new Error('Unknown event id');
    // Every event of the stream still held after that one, whether or not it is itself still held.
    for (const [eventId, event] of [...this.#events]) {
      if (event.seq <= last.seq || event.streamId !== last.streamId) continue;
      // Priming events carry an empty message: they mark a position, there is nothing to resend.
      if ('jsonrpc' in event.message) await send(eventId, event.message);
    }
    return last.streamId;
  }

  /** Drops every event and gives their bytes back to the shared budget (the session closed). */
  close(): void {
    this.#closed = true;
    this.#shared?.give(this.#bytes);
    this.#shared?.leave(this);
    this.#bytes = 0;
    this.#events.clear();
  }

  /** Drops the oldest event held, giving its bytes back; `false` when none is held. */
  dropOldest(): boolean {
    const oldest = this.#events.entries().next().value as [string, Held] | undefined;
    if (!oldest) return false;
    this.#events.delete(oldest[0]);
    this.#bytes -= oldest[1].bytes;
    this.#shared?.give(oldest[1].bytes);
    return true;
  }
}

/** The stream and sequence number of an event id (`<streamId>::<n>`). */
function parseEventId(eventId: string): { streamId: string; seq: number } | undefined {
  const cut = eventId.lastIndexOf('::');
  const seq = eventId.slice(cut + 2);
  return cut > 0 && /^\d{1,15}$/.test(seq)
    ? { streamId: eventId.slice(0, cut), seq: Number(seq) }
    : undefined;
}
