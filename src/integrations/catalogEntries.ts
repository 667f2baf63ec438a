/**
 * The catalog entries integrations put in the shared catalogs: their compiled contributions and the
 * tools attached to them in code, registered while an integration is enabled, swapped on a change
 * (or put back when the change fails) and taken out when it is disabled or deleted.
 */
import type { PromptCatalog } from '../catalog/prompts.js';
import type { RegistrationHandle } from '../catalog/registry.js';
import type { ResourceCatalog } from '../catalog/resources.js';
import type { ToolCatalog, ToolDefinition } from '../catalog/tools.js';
import { McpKitError, quote } from '../core/errors.js';
import type { DeclarativeToolOptions } from '../declarative.js';
import type { Logger } from '../types.js';
import {
  attachedDefinition,
  type Contributions,
  compileContributions,
  namespacedName,
} from './contributions.js';
import { type Live, nothingContributed } from './live.js';
import type { Integration } from './types.js';
import { fieldError, LOCAL_NAME, validateId } from './validation.js';

/** What {@link CatalogEntries} works with. */
export interface CatalogEntriesOptions {
  tools: ToolCatalog;
  resources: ResourceCatalog;
  prompts: PromptCatalog;
  /** The server's declarative-tool limits, with the outbound policy. */
  declarative: DeclarativeToolOptions;
  logger: Logger;
  /** The integration with this id as it is now (the committed table). */
  find(id: string): Live | undefined;
}

/** A change of one integration in the catalogs: `next` takes the place of `current`. */
export interface EntrySwap {
  next: Live;
  current: Live | undefined;
}

/** Every integration's entries in the catalogs, and the tools attached in code (memory only). */
export class CatalogEntries {
  readonly #options: CatalogEntriesOptions;
  /** Attached tools by integration id, then by local name; kept whether or not the integration exists. */
  readonly #attached = new Map<string, Map<string, ToolDefinition>>();

  constructor(options: CatalogEntriesOptions) {
    this.#options = options;
  }

  /** Registers what a loaded integration contributes, skipping (with a warning) what fails. */
  load(live: Live): void {
    const contributions = this.#compile(live, 'load');
    if (live.stored.enabled) live.handles = this.#register(live.stored.id, contributions, true);
    live.contributes = this.#names(live, contributions);
  }

  /**
   * Puts `swap.next`'s entries in place of `swap.current`'s. Anything that does not compile or
   * register is an error naming its field, and leaves the catalogs as they were.
   */
  swap(swap: EntrySwap): void {
    const { next, current } = swap;
    const id = next.stored.id;
    const contributions = this.#compile(next, 'write');
    if (current) this.remove(current);
    try {
      next.handles = next.stored.enabled ? this.#register(id, contributions, false) : [];
    } catch (error) {
      if (current) this.restore(current);
      throw error;
    }
    next.contributes = this.#names(next, contributions);
  }

