/**
 * mcpkit/redis: shared state over Redis for several mcpkit nodes behind one balancer
 * (docs/scale-out.md). Node-only; `ioredis` is an optional peer dependency.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { SharedState, SharedStateContext } from '../state/shared.js';
import { createRedisCatalogEntries } from './catalog.js';
import { createRedisChangeBus } from './changes.js';
import { createRedisEventStores } from './eventStore.js';
import { createRedisIntegrationStore } from './integrations.js';
import { createRedisRateLimitStore } from './rateLimits.js';
import { createRedisSessionDirectory } from './sessions.js';
import { createRedisUsageShare } from './usage.js';
import { RedisWork } from './work.js';

export { createRedisIntegrationStore, type RedisIntegrationStoreOptions } from './integrations.js';
export { createRedisRateLimitStore } from './rateLimits.js';

/** Options of {@link redisState}. */
export interface RedisStateOptions {
  /** `redis://`, `rediss://` (TLS) or `unix://` URL. Default: the `MCP_REDIS_URL` environment variable. */
  url?: string;
  /**
   * A client of your own (Sentinel, TLS options, …) instead of `url`. mcpkit leaves it open on
   * `close()`. Give it `enableOfflineQueue: false` so requests fail fast while Redis is down.
   */
  client?: Redis;
  /** Prefix of every key and channel, so several apps can share one Redis. Default `mcpkit:`. */
  prefix?: string;
  /** How long one command may take before the request gets a 503. Default 1000 ms. */
  commandTimeoutMs?: number;
  /**
   * This node's base URL as the other nodes reach it (`http://10.0.0.11:3000`: scheme, host, port;
   * a path is ignored). With it, a 2025-era session is served by any node: the node that opened it
   * records it in Redis, and the others forward its requests there. Default: the
   * `MCP_ADVERTISE_URL` environment variable; without either, sessions stay on their node.
   */
  advertise?: string;
  /**
   * The secret every node signs forwarded requests with (at least 32 characters, the same on every
   * node). Required with `advertise`. Default: the `MCP_CLUSTER_SECRET` environment variable.
   */
  secret?: string;
  /** How long a session's record outlives its owner's last refresh, in ms. Default 30 000. */
  sessionTtlMs?: number;
  /**
   * How long a node forwarding a request waits for the owner's response headers, in ms (a JSON
   * answer's headers come with its result). Default 120 000.
   */
  forwardTimeoutMs?: number;
  /**
   * Resumable 2025-era streams with their events in Redis (used when `http.eventStore` is not set):
   * `true`, or `{ maxBytesPerStream (1 MiB), ttlMs (10 min) }`. Default: off.
   */
  eventStore?: boolean | { maxBytesPerStream?: number; ttlMs?: number };
  /**
   * How long a node's MCP tasks and completion jobs outlive its last heartbeat (it beats every third
   * of this): past it, another node reports them `failed`. Default 15 000 ms.
   */
  leaseMs?: number;
  /**
   * The largest task or completion job kept in Redis, as JSON, in bytes. A task whose result is larger
   * fails as too large (`-32016`); a larger job is kept without its steps. Default 8 MiB.
   */
  maxRecordBytes?: number;
}

