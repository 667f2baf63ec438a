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
/** How long a load waits for the subscription to the change feed before reading anyway. */
const SUBSCRIBE_WAIT_MS = 2000;

const delay = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref?.();
  });

/**
 * KEYS: records, tags, version, meta. ARGV: channel, node, keyCheck, keyCheck mode (`nx` or `set`),
 * whether the store must hold data already (`1`: this node loaded some, so a missing version means
 * Redis lost it), then per record: id, expected tag (`''`: must be absent), new tag, record JSON
 * (`''`: delete). Returns { 1, version }, { 0, id of the first record that did not match }, or
 * { -1 } when the data is gone.
 */
const COMMIT = `
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return { -1 } end
local n = (#ARGV - 5) / 4
for i = 0, n - 1 do
  local id = ARGV[6 + i * 4]
  local expected = ARGV[7 + i * 4]
  local current = redis.call('HGET', KEYS[2], id)
  if expected == '' then
    if current then return { 0, id } end
  elseif current ~= expected then
    return { 0, id }
  end
end
local ids = {}
for i = 0, n - 1 do
  local id = ARGV[6 + i * 4]
  local json = ARGV[9 + i * 4]
  if json == '' then
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  else
    redis.call('HSET', KEYS[1], id, json)
    redis.call('HSET', KEYS[2], id, ARGV[8 + i * 4])
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
return { 1, version }
`;

/**
 * Puts a node's copy back into a store that lost its data, or over another node's copy put back
 * with an older version and not written since. KEYS: records, tags, version, meta, restored.
 * ARGV: channel, node, version of the copy, keyCheck, then per record: id, tag, JSON. Returns 1 if
 * written.
 */
const RESTORE = `
local current = tonumber(redis.call('GET', KEYS[3]) or '-1')
local restored = tonumber(redis.call('GET', KEYS[5]) or '-1')
local mine = tonumber(ARGV[3])
if current >= 0 and not (restored == current and mine > current) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
for i = 5, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[4], 'keyCheck', ARGV[4])
redis.call('SET', KEYS[3], mine)
redis.call('SET', KEYS[5], mine)
redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = mine, resync = true }))
return 1
`;

/**
 * Replaces everything (the plain `save` of the store interface). KEYS: records, tags, version,
 * meta, restored. ARGV: channel, node, keyCheck (`''`: none), then per record: id, tag, JSON.
 */
const REPLACE = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5])
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], 'keyCheck', ARGV[3]) end
local version = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = version, resync = true }))
return version
`;

/** The client with the scripts defined on it. */
interface Scripted {
  mcpkitIntegrationsCommit(...args: string[]): Promise<[number, number | string]>;
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
 * `…:meta` (the key check), `…:restored`. A command that cannot reach Redis rejects with a
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
  const restoredKey = `${records}:restored`;
  const channel = `${records}:changes`;
  const node = randomUUID();
  const label = 'redis integration store';
  const scripted = client as unknown as Partial<Scripted>;
  if (!scripted.mcpkitIntegrationsCommit) {
    client.defineCommand('mcpkitIntegrationsCommit', { numberOfKeys: 4, lua: COMMIT });
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
  /** The highest version one of this node's own writes made. */
  let committed = 0;
  /** The highest version this node knew of before the store was found empty. */
  let peak = 0;
  let listener: { changed(ids: readonly string[]): void; resync(): void } | undefined;
  let subscribed: Promise<unknown> | undefined;
  let lost = false;
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
  /** Whether this node has known the store to hold data (so a missing version means it was lost). */
  const hadData = () => (seen ?? 0) > 0 || committed > 0 || peak > 0;
  /** Redis lost the data: a full read (which puts this node's copy back) and a retryable refusal. */
  const dataLost = () => {
    listener?.resync();
    return UNREACHABLE();
  };
  const onClose = () => {
    lost = true;
  };
  const onReady = () => {
    if (!lost || !listener) return;
    lost = false;
    // Whatever was published meanwhile is gone: read everything again if the version moved (or
    // the data is gone altogether).
    client.get(versionKey).then(
      (value) => {
        if (value === null || Number(value) !== seen) listener?.resync();
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
        client.multi().get(versionKey).hgetall(records).hget(meta, 'keyCheck').exec(),
      );
      if (!result || result.some(([error]) => error)) throw UNREACHABLE();
      const [version, all, keyCheck] = result.map(([, value]) => value) as [
        string | null,
        Record<string, string>,
        string | null,
      ];
      if (version === null) {
        // Never written, or lost (Redis restarted without persistence): remember how far it went.
        peak = Math.max(peak, seen ?? 0);
        seen = 0;
        return undefined;
      }
      seen = Number(version);
      const integrations = Object.entries(all).map(([id, text]) => parseRecord(id, text));
      // Creation order, as the file store keeps it.
      integrations.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
      return { ...(keyCheck !== null && { keyCheck }), integrations };
    },
    async save(snapshot: IntegrationSnapshot) {
      const args = [channel, node, snapshot.keyCheck ?? ''];
      for (const stored of snapshot.integrations) args.push(stored.id, tagOf(stored), JSON.stringify(stored));
      await command(() =>
        scripts.mcpkitIntegrationsReplace(records, tags, versionKey, meta, restoredKey, ...args),
      );
    },
    async commit(writes: readonly IntegrationRecordWrite[], keyCheck) {
      const args = [channel, node, keyCheck.value, keyCheck.replace ? 'set' : 'nx', hadData() ? '1' : '0'];
      for (const write of writes) {
        args.push(
          write.id,
          write.expected ?? '',
          write.next ? tagOf(write.next) : '',
          write.next ? JSON.stringify(write.next) : '',
        );
      }
      const [ok, value] = await command(() =>
        scripts.mcpkitIntegrationsCommit(records, tags, versionKey, meta, ...args),
      );
      if (ok === -1) throw dataLost();
      if (ok !== 1) return false;
      committed = Math.max(committed, Number(value));
      return true;
    },
    async fetch(id) {
      const result = await command(() => client.multi().exists(versionKey).hget(records, id).exec());
      if (!result || result.some(([error]) => error)) throw UNREACHABLE();
      const [exists, text] = result.map(([, value]) => value) as [number, string | null];
      // Gone with all the rest (Redis lost its data): not a deletion to apply.
      if (exists === 0 && hadData()) throw dataLost();
      return text === null ? undefined : parseRecord(id, text);
    },
    async restore(snapshot) {
      if (snapshot.integrations.length === 0) {
        // Nothing to put back: the store starts afresh.
        peak = committed = 0;
        return false;
      }
      const mine = Math.max(seen ?? 0, committed, peak, 1);
      const args = [channel, node, String(mine), snapshot.keyCheck ?? ''];
      for (const stored of snapshot.integrations) args.push(stored.id, tagOf(stored), JSON.stringify(stored));
      const written = await command(() =>
        scripts.mcpkitIntegrationsRestore(records, tags, versionKey, meta, restoredKey, ...args),
      );
      return written === 1;
    },
    watch(next) {
      if (listener) throw new TypeError('this integration store is watched already (one server per store)');
      listener = next;
      subscriber.on('message', onMessage);
      subscriber.on('close', onClose);
      subscriber.on('ready', onReady);
      subscribed = subscriber.subscribe(channel);
      subscribed.catch(() => {
        // Subscribed again by ioredis once connected; the reconnect check covers the gap.
      });
      return () => {
        listener = undefined;
        subscriber.off('message', onMessage);
        subscriber.off('close', onClose);
        subscriber.off('ready', onReady);
        subscriber.unsubscribe(channel).catch(() => {});
      };
    },
  };
}
