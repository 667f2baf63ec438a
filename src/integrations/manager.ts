/**
 * IntegrationManager: integrations persisted through an {@link IntegrationStore}, their secrets
 * sealed by a {@link SecretCipher}, their tools, resources and prompts registered in the shared
 * catalogs under the integration's namespace (`<id>__<name>`).
 *
 * Every change runs in one queue: validate → seal secrets → compile contributions → swap them into
 * the catalogs → save the whole snapshot → commit and emit. A failed save puts the catalogs back.
 *
 * The manager coordinates; each step is its own file: `changes.ts` (the next state of a change, its
 * secrets resolved), `sealing.ts` (the cipher), `catalogEntries.ts` and `contributions.ts` (the
 * catalog entries), `storage.ts` (the table, the store, `If-Match`, the write that rolls back) and
 * `live.ts` (an integration in memory and the redacted view every API returns). An integration's
 * upstream MCP server (a stored URL, or a source attached in code) is connected after its write
 * commits and disconnected when it is replaced, disabled or deleted: `upstream.ts` (the connection),
 * `upstreamEntries.ts` (its catalog entries), `upstreamHttp.ts` (the HTTP transport).
 *
 * Backups (`export`, `import`) go through the same queue: `backup.ts` writes and reads the document,
 * and an import's integrations are checked whole, then swapped in and saved as one snapshot.
 *
 * Size: about 680 lines, most of them the public methods' documentation; the upstream wiring and the
 * import's plan live here because they follow the write queue's commits.
 */
import { EventEmitter } from 'eventemitter3';
import type { PromptCatalog } from '../catalog/prompts.js';
import type { ResourceCatalog } from '../catalog/resources.js';
import type { ToolCatalog, ToolDefinition } from '../catalog/tools.js';
import { McpKitError, quote } from '../core/errors.js';
import { type DeclarativeToolOptions, outboundOf } from '../declarative.js';
import { silentLogger } from '../logger.js';
import type { Logger } from '../types.js';
import {
  buildExport,
  conflictPolicy,
  type ImportIssue,
  type IntegrationExport,
  type IntegrationExportOptions,
  type IntegrationImportOptions,
  type IntegrationImportReport,
  issueOf,
  readExport,
} from './backup.js';
import { CatalogEntries, type EntrySwap } from './catalogEntries.js';
import { type BuildContext, buildNext } from './changes.js';
import { etagOf, firstRevision, inputOf, type Live, modelConfigOf, nextRevision, viewOf } from './live.js';
import { SecretSealer } from './sealing.js';
import { IntegrationTable, StaleWrite } from './storage.js';
import type {
  Integration,
  IntegrationEvents,
  IntegrationInput,
  IntegrationStore,
  ModelConfig,
  SecretCipher,
  SharedIntegrationStore,
  StoredIntegration,
} from './types.js';
import { type ResolvedLimits, resolveLimits, UpstreamLink } from './upstream.js';
import { loggerName, UpstreamEntries } from './upstreamEntries.js';
import { httpOpener, upstreamTarget } from './upstreamHttp.js';
import type { UpstreamLimits, UpstreamSource, UpstreamState } from './upstreamTypes.js';
import { validateId, validateIntegrationInput, validateNewId } from './validation.js';

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
  /** Bounds on what each upstream MCP server may offer and send back. */
  upstreamLimits?: UpstreamLimits;
  /**
   * Upstreams configured in code, by integration id (as {@link IntegrationManager.attachUpstream});
   * an integration that does not exist yet is created (named by `name`, else its id) once loaded.
   */
  upstreams?: Record<string, UpstreamSource & { name?: string }>;
  /**
   * Runs the catalog changes that apply another server's write (with a shared store): the server
   * passes one that keeps them from being announced to the other servers, which made them already.
   */
  replaying?: (apply: () => void) => void;
}

/** A retryable refusal while a shared store is out of reach. */
function unreachableStore(): McpKitError {
  return new McpKitError('UNAVAILABLE', 'The integration store is unavailable; try again later', {
    details: { retryAfterSeconds: 1 },
  });
}

function isUnavailable(error: unknown): boolean {
  return error instanceof McpKitError && error.code === 'UNAVAILABLE';
}

/** How many times a write is run again on a record another server changed meanwhile. */
const MAX_WRITE_ATTEMPTS = 5;
/** How long after a failed attempt to apply another server's write the store is read again. */
const RESYNC_RETRY_MS = 1000;

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