/** A {@link SharedState} over Redis, with the client it uses. */
export interface RedisState extends SharedState {
  /** The ioredis client. */
  readonly client: Redis;
  /** Resolves once the first connection is ready (rejects if it is not within the connect timeout). */
  ready(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 2000;

function checkedUrl(url: string | undefined): string {
  if (url === undefined || url.trim() === '') {
    throw new TypeError('redisState: give url (redis://host:port) or set MCP_REDIS_URL');
  }
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    // Never echo the URL: it may hold a password.
    throw new TypeError('redisState: url is not a valid URL (redis://, rediss:// or unix://)');
  }
  if (!['redis:', 'rediss:', 'unix:'].includes(protocol)) {
    throw new TypeError(`redisState: url must use redis://, rediss:// or unix://, not ${protocol}//`);
  }
  return url;
}

/** The advertised origin, or undefined; a TypeError for anything but an http(s) URL. */
function checkedAdvertise(url: string | undefined): string | undefined {
  if (url === undefined || url.trim() === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('redisState: advertise is not a valid URL (http://host:port)');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError('redisState: advertise must be an http:// or https:// URL');
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new TypeError('redisState: advertise must not carry credentials');
  }
  return parsed.origin;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const resolved = value ?? fallback;
  if (!(Number.isInteger(resolved) && resolved > 0)) {
    throw new TypeError(`redisState: ${name} must be a positive whole number`);
  }
  return resolved;
}

function clientFor(url: string, commandTimeoutMs: number): Redis {
  const options: RedisOptions = {
    // While Redis is down a command fails at once (the request gets a 503) instead of queueing.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Reconnect forever, backing off to one attempt a second.
    retryStrategy: (times) => Math.min(times * 100, 1000),
  };
  if (url.startsWith('unix:')) return new Redis({ ...options, path: new URL(url).pathname });
  return new Redis(url, options);
}

/**
 * Shared state over Redis: pass it as `createMcpServer({ state })` on every node (one state per
 * server). Rate limits then hold once across all nodes (one atomic Lua script per request, on
 * Redis's clock), catalog changes (`list_changed`, `resources/updated`) reach the clients of
 * every node through pub/sub, and MCP tasks and completion jobs are read and cancelled from any node
 * (a cancel on one node stops the work running on another). Integrations (given
 * `integrations.cipher`, the same key on every node) are stored once, written by compare-and-set,
 * and applied on every node, as are the catalog entries written over REST (`POST /tools`,
 * `/resources`, `/prompts`). With `advertise` and `secret`, a 2025-era session is served by any
 * node (the others forward its requests to the node holding it); with `eventStore`, resumable
 * streams keep their events in Redis. While Redis is
 * unreachable, requests that need it are refused with 503 and `Retry-After` (JSON-RPC `-32019`); the
 * client reconnects by itself.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { redisState } from 'mcpkit/redis';
 *
 * const server = createMcpServer({
 *   state: redisState({
 *     url: 'redis://127.0.0.1:6379',
 *     advertise: 'http://10.0.0.11:3000', // where the other nodes reach this one
 *     secret: process.env.MCP_CLUSTER_SECRET, // the same on every node
 *   }),
 *   rateLimit: { execute: 600 },
 * });
 * ```
 */
export function redisState(options: RedisStateOptions = {}): RedisState {
  const commandTimeoutMs = options.commandTimeoutMs ?? 1000;
  if (!(Number.isInteger(commandTimeoutMs) && commandTimeoutMs > 0)) {
    throw new TypeError('redisState: commandTimeoutMs must be a positive whole number of milliseconds');
  }
  const leaseMs = options.leaseMs ?? 15_000;
  if (!(Number.isInteger(leaseMs) && leaseMs >= 300)) {
    throw new TypeError('redisState: leaseMs must be a whole number of milliseconds, at least 300');
  }
  const maxRecordBytes = options.maxRecordBytes ?? 8 * 1024 * 1024;
  if (!(Number.isInteger(maxRecordBytes) && maxRecordBytes >= 1024)) {
    throw new TypeError('redisState: maxRecordBytes must be a whole number of bytes, at least 1024');
  }
  const prefix = options.prefix ?? 'mcpkit:';
  if (typeof prefix !== 'string' || /[\0\r\n]/.test(prefix)) {
    throw new TypeError('redisState: prefix must be a string without NUL, CR or LF');
  }
  const advertise = checkedAdvertise(options.advertise ?? process.env.MCP_ADVERTISE_URL);
  const secret = options.secret ?? process.env.MCP_CLUSTER_SECRET;
  if (advertise !== undefined && (typeof secret !== 'string' || secret.length < 32)) {
    throw new TypeError(
      'redisState: advertise needs secret (or MCP_CLUSTER_SECRET), the same on every node, at least 32 characters',
    );
  }
  const sessionTtlMs = positive('sessionTtlMs', options.sessionTtlMs, 30_000);
  const forwardTimeoutMs = positive('forwardTimeoutMs', options.forwardTimeoutMs, 120_000);
  const events = options.eventStore === true ? {} : options.eventStore || undefined;
  const eventBytes = positive('eventStore.maxBytesPerStream', events?.maxBytesPerStream, 1024 * 1024);
  const eventTtlMs = positive('eventStore.ttlMs', events?.ttlMs, 10 * 60_000);
  const owned = options.client === undefined;
  const client =
    options.client ?? clientFor(checkedUrl(options.url ?? process.env.MCP_REDIS_URL), commandTimeoutMs);
  let logger: SharedStateContext['logger'] | undefined;
  let down = false;
  let closed = false;
  client.on('error', (error: Error) => {
    // Without a listener ioredis prints every failed attempt; report an outage once.
    if (down || closed) return;
    down = true;
    logger?.warn(
      { err: { message: error.message } },
      'redis unreachable; requests needing shared state get 503',
    );
  });
  let everReady = client.status === 'ready';
  client.on('ready', () => {
    everReady = true;
    if (down) logger?.info('redis reachable again');
    down = false;
  });
  /** Resolves on the first `ready`, or after the connect timeout, whichever comes first. */
  const firstReadyOrTimeout = () =>
    new Promise<boolean>((resolve) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        resolve(false);
      }, CONNECT_TIMEOUT_MS);
      timer.unref?.();
      client.once('ready', onReady);
    });
  let pending: Promise<boolean> | undefined;
  let gaveUp = false;
  // Before the first connection a request waits for it (one shared, bounded wait); once connected,
  // or once that wait timed out, nothing waits: a node that started while Redis was down answers 503
  // at once and recovers like any other.
  const before = async () => {
    if (everReady || gaveUp) return;
    pending ??= firstReadyOrTimeout().then((ready) => {
      gaveUp = !ready;
      pending = undefined;
      return ready;
    });
    await pending;
  };
  // Subscribing needs a connection of its own; it queues its SUBSCRIBE until connected.
  const subscriber = client.duplicate({ enableOfflineQueue: true });
  subscriber.on('error', () => {
    // Reported once through the main client's listener; reconnection is ioredis's own.
  });
  const changes = createRedisChangeBus(client, subscriber, {
    prefix,
    onDropped: (reason) => logger?.debug({ reason }, 'catalog change not shared with other nodes'),
  });
  const sessions =
    advertise === undefined
      ? undefined
      : createRedisSessionDirectory(client, {
          prefix,
          advertise,
          secret: secret as string,
          ttlMs: sessionTtlMs,
          forwardTimeoutMs,
          before,
          onError: (reason) => logger?.debug({ reason }, 'session directory not updated'),
        });
  const eventStore =
    events === undefined
      ? undefined
      : createRedisEventStores(client, {
          prefix,
          maxBytesPerStream: eventBytes,
          ttlMs: eventTtlMs,
          onError: (reason) => logger?.debug({ reason }, 'resumable stream event'),
        });
  const work = new RedisWork(client, subscriber, {
    prefix,
    leaseMs,
    maxRecordBytes,
    before,
    onDeferred: (reason) => logger?.debug({ reason }, 'shared write deferred'),
  });
  return {
    name: 'redis',
    client,
    rateLimits: createRedisRateLimitStore(client, { prefix, before }),
    changes,
    ...(sessions && { sessions }),
    ...(eventStore && { eventStore }),
    tasks: work.tasks(),
    jobs: work.jobs(),
    integrations: createRedisIntegrationStore(client, subscriber, { prefix, before }),
    catalog: createRedisCatalogEntries(client, subscriber, { prefix, before }),
    usage: createRedisUsageShare(client, { prefix, before }),
    async ready() {
      if (everReady) return;
      if (!(await firstReadyOrTimeout()) && !everReady) throw new Error('redis did not become ready in time');
    },
    attach(context) {
      logger = context.logger;
    },
    healthy: () => client.status === 'ready',
    async close() {
      closed = true;
      sessions?.close();
      await work.close();
      subscriber.disconnect();
      if (!owned) return;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}
