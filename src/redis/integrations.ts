/**
 * The integration store in Redis, shared by every node: one hash of records (sealed exactly as the
 * file store writes them), one hash of their tags (`<generation>-<revision>`, the ETag without its
 * quotes), the key check, and a version counter. Every write is one Lua script that checks the tags
 * it expects, writes, bumps the version and publishes the ids it wrote, all in one atomic step; a
 * node that sees a gap in the versions, or comes back from an outage to a different version, reads
 * the whole store again.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { McpKitError } from '../core/errors.js';
import { parseJsonSafe } from '../core/safeJson.js';
import { IntegrationStoreError } from '../integrations/store.js';
import type {
  IntegrationRecordWrite,
  IntegrationSnapshot,
  SharedIntegrationStore,
  StoredIntegration,
} from '../integrations/types.js';

/** The largest change message a node reads, in bytes; past it a node reads the whole store again. */
const MAX_MESSAGE_BYTES = 64 * 1024;
/** A write of more records than this announces a full read instead of its ids. */
const MAX_IDS_PER_MESSAGE = 100;
/**
 * How often a node compares the store's version and epoch with its own, in case it missed a message
 * without noticing (a subscription made late, a message lost in a reconnection): one `MGET`.
 */
const CHECK_INTERVAL_MS = 2000;
/** How long a load waits for the subscription to the change feed before reading anyway. */
const SUBSCRIBE_WAIT_MS = 2000;

const delay = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref?.();
  });

/**
 * KEYS: records, tags, version, meta, epoch. ARGV: channel, node, keyCheck, keyCheck mode (`nx` or
 * `set`), the epoch this node read (`''`: none yet), a new epoch in case the store is empty, then
 * per record: id, expected tag (`''`: must be absent), new tag, record JSON (`''`: delete).
 * Returns { 1, version, epoch }, { 0, id of the first record that did not match }, or { -1 } when
 * the data this node read is gone (Redis lost it).
 */
const COMMIT = `
local epoch = redis.call('GET', KEYS[5])
if ARGV[5] ~= '' and epoch ~= ARGV[5] then return { -1 } end
local n = (#ARGV - 6) / 4
for i = 0, n - 1 do
  local id = ARGV[7 + i * 4]
  local expected = ARGV[8 + i * 4]
  local current = redis.call('HGET', KEYS[2], id)
  if expected == '' then
    if current then return { 0, id } end
  elseif current ~= expected then
    return { 0, id }
  end
end
if not epoch then
  epoch = ARGV[6]
  redis.call('SET', KEYS[5], epoch)
end
local ids = {}
for i = 0, n - 1 do
  local id = ARGV[7 + i * 4]
  local json = ARGV[10 + i * 4]
  if json == '' then
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  else
    redis.call('HSET', KEYS[1], id, json)
    redis.call('HSET', KEYS[2], id, ARGV[9 + i * 4])
  end
  ids[#ids + 1] = id
end
if ARGV[4] == 'set' then
  redis.call('HSET', KEYS[4], 'keyCheck', ARGV[3])
else
  redis.call('HSETNX', KEYS[4], 'keyCheck', ARGV[3])
end
local version = redis.call('INCR', KEYS[3])
if #ids > ${MAX_IDS_PER_MESSAGE} then
  redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = version, resync = true }))
else
  redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = version, ids = ids }))
end
return { 1, version, epoch }
`;

/**
 * Puts a node's copy back into a store that lost the data the node read (its epoch is gone or
 * another): each record the store does not hold now is added; one it holds (written since) stays.
 * KEYS: records, tags, version, meta, epoch. ARGV: channel, node, the epoch the node read, a new
 * epoch, keyCheck, then per record: id, tag, JSON. Returns 1 if the store had lost the data.
 */
const RESTORE = `
local epoch = redis.call('GET', KEYS[5])
if epoch == ARGV[3] then return 0 end
if not epoch then redis.call('SET', KEYS[5], ARGV[4]) end
for i = 6, #ARGV, 3 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSETNX', KEYS[4], 'keyCheck', ARGV[5])
local version = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = version, resync = true }))
return 1
`;

/**
 * Replaces everything (the plain `save` of the store interface); the epoch stays. KEYS: records,
 * tags, version, meta, epoch. ARGV: channel, node, keyCheck (`''`: none), a new epoch in case there
 * is none, then per record: id, tag, JSON.
 */
