/** Consumer fixture (scripts/check-consumers.mjs): `mcpkit/redis`, with only `ioredis` installed. */
import { Redis } from 'ioredis';
import { createMcpServer, type SharedState } from 'mcpkit';
import { createRedisRateLimitStore, type RedisState, redisState } from 'mcpkit/redis';

const state: RedisState = redisState({ url: 'redis://127.0.0.1:6379', prefix: 'app:' });
const shared: SharedState = state;
export const server = createMcpServer({ state: shared, rateLimit: { execute: 60 } });
const client = new Redis({ lazyConnect: true });
export const other = createMcpServer({
  rateLimit: { execute: 60, store: createRedisRateLimitStore(client) },
});
