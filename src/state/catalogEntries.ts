/**
 * Catalog entries written over REST, kept the same on every node through a
 * {@link SharedCatalogEntries} store: the definition each kind's JSON body makes (the one REST and
 * the replication both use), and the node's side of the replication: what it registered for the
 * store, added and removed as the store changes.
 */
import type { PromptCatalog } from '../catalog/prompts.js';
import type { RegistrationHandle } from '../catalog/registry.js';
import type { ResourceCatalog, ResourceDefinition } from '../catalog/resources.js';
import type { ToolCatalog } from '../catalog/tools.js';
import { McpKitError, quote } from '../core/errors.js';
import {
  compileDeclarativeTool,
  type DeclarativeToolOptions,
  type DeclarativeToolSpec,
} from '../declarative.js';
import type { Logger } from '../types.js';
import type { CatalogEntryKind, SharedCatalogEntries } from './shared.js';

/** How long after a failed read of the store it is read again. */
const RESYNC_RETRY_MS = 1000;

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new McpKitError('INVALID_ARGUMENT', `${what} must be an object`);
  return value as Record<string, unknown>;
}

/**
 * The resource a `POST /resources` body describes: fixed content (`text` or base64 `blob`). Throws
 * `INVALID_ARGUMENT` for a body that does not make one.
 */
export function restResource(value: unknown): ResourceDefinition {
  const body = asObject(value, 'body');
  const { uri, name, title, description, mimeType, text, blob } = body;
  if (typeof uri !== 'string' || typeof name !== 'string') {
    throw new McpKitError('INVALID_ARGUMENT', 'uri and name must be strings');
  }
  if ((typeof text === 'string') === (typeof blob === 'string')) {
    throw new McpKitError('INVALID_ARGUMENT', 'give exactly one of text (a string) or blob (base64)');
  }
  if (typeof blob === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(blob)) {
    throw new McpKitError('INVALID_ARGUMENT', 'blob must be base64');
  }
  const content = typeof text === 'string' ? { text } : { blob: blob as string };
  return {
    uri,
    name,
    ...(typeof title === 'string' && { title }),
    ...(typeof description === 'string' && { description }),
    ...(typeof mimeType === 'string' && { mimeType }),
    read: () => ({ ...(typeof mimeType === 'string' && { mimeType }), ...content }),
  };
}

/** Checks a `POST /prompts` body: a template prompt (`messages`), never a `render` function. */
export function restPrompt(value: unknown): Record<string, unknown> {
  const body = asObject(value, 'body');
  if (body.render !== undefined)
    throw new McpKitError('INVALID_ARGUMENT', 'render cannot be given over REST');
  if (!Array.isArray(body.messages)) throw new McpKitError('INVALID_ARGUMENT', 'messages must be an array');
  return body;
}

/** The catalogs and settings entries are registered with. */
export interface EntryCatalogs {
  tools: ToolCatalog;
  resources: ResourceCatalog;
  prompts: PromptCatalog;
  declarative: DeclarativeToolOptions;
}

/** Registers the entry a stored body makes (a `TypeError` from a catalog becomes `INVALID_ARGUMENT`). */
export function registerEntry(
  catalogs: EntryCatalogs,
  kind: CatalogEntryKind,
  spec: unknown,
): RegistrationHandle {
  try {
    if (kind === 'tools')
      return catalogs.tools.register(
        compileDeclarativeTool(spec as DeclarativeToolSpec, catalogs.declarative),
      );
    if (kind === 'resources') return catalogs.resources.register(restResource(spec));
    return catalogs.prompts.register(restPrompt(spec) as never);
  } catch (error) {
    if (error instanceof TypeError) throw new McpKitError('INVALID_ARGUMENT', error.message);
    throw error;
  }
}

/**
 * This node's side of the REST entries every node shares: it registers what the store holds, follows
 * the other nodes' adds and removes, and writes this node's through the store first, so two nodes
 * adding one name let exactly one succeed.
 */
export class SharedEntries {
  readonly #store: SharedCatalogEntries;
  readonly #catalogs: EntryCatalogs;
  readonly #logger: Logger;
  readonly #replaying: (apply: () => void) => void;
  /** What this node registered for the store, by `kind/name`. */
  readonly #handles = new Map<string, RegistrationHandle>();
  /** The JSON body of each, to compare with the store's and to put back in a store that lost it. */
  readonly #specs = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();
  #unwatch: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resyncQueued = false;
  #closed = false;
  /** The epoch of the store's data when last read. */
  #epoch: string | undefined;

