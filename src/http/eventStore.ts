import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';

/**
 * A bounded in-memory {@link EventStore} for one 2025-era session: keeps the last `maxEvents` SSE
 * events so a client whose stream dropped can resume with `Last-Event-ID` (SEP-1699). The oldest
 * events go first; resuming from an evicted id replays nothing.
 */
export class MemoryEventStore implements EventStore {
  readonly #events = new Map<string, { streamId: string; message: JSONRPCMessage }>();
  readonly #maxEvents: number;
  #next = 0;

  constructor(maxEvents = 1000) {
    if (!(Number.isInteger(maxEvents) && maxEvents > 0))
      throw new TypeError('maxEvents must be a positive integer');
    this.#maxEvents = maxEvents;
  }

  /** Number of events held. */
  get size(): number {
    return this.#events.size;
  }

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const eventId = `${streamId}::${++this.#next}`;
    this.#events.set(eventId, { streamId, message });
    while (this.#events.size > this.#maxEvents) {
      const oldest = this.#events.keys().next().value as string;
      this.#events.delete(oldest);
    }
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
}
