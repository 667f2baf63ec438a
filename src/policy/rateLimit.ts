/**
 * Per-caller token buckets, one per class of operation. The store is an interface so counters can
 * live elsewhere (Redis) when several processes serve one API; the memory store is the default.
 */

/** Classes of operation limited separately. */
export type RateClass = 'execute' | 'read' | 'manage' | 'completions';

/** The classes, in a fixed order. */
export const RATE_CLASSES: readonly RateClass[] = ['execute', 'read', 'manage', 'completions'];

/** A bucket: `limit` requests per `windowMs`, refilled continuously, bursting up to `limit`. */
export interface RateLimitRule {
  limit: number;
  windowMs: number;
}

/** What a store decides for one request. */
export interface RateDecision {
  allowed: boolean;
  /** Whole requests left after this one. */
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
  /** Milliseconds until one request is allowed again (0 when allowed). */
  retryAfterMs: number;
}

/**
 * Where bucket state lives. `take` removes one token from the bucket `key` if it has one; a store
 * that rejects makes the request a 503 with `Retry-After`. `now` is the limiter's clock; a shared
 * store may use its own (mcpkit/redis uses Redis's).
 *
 * @example
 * ```ts
 * // In memory (the default); `createRedisRateLimitStore(client)` from mcpkit/redis shares one.
 * const store: RateLimitStore = createMemoryRateLimitStore();
 * ```
 */
export interface RateLimitStore {
  take(key: string, rule: RateLimitRule, now: number): RateDecision | Promise<RateDecision>;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/**
 * Token buckets in memory, at most `maxKeys` of them (the least recently inserted go first; a bucket
 * that is dropped starts full again, which errs towards letting requests through).
 *
 * @example
 * ```ts
 * const server = createMcpServer({ rateLimit: { execute: 60, store: createMemoryRateLimitStore({ maxKeys: 50_000 }) } });
 * ```
 */
export function createMemoryRateLimitStore(options: { maxKeys?: number } = {}): RateLimitStore {
  const maxKeys = options.maxKeys ?? 100_000;
  const buckets = new Map<string, Bucket>();
  return {
    take(key, rule, now) {
      const perMs = rule.limit / rule.windowMs;
      let bucket = buckets.get(key);
      if (!bucket) {
        if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value as string);
        bucket = { tokens: rule.limit, updated: now };
        buckets.set(key, bucket);
      } else if (now > bucket.updated) {
        bucket.tokens = Math.min(rule.limit, bucket.tokens + (now - bucket.updated) * perMs);
        bucket.updated = now;
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return {
          allowed: true,
          remaining: Math.floor(bucket.tokens),
          resetMs: Math.ceil((rule.limit - bucket.tokens) / perMs),
          retryAfterMs: 0,
        };
      }
      return {
        allowed: false,
        remaining: 0,
        resetMs: Math.ceil((rule.limit - bucket.tokens) / perMs),
        retryAfterMs: Math.ceil((1 - bucket.tokens) / perMs),
      };
    },
  };
}

/**
 * The `rateLimit` option. A number is requests per minute. Classes left out use `default`, which
 * defaults to `MCP_RATE_LIMIT` (per minute); with neither, that class is not limited.
 *
 * @example
 * ```ts
 * createMcpServer({ rateLimit: { execute: 60, read: { limit: 600, windowMs: 60_000 }, manage: 10 } });
 * ```
 */
export interface RateLimitOptions {
  default?: number | RateLimitRule | false;
  execute?: number | RateLimitRule | false;
  read?: number | RateLimitRule | false;
  manage?: number | RateLimitRule | false;
  completions?: number | RateLimitRule | false;
  store?: RateLimitStore;
  /** The bucket key of a request. Default: `key:<caller id>`, or `ip:<address>` for anonymous callers. */
  key?: (caller: { id: string } | undefined, address: string | undefined) => string;
  /** The clock, in milliseconds (for tests). Default `Date.now`. */
  now?: () => number;
}

