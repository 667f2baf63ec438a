/**
 * Usage analytics across nodes over Redis: each node keeps its latest meter snapshot under
 * `<prefix>usage:<node>` (expiring unless renewed) and its id in the sorted set `<prefix>usage:nodes`
 * (scored by when it lapses), so `GET /usage` on any node reads every live node's.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { UsageShare } from '../telemetry/usage.js';

/** Options of {@link createRedisUsageShare}. */
export interface RedisUsageShareOptions {
  prefix: string;
  /** How long a node's snapshot outlives its last publication, in ms. Default 30 000. */
  ttlMs?: number;
  /** Waits for the first connection (as the other seams do). */
  before?: () => Promise<void>;
}

/** The usage seam of `redisState()`. */
export function createRedisUsageShare(client: Redis, options: RedisUsageShareOptions): UsageShare {
  const node = randomUUID();
  const ttlMs = options.ttlMs ?? 30_000;
  const nodes = `${options.prefix}usage:nodes`;
  const keyOf = (id: string) => `${options.prefix}usage:${id}`;
  return {
    node,
    async publish(snapshot) {
      await options.before?.();
      await client
        .multi()
        .set(keyOf(node), snapshot, 'PX', ttlMs)
        .zadd(nodes, Date.now() + ttlMs, node)
        .exec();
    },
    async collect() {
      await options.before?.();
      await client.zremrangebyscore(nodes, '-inf', Date.now());
      const ids = await client.zrange(nodes, 0, -1);
      const found = new Map<string, string>();
      if (ids.length === 0) return found;
      const texts = await client.mget(ids.map(keyOf));
      ids.forEach((id, i) => {
        const text = texts[i];
        if (typeof text === 'string') found.set(id, text);
      });
      return found;
    },
  };
}
