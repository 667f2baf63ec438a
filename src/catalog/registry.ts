import { McpKitError, quote } from '../core/errors.js';

/** The handle every registration returns: switch it on and off, or take it out. */
export interface RegistrationHandle {
  /** The key it is registered under (a tool or prompt name, a resource URI or template). */
  readonly key: string;
  readonly enabled: boolean;
  enable(): void;
  disable(): void;
  remove(): void;
}

/** What changed in a catalog: the operation and the entry's key. */
export type CatalogChangeObserver = (
  op: 'add' | 'replace' | 'remove' | 'enable' | 'disable',
  key: string,
) => void;

interface Slot<T> {
  entry: T;
  enabled: boolean;
}

/** What a registry holds and whom it tells: its kind (for messages), how an entry is listed, the hooks. */
export interface RegistryOptions<TEntry, TListed> extends CatalogHooks {
  kind: string;
  toListed: (entry: TEntry) => TListed;
}

/** Whom a catalog tells of its changes: `onChange` after each (batched), `observe` per entry (audit). */
export interface CatalogHooks {
  onChange: () => void;
  observe?: CatalogChangeObserver | undefined;
}

/**
 * An ordered map of named entries with an enabled flag, a cached array of the enabled entries'
 * listed form (rebuilt at most once per change, never per list call), and one change callback.
 */
export class Registry<TEntry, TListed> {
  readonly #slots = new Map<string, Slot<TEntry>>();
  readonly #kind: string;
  readonly #toListed: (entry: TEntry) => TListed;
  readonly #onChange: () => void;
  readonly #observe: CatalogChangeObserver | undefined;
  #listed: TListed[] | undefined;
  #batchDepth = 0;
  #pendingChange = false;

  constructor({ kind, toListed, onChange, observe }: RegistryOptions<TEntry, TListed>) {
    this.#kind = kind;
    this.#observe = observe;
    this.#toListed = toListed;
    this.#onChange = onChange;
  }

  /** Adds an entry; throws `ALREADY_EXISTS` when the key is taken. */
  add(key: string, entry: TEntry): RegistrationHandle {
    if (this.#slots.has(key)) {
      throw new McpKitError('ALREADY_EXISTS', `${this.#kind} ${quote(key)} is already registered`);
    }
    const slot: Slot<TEntry> = { entry, enabled: true };
    this.#slots.set(key, slot);
    this.#changed();
    this.#observe?.('add', key);
    return this.#handle(key, slot);
  }

  /** Replaces an existing entry in place, keeping its position and enabled flag. */
  replace(key: string, entry: TEntry): void {
    const slot = this.#slots.get(key);
    if (!slot) throw new McpKitError('NOT_FOUND', `${this.#kind} ${quote(key)} is not registered`);
    slot.entry = entry;
    this.#changed();
    this.#observe?.('replace', key);
  }

  /** Removes an entry; returns whether it existed. */
  remove(key: string): boolean {
    const existed = this.#slots.delete(key);
    if (existed) {
      this.#changed();
      this.#observe?.('remove', key);
    }
    return existed;
  }

  setEnabled(key: string, enabled: boolean): void {
    const slot = this.#slots.get(key);
    if (!slot) throw new McpKitError('NOT_FOUND', `${this.#kind} ${quote(key)} is not registered`);
    if (slot.enabled === enabled) return;
    slot.enabled = enabled;
    this.#changed();
    this.#observe?.(enabled ? 'enable' : 'disable', key);
  }

  /** The entry under `key` when it exists and is enabled. */
  get(key: string): TEntry | undefined {
    const slot = this.#slots.get(key);
    return slot?.enabled ? slot.entry : undefined;
  }

  /** The entry under `key` whether or not it is enabled. */
  peek(key: string): { entry: TEntry; enabled: boolean } | undefined {
    const slot = this.#slots.get(key);
    return slot && { entry: slot.entry, enabled: slot.enabled };
  }

  has(key: string): boolean {
    return this.#slots.has(key);
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Every enabled entry, in registration order. */
  *entries(): IterableIterator<TEntry> {
    for (const slot of this.#slots.values()) if (slot.enabled) yield slot.entry;
  }

  /** The listed form of every enabled entry; the same array until the next change. */
  listed(): readonly TListed[] {
    if (this.#listed === undefined) {
      const listed: TListed[] = [];
      for (const slot of this.#slots.values()) if (slot.enabled) listed.push(this.#toListed(slot.entry));
      this.#listed = listed;
    }
    return this.#listed;
  }

  /** Runs `fn` with change notifications folded into one at the end. */
  batch<T>(fn: () => T): T {
    this.#batchDepth++;
    try {
      return fn();
    } finally {
      this.#batchDepth--;
      if (this.#batchDepth === 0 && this.#pendingChange) {
        this.#pendingChange = false;
        this.#onChange();
      }
    }
  }

  #changed(): void {
    this.#listed = undefined;
    if (this.#batchDepth > 0) this.#pendingChange = true;
    else this.#onChange();
  }

  #handle(key: string, slot: Slot<TEntry>): RegistrationHandle {
    return new Handle(this, key, slot);
  }

  /** Whether `slot` is still the one registered under `key` (not removed or replaced since). */
  holds(key: string, slot: Slot<TEntry>): boolean {
    return this.#slots.get(key) === slot;
  }
}

/** A registration's handle: acts only while its own registration is the one under its key. */
class Handle<TEntry> implements RegistrationHandle {
  readonly key: string;
  readonly #registry: Registry<TEntry, unknown>;
  readonly #slot: Slot<TEntry>;

  constructor(registry: Registry<TEntry, unknown>, key: string, slot: Slot<TEntry>) {
    this.#registry = registry;
    this.key = key;
    this.#slot = slot;
  }

  get enabled(): boolean {
    return this.#registry.holds(this.key, this.#slot) && this.#slot.enabled;
  }

  enable(): void {
    if (this.#registry.holds(this.key, this.#slot)) this.#registry.setEnabled(this.key, true);
  }

  disable(): void {
    if (this.#registry.holds(this.key, this.#slot)) this.#registry.setEnabled(this.key, false);
  }

  remove(): void {
    if (this.#registry.holds(this.key, this.#slot)) this.#registry.remove(this.key);
  }
}
