import type { ReadResourceResult } from '@modelcontextprotocol/server';
import QuickLRU from 'quick-lru';

/** Options of the resource read cache. */
export interface ResourceCacheOptions {
  /** Default time-to-live of a cached read in ms; `0` turns caching off. Default 0. */
  ttlMs?: number;
  /** Most entries kept; the least recently used go first. Default 1000. */
  maxEntries?: number;
  /** The clock, in ms. Default `Date.now`; tests inject their own. */
  now?: () => number;
}

/** Counters of the resource read cache. */
export interface ResourceCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  size: number;
}

interface Entry {
  result: ReadResourceResult;
  expiresAt: number;
}

/**
 * A read-through TTL cache in front of resource readers, with single-flight loading: concurrent reads
 * of a cold key call the reader once. Expiry is checked on read against an injectable clock (nothing
 * is timed, so nothing may depend on expiry to notify anyone); `invalidate` drops an entry at once,
 * and a read that was in flight when its key was invalidated does not refill the cache.
 */
export class ResourceCache {
  readonly defaultTtlMs: number;
  readonly #lru: QuickLRU<string, Entry>;
  readonly #inflight = new Map<string, Promise<ReadResourceResult>>();
  readonly #now: () => number;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(options: ResourceCacheOptions = {}) {
    const ttl = options.ttlMs ?? 0;
    if (!(Number.isFinite(ttl) && ttl >= 0)) throw new TypeError('cache ttlMs must be a non-negative number');
    const maxEntries = options.maxEntries ?? 1000;
    if (!(Number.isInteger(maxEntries) && maxEntries > 0))
      throw new TypeError('cache maxEntries must be a positive integer');
    this.defaultTtlMs = ttl;
    this.#now = options.now ?? Date.now;
    this.#lru = new QuickLRU({ maxSize: maxEntries, onEviction: () => this.#evictions++ });
  }

  /** Reads `uri` through the cache; `ttlMs` 0 (or less) bypasses it. */
  async read(
    uri: string,
    ttlMs: number,
    load: () => Promise<ReadResourceResult>,
  ): Promise<ReadResourceResult> {
    if (!(ttlMs > 0)) return load();
    const entry = this.#lru.get(uri);
    if (entry) {
      if (entry.expiresAt > this.#now()) {
        this.#hits++;
        return { ...entry.result };
      }
      this.#lru.delete(uri);
    }
    const pending = this.#inflight.get(uri);
    if (pending) {
      this.#hits++;
      return { ...(await pending) };
    }
    this.#misses++;
    const loading = load();
    this.#inflight.set(uri, loading);
    try {
      const result = await loading;
      // Invalidated while loading: the result may be stale, so it is returned but not kept.
      if (this.#inflight.get(uri) === loading) this.#lru.set(uri, { result, expiresAt: this.#now() + ttlMs });
      return { ...result };
    } finally {
      if (this.#inflight.get(uri) === loading) this.#inflight.delete(uri);
    }
  }

  /** Drops `uri` from the cache (and detaches any read in flight from it). */
  invalidate(uri: string): void {
    this.#lru.delete(uri);
    this.#inflight.delete(uri);
  }

  /** Drops everything. */
  clear(): void {
    this.#lru.clear();
    this.#inflight.clear();
  }

  get stats(): ResourceCacheStats {
    return { hits: this.#hits, misses: this.#misses, evictions: this.#evictions, size: this.#lru.size };
  }
}
