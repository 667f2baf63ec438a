/**
 * Storage of integrations: the committed table (in creation order) and its round-trips to the
 * {@link IntegrationStore}, always as one whole snapshot; the `If-Match` precondition on an
 * integration's ETag; and the write that saves the next table and commits it, or undoes the change it
 * was made for when the save fails.
 */
import { McpKitError, quote } from '../core/errors.js';
import { etagOf, type Live, nothingContributed } from './live.js';
import { type SecretSealer, sealAll, sealKeyCheck, secretCount } from './sealing.js';
import type { IntegrationStore, SecretCipher, StoredIntegration } from './types.js';
import { validateId } from './validation.js';

/** One write of the table: `next` replaces (or, `undefined`, removes) the integration `id`. */
export interface TableWrite {
  id: string;
  next: Live | undefined;
  /** Puts the catalogs back as they were before the change; called when the save fails. */
  undo(): void;
}

/** The integrations as last saved, and the store they are saved to. */
export class IntegrationTable {
  readonly #store: IntegrationStore;
  readonly #sealer: SecretSealer;
  readonly #live = new Map<string, Live>();

  constructor(store: IntegrationStore, sealer: SecretSealer) {
    this.#store = store;
    this.#sealer = sealer;
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
      validateId(stored.id, `integrations[${stored.id}].id`);
      const opened = await this.#sealer.open(stored);
      stale ||= opened.stale;
      this.#live.set(stored.id, {
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
      });
    }
    return { stale };
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
      await this.#store.save({ keyCheck, integrations: [...next.values()].map((live) => live.stored) });
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
    await this.#store.save({ keyCheck, integrations: [...sealed.values()] });
    this.#sealer.use(cipher, keyCheck);
    for (const [id, stored] of sealed) this.#live.get(id)!.stored = stored;
    return count;
  }

  /** Releases the store. */
  async close(): Promise<void> {
    await this.#store.close?.();
  }
}