/** What {@link IntegrationManager.attachUpstream} returns. */
export interface AttachedUpstream {
  /** Disconnects the upstream and takes its entries out of the catalog. */
  remove(): Promise<void>;
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
  readonly #table: IntegrationTable;
  readonly #entries: CatalogEntries;
  readonly #build: BuildContext;
  readonly #logger: Logger;
  #queue: Promise<unknown>;
  #closed = false;
  readonly #catalogs: Pick<IntegrationManagerOptions, 'tools' | 'resources' | 'prompts'>;
  readonly #limits: ResolvedLimits;
  /** Upstreams attached in code, by integration id. */
  readonly #sources = new Map<string, UpstreamSource>();
  readonly #replaying: (apply: () => void) => void;
  /** With a shared store: stops hearing the other servers' writes. */
  #unwatch: (() => void) | undefined;
  /** With a shared store: a full read of it is queued and not started yet. */
  #resyncQueued = false;
  /** With a shared store that could not be read at start: writes wait (503) until it has been. */
  #unsynced = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: IntegrationManagerOptions) {
    super();
    const outbound = outboundOf(options.declarative ?? {});
    this.#logger = (options.logger ?? silentLogger).child({ component: 'integrations' });
    const sealer = new SecretSealer(options.store);
    this.#table = new IntegrationTable(options.store, sealer);
    this.#entries = new CatalogEntries({
      tools: options.tools,
      resources: options.resources,
      prompts: options.prompts,
      declarative: { ...options.declarative, outbound },
      logger: this.#logger,
      find: (id) => this.#table.get(id),
    });
    this.#build = { sealer, outbound, logger: this.#logger };
    this.#catalogs = { tools: options.tools, resources: options.resources, prompts: options.prompts };
    this.#limits = resolveLimits(options.upstreamLimits);
    this.#replaying = options.replaying ?? ((apply) => apply());
    const configured = Object.entries(options.upstreams ?? {});
    for (const [id, source] of configured) this.attachUpstream(id, source);
    // A shared store is watched before it is loaded, so no write made meanwhile goes unheard.
    const shared = this.#table.shared;
    if (shared) this.#watch(shared);
    this.ready = this.#load(options.cipher).then(() => this.#createConfigured(configured));
    // A load failure is logged here and rejects `ready`; writes then fail with UNAVAILABLE.
    this.#queue = this.ready.catch((error: unknown) => {
      this.#logger.error({ err: error }, 'integrations failed to load');
    });
  }

  /** Number of integrations. */
  get size(): number {
    return this.#table.size;
  }

  /** Every integration, in creation order, secrets redacted. */
  list(): Integration[] {
    return [...this.#table.values()].map(viewOf);
  }

  /** One integration, secrets redacted. */
  get(id: string): Integration | undefined {
    const live = this.#table.get(id);
    return live && viewOf(live);
  }

  /** Creates an integration; `ALREADY_EXISTS` if the id is taken. */
  create(input: IntegrationInput): Promise<Integration> {
    return this.#run(() => this.#createNow(input));
  }

  async #createNow(input: IntegrationInput): Promise<Integration> {
    {
      const valid = validateIntegrationInput(input);
      if (this.#table.get(valid.id))
        throw new McpKitError('ALREADY_EXISTS', `Integration ${quote(valid.id)} already exists`);
      this.#checkUpstreamInput(valid);
      const change = { input: valid, current: undefined, revision: firstRevision() };
      const live = await buildNext(change, this.#build);
      await this.#commit({ next: live, current: undefined });
      this.#startUpstream(live);
      const integration = viewOf(live);
      this.#logger.info({ integration: valid.id }, 'integration created');
      this.emit('created', { integration });
      return integration;
    }
  }

  /** Creates the integrations of configured upstreams that do not exist yet. */
  async #createConfigured(configured: Array<[string, { name?: string }]>): Promise<void> {
    for (const [id, source] of configured) {
      await this.#attempts(async () => {
        if (!this.#table.get(id)) await this.#createNow({ id, name: source.name ?? id });
      });
    }
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
      const current = this.#table.require(id, options.ifMatch);
      const valid = validateIntegrationInput(input, id);
      return this.#change(current, valid, 'updated');
    });
  }

  /** Changes the fields given and keeps the rest. */
  update(id: string, changes: Partial<Omit<IntegrationInput, 'id'>>, options: IntegrationWriteOptions = {}) {
    return this.#run(async () => {
      const current = this.#table.require(id, options.ifMatch);
      const valid = validateIntegrationInput({ ...inputOf(current), ...changes, id }, id);
      return this.#change(current, valid, 'updated');
    });
  }

  /** Deletes an integration and takes its contributions out of the catalogs. Returns whether it existed. */
  delete(id: string, options: IntegrationWriteOptions = {}): Promise<boolean> {
    return this.#run(async () => {
      const current = this.#table.get(id);
      if (!current) {
        if (options.ifMatch !== undefined)
          throw new McpKitError('NOT_FOUND', `Integration ${quote(id)} not found`);
        return false;
      }
      this.#table.require(id, options.ifMatch);
      const integration = viewOf(current);
      this.#entries.remove(current);
      await this.#table.write({ id, next: undefined, undo: () => this.#entries.restore(current) });
      await this.#stopUpstream(current);
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
    const { name, detach } = this.#entries.attach(id, definition);
    this.emit('toolAttached', { id, tool: name });
    return {
      name,
      remove: () => {
        if (detach()) this.emit('toolDetached', { id, tool: name });
      },
    };
  }

  /**
   * The model configuration with its API key in clear, for the code that calls the model. Never log
   * it. `undefined` when the integration has no model; `NOT_FOUND` when there is no such integration.
   */
  modelConfig(id: string): ModelConfig | undefined {
    return modelConfigOf(this.#table.require(id));
  }

  /** One of an integration's secrets in clear (for attached tools' handlers). Never log it. */
  secret(id: string, name: string): string | undefined {
    return this.#table.get(id)?.secrets[name];
  }

  /**
   * Re-seals every secret under `cipher` and saves the result as one atomic write; from then on new
   * secrets are sealed with it. If the save fails, nothing changes.
   */
  rotateKey(cipher: SecretCipher): Promise<void> {
    return this.#run(() => this.#reseal(cipher, 'a new key'));
  }

  /**
   * A backup of the integrations (all, or `options.ids`) that another server can import. Secrets are
   * sealed under `options.transferKey` by default (the importer needs the same passphrase); this
   * server's secret key never leaves it. `secrets: 'plaintext'` puts them in clear and
   * `secrets: 'omit'` leaves them out. Runs after the writes before it, so it sees one state.
   *
   * @example
   * ```ts
   * const backup = await server.integrations.export({ transferKey: process.env.TRANSFER_KEY });
   * await other.integrations.import(backup, { transferKey: process.env.TRANSFER_KEY, onConflict: 'skip' });
   * ```
   */
  export(options: IntegrationExportOptions = {}): Promise<IntegrationExport> {
    return this.#run(async () => {
      const ids = options.ids;
      const lives = ids
        ? [...new Set(ids)].map((id) => {
            validateId(id, 'ids');
            return this.#table.require(id);
          })
        : [...this.#table.values()];
      const document = await buildExport(lives, options);
      this.#logger.info(
        { integrations: lives.length, secrets: document.secrets.mode },
        'integrations exported',
      );
      this.emit('exported', { count: lives.length, secrets: document.secrets.mode });
      return document;
    });
  }

  /**
   * Imports an export of {@link export}, all or nothing: every integration is read, its secrets
   * opened with `options.transferKey` and sealed again under this server's key, validated, checked
   * against the outbound policy and the catalogs; only when none has a problem are they all put in
   * the catalogs and saved as one snapshot (a failed save puts everything back). An id the server
   * already has follows `onConflict` (`fail` by default, `skip`, `replace`). With problems it throws
   * (`INVALID_ARGUMENT` if any integration is invalid, else `CONFLICT`) with `details.issues` and
   * writes nothing; `dryRun` reports instead of writing, problems or not. A document that cannot be
   * read at all (its format, a wrong transfer key) throws `INVALID_ARGUMENT`, dry run or not.
   *
   * @example
   * ```ts
   * const report = await server.integrations.import(backup, { transferKey, dryRun: true });
   * if (report.issues.length === 0) await server.integrations.import(backup, { transferKey });
   * ```
   */
  import(document: unknown, options: IntegrationImportOptions = {}): Promise<IntegrationImportReport> {
    const onConflict = conflictPolicy(options.onConflict);
    const dryRun = options.dryRun === true;
    return this.#run(async () => {
      const read = await readExport(document, options.transferKey);
      const report: IntegrationImportReport = {
        dryRun,
        applied: false,
        onConflict,
        secrets: read.mode,
        created: [],
        replaced: [],
        skipped: [],
        issues: [],
      };
      const plans: EntrySwap[] = [];
      const seen = new Set<string>();
      for (const entry of read.entries) {
        if ('issue' in entry) {
          report.issues.push(entry.issue);
          continue;
        }
        const { index, input } = entry;
        const id = input.id;
        const at = `integrations[${index}]`;
        if (seen.has(id)) {
          report.issues.push({
            index,
            id,
            kind: 'duplicate',
            field: `${at}.id`,
            message: `${at}.id ${quote(id)} is in the document twice`,
          });
          continue;
        }
        seen.add(id);
        const current = this.#table.get(id);
        if (current && onConflict === 'skip') {
          report.skipped.push(id);
          continue;
        }
        if (current && onConflict === 'fail') {
          report.issues.push({
            index,
            id,
            kind: 'exists',
            field: `${at}.id`,
            message: `${at}: integration ${quote(id)} already exists (onConflict: fail)`,
          });
          continue;
        }
        try {
          this.#checkUpstreamInput(input);
          const revision = current ? nextRevision(current.stored) : firstRevision();
          const next = await buildNext({ input, current, revision }, this.#build);
          this.#entries.check({ next, current });
          plans.push({ next, current });
          (current ? report.replaced : report.created).push(id);
        } catch (error) {
          report.issues.push(issueOf(error, { index, id }));
        }
      }
      if (dryRun) return report;
      if (report.issues.length > 0) throw importRefused(report.issues);
      await this.#commitAll(plans);
      for (const { next, current } of plans) {
        if (current) await this.#stopUpstream(current);
        this.#startUpstream(next);
      }
      report.applied = true;
      this.#logger.info(
        { created: report.created.length, replaced: report.replaced.length, skipped: report.skipped.length },
        'integrations imported',
      );
      for (const { next, current } of plans) {
        const integration = viewOf(next);
        if (current) this.emit('updated', { integration, previous: viewOf(current) });
        else this.emit('created', { integration });
      }
      this.emit('imported', { created: report.created, replaced: report.replaced, skipped: report.skipped });
      return report;
    });
  }

  /**
   * Attaches an upstream MCP server to the integration `id` in code: a program over stdio
   * (`stdioUpstream()` from `mcpkit/node`), or any SDK transport. Like attached tools, it lives in
   * memory only and is connected while an integration with this id exists and is enabled; its
   * entries appear as `<id>__<name>` and `upstream://<id>/<uri>`. An integration with an upstream
   * URL of its own cannot take one.
   *
   * @example
   * ```ts
   * import { stdioUpstream } from 'mcpkit/node';
   * await server.integrations.create({ id: 'files', name: 'Files' });
   * server.integrations.attachUpstream('files', stdioUpstream({ command: 'node', args: ['files-server.js'] }));
   * ```
   */
  attachUpstream(id: string, source: UpstreamSource): AttachedUpstream {
    // An upstream's integration is created under this id when it does not exist yet.
    validateNewId(id);
    if (typeof source?.connect !== 'function') throw new TypeError('source.connect must be a function');
    if (this.#sources.has(id))
      throw new TypeError(`Integration ${quote(id)} already has an upstream attached`);
    if (this.#table.get(id)?.stored.upstream)
      throw new TypeError(`Integration ${quote(id)} has an upstream URL of its own`);
    this.#sources.set(id, source);
    const live = this.#table.get(id);
    if (live) this.#startUpstream(live);
    return {
      remove: async () => {
        if (this.#sources.get(id) !== source) return;
        this.#sources.delete(id);
        const current = this.#table.get(id);
        if (current) await this.#stopUpstream(current);
      },
    };
  }

  /** Every upstream's state, by integration id. */
  upstreams(): Record<string, UpstreamState> {
    const out: Record<string, UpstreamState> = {};
    for (const live of this.#table.values())
      if (live.upstream) out[live.stored.id] = live.upstream.link.state;
    return out;
  }

  /** Waits for pending writes, disconnects the upstreams and releases the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch?.();
    clearTimeout(this.#retryTimer);
    await this.#queue.catch(() => {});
    await Promise.all([...this.#table.values()].map((live) => this.#stopUpstream(live)));
    await this.#table.close();
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Runs a write after the ones before it, once the store is loaded and while the manager is open. */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(async () => {
      if (this.#closed) throw new McpKitError('UNAVAILABLE', 'The integration manager is closed');
      try {
        await this.ready;
      } catch {
        throw new McpKitError('UNAVAILABLE', 'Integrations failed to load; see the server log');
      }
      if (this.#unsynced) throw unreachableStore();
      return this.#attempts(fn);
    });
    this.#queue = result.catch(() => {});
    return result;
  }

  /**
   * Runs a write; with a shared store, a write refused because another server changed a record it
   * replaces reads those records again and runs once more on them: an `If-Match` write then fails
   * with `PRECONDITION_FAILED`, a create with `ALREADY_EXISTS`, and an unconditional one applies to
   * the fresh record.
   */
  async #attempts<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!(error instanceof StaleWrite)) throw error;
        if (attempt >= MAX_WRITE_ATTEMPTS) {
          throw new McpKitError(
            'CONFLICT',
            'The integration kept changing on other servers while this write was made; try again',
          );
        }
        await this.#refresh(error.ids);
      }
    }
  }

  // ---- a store shared with other servers ---------------------------------------------------

  /** Hears the other servers' writes, and applies them in this manager's queue. */
  #watch(shared: SharedIntegrationStore): void {
    this.#unwatch = shared.watch({
      changed: (ids) => this.#remote(() => this.#refresh(ids)),
      resync: () => this.#queueResync(),
    });
  }

  #queueResync(): void {
    if (this.#resyncQueued || this.#closed) return;
    this.#resyncQueued = true;
    this.#remote(async () => {
      this.#resyncQueued = false;
      await this.#resync();
    });
  }

  /** Runs `fn` in the write queue once loaded; if it fails, the whole store is read again later. */
  #remote(fn: () => Promise<void>): void {
    const result = this.#queue.then(async () => {
      if (this.#closed) return;
      try {
        await this.ready;
      } catch {
        return;
      }
      await fn();
    });
    this.#queue = result.catch((error: unknown) => {
      this.#logger.warn({ err: error }, 'integrations changed on another server not applied yet; retrying');
      this.#resyncLater();
    });
  }

  /** Reads the shared store again in a moment (once, however often it is asked). */
  #resyncLater(): void {
    if (this.#closed || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#queueResync();
    }, RESYNC_RETRY_MS);
    this.#retryTimer.unref?.();
  }

  /** Reads the records `ids` from the shared store again and applies them. */
  async #refresh(ids: readonly string[]): Promise<void> {
    const shared = this.#table.shared!;
    for (const id of ids) await this.#applyRemote(id, await shared.fetch(id));
  }

  /**
   * Reads the whole shared store and applies every difference. A store that lost the data this
   * server read (Redis restarted without persistence) first gets back every record of this server's
   * copy it does not hold now.
   */
  async #resync(): Promise<void> {
    const shared = this.#table.shared!;
    // First: if the store lost the data this server read, its copy goes back (what is there stays).
    if (shared.restore && (await shared.restore(await this.#table.snapshot()))) {
      this.#logger.warn(
        { count: this.#table.size },
        "the shared integration store lost its data; this server's copy was put back",
      );
    }
    const snapshot = await this.#table.reload();
    this.#unsynced = false;
    if (!snapshot) return;
    const ids = new Set<string>();
    for (const stored of snapshot.integrations) {
      ids.add(stored.id);
      await this.#applyRemote(stored.id, stored);
    }
    for (const live of [...this.#table.values()])
      if (!ids.has(live.stored.id)) await this.#applyRemote(live.stored.id, undefined);
  }

  /**
   * Makes the integration `id` what another server stored (`undefined`: deleted): the table, the
   * catalogs (announced to this server's clients only), the upstream and the events.
   */
  async #applyRemote(id: string, stored: StoredIntegration | undefined): Promise<void> {
    const current = this.#table.get(id);
    if (!stored) {
      if (!current) return;
      const integration = viewOf(current);
      this.#replaying(() => this.#entries.remove(current));
      this.#table.set(id, undefined);
      await this.#stopUpstream(current);
      this.#logger.debug({ integration: id }, 'integration deleted on another server');
      this.emit('deleted', { integration });
      return;
    }
    if (current && etagOf(current.stored) === etagOf(stored)) {
      // The same revision (re-sealed under another key, perhaps): the record, nothing else.
      current.stored = { ...current.stored, ...stored };
      return;
    }
    let live: Live;
    try {
      live = (await this.#table.open(stored)).live;
    } catch (error) {
      // A record this server cannot open (another key): it keeps its copy, and says so.
      this.#logger.error(
        { integration: id, err: error },
        'integration changed on another server not applied',
      );
      return;
    }
    const previous = current && viewOf(current);
    this.#replaying(() => {
      if (current) this.#entries.remove(current);
      this.#table.set(id, live);
      this.#entries.load(live);
    });
    if (current) await this.#stopUpstream(current);
    this.#startUpstream(live);
    const integration = viewOf(live);
    this.#logger.debug({ integration: id }, 'integration changed on another server');
    if (!previous) this.emit('created', { integration });
    else {
      if (previous.enabled !== integration.enabled)
        this.emit(integration.enabled ? 'enabled' : 'disabled', { integration });
      this.emit('updated', { integration, previous });
    }
  }

  async #setEnabled(id: string, enabled: boolean, options: IntegrationWriteOptions): Promise<Integration> {
    const result = await this.#run(async () => {
      const current = this.#table.require(id, options.ifMatch);
      if (current.stored.enabled === enabled) return viewOf(current);
      const valid = validateIntegrationInput({ ...inputOf(current), enabled }, id);
      return this.#change(current, valid, enabled ? 'enabled' : 'disabled');
    });
    return result;
  }

  /** Applies a valid input to an existing integration; emits `updated` (and `enabled`/`disabled`). */
  async #change(
    current: Live,
    valid: IntegrationInput,
    event: 'updated' | 'enabled' | 'disabled',
  ): Promise<Integration> {
    this.#checkUpstreamInput(valid);
    const previous = viewOf(current);
    const change = { input: valid, current, revision: nextRevision(current.stored) };
    const live = await buildNext(change, this.#build);
    await this.#commit({ next: live, current });
    await this.#stopUpstream(current);
    this.#startUpstream(live);
    const integration = viewOf(live);
    this.#logger.info({ integration: valid.id, change: event }, 'integration changed');
    if (event === 'updated') this.emit('updated', { integration, previous });
    else {
      if (previous.enabled !== integration.enabled) this.emit(event, { integration });
      this.emit('updated', { integration, previous });
    }
    return integration;
  }

  /** An integration with an upstream attached in code cannot take an upstream URL too. */
  #checkUpstreamInput(valid: IntegrationInput): void {
    if (valid.upstream && this.#sources.has(valid.id)) {
      throw new McpKitError(
        'CONFLICT',
        `upstream: integration ${quote(valid.id)} has an upstream attached in code`,
        {
          details: { field: 'upstream' },
        },
      );
    }
  }

  /** Connects the upstream of an enabled integration (its stored URL, or one attached in code). */
  #startUpstream(live: Live): void {
    const { stored } = live;
    const source = this.#sources.get(stored.id);
    const spec = stored.upstream;
    if (this.#closed || live.upstream || !stored.enabled || (!spec && !source)) return;
    const id = stored.id;
    if (spec && source)
      this.#logger.warn(
        { integration: id },
        'integration has a stored upstream URL; the one attached in code is not used',
      );
    const entries = new UpstreamEntries({
      id,
      ...this.#catalogs,
      logger: this.#logger,
      // A stored upstream contributes the kinds its integration's `types` name; one attached in code, all.
      types: spec ? stored.types : ['tools', 'resources', 'prompts'],
      forwardCaller: (spec ?? source)?.forwardCaller ?? 'none',
      hideUnavailable: (spec ?? source)?.hideUnavailable ?? false,
    });
    let open: () => unknown;
    try {
      open = spec
        ? httpOpener({
            spec,
            secrets: live.secrets,
            outbound: this.#build.outbound,
            maxResponseBytes: this.#limits.maxResponseBytes,
          })
        : () => source!.connect();
    } catch (error) {
      this.#logger.warn({ integration: id, err: error }, 'upstream not started');
      return;
    }
    const link = new UpstreamLink({
      id,
      transport: spec ? 'http' : 'code',
      target: spec ? upstreamTarget(spec.url) : (source?.label ?? 'attached in code'),
      open: open as () => never,
      limits: this.#limits,
      logger: this.#logger,
      onOffer: (offer) => entries.apply(offer),
      onResourceUpdated: (uri) => entries.updated(uri),
      onRequest: ({ method, outcome }) => this.emit('upstreamRequest', { id, method, outcome }),
      onLog: ({ level, logger, data }) =>
        this.emit('upstreamLog', { id, level, logger: loggerName(id, logger), data }),
      secrets: Object.values(live.secrets ?? {}),
    });
    entries.bind(link);
    live.upstream = { link, entries };
    link.start();
  }

  /** Disconnects an integration's upstream and takes its entries out of the catalogs. */
  async #stopUpstream(live: Live): Promise<void> {
    const upstream = live.upstream;
    if (!upstream) return;
    delete live.upstream;
    await upstream.link.stop();
    upstream.entries.clear();
  }

  /** Swaps the next state into the catalogs and saves it; on a failed save, the catalogs go back. */
  async #commit(swap: EntrySwap): Promise<void> {
    const { next, current } = swap;
    this.#entries.swap(swap);
    const undo = () => {
      this.#entries.remove(next);
      if (current) this.#entries.restore(current);
    };
    await this.#table.write({ id: next.stored.id, next, undo });
  }

  /**
   * Swaps every plan into the catalogs and saves them as one snapshot; if a swap or the save fails,
   * every swap made is undone (last first) and nothing is saved.
   */
  async #commitAll(plans: readonly EntrySwap[]): Promise<void> {
    const undo = ({ next, current }: EntrySwap) => {
      this.#entries.remove(next);
      if (current) this.#entries.restore(current);
    };
    const swapped: EntrySwap[] = [];
    try {
      for (const plan of plans) {
        this.#entries.swap(plan);
        swapped.push(plan);
      }
    } catch (error) {
      for (const plan of swapped.reverse()) undo(plan);
      throw error;
    }
    await this.#table.writeAll(
      plans.map((plan) => ({ id: plan.next.stored.id, next: plan.next, undo: () => undo(plan) })),
    );
  }

  /** Re-seals every secret under `cipher` (`under` says which key, for the log); emits `keyRotated`. */
  async #reseal(cipher: SecretCipher, under: string): Promise<void> {
    const count = await this.#table.reseal(cipher);
    this.#logger.info(
      { keyId: cipher.keyId, secrets: count },
      `integration secrets re-sealed under ${under}`,
    );
    this.emit('keyRotated', { keyId: cipher.keyId, secrets: count });
  }

  /** Loads the store, puts what it holds in the catalogs, and re-seals what an old key sealed. */
  async #load(cipherOption: SecretCipher | Promise<SecretCipher>): Promise<void> {
    const cipher = await cipherOption;
    let loaded: Awaited<ReturnType<IntegrationTable['load']>>;
    try {
      loaded = await this.#table.load(cipher);
    } catch (error) {
      if (!(this.#table.shared && isUnavailable(error))) throw error;
      // A shared store out of reach at start: the server starts, and reads it once it is back.
      this.#logger.warn('the shared integration store is unreachable; integrations are read once it is back');
      this.#unsynced = true;
      this.#resyncLater();
      this.emit('loaded', { count: 0 });
      return;
    }
    if (!loaded) {
      this.emit('loaded', { count: 0 });
      return;
    }
    for (const live of this.#table.values()) {
      this.#entries.load(live);
      this.#startUpstream(live);
    }
    // Sealed under a previous key: re-seal everything under the current one in one atomic write.
    if (loaded.stale) await this.#attempts(() => this.#reseal(cipher, 'the current key'));
    this.#logger.debug({ count: this.#table.size }, 'integrations loaded');
    this.emit('loaded', { count: this.#table.size });
  }
}

/** The error of an import with problems: nothing was written. */
function importRefused(issues: ImportIssue[]): McpKitError {
  const invalid = issues.some((i) => i.kind === 'invalid' || i.kind === 'duplicate');
  return new McpKitError(
    invalid ? 'INVALID_ARGUMENT' : 'CONFLICT',
    `The import was refused, nothing was written: ${issues.length} problem${issues.length === 1 ? '' : 's'} (the first: ${issues[0]!.message})`,
    { details: { issues } },
  );
}
