/**
 * The catalog entries written over REST, in Redis for every node: one hash of JSON bodies keyed
 * `<kind>/<name>`, a version counter and an epoch (a random id set when the data is first written,
 * so a node can tell Redis lost it and came back empty). An add is one Lua script (`HSETNX`, so of
 * two nodes adding one name exactly one succeeds), as is a removal; each bumps the version and
 * publishes the key in the same atomic step.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { McpKitError } from '../core/errors.js';
import { parseJsonSafe } from '../core/safeJson.js';
import type { CatalogEntryKind, SharedCatalogEntries } from '../state/shared.js';

const MAX_MESSAGE_BYTES = 64 * 1024;
const KINDS = new Set<string>(['tools', 'resources', 'prompts']);

/** KEYS: entries, version, epoch. ARGV: channel, node, key, JSON, epoch if new. Returns 1 if added. */
const ADD = `
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[3], ARGV[5]) end
if redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[4]) == 0 then return 0 end
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = version, key = ARGV[3] }))
return 1
`;

/** KEYS: entries, version. ARGV: channel, node, key. Returns 1 if it was there. */
const REMOVE = `
if redis.call('HDEL', KEYS[1], ARGV[3]) == 0 then return 0 end
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], cjson.encode({ node = ARGV[2], version = version, key = ARGV[3] }))
return 1
`;

interface Scripted {
  mcpkitCatalogAdd(...args: string[]): Promise<number>;
  mcpkitCatalogRemove(...args: string[]): Promise<number>;
}

const UNREACHABLE = () =>
  new McpKitError('UNAVAILABLE', 'The shared catalog is unavailable; try again later', {
    details: { retryAfterSeconds: 1 },
  });

function split(key: string): { kind: CatalogEntryKind; name: string } | undefined {
  const slash = key.indexOf('/');
  const kind = key.slice(0, slash);
  if (slash < 0 || !KINDS.has(kind)) return undefined;
  return { kind: kind as CatalogEntryKind, name: key.slice(slash + 1) };
}

/**
 * {@link SharedCatalogEntries} over Redis: keys `<prefix>catalog` (bodies), `…:version`,
 * `…:epoch`; channel `<prefix>catalog:changes`. A command that cannot reach Redis rejects with a
 * retryable `UNAVAILABLE` (503 with `Retry-After: 1`).
 */
export function createRedisCatalogEntries(
  client: Redis,
  subscriber: Redis,
  options: { prefix: string; before?: () => Promise<void> },
): SharedCatalogEntries {
  const entries = `${options.prefix}catalog`;
  const versionKey = `${entries}:version`;
  const epochKey = `${entries}:epoch`;
  const channel = `${entries}:changes`;
  const node = randomUUID();
  if (!(client as unknown as Partial<Scripted>).mcpkitCatalogAdd) {
    client.defineCommand('mcpkitCatalogAdd', { numberOfKeys: 3, lua: ADD });
    client.defineCommand('mcpkitCatalogRemove', { numberOfKeys: 2, lua: REMOVE });
  }
  const scripts = client as unknown as Scripted;

  async function command<T>(run: () => Promise<T>): Promise<T> {
    try {
      await options.before?.();
      return await run();
    } catch {
      throw UNREACHABLE();
    }
  }

  let seen: number | undefined;
  let listener: Parameters<SharedCatalogEntries['watch']>[0] | undefined;
  let lost = false;
  const onMessage = (from: string, text: string) => {
    if (from !== channel || !listener) return;
    let message: { node?: unknown; version?: unknown; key?: unknown } | undefined;
    try {
      message = text.length > MAX_MESSAGE_BYTES ? undefined : JSON.parse(text);
    } catch {
      message = undefined;
    }
    const version = message?.version;
    const entry = typeof message?.key === 'string' ? split(message.key) : undefined;
    if (typeof version !== 'number' || !entry) {
      listener.resync();
      return;
    }
    if (seen !== undefined && version <= seen) return;
    if (seen !== undefined && version > seen + 1) {
      listener.resync();
      return;
    }
    if (seen !== undefined) seen = version;
    if (message?.node !== node) listener.changed(entry.kind, entry.name);
  };
  const onClose = () => {
    lost = true;
  };
  const onReady = () => {
    if (!lost) return;
    lost = false;
    // Whatever was published meanwhile is gone: read everything again.
    listener?.resync();
  };

  return {
    async add(kind, name, spec) {
      const added = await command(() =>
        scripts.mcpkitCatalogAdd(
          entries,
          versionKey,
          epochKey,
          channel,
          node,
          `${kind}/${name}`,
          JSON.stringify(spec),
          randomUUID(),
        ),
      );
      return added === 1;
    },
    async remove(kind, name) {
      const removed = await command(() =>
        scripts.mcpkitCatalogRemove(entries, versionKey, channel, node, `${kind}/${name}`),
      );
      return removed === 1;
    },
    async load() {
      const result = await command(() =>
        client.multi().get(versionKey).get(epochKey).hgetall(entries).exec(),
      );
      if (!result || result.some(([error]) => error)) throw UNREACHABLE();
      const [version, epoch, all] = result.map(([, value]) => value) as [
        string | null,
        string | null,
        Record<string, string>,
      ];
      if (version === null) {
        seen = 0;
        return undefined;
      }
      seen = Number(version);
      const out: Array<{ kind: CatalogEntryKind; name: string; spec: unknown }> = [];
      for (const [key, text] of Object.entries(all)) {
        const entry = split(key);
        if (!entry) continue;
        try {
          out.push({ ...entry, spec: parseJsonSafe(text) });
        } catch {
          // Not written by mcpkit: skipped.
        }
      }
      return { entries: out, epoch: epoch ?? '' };
    },
    async fetch(kind, name) {
      const text = await command(() => client.hget(entries, `${kind}/${name}`));
      if (text === null) return undefined;
      try {
        return parseJsonSafe(text);
      } catch {
        return undefined;
      }
    },
    watch(next) {
      listener = next;
      subscriber.on('message', onMessage);
      subscriber.on('close', onClose);
      subscriber.on('ready', onReady);
      subscriber.subscribe(channel).catch(() => {
        // Subscribed again by ioredis once connected; the resync on `ready` covers the gap.
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
