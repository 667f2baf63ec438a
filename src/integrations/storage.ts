/**
 * Storage of integrations: the committed table (in creation order) and its round-trips to the
 * {@link IntegrationStore}, as one whole snapshot, or, to a store several servers share, as
 * compare-and-set writes of the records that change; the `If-Match` precondition on an
 * integration's ETag; and the write that saves the next table and commits it, or undoes the change it
 * was made for when the save fails.
 */
import { McpKitError, quote } from '../core/errors.js';
import { etagOf, type Live, nothingContributed } from './live.js';
import { type SecretSealer, sealAll, sealKeyCheck, secretCount } from './sealing.js';
import type {
  IntegrationSnapshot,
  IntegrationStore,
  SecretCipher,
  SharedIntegrationStore,
  StoredIntegration,
} from './types.js';
import { validateId } from './validation.js';

/** One write of the table: `next` replaces (or, `undefined`, removes) the integration `id`. */
export interface TableWrite {
  id: string;
  next: Live | undefined;
  /** Puts the catalogs back as they were before the change; called when the save fails. */
  undo(): void;
}

/**
 * A write to a shared store refused because a record it replaces changed on another server: the
 * manager reads those records again and runs the change once more on them.
 */
export class StaleWrite extends Error {
  override readonly name = 'StaleWrite';
  /** The integrations to read again. */
  readonly ids: readonly string[];
  constructor(ids: readonly string[]) {
    super('an integration changed on another server');
    this.ids = ids;
  }
}

/** Whether `store` is shared by several servers (compare-and-set writes, a change feed). */
export function isShared(store: IntegrationStore): store is SharedIntegrationStore {
  const s = store as Partial<SharedIntegrationStore>;
  return typeof s.commit === 'function' && typeof s.fetch === 'function' && typeof s.watch === 'function';
}

/** What a shared store compares a record by: its ETag without the quotes. */
function tagOf(stored: StoredIntegration): string {
  return `${stored.generation}-${stored.revision}`;
}

/** The integrations as last saved, and the store they are saved to. */
export class IntegrationTable {
  readonly #store: IntegrationStore;
  readonly #shared: SharedIntegrationStore | undefined;
  readonly #sealer: SecretSealer;
  readonly #live = new Map<string, Live>();

  constructor(store: IntegrationStore, sealer: SecretSealer) {
    this.#store = store;
    this.#shared = isShared(store) ? store : undefined;
    this.#sealer = sealer;
  }

  /** The store, when several servers share it. */
  get shared(): SharedIntegrationStore | undefined {
    return this.#shared;
  }

  get size(): number {
    return this.#live.size;
  }

  get(id: string): Live | undefined {
    return this.#live.get(id);
  }

  /** Every integration, in creation order. */
  values(): IterableIterator<Live> {
    return this.#live.values();
  }

  /**
   * The integration `id`: `NOT_FOUND` if there is none, `PRECONDITION_FAILED` (with the current ETag
   * in `details.etag`) if `ifMatch` is given and neither `*` nor its ETag is among the tags.
   */
  require(id: string, ifMatch?: string | readonly string[]): Live {
    const live = this.#live.get(id);
    if (!live) throw new McpKitError('NOT_FOUND', `Integration ${quote(id)} not found`);
    if (ifMatch !== undefined) {
      const tags = typeof ifMatch === 'string' ? [ifMatch] : ifMatch;
      const etag = etagOf(live.stored);
      if (!tags.some((t) => t === '*' || t === etag)) {
        throw new McpKitError(
          'PRECONDITION_FAILED',
          `Integration ${quote(id)} has changed since it was read (its ETag is now ${etag}); read it again and retry`,
          { details: { etag } },
        );
      }
    }
    return live;
  }

  /**
   * Loads the stored snapshot with `cipher`: the key check first, then every integration with its
   * secrets opened (nothing in the catalogs yet). Resolves to `undefined` when nothing was ever
   * saved, else to whether anything was sealed under a previous key.
   */
  async load(cipher: SecretCipher): Promise<{ stale: boolean } | undefined> {
    this.#sealer.use(cipher);
    const snapshot = await this.#store.load();
    if (!snapshot) return undefined;
    let stale = await this.#sealer.admit(snapshot.keyCheck);
    for (const stored of snapshot.integrations) {
      const live = await this.open(stored);
      stale ||= live.stale;
      this.#live.set(stored.id, live.live);
    }
    return { stale };
  }