const REPLACE = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
for i = 5, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], 'keyCheck', ARGV[3]) end
redis.call('SETNX', KEYS[5], ARGV[4])
local version = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = version, resync = true }))
return version
`;

/** The client with the scripts defined on it. */
interface Scripted {
  mcpkitIntegrationsCommit(...args: string[]): Promise<[number, (number | string)?, string?]>;
  mcpkitIntegrationsRestore(...args: string[]): Promise<number>;
  mcpkitIntegrationsReplace(...args: string[]): Promise<number>;
}

/**
 * Options of {@link createRedisIntegrationStore}.
 *
 * @example
 * ```ts
 * import type { RedisIntegrationStoreOptions } from 'mcpkit/redis';
 *
 * const options: RedisIntegrationStoreOptions = { prefix: 'billing:' };
 * ```
 */
export interface RedisIntegrationStoreOptions {
  /** Prefix of every key and of the channel. Default `mcpkit:`. */
  prefix?: string;
  /** Awaited before each command (redisState's bounded wait for the first connection). */
  before?: () => Promise<void>;
}

const UNREACHABLE = () =>
  new McpKitError('UNAVAILABLE', 'The integration store is unavailable; try again later', {
    details: { retryAfterSeconds: 1 },
  });

function tagOf(stored: StoredIntegration): string {
  return `${stored.generation}-${stored.revision}`;
}

/** A change message: its version, and the ids written (none: read everything again). */
interface Message {
  node: string;
  version: number;
  ids?: string[];
}

function parseMessage(text: string): Message | undefined {
  if (text.length > MAX_MESSAGE_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { node, version, ids } = value as Record<string, unknown>;
  if (typeof node !== 'string' || typeof version !== 'number' || !Number.isInteger(version)) return undefined;
  if (Array.isArray(ids) && ids.every((id) => typeof id === 'string')) return { node, version, ids };
  return { node, version };
}

/**
 * A {@link SharedIntegrationStore} over Redis: `client` reads and writes, `subscriber` (a connection
 * of its own, as Redis requires for subscribing) hears the other nodes' writes on
 * `<prefix>integrations:changes`. Keys: `<prefix>integrations` (records), `…:tags`, `…:version`,
 * `…:meta` (the key check), `…:epoch`. A command that cannot reach Redis rejects with a
 * retryable `UNAVAILABLE` (503 with `Retry-After: 1` over REST).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createMcpServer } from 'mcpkit';
 * import { loadSecretCipher } from 'mcpkit/node';
 * import { createRedisIntegrationStore } from 'mcpkit/redis';
 *
 * const client = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false });
 * const store = createRedisIntegrationStore(client, client.duplicate(), { prefix: 'app:' });
 * const server = createMcpServer({ integrations: { store, cipher: await loadSecretCipher() } });
 * ```
 */
