/**
 * IntegrationManager: integrations persisted through an {@link IntegrationStore}, their secrets
 * sealed by a {@link SecretCipher}, their tools, resources and prompts registered in the shared
 * catalogs under the integration's namespace (`<id>__<name>`).
 *
 * Every change runs in one queue: validate → seal secrets → compile contributions → swap them into
 * the catalogs → save the whole snapshot → commit and emit. A failed save puts the catalogs back.
 */
import EventEmitter from 'eventemitter3';
import type { PromptCatalog } from '../catalog/prompts.js';
import type { RegistrationHandle } from '../catalog/registry.js';
import type { ResourceCatalog } from '../catalog/resources.js';
import type { ToolCatalog, ToolDefinition } from '../catalog/tools.js';
import { McpKitError, quote } from '../core/errors.js';
import { type DeclarativeToolOptions, outboundOf } from '../declarative.js';
import { silentLogger } from '../logger.js';
import type { OutboundPolicy } from '../net/outbound.js';
import type { Logger } from '../types.js';
import { type BuildContext, buildNext } from './changes.js';
import {
  attachedDefinition,
  type Contributions,
  compileContributions,
  namespacedName,
} from './contributions.js';
import { etagOf, firstRevision, inputOf, type Live, nextRevision, viewOf } from './live.js';
import { SecretSealer, sealAll, sealKeyCheck, secretCount } from './sealing.js';
import type {
  Integration,
  IntegrationEvents,
  IntegrationInput,
  IntegrationSnapshot,
  IntegrationStore,
  ModelConfig,
  SecretCipher,
} from './types.js';
import { fieldError, LOCAL_NAME, validateId, validateIntegrationInput } from './validation.js';

export { integrationResourceUri, namespacedName } from './contributions.js';

/** Options for {@link IntegrationManager}. */
export interface IntegrationManagerOptions {
  store: IntegrationStore;
  /** Seals secret fields. A promise is awaited before loading. */
  cipher: SecretCipher | Promise<SecretCipher>;
  tools: ToolCatalog;
  resources: ResourceCatalog;
  prompts: PromptCatalog;
  /**
   * Limits of declarative HTTP tools (the server's `declarativeTools`, with `outbound`: the policy
   * tools and model endpoints go through). Default: nothing may be reached.
   */
  declarative?: DeclarativeToolOptions;
  logger?: Logger;
}

/** Options of a write: `ifMatch` makes it conditional on the integration's current ETag. */
export interface IntegrationWriteOptions {
  /** One ETag, a list of them, or `*`: the write fails with `PRECONDITION_FAILED` unless one matches. */
  ifMatch?: string | readonly string[];
}

/** What {@link IntegrationManager.attachTool} returns. */
export interface AttachedTool {
  /** The tool's name in the catalog (`<id>__<name>`). */
  readonly name: string;
  /** Detaches the tool (and takes it out of the catalog). */
  remove(): void;
}

/**
 * Persisted integrations and their contributions (`server.integrations`).
 *
 * @example
 * ```ts
 * await server.integrations.ready;
 * await server.integrations.create({
 *   id: 'crm',
 *   name: 'CRM',
 *   model: { provider: 'openai', model: 'gpt-4.1', apiKey: process.env.OPENAI_API_KEY },
 *   prompts: [{ name: 'summary', messages: [{ role: 'user', content: 'Summarise {{account}}' }] }],
 * });
 * server.integrations.attachTool('crm', { name: 'search', handler: () => 'found' }); // crm__search
 * ```
 */
export class IntegrationManager extends EventEmitter<IntegrationEvents> {
  /** Resolves once the stored integrations are loaded and in the catalogs; rejects if they cannot be. */
  readonly ready: Promise<void>;
  readonly #store: IntegrationStore;
  readonly #tools: ToolCatalog;
  readonly #resources: ResourceCatalog;
  readonly #prompts: PromptCatalog;
  readonly #declarative: DeclarativeToolOptions;
  readonly #outbound: OutboundPolicy;
  readonly #logger: Logger;
  readonly #live = new Map<string, Live>();
  readonly #attached = new Map<string, Map<string, ToolDefinition>>();
  readonly #sealer: SecretSealer;
  readonly #build: BuildContext;
  #queue: Promise<unknown>;
  #closed = false;

