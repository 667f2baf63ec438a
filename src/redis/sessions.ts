/**
 * Which node holds each 2025-era session, in Redis: `<prefix>session:<id>` names the owner's
 * advertised address and expires unless the owner refreshes it, which it does for every session it
 * holds, every third of the TTL and as soon as Redis is back after an outage (a restarted Redis
 * without persistence has forgotten them all).
 */
import type { Redis } from 'ioredis';
import type { SessionDirectory } from '../state/shared.js';

/** Options of {@link createRedisSessionDirectory}. */
export interface RedisSessionDirectoryOptions {
  prefix: string;
  /** This node's advertised base URL (an origin). */
  advertise: string;
  /** The secret every node signs forwarded requests with. */
  secret: string;
  /** How long a record lives without a refresh, in ms. */
  ttlMs: number;
  forwardTimeoutMs: number;
  /** Awaited before a lookup: the first connection (bounded). */
  before?: () => Promise<void>;
  onError?: (reason: string) => void;
}

/** Deletes the record only while it still names the given address (another node may own it now). */
const FORGET = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** A session id as the SDK makes them (a UUID), or anything short and printable; else not looked up. */
const SESSION_ID = /^[\x21-\x7e]{1,128}$/;

/** A {@link SessionDirectory} over Redis keys with a TTL. */
export function createRedisSessionDirectory(
  client: Redis,
  options: RedisSessionDirectoryOptions,
): SessionDirectory & { close(): void } {
  const { prefix, advertise, ttlMs } = options;
  const key = (id: string) => `${prefix}session:${id}`;
  const held = new Set<string>();
  let timer: ReturnType<typeof setInterval> | undefined;
  const failed = () => options.onError?.('redis unreachable');
  const record = (ids: Iterable<string>) => {
    if (client.status !== 'ready') return;
    const pipeline = client.pipeline();
    let any = false;
    for (const id of ids) {
      pipeline.set(key(id), advertise, 'PX', ttlMs);
      any = true;
    }
    if (any) pipeline.exec().catch(failed);
  };
  const refresh = () => record(held);
  // After an outage every record may be gone (Redis restarted): write them all again at once.
  const onReady = () => refresh();
  client.on('ready', onReady);
  return {
    advertise,
    secret: options.secret,
    forwardTimeoutMs: options.forwardTimeoutMs,
    hold(id) {
      held.add(id);
      record([id]);
      if (timer === undefined) {
        timer = setInterval(refresh, Math.max(50, Math.floor(ttlMs / 3)));
        (timer as { unref?: () => void }).unref?.();
      }
    },
    release(id) {
      if (!held.delete(id)) return;
      if (held.size === 0 && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
      }
      if (client.status === 'ready') client.del(key(id)).catch(failed);
    },
    async owner(id) {
      if (!SESSION_ID.test(id)) return undefined;
      await options.before?.();
      const address = await client.get(key(id));
      return address ?? undefined;
    },
    forget(id, address) {
      if (client.status !== 'ready') return;
      client.eval(FORGET, 1, key(id), address).catch(failed);
    },
    close() {
      client.off('ready', onReady);
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      const ids = [...held];
      held.clear();
      if (ids.length > 0 && client.status === 'ready') client.del(...ids.map(key)).catch(failed);
    },
  };
}
