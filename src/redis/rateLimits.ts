/**
 * Token buckets in Redis: the same arithmetic as the memory store, run atomically in one Lua script
 * so every node takes from one bucket. The clock is Redis's own (`TIME` inside the script), never a
 * node's: nodes whose clocks disagree still refill one bucket at one rate.
 */
import type { Redis } from 'ioredis';
import type { RateDecision, RateLimitRule, RateLimitStore } from '../policy/rateLimit.js';

/**
 * KEYS[1] the bucket; ARGV[1] the limit, ARGV[2] the window in ms. Returns { allowed, tokens left }
 * (tokens as a string: Lua numbers come back from Redis truncated to integers). The bucket expires
 * once it would be full again, so idle callers cost no memory.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local perMs = limit / window
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = limit
  updated = now
elseif now > updated then
  tokens = math.min(limit, tokens + (now - updated) * perMs)
  updated = now
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'updated', updated)
redis.call('PEXPIRE', KEYS[1], math.ceil((limit - tokens) / perMs) + 1000)
return { allowed, string.format('%.17g', tokens) }
`;

/** The client as the store uses it: ioredis with the script defined on it. */
interface WithTake {
  mcpkitTakeToken(key: string, limit: number, windowMs: number): Promise<[number, string]>;
}

/** The decision for `tokens` left in a bucket of `rule`, the same as the memory store's. */
function decide(allowed: boolean, tokens: number, rule: RateLimitRule): RateDecision {
  const perMs = rule.limit / rule.windowMs;
  const resetMs = Math.ceil((rule.limit - tokens) / perMs);
  if (allowed) return { allowed, remaining: Math.floor(tokens), resetMs, retryAfterMs: 0 };
  return { allowed, remaining: 0, resetMs, retryAfterMs: Math.ceil((1 - tokens) / perMs) };
}

/**
 * A `RateLimitStore` over an ioredis client. Keys are `<prefix>rl:<bucket key>`; the `now` the
 * limiter passes is ignored in favour of Redis's clock. A command that fails (Redis down) rejects,
 * and the policy answers 503 with `Retry-After`.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createMcpServer } from 'mcpkit';
 * import { createRedisRateLimitStore } from 'mcpkit/redis';
 *
 * const store = createRedisRateLimitStore(new Redis('redis://127.0.0.1:6379'), { prefix: 'app:' });
 * const server = createMcpServer({ rateLimit: { execute: 60, store } });
 * ```
 */
export function createRedisRateLimitStore(
  client: Redis,
  options: { prefix?: string; before?: () => Promise<void> } = {},
): RateLimitStore {
  const prefix = options.prefix ?? 'mcpkit:';
  if (!(client as unknown as Partial<WithTake>).mcpkitTakeToken) {
    client.defineCommand('mcpkitTakeToken', { numberOfKeys: 1, lua: TAKE });
  }
  const scripted = client as unknown as WithTake;
  const before = options.before;
  return {
    async take(key, rule) {
      if (before) await before();
      const [allowed, tokens] = await scripted.mcpkitTakeToken(
        `${prefix}rl:${key}`,
        rule.limit,
        rule.windowMs,
      );
      return decide(allowed === 1, Number(tokens), rule);
    },
  };
}