  /**
   * What {@link swap} would refuse, found without touching the catalogs: a contribution that does
   * not compile (an error naming its field), or a name another entry already holds (`CONFLICT`):
   * a tool registered in code, another upstream's entry, a tool attached in code under the same name.
   */
  check(swap: EntrySwap): void {
    const { next, current } = swap;
    const c = this.#compile(next, 'write');
    if (!next.stored.enabled) return;
    const id = next.stored.id;
    // What the current version holds is swapped out first, so it is no conflict.
    const owned = current?.stored.enabled ? current.contributes : nothingContributed();
    const attached = [...(this.#attached.get(id)?.keys() ?? [])].map((n) => namespacedName(id, n));
    const { tools, resources, prompts } = this.#options;
    const taken = (field: string, name: string) =>
      new McpKitError('CONFLICT', `${field}: ${quote(name)} is already in the catalog`, {
        details: { field },
      });
    for (const [i, tool] of c.tools.entries()) {
      if (attached.includes(tool.name)) throw taken(`tools[${i}]`, tool.name);
      if (!owned.tools.includes(tool.name) && tools.has(tool.name)) throw taken(`tools[${i}]`, tool.name);
    }
    for (const name of attached)
      if (!owned.tools.includes(name) && tools.has(name)) throw taken(`attached tool ${name}`, name);
    for (const [i, resource] of c.resources.entries()) {
      const uri = (resource as { uri: string }).uri;
      if (!owned.resources.includes(uri) && resources.hasReference(uri)) throw taken(`resources[${i}]`, uri);
    }
    for (const [i, prompt] of c.prompts.entries())
      if (!owned.prompts.includes(prompt.name) && prompts.has(prompt.name))
        throw taken(`prompts[${i}]`, prompt.name);
  }

  /**
   * Puts an integration's entries back after a change to it failed; a disabled integration had none
   * there, so it gets none back.
   */
  restore(live: Live): void {
    live.handles = live.stored.enabled
      ? this.#register(live.stored.id, this.#compile(live, 'load'), true)
      : [];
  }

  /** Takes an integration's entries out of the catalogs. */
  remove(live: Live): void {
    removeAll(live.handles);
  }

  /**
   * Attaches a tool to the integration `id`, in the catalog at once if the integration exists and is
   * enabled. Returns its catalog name and `detach`, which is `false` once it is no longer attached.
   */
  attach(id: string, definition: ToolDefinition<any>): { name: string; detach(): boolean } {
    validateId(id);
    if (typeof definition?.name !== 'string' || !LOCAL_NAME.test(definition.name))
      throw new TypeError('definition.name must be 1-60 characters of A-Z a-z 0-9 _ -');
    const local = definition.name;
    const name = namespacedName(id, local);
    let attached = this.#attached.get(id);
    if (!attached) {
      attached = new Map();
      this.#attached.set(id, attached);
    }
    if (attached.has(local))
      throw new TypeError(`Tool ${quote(local)} is already attached to integration ${quote(id)}`);
    const namespaced = attachedDefinition(id, definition);
    const live = this.#options.find(id);
    if (live?.stored.enabled) {
      live.handles.push(this.#options.tools.register(namespaced));
      live.contributes.tools.push(name);
    }
    attached.set(local, definition);
    return { name, detach: () => this.#detach({ id, local, definition }) };
  }

  #detach(tool: { id: string; local: string; definition: ToolDefinition<any> }): boolean {
    const { id, local, definition } = tool;
    if (this.#attached.get(id)?.get(local) !== definition) return false;
    this.#attached.get(id)!.delete(local);
    const name = namespacedName(id, local);
    const live = this.#options.find(id);
    if (live) {
      live.handles = live.handles.filter((h) => {
        if (h.key !== name) return true;
        h.remove();
        return false;
      });
      live.contributes.tools = live.contributes.tools.filter((t) => t !== name);
    }
    return true;
  }

  #compile(live: Live, mode: 'write' | 'load'): Contributions {
    const { declarative, logger } = this.#options;
    return compileContributions(live, { declarative, logger, mode });
  }

  /** The names an integration contributes: compiled ones always, attached tools while enabled. */
  #names(live: Live, c: Contributions): Integration['contributes'] {
    const id = live.stored.id;
    const attached = live.stored.enabled ? [...(this.#attached.get(id)?.keys() ?? [])] : [];
    return {
      tools: [...c.tools.map((t) => t.name), ...attached.map((n) => namespacedName(id, n))],
      resources: c.resources.map((r) => (r as { uri: string }).uri),
      prompts: c.prompts.map((p) => p.name),
    };
  }

  /**
   * Registers contributions and attached tools. `lenient` (load, rollback) skips what fails with a
   * warning; otherwise the first failure undoes the rest and throws an error naming the field.
   */
  #register(id: string, c: Contributions, lenient: boolean): RegistrationHandle[] {
    const { tools, resources, prompts, logger } = this.#options;
    const handles: RegistrationHandle[] = [];
    const attempt = (field: string, fn: () => RegistrationHandle) => {
      try {
        handles.push(fn());
      } catch (error) {
        if (lenient) {
          logger.warn({ integration: id, field, err: error }, 'integration contribution skipped');
          return;
        }
        removeAll(handles);
        const message = error instanceof Error ? error.message : 'is invalid';
        if (error instanceof McpKitError && error.code === 'ALREADY_EXISTS')
          throw new McpKitError('CONFLICT', `${field}: ${message}`, { details: { field } });
        throw fieldError(field, `is invalid: ${message}`);
      }
    };
    if (lenient && c.tools.length > 1) {
      try {
        handles.push(...tools.registerMany(c.tools));
      } catch {
        removeAll(handles);
        for (const [i, t] of c.tools.entries()) attempt(`tools[${i}]`, () => tools.register(t));
      }
    } else for (const [i, t] of c.tools.entries()) attempt(`tools[${i}]`, () => tools.register(t));
    for (const [local, def] of this.#attached.get(id) ?? []) {
      attempt(`attached tool ${local}`, () => tools.register(attachedDefinition(id, def)));
    }
    for (const [i, r] of c.resources.entries()) attempt(`resources[${i}]`, () => resources.register(r));
    for (const [i, p] of c.prompts.entries()) attempt(`prompts[${i}]`, () => prompts.register(p));
    return handles;
  }
}

/** Removes every handle and empties the list. */
function removeAll(handles: RegistrationHandle[]): void {
  for (const handle of handles) handle.remove();
  handles.length = 0;
}
