/**
 * Catalog changes between nodes over Redis pub/sub: one channel per prefix, each message the change
 * and the id of the node that made it (so no node replays its own). Delivery is at most once, as
 * pub/sub is; after an outage the bus asks each node to resync.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CatalogChange, ChangeBus } from '../state/shared.js';

/** The largest message a node publishes or accepts, in bytes (a long resource URI fits easily). */
const MAX_MESSAGE_BYTES = 64 * 1024;
const LIST_KINDS = new Set(['tools', 'resources', 'prompts']);

/** The change a message carries, or undefined for anything malformed or too large. */
function parse(message: string, self: string): CatalogChange | undefined {
  if (message.length > MAX_MESSAGE_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { node, kind, uri } = parsed as { node?: unknown; kind?: unknown; uri?: unknown };
  if (typeof node !== 'string' || node === self) return undefined;
  if (typeof kind === 'string' && LIST_KINDS.has(kind)) return { kind } as CatalogChange;
  if (kind === 'resourceUpdated' && typeof uri === 'string' && uri !== '') return { kind, uri };
  return undefined;
}

/**
 * A {@link ChangeBus} over Redis pub/sub: `client` publishes, `subscriber` (a connection of its own,
 * as Redis requires for subscribing) listens on `<prefix>changes`.
 */
export function createRedisChangeBus(
  client: Redis,
  subscriber: Redis,
  options: { prefix: string; onDropped?: (reason: string) => void },
): ChangeBus {
  const channel = `${options.prefix}changes`;
  const node = randomUUID();
  const listeners = new Set<{ listener: (change: CatalogChange) => void; onResync?: () => void }>();
  let subscribed = false;
  let lost = false;
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const change = parse(message, node);
    if (!change) return;
    for (const { listener } of listeners) listener(change);
  });
  subscriber.on('close', () => {
    lost = true;
  });
  subscriber.on('ready', () => {
    // ioredis subscribes again by itself; what was published meanwhile is gone.
    if (!lost) return;
    lost = false;
    for (const { onResync } of listeners) onResync?.();
  });
  return {
    publish(change) {
      const message = JSON.stringify({ node, ...change });
      if (Buffer.byteLength(message) > MAX_MESSAGE_BYTES) {
        options.onDropped?.('a catalog change too large to share');
        return;
      }
      // At most once: while Redis is down the change stays local (the bus resyncs on recovery).
      client.publish(channel, message).catch(() => options.onDropped?.('redis unreachable'));
    },
    subscribe(listener, onResync) {
      const entry = { listener, ...(onResync && { onResync }) };
      listeners.add(entry);
      if (!subscribed) {
        subscribed = true;
        subscriber.subscribe(channel).catch(() => {
          subscribed = false;
        });
      }
      return () => {
        listeners.delete(entry);
      };
    },
  };
}