  constructor(options: {
    store: SharedCatalogEntries;
    catalogs: EntryCatalogs;
    logger: Logger;
    replaying?: (apply: () => void) => void;
  }) {
    this.#store = options.store;
    this.#catalogs = options.catalogs;
    this.#logger = options.logger;
    this.#replaying = options.replaying ?? ((apply) => apply());
    this.#unwatch = this.#store.watch({
      changed: (kind, name) => this.#enqueue(() => this.#refresh(kind, name)),
      resync: () => this.#queueResync(),
    });
    this.#queueResync();
  }

  /** Whether `kind/name` is an entry of the store (not one registered in code). */
  has(kind: CatalogEntryKind, name: string): boolean {
    return this.#handles.has(`${kind}/${name}`);
  }

  /**
   * Adds an entry on every node: registered here with `register` (the caller's, so the audit names
   * them; it checks the entry and that the name is free here), then stored, unless another node
   * stored one of this name first: then it is taken out again, that node's entry is put here in its
   * place, and the add fails with `ALREADY_EXISTS`.
   */
  async add(
    entry: { kind: CatalogEntryKind; name: string; spec: unknown },
    register: () => RegistrationHandle,
  ): Promise<void> {
    const { kind, name, spec } = entry;
    const key = `${kind}/${name}`;
    const handle = register();
    let stored: boolean;
    try {
      stored = await this.#store.add(kind, name, spec);
    } catch (error) {
      handle.remove();
      throw error;
    }
    if (!stored) {
      handle.remove();
      this.#enqueue(() => this.#refresh(kind, name));
      throw new McpKitError('ALREADY_EXISTS', `${kind.slice(0, -1)} ${quote(name)} already exists`);
    }
    this.#handles.set(key, handle);
    this.#specs.set(key, JSON.stringify(spec));
  }

  /** Removes an entry of the store from every node (`remove` takes it out here); false if none. */
  async remove(kind: CatalogEntryKind, name: string, remove: () => boolean): Promise<boolean> {
    const key = `${kind}/${name}`;
    const stored = await this.#store.remove(kind, name);
    const here = this.#handles.get(key);
    this.#handles.delete(key);
    this.#specs.delete(key);
    return (here !== undefined && remove()) || stored;
  }

  close(): void {
    this.#closed = true;
    this.#unwatch();
    clearTimeout(this.#timer);
  }

  #enqueue(fn: () => Promise<void>): void {
    this.#queue = this.#queue
      .then(() => (this.#closed ? undefined : fn()))
      .catch((error: unknown) => {
        this.#logger.warn({ err: error }, 'REST catalog entries of other nodes not applied yet; retrying');
        if (this.#closed || this.#timer) return;
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#queueResync();
        }, RESYNC_RETRY_MS);
        this.#timer.unref?.();
      });
  }

  #queueResync(): void {
    if (this.#resyncQueued) return;
    this.#resyncQueued = true;
    this.#enqueue(async () => {
      this.#resyncQueued = false;
      await this.#resync();
    });
  }

  /**
   * Reads the whole store and applies every difference. A store that lost its data (empty, or
   * written again since under a new epoch) first gets this node's entries back.
   */
  async #resync(): Promise<void> {
    let loaded = await this.#store.load();
    if (!loaded || (this.#epoch !== undefined && loaded.epoch !== this.#epoch)) {
      for (const [key, spec] of this.#specs) {
        const [kind, ...rest] = key.split('/') as [CatalogEntryKind, ...string[]];
        await this.#store.add(kind, rest.join('/'), JSON.parse(spec));
      }
      if (this.#specs.size > 0) loaded = await this.#store.load();
    }
    this.#epoch = loaded?.epoch;
    const keep = new Set<string>();
    for (const { kind, name, spec } of loaded?.entries ?? []) {
      keep.add(`${kind}/${name}`);
      this.#apply(kind, name, spec);
    }
    for (const key of [...this.#handles.keys()]) {
      if (keep.has(key)) continue;
      const [kind, ...rest] = key.split('/') as [CatalogEntryKind, ...string[]];
      this.#apply(kind, rest.join('/'), undefined);
    }
  }

  async #refresh(kind: CatalogEntryKind, name: string): Promise<void> {
    this.#apply(kind, name, await this.#store.fetch(kind, name));
  }

  /** Makes `kind/name` here what the store holds (`undefined`: nothing). */
  #apply(kind: CatalogEntryKind, name: string, spec: unknown): void {
    const key = `${kind}/${name}`;
    const text = spec === undefined ? undefined : JSON.stringify(spec);
    if (text !== undefined && this.#handles.has(key) && this.#specs.get(key) === text) return;
    this.#replaying(() => {
      this.#handles.get(key)?.remove();
      this.#handles.delete(key);
      this.#specs.delete(key);
      if (spec === undefined) return;
      try {
        this.#handles.set(key, registerEntry(this.#catalogs, kind, spec));
        this.#specs.set(key, text!);
      } catch (error) {
        // Taken on this node by an entry registered in code, say: the others still have it.
        this.#logger.warn(
          { entry: key, err: error },
          'REST catalog entry of another node not registered here',
        );
      }
    });
  }
}