function toRule(value: number | RateLimitRule | false | undefined, where: string): RateLimitRule | undefined {
  if (value === undefined || value === false) return undefined;
  const rule = typeof value === 'number' ? { limit: value, windowMs: 60_000 } : value;
  if (
    typeof rule !== 'object' ||
    !(Number.isFinite(rule.limit) && rule.limit >= 1) ||
    !(Number.isFinite(rule.windowMs) && rule.windowMs >= 1)
  ) {
    throw new TypeError(
      `${where} must be a number of requests per minute (at least 1) or { limit, windowMs }`,
    );
  }
  return { limit: rule.limit, windowMs: rule.windowMs };
}

/** A refused request's facts, for the 429 and the JSON-RPC error. */
export interface RateLimited {
  class: RateClass;
  rule: RateLimitRule;
  decision: RateDecision;
}

/** The limiter: rules per class over one store. */
export class RateLimiter {
  readonly #rules: Partial<Record<RateClass, RateLimitRule>> = {};
  readonly #store: RateLimitStore;
  /** The bucket key of a caller (`key:<id>`), or of an anonymous client's address (`ip:<address>`). */
  readonly keyOf: NonNullable<RateLimitOptions['key']>;
  readonly #now: () => number;

  constructor(options: RateLimitOptions, envPerMinute: number | undefined) {
    const fallback =
      options.default === undefined
        ? toRule(envPerMinute, 'MCP_RATE_LIMIT')
        : toRule(options.default, 'rateLimit.default');
    for (const c of RATE_CLASSES) {
      const rule = options[c] === undefined ? fallback : toRule(options[c], `rateLimit.${c}`);
      if (rule) this.#rules[c] = rule;
    }
    this.#store = options.store ?? createMemoryRateLimitStore();
    this.keyOf =
      options.key ??
      ((caller, address) =>
        caller && caller.id !== 'anonymous' ? `key:${caller.id}` : `ip:${address ?? 'unknown'}`);
    this.#now = options.now ?? Date.now;
  }

  /** Whether any class is limited. */
  get active(): boolean {
    return RATE_CLASSES.some((c) => this.#rules[c] !== undefined);
  }

  /** The rule of `cls`, if limited. */
  rule(cls: RateClass): RateLimitRule | undefined {
    return this.#rules[cls];
  }

  /**
   * Takes a token for one request of `cls`; resolves to the decision, or `undefined` when the class
   * is not limited. Synchronous for synchronous stores.
   */
  take(
    cls: RateClass,
    caller: { id: string } | undefined,
    address: string | undefined,
  ): RateDecision | Promise<RateDecision> | undefined {
    const rule = this.#rules[cls];
    if (!rule) return undefined;
    return this.#store.take(`${cls}:${this.keyOf(caller, address)}`, rule, this.#now());
  }
}

const policyHeaders = new WeakMap<RateLimitRule, Partial<Record<RateClass, string>>>();

/** The `RateLimit-Policy` value of a class's rule: the same string for every response. */
function policyHeader(cls: RateClass, rule: RateLimitRule): string {
  let byClass = policyHeaders.get(rule);
  if (!byClass) {
    byClass = {};
    policyHeaders.set(rule, byClass);
  }
  byClass[cls] ??= `"${cls}";q=${rule.limit};w=${Math.ceil(rule.windowMs / 1000)}`;
  return byClass[cls];
}

/**
 * The `RateLimit-Policy` and `RateLimit` header values (draft-ietf-httpapi-ratelimit-headers), plus
 * `Retry-After` when refused.
 */
export function rateLimitHeaders(
  cls: RateClass,
  rule: RateLimitRule,
  decision: RateDecision,
): Record<string, string> {
  const headers: Record<string, string> = {
    'ratelimit-policy': policyHeader(cls, rule),
    ratelimit: `"${cls}";r=${decision.remaining};t=${Math.ceil(decision.resetMs / 1000)}`,
  };
  if (!decision.allowed)
    headers['retry-after'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  return headers;
}