  constructor(options: IntegrationManagerOptions) {
    super();
    this.#store = options.store;
    this.#tools = options.tools;
    this.#resources = options.resources;
    this.#prompts = options.prompts;
    this.#outbound = outboundOf(options.declarative ?? {});
    this.#declarative = { ...options.declarative, outbound: this.#outbound };
    this.#logger = (options.logger ?? silentLogger).child({ component: 'integrations' });
    this.#sealer = new SecretSealer(options.store);
    this.#build = { sealer: this.#sealer, outbound: this.#outbound, logger: this.#logger };
    this.ready = this.#load(options.cipher);
    // A load failure is logged here and rejects `ready`; writes then fail with UNAVAILABLE.
    this.#queue = this.ready.catch((error: unknown) => {
      this.#logger.error({ err: error }, 'integrations failed to load');
    });
  }

  /** Number of integrations. */
  get size(): number {
    return this.#live.size;
  }

  /** Every integration, in creation order, secrets redacted. */
  list(): Integration[] {
    return [...this.#live.values()].map(viewOf);
  }

  /** One integration, secrets redacted. */
  get(id: string): Integration | undefined {
    const live = this.#live.get(id);
    return live && viewOf(live);
  }

  /** Creates an integration; `ALREADY_EXISTS` if the id is taken. */
  create(input: IntegrationInput): Promise<Integration> {
    return this.#run(async () => {
      const valid = validateIntegrationInput(input);
      if (this.#live.has(valid.id))
        throw new McpKitError('ALREADY_EXISTS', `Integration ${quote(valid.id)} already exists`);
      const change = { input: valid, current: undefined, revision: firstRevision() };
      const live = await buildNext(change, this.#build);
      await this.#commit(valid.id, live, undefined);
      const integration = viewOf(live);
      this.#logger.info({ integration: valid.id }, 'integration created');
      this.emit('created', { integration });
      return integration;
    });
  }

  /**
   * Replaces an integration's fields (`PUT` semantics: omitted tools, resources, prompts and model
   * are removed). Secrets follow their own rule: omitted or redacted keeps, `null` removes.
   */
  replace(
    id: string,
    input: Omit<IntegrationInput, 'id'> & { id?: string },
    options: IntegrationWriteOptions = {},
  ) {
    return this.#run(async () => {
      const current = this.#require(id, options);
      const valid = validateIntegrationInput(input, id);
      return this.#change(current, valid, 'updated');
    });
  }

  /** Changes the fields given and keeps the rest. */
  update(id: string, changes: Partial<Omit<IntegrationInput, 'id'>>, options: IntegrationWriteOptions = {}) {
    return this.#run(async () => {
      const current = this.#require(id, options);
      const base = inputOf(current);
      const valid = validateIntegrationInput({ ...base, ...changes, id }, id);
      return this.#change(current, valid, 'updated');
    });
  }

  /** Deletes an integration and takes its contributions out of the catalogs. Returns whether it existed. */
  delete(id: string, options: IntegrationWriteOptions = {}): Promise<boolean> {
    return this.#run(async () => {
      const current = this.#live.get(id);
      if (!current) {
        if (options.ifMatch !== undefined)
          throw new McpKitError('NOT_FOUND', `Integration ${quote(id)} not found`);
        return false;
      }
      this.#require(id, options);
      const integration = viewOf(current);
      this.#remove(current.handles);
      try {
        await this.#save(new Map([...this.#live].filter(([key]) => key !== id)));
      } catch (error) {
        this.#restore(id, current);
        throw error;
      }
      this.#live.delete(id);
      this.#logger.info({ integration: id }, 'integration deleted');
      this.emit('deleted', { integration });
      return true;
    });
  }

  /** Enables an integration: its contributions appear in the catalogs. */
  enable(id: string, options: IntegrationWriteOptions = {}): Promise<Integration> {
    return this.#setEnabled(id, true, options);
  }

  /** Disables an integration: its contributions leave the catalogs (it stays stored). */
  disable(id: string, options: IntegrationWriteOptions = {}): Promise<Integration> {
    return this.#setEnabled(id, false, options);
  }

  /**
   * Attaches a tool with a handler to an integration, as `<id>__<name>`. Attached tools live in
   * memory only (attach them again at start); they are in the catalog while an integration with
   * this id exists and is enabled, whenever it is created.
   */
  attachTool(id: string, definition: ToolDefinition<any>): AttachedTool {
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
    const live = this.#live.get(id);
    if (live?.stored.enabled) {
      live.handles.push(this.#tools.register(namespaced));
      live.contributes.tools.push(name);
    }
    attached.set(local, definition);
    this.emit('toolAttached', { id, tool: name });
    return {
      name,
      remove: () => {
        if (this.#attached.get(id)?.get(local) !== definition) return;
        this.#attached.get(id)!.delete(local);
        const current = this.#live.get(id);
        if (current) {
          current.handles = current.handles.filter((h) => {
            if (h.key !== name) return true;
            h.remove();
            return false;
          });
          current.contributes.tools = current.contributes.tools.filter((t) => t !== name);
        }
        this.emit('toolDetached', { id, tool: name });
      },
    };
  }

  /**
   * The model configuration with its API key in clear, for the code that calls the model. Never log
   * it. `undefined` when the integration has no model; `NOT_FOUND` when there is no such integration.
   */
  modelConfig(id: string): ModelConfig | undefined {
    const live = this.#live.get(id);
    if (!live) throw new McpKitError('NOT_FOUND', `Integration ${quote(id)} not found`);
    const model = live.stored.model;
    if (!model) return undefined;
    const { apiKey: _sealed, ...rest } = model;
    return { ...structuredClone(rest), ...(live.apiKey !== undefined && { apiKey: live.apiKey }) };
  }

  /** One of an integration's secrets in clear (for attached tools' handlers). Never log it. */
  secret(id: string, name: string): string | undefined {
    return this.#live.get(id)?.secrets[name];
  }

  /**
   * Re-seals every secret under `cipher` and saves the result as one atomic write; from then on new
   * secrets are sealed with it. If the save fails, nothing changes.
   */
  rotateKey(cipher: SecretCipher): Promise<void> {
    return this.#run(() => this.#reseal(cipher, 'a new key'));
  }

  /**
   * Re-seals every secret under `cipher` in one atomic write; only once it is saved do the live
   * entries, the key check and the cipher for new secrets change. Logs and emits `keyRotated`.
   */
  async #reseal(cipher: SecretCipher, under: string): Promise<void> {
    const next = new Map<string, Live>();
    let count = 0;
    for (const [id, live] of this.#live) {
      next.set(id, { ...live, stored: await sealAll(cipher, live) });
      count += secretCount(live);
    }
    const keyCheck = await sealKeyCheck(cipher);
    await this.#store.save(this.#snapshot(next, keyCheck));
    this.#sealer.use(cipher, keyCheck);
    for (const [id, live] of next) this.#live.get(id)!.stored = live.stored;
    this.#logger.info(
      { keyId: cipher.keyId, secrets: count },
      `integration secrets re-sealed under ${under}`,
    );
    this.emit('keyRotated', { keyId: cipher.keyId, secrets: count });
  }

  /** Waits for pending writes and releases the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    await this.#store.close?.();
  }

  // ---- internals ---------------------------------------------------------------------------

  #run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(async () => {
      if (this.#closed) throw new McpKitError('UNAVAILABLE', 'The integration manager is closed');
      try {
        await this.ready;
      } catch {
        throw new McpKitError('UNAVAILABLE', 'Integrations failed to load; see the server log');
      }
      return fn();
    });
    this.#queue = result.catch(() => {});
    return result;
  }

  #require(id: string, options: IntegrationWriteOptions): Live {
    const live = this.#live.get(id);
    if (!live) throw new McpKitError('NOT_FOUND', `Integration ${quote(id)} not found`);
    if (options.ifMatch !== undefined) {
      const tags = typeof options.ifMatch === 'string' ? [options.ifMatch] : options.ifMatch;
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

  async #setEnabled(id: string, enabled: boolean, options: IntegrationWriteOptions): Promise<Integration> {
    const result = await this.#run(async () => {
      const current = this.#require(id, options);
      if (current.stored.enabled === enabled) return viewOf(current);
      const valid = validateIntegrationInput({ ...inputOf(current), enabled }, id);
      return this.#change(current, valid, enabled ? 'enabled' : 'disabled');
    });
    return result;
  }

  async #change(
    current: Live,
    valid: IntegrationInput,
    event: 'updated' | 'enabled' | 'disabled',
  ): Promise<Integration> {
    const previous = viewOf(current);
    const change = { input: valid, current, revision: nextRevision(current.stored) };
    const live = await buildNext(change, this.#build);
    await this.#commit(valid.id, live, current);
    const integration = viewOf(live);
    this.#logger.info({ integration: valid.id, change: event }, 'integration changed');
    if (event === 'updated') this.emit('updated', { integration, previous });
    else {
      if (previous.enabled !== integration.enabled) this.emit(event, { integration });
      this.emit('updated', { integration, previous });
    }
    return integration;
  }

  /** Swaps `next` in for `current` in the catalogs, saves, and commits; restores the catalogs on failure. */
  async #commit(id: string, next: Live, current: Live | undefined): Promise<void> {
    const contributions = this.#compile(next, 'write');
    if (current) this.#remove(current.handles);
    try {
      next.handles = next.stored.enabled ? this.#register(id, contributions, false) : [];
    } catch (error) {
      if (current) this.#restore(id, current);
      throw error;
    }
    next.contributes = this.#names(id, next, contributions);
    const all = new Map(this.#live);
    all.set(id, next);
    try {
      await this.#save(all);
    } catch (error) {
      this.#remove(next.handles);
      if (current) this.#restore(id, current);
      throw error;
    }
    this.#live.set(id, next);
  }

  /**
   * Puts an integration's contributions back in the catalogs after a change to it failed; a disabled
   * integration had none there, so it gets none back.
   */
  #restore(id: string, current: Live): void {
    current.handles = current.stored.enabled ? this.#register(id, this.#compile(current, 'load'), true) : [];
  }

  async #save(all: Map<string, Live>): Promise<void> {
    await this.#store.save(this.#snapshot(all, await this.#sealer.keyCheck()));
  }

  #snapshot(all: Map<string, Live>, keyCheck: string): IntegrationSnapshot {
    return { keyCheck, integrations: [...all.values()].map((l) => l.stored) };
  }

  #names(id: string, live: Live, c: Contributions): Integration['contributes'] {
    const attached = live.stored.enabled ? [...(this.#attached.get(id)?.keys() ?? [])] : [];
    return {
      tools: [...c.tools.map((t) => t.name), ...attached.map((n) => namespacedName(id, n))],
      resources: c.resources.map((r) => (r as { uri: string }).uri),
      prompts: c.prompts.map((p) => p.name),
    };
  }

  #remove(handles: RegistrationHandle[]): void {
    for (const handle of handles) handle.remove();
    handles.length = 0;
  }

  /**
   * Registers contributions and attached tools. `lenient` (load, rollback) skips what fails with a
   * warning; otherwise the first failure undoes the rest and throws an error naming the field.
   */
  #register(id: string, c: Contributions, lenient: boolean): RegistrationHandle[] {
    const handles: RegistrationHandle[] = [];
    const attempt = (field: string, fn: () => RegistrationHandle) => {
      try {
        handles.push(fn());
      } catch (error) {
        if (lenient) {
          this.#logger.warn({ integration: id, field, err: error }, 'integration contribution skipped');
          return;
        }
        this.#remove(handles);
        const message = error instanceof Error ? error.message : 'is invalid';
        if (error instanceof McpKitError && error.code === 'ALREADY_EXISTS')
          throw new McpKitError('CONFLICT', `${field}: ${message}`, { details: { field } });
        throw fieldError(field, `is invalid: ${message}`);
      }
    };
    if (lenient && c.tools.length > 1) {
      try {
        handles.push(...this.#tools.registerMany(c.tools));
      } catch {
        this.#remove(handles);
        for (const [i, t] of c.tools.entries()) attempt(`tools[${i}]`, () => this.#tools.register(t));
      }
    } else for (const [i, t] of c.tools.entries()) attempt(`tools[${i}]`, () => this.#tools.register(t));
    for (const [local, def] of this.#attached.get(id) ?? []) {
      attempt(`attached tool ${local}`, () => this.#tools.register(attachedDefinition(id, def)));
    }
    for (const [i, r] of c.resources.entries()) attempt(`resources[${i}]`, () => this.#resources.register(r));
    for (const [i, p] of c.prompts.entries()) attempt(`prompts[${i}]`, () => this.#prompts.register(p));
    return handles;
  }

  /** Compiles an integration's contributions (see {@link compileContributions}). */
  #compile(live: Live, mode: 'write' | 'load'): Contributions {
    return compileContributions(live, { declarative: this.#declarative, logger: this.#logger, mode });
  }

  async #load(cipherOption: SecretCipher | Promise<SecretCipher>): Promise<void> {
    const cipher = await cipherOption;
    this.#sealer.use(cipher);
    const snapshot = await this.#store.load();
    if (!snapshot) {
      this.emit('loaded', { count: 0 });
      return;
    }
    let stale = await this.#sealer.admit(snapshot.keyCheck);
    for (const stored of snapshot.integrations) {
      validateId(stored.id, `integrations[${stored.id}].id`);
      const { apiKey, secrets, stale: sealedBefore } = await this.#sealer.open(stored);
      stale ||= sealedBefore;
      const live: Live = {
        stored: {
          ...stored,
          tools: stored.tools ?? [],
          resources: stored.resources ?? [],
          prompts: stored.prompts ?? [],
        },
        apiKey,
        secrets,
        handles: [],
        contributes: { tools: [], resources: [], prompts: [] },
      };
      this.#live.set(stored.id, live);
    }
    const registerAll = () => {
      for (const [id, live] of this.#live) {
        const contributions = this.#compile(live, 'load');
        if (live.stored.enabled) live.handles = this.#register(id, contributions, true);
        live.contributes = this.#names(id, live, contributions);
      }
    };
    registerAll();
    if (stale) {
      // Sealed under a previous key: re-seal everything under the current one in one atomic write.
      await this.#reseal(cipher, 'the current key');
    }
    this.#logger.debug({ count: this.#live.size }, 'integrations loaded');
    this.emit('loaded', { count: this.#live.size });
  }
}