  /**
   * An integration as stored (by this server or, with a shared store, another), its secrets opened;
   * not in the table or the catalogs yet.
   */
  async open(stored: StoredIntegration): Promise<{ live: Live; stale: boolean }> {
    validateId(stored.id, `integrations[${stored.id}].id`);
    const opened = await this.#sealer.open(stored);
    const live: Live = {
      stored: {
        ...stored,
        tools: stored.tools ?? [],
        resources: stored.resources ?? [],
        prompts: stored.prompts ?? [],
      },
      apiKey: opened.apiKey,
      secrets: opened.secrets,
      handles: [],
      contributes: nothingContributed(),
    };
    return { live, stale: opened.stale };
  }

  /** The shared store's whole snapshot, its key check proven (`undefined`: it holds nothing). */
  async reload(): Promise<IntegrationSnapshot | undefined> {
    const snapshot = await this.#store.load();
    if (snapshot?.keyCheck !== undefined) await this.#sealer.admit(snapshot.keyCheck);
    return snapshot;
  }

  /** The table as a snapshot, to put back in a shared store that lost its data. */
  async snapshot(): Promise<IntegrationSnapshot> {
    return {
      keyCheck: await this.#sealer.keyCheck(),
      integrations: [...this.#live.values()].map((live) => live.stored),
    };
  }

  /** Sets (or, `undefined`, removes) `id` as another server committed it. */
  set(id: string, live: Live | undefined): void {
    if (live) this.#live.set(id, live);
    else this.#live.delete(id);
  }

  /** Saves the table with `write` applied and commits it; if the save fails, undoes and rethrows. */
  write(write: TableWrite): Promise<void> {
    return this.writeAll([write]);
  }

  /**
   * Saves the table with every write applied, as one snapshot, and commits them all; if the save
   * fails, undoes each (last first) and rethrows: the table and the store stay as they were.
   */
  async writeAll(writes: readonly TableWrite[]): Promise<void> {
    const next = new Map(this.#live);
    for (const write of writes) {
      if (write.next) next.set(write.id, write.next);
      else next.delete(write.id);
    }
    try {
      const keyCheck = await this.#sealer.keyCheck();
      if (this.#shared) {
        // One compare-and-set of every record the writes touch: all of them land, or none.
        const records = writes.map((write) => {
          const current = this.#live.get(write.id);
          return {
            id: write.id,
            expected: current ? tagOf(current.stored) : null,
            next: write.next?.stored ?? null,
          };
        });
        if (!(await this.#shared.commit(records, { value: keyCheck }))) {
          throw new StaleWrite(writes.map((write) => write.id));
        }
      } else {
        await this.#store.save({ keyCheck, integrations: [...next.values()].map((live) => live.stored) });
      }
    } catch (error) {
      for (const write of [...writes].reverse()) write.undo();
      throw error;
    }
    for (const write of writes) {
      if (write.next) this.#live.set(write.id, write.next);
      else this.#live.delete(write.id);
    }
  }

  /**
   * Re-seals every secret under `cipher` in one atomic write; only once it is saved do the records,
   * the key check and the cipher for new secrets change. Resolves to the number of secrets.
   */
  async reseal(cipher: SecretCipher): Promise<number> {
    const sealed = new Map<string, StoredIntegration>();
    let count = 0;
    for (const [id, live] of this.#live) {
      sealed.set(id, await sealAll(cipher, live));
      count += secretCount(live);
    }
    const keyCheck = await sealKeyCheck(cipher);
    if (this.#shared) {
      // Every record only if none changed meanwhile on another server: still one atomic write.
      const records = [...sealed].map(([id, next]) => ({ id, expected: tagOf(next), next }));
      if (!(await this.#shared.commit(records, { value: keyCheck, replace: true })))
        throw new StaleWrite([...sealed.keys()]);
    } else await this.#store.save({ keyCheck, integrations: [...sealed.values()] });
    this.#sealer.use(cipher, keyCheck);
    for (const [id, stored] of sealed) this.#live.get(id)!.stored = stored;
    return count;
  }

  /** Releases the store. */
  async close(): Promise<void> {
    await this.#store.close?.();
  }
}
