/**
 * Resumable 2025-era streams with their events in Redis: one list per stream,
 * `<prefix>ev:<store>:<stream>`, bounded by bytes (the oldest events go first) and expiring
 * `ttlMs` after its last event. `<store>` is a random id the store draws when it is made, before
 * its session has an id (the SDK asks for the store first), so stream ids that repeat across
 * sessions (`_GET_stream`) never meet, and a `Last-Event-ID` is only ever read within its own
 * session's store.
 */
import { randomUUID } from 'node:crypto';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import type { Redis } from 'ioredis';
import type { SharedEventStore } from '../state/shared.js';

/** Options of {@link createRedisEventStores}. */
export interface RedisEventStoreOptions {
  prefix: string;
  /** Bytes of events one stream keeps in Redis; the oldest go first. */
  maxBytesPerStream: number;
  /** How long a stream's events outlive its last event, in ms. */
  ttlMs: number;
  onError?: (reason: string) => void;
}

/**
 * Appends an event to a stream's list and drops its oldest until the list fits its byte bound;
 * both keys expire `ttl` ms after the last event. The bytes are counted by Redis itself (`#entry`).
 * KEYS: list, byte counter. ARGV: entry, max bytes, ttl ms.
 */
const APPEND = `
local size = #ARGV[1]
local max = tonumber(ARGV[2])
if size > max then return 0 end
local used = redis.call('INCRBY', KEYS[2], size)
redis.call('RPUSH', KEYS[1], ARGV[1])
while used > max do
  local oldest = redis.call('LPOP', KEYS[1])
  if not oldest then
    redis.call('SET', KEYS[2], 0)
    break
  end
  used = redis.call('DECRBY', KEYS[2], #oldest)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`;

/** Stream ids are the SDK's (UUIDs, `_GET_stream`); anything longer names no stream. */
const MAX_STREAM_ID = 200;
/** Stream keys one store remembers, to delete them when its session closes (the rest expire). */
const MAX_TRACKED_STREAMS = 1000;

/** The stream and sequence number of an event id (`<streamId>::<n>`). */
function parseEventId(eventId: string): { streamId: string; seq: number } | undefined {
  const cut = eventId.lastIndexOf('::');
  const seq = eventId.slice(cut + 2);
  if (!(cut > 0 && cut <= MAX_STREAM_ID && /^\d{1,15}$/.test(seq))) return undefined;
  return { streamId: eventId.slice(0, cut), seq: Number(seq) };
}

interface WithAppend {
  mcpkitAppendEvent(list: string, bytes: string, entry: string, max: number, ttlMs: number): Promise<number>;
}

/** A factory of Redis event stores, one per session, as `http.eventStore` takes it. */
export function createRedisEventStores(
  client: Redis,
  options: RedisEventStoreOptions,
): () => SharedEventStore {
  // EVALSHA, falling back to EVAL after a Redis restart (ioredis does it).
  if (!(client as unknown as Partial<WithAppend>).mcpkitAppendEvent) {
    client.defineCommand('mcpkitAppendEvent', { numberOfKeys: 2, lua: APPEND });
  }
  return () => new RedisEventStore(client, options);
}

class RedisEventStore implements SharedEventStore {
  readonly #client: Redis;
  readonly #options: RedisEventStoreOptions;
  readonly #id = randomUUID();
  readonly #streams = new Set<string>();
  #next = 0;
  #closed = false;

  constructor(client: Redis, options: RedisEventStoreOptions) {
    this.#client = client;
    this.#options = options;
  }

  #key(streamId: string): string {
    return `${this.#options.prefix}ev:${this.#id}:${streamId}`;
  }

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const seq = ++this.#next;
    const eventId = `${streamId}::${seq}`;
    if (this.#closed || streamId.length > MAX_STREAM_ID) return eventId;
    const key = this.#key(streamId);
    if (!this.#streams.has(key)) {
      if (this.#streams.size >= MAX_TRACKED_STREAMS) {
        const oldest = this.#streams.values().next().value as string;
        this.#streams.delete(oldest);
      }
      this.#streams.add(key);
    }
    try {
      // Sent whatever happens: an event Redis could not keep is only missing from a later replay.
      await (this.#client as unknown as WithAppend).mcpkitAppendEvent(
        key,
        `${key}:bytes`,
        `${seq}\n${JSON.stringify(message)}`,
        this.#options.maxBytesPerStream,
        this.#options.ttlMs,
      );
    } catch {
      this.#options.onError?.('an event not kept for resumption: redis unreachable');
    }
    return eventId;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return parseEventId(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const last = parseEventId(lastEventId);
    if (!last) throw new Error('Unknown event id');
    // At most maxBytesPerStream of entries: the list's bound.
    const entries = await this.#client.lrange(this.#key(last.streamId), 0, -1);
    for (const entry of entries) {
      const cut = entry.indexOf('\n');
      const seq = Number(entry.slice(0, cut));
      if (!(seq > last.seq)) continue;
      let message: JSONRPCMessage;
      try {
        message = JSON.parse(entry.slice(cut + 1)) as JSONRPCMessage;
      } catch {
        continue;
      }
      // Priming events carry an empty message: they mark a position, there is nothing to resend.
      if ('jsonrpc' in message) await send(`${last.streamId}::${seq}`, message);
    }
    return last.streamId;
  }

  /** The session closed: its streams' events go now rather than at their TTL. */
  close(): void {
    this.#closed = true;
    const keys = [...this.#streams].flatMap((key) => [key, `${key}:bytes`]);
    this.#streams.clear();
    if (keys.length > 0 && this.#client.status === 'ready') {
      this.#client.unlink(...keys).catch(() => this.#options.onError?.('redis unreachable'));
    }
  }
}