export function createRedisIntegrationStore(
  client: Redis,
  subscriber: Redis,
  options: RedisIntegrationStoreOptions = {},
): SharedIntegrationStore {
  const prefix = options.prefix ?? 'mcpkit:';
  const records = `${prefix}integrations`;
  const tags = `${records}:tags`;
  const versionKey = `${records}:version`;
  const meta = `${records}:meta`;
  const epochKey = `${records}:epoch`;
  const channel = `${records}:changes`;
  const node = randomUUID();
  const label = 'redis integration store';
  const scripted = client as unknown as Partial<Scripted>;
  if (!scripted.mcpkitIntegrationsCommit) {
    client.defineCommand('mcpkitIntegrationsCommit', { numberOfKeys: 5, lua: COMMIT });
    client.defineCommand('mcpkitIntegrationsRestore', { numberOfKeys: 5, lua: RESTORE });
    client.defineCommand('mcpkitIntegrationsReplace', { numberOfKeys: 5, lua: REPLACE });
  }
  const scripts = client as unknown as Scripted;
  const before = options.before;

  /** Runs a command, turning an unreachable Redis into a retryable `UNAVAILABLE`. */
  async function command<T>(run: () => Promise<T>): Promise<T> {
    try {
      if (before) await before();
      return await run();
    } catch (error) {
      if (error instanceof McpKitError) throw error;
      throw UNREACHABLE();
    }
  }

  function parseRecord(id: string, text: string): StoredIntegration {
    let value: unknown;
    try {
      value = parseJsonSafe(text);
    } catch {
      throw new IntegrationStoreError(label, `integration "${id.slice(0, 64)}" is not valid JSON`);
    }
    const record = value as Partial<StoredIntegration> | null;
    if (typeof record !== 'object' || record === null || record.id !== id || typeof record.name !== 'string')
      throw new IntegrationStoreError(label, `integration "${id.slice(0, 64)}" is malformed`);
    return record as StoredIntegration;
  }

  // ---- the change feed ------------------------------------------------------------------------

  /** The last version this node knows it has every change up to (`undefined` until loaded). */
  let seen: number | undefined;
  /**
   * The epoch of the data this node read or wrote (a random id set when the store is first written):
   * another one, or none, means Redis lost that data.
   */
  let epoch: string | undefined;
  let listener: { changed(ids: readonly string[]): void; resync(): void } | undefined;
  let subscribed: Promise<unknown> | undefined;
  const onMessage = (from: string, text: string) => {
    if (from !== channel || !listener) return;
    const message = parseMessage(text);
    if (!message) {
      // Too large or malformed: whatever it said, everything is read again.
      listener.resync();
      return;
    }
    const { version, ids } = message;
    if (seen !== undefined && version <= seen) return;
    if (!ids || (seen !== undefined && version > seen + 1)) {
      // A full read was announced, or some message was missed: the load sets `seen`.
      listener.resync();
      return;
    }
    if (seen !== undefined) seen = version;
    if (message.node !== node) listener.changed(ids);
  };
  /** Redis lost the data: a full read (which puts this node's copy back) and a retryable refusal. */
  const dataLost = () => {
    listener?.resync();
    return UNREACHABLE();
  };
  const onReady = () => {
    // On every (re)connection, the first one too (it may come after writes this node never heard):
    // whatever was published meanwhile is gone, so read everything again if the version moved, or
    // the data is not the data this node read (Redis lost it; the version may be back where it was).
    if (!listener || seen === undefined) return;
    client.mget(versionKey, epochKey).then(
      ([version, current]) => {
        if (version === null || Number(version) !== seen || (current ?? undefined) !== epoch)
          listener?.resync();
      },
      () => listener?.resync(),
    );
  };

  return {
    label,
    async load() {
      // Subscribed first, so no write made after this read goes unheard (bounded: Redis may be down).
      if (subscribed) await Promise.race([subscribed.catch(() => {}), delay(SUBSCRIBE_WAIT_MS)]);
      const result = await command(() =>
        client.multi().get(versionKey).hgetall(records).hget(meta, 'keyCheck').get(epochKey).exec(),
      );
      if (!result || result.some(([error]) => error)) throw UNREACHABLE();
      const [version, all, keyCheck, current] = result.map(([, value]) => value) as [
        string | null,
        Record<string, string>,
        string | null,
        string | null,
      ];
      seen = version === null ? 0 : Number(version);
      // Never written, or lost (Redis restarted without persistence).
      if (current === null) return undefined;
      epoch = current;
      const integrations = Object.entries(all).map(([id, text]) => parseRecord(id, text));
      // Creation order, as the file store keeps it.
      integrations.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
      return { ...(keyCheck !== null && { keyCheck }), integrations };
    },
    async save(snapshot: IntegrationSnapshot) {
      const args = [channel, node, snapshot.keyCheck ?? '', randomUUID()];
      for (const stored of snapshot.integrations) args.push(stored.id, tagOf(stored), JSON.stringify(stored));
      await command(() =>
        scripts.mcpkitIntegrationsReplace(records, tags, versionKey, meta, epochKey, ...args),
      );
    },
    async commit(writes: readonly IntegrationRecordWrite[], keyCheck) {
      const mode = keyCheck.replace ? 'set' : 'nx';
      const args = [channel, node, keyCheck.value, mode, epoch ?? '', randomUUID()];
      for (const write of writes) {
        args.push(
          write.id,
          write.expected ?? '',
          write.next ? tagOf(write.next) : '',
          write.next ? JSON.stringify(write.next) : '',
        );
      }
      const [ok, , written] = await command(() =>
        scripts.mcpkitIntegrationsCommit(records, tags, versionKey, meta, epochKey, ...args),
      );
      if (ok === -1) throw dataLost();
      if (ok !== 1) return false;
      epoch ??= written;
      return true;
    },
    async fetch(id) {
      const result = await command(() => client.multi().get(epochKey).hget(records, id).exec());
      if (!result || result.some(([error]) => error)) throw UNREACHABLE();
      const [current, text] = result.map(([, value]) => value) as [string | null, string | null];
      // Gone with all the rest (Redis lost the data this node read): not a deletion to apply.
      if (epoch !== undefined && current !== epoch) throw dataLost();
      return text === null ? undefined : parseRecord(id, text);
    },
    async restore(snapshot) {
      if (epoch === undefined) return false;
      const args = [channel, node, epoch, randomUUID(), snapshot.keyCheck ?? ''];
      for (const stored of snapshot.integrations) args.push(stored.id, tagOf(stored), JSON.stringify(stored));
      const written = await command(() =>
        scripts.mcpkitIntegrationsRestore(records, tags, versionKey, meta, epochKey, ...args),
      );
      return written === 1;
    },
    watch(next) {
      if (listener) throw new TypeError('this integration store is watched already (one server per store)');
      listener = next;
      subscriber.on('message', onMessage);
      subscriber.on('ready', onReady);
      const check = setInterval(onReady, CHECK_INTERVAL_MS);
      check.unref?.();
      subscribed = subscriber.subscribe(channel);
      subscribed.catch(() => {
        // Subscribed again by ioredis once connected; the reconnect check covers the gap.
      });
      return () => {
        listener = undefined;
        subscriber.off('message', onMessage);
        subscriber.off('ready', onReady);
        clearInterval(check);
        subscriber.unsubscribe(channel).catch(() => {});
      };
    },
  };
}
