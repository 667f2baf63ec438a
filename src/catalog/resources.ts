/**
 * The resource catalog: static resources and URI templates, reads through the TTL cache, per-URI
 * subscriptions (with `watch` hooks for sources that must be told). Size: about 430 lines, most of
 * them the public types' documentation.
 */
import type {
  Annotations,
  BlobResourceContents,
  Icon,
  ReadResourceResult,
  Resource,
  ResourceTemplateType as ResourceTemplate,
  TextResourceContents,
} from '@modelcontextprotocol/server';
import { McpKitError, quote } from '../core/errors.js';
import type { CallerIdentity } from '../types.js';
import { ResourceCache, type ResourceCacheStats } from './cache.js';
import { type CatalogHooks, type RegistrationHandle, Registry } from './registry.js';
import { type TemplateVariables, UriTemplate } from './uriTemplate.js';

/**
 * A completion callback for a prompt argument or a template variable: `value` is what the client
 * typed so far, `context.arguments` the other arguments it already chose, and `context.caller` who
 * is asking (when the policy layer identified one), so a completer can leave out what that caller
 * should not see. For a resource template, values whose completed URI the caller may not read are
 * dropped after the completer answers.
 */
export type Completer = (
  value: string,
  context: { arguments?: Record<string, string>; caller?: CallerIdentity },
) => readonly string[] | Promise<readonly string[]>;

/** What a resource reader receives. */
export interface ResourceContext {
  readonly signal: AbortSignal;
  readonly sessionId?: string;
  readonly caller?: CallerIdentity;
}

type ContentsLike = Omit<TextResourceContents, 'uri'> | Omit<BlobResourceContents, 'uri'>;

/**
 * What a reader may return: a string (text), bytes (a blob), one contents object or an array of
 * them (`uri` defaults to the resource's), or a full `ReadResourceResult`.
 */
export type ResourceReadReturn =
  | string
  | Uint8Array
  | (ContentsLike & { uri?: string })
  | Array<ContentsLike & { uri?: string }>
  | ReadResourceResult;

interface ResourceMetadata {
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  annotations?: Annotations;
  icons?: Icon[];
  _meta?: Record<string, unknown>;
  /**
   * Called when the first subscriber of a URI this entry serves arrives (the returned function is
   * called when the last one leaves): for a source that must be told to send updates, such as an
   * upstream MCP server's `resources/subscribe`. Updates still reach subscribers through
   * `notifyUpdated`.
   */
  watch?(uri: string): () => void;
}

/** A static resource at a fixed URI. */
export interface ResourceDefinition extends ResourceMetadata {
  uri: string;
  /**
   * How long a read is cached, in ms; `0` reads every time. Default: the server's `cacheTtlMs`. The
   * cache is shared by every caller: leave it off for content that depends on who asks.
   */
  ttlMs?: number;
  size?: number;
  read(uri: string, ctx: ResourceContext): ResourceReadReturn | Promise<ResourceReadReturn>;
}

/** A family of resources behind an RFC 6570 URI template. */
export interface ResourceTemplateDefinition extends ResourceMetadata {
  uriTemplate: string;
  /** How long each matched URI's read is cached, in ms; `0` reads every time. Default: `cacheTtlMs`. */
  ttlMs?: number;
  /** Lists concrete resources of this template for `resources/list`. */
  list?(ctx: ResourceContext): Resource[] | Promise<Resource[]>;
  /** Completions for the template's variables, by variable name. */
  complete?: Record<string, Completer>;
  read(
    uri: string,
    variables: TemplateVariables,
    ctx: ResourceContext,
  ): ResourceReadReturn | Promise<ResourceReadReturn>;
}

interface StaticEntry {
  kind: 'static';
  definition: ResourceDefinition;
  listed: Resource;
}

interface TemplateEntry {
  kind: 'template';
  definition: ResourceTemplateDefinition;
  template: UriTemplate;
  listed: ResourceTemplate;
}

/** A listener for updates to one resource URI. */
export type ResourceUpdateListener = (uri: string) => void;

function metadataOf(d: ResourceMetadata) {
  return {
    name: d.name,
    ...(d.title !== undefined && { title: d.title }),
    ...(d.description !== undefined && { description: d.description }),
    ...(d.mimeType !== undefined && { mimeType: d.mimeType }),
    ...(d.annotations && { annotations: d.annotations }),
    ...(d.icons && { icons: d.icons }),
    ...(d._meta && { _meta: d._meta }),
  };
}

function checkUri(uri: unknown, what: string): string {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > 8192 || uri.includes('\0')) {
    throw new TypeError(`${what} must be a non-empty string without NUL bytes`);
  }
  return uri;
}

const CHUNK = 0x8000;

/** Base64 without Node's Buffer, so the core stays runtime-neutral. */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Normalises whatever a reader returned into a `ReadResourceResult`. */
export function toReadResult(
  value: ResourceReadReturn,
  uri: string,
  mimeType: string | undefined,
): ReadResourceResult {
  if (typeof value === 'string')
    return { contents: [{ uri, mimeType: mimeType ?? 'text/plain', text: value }] };
  if (value instanceof Uint8Array) {
    return { contents: [{ uri, mimeType: mimeType ?? 'application/octet-stream', blob: toBase64(value) }] };
  }
  if (Array.isArray(value)) {
    return {
      contents: value.map((c) => ({ uri, ...(mimeType && { mimeType }), ...c }) as TextResourceContents),
    };
  }
  if (typeof value === 'object' && value !== null && Array.isArray((value as ReadResourceResult).contents)) {
    return value as ReadResourceResult;
  }
  if (typeof value === 'object' && value !== null && ('text' in value || 'blob' in value)) {
    return { contents: [{ uri, ...(mimeType && { mimeType }), ...value } as TextResourceContents] };
  }
  throw new McpKitError('INTERNAL', `Resource reader for ${quote(uri)} returned an unsupported value`, {
    expose: false,
  });
}

/**
 * The shared resource catalog (`server.resources`): static resources, URI templates, and update
 * subscriptions that reach every subscribed session on every transport.
 *
 * @example
 * ```ts
 * server.resources.register({
 *   uri: 'config://app',
 *   name: 'app-config',
 *   mimeType: 'application/json',
 *   read: () => JSON.stringify(config),
 * });
 * server.resources.register({
 *   uriTemplate: 'users://{id}',
 *   name: 'user',
 *   read: (uri, { id }) => JSON.stringify(users.get(String(id))),
 * });
 * server.resources.notifyUpdated('config://app');
 * ```
 */
export class ResourceCatalog {
  readonly #static: Registry<StaticEntry, Resource>;
  readonly #templates: Registry<TemplateEntry, ResourceTemplate>;
  readonly #subscribers = new Map<string, Set<ResourceUpdateListener>>();
  /** The stop functions of `watch` hooks, by URI, while the URI has subscribers. */
  readonly #watches = new Map<string, () => void>();
  readonly #onUpdated: (uri: string) => void;
  readonly #cache: ResourceCache;

  /** @internal */
  constructor({
    onChange,
    onUpdated = () => {},
    cache = new ResourceCache(),
    observe,
  }: CatalogHooks & { onUpdated?: (uri: string) => void; cache?: ResourceCache }) {
    this.#onUpdated = onUpdated;
    this.#cache = cache;
    // Any catalog change may change what a URI resolves to: cached reads go with it.
    const changed = () => {
      cache.clear();
      onChange();
    };
    this.#static = new Registry({ kind: 'Resource', toListed: (e) => e.listed, onChange: changed, observe });
    this.#templates = new Registry({
      kind: 'Resource template',
      toListed: (e) => e.listed,
      onChange: changed,
      observe,
    });
  }

  /** Hits, misses, evictions and size of the read cache. */
  get cacheStats(): ResourceCacheStats {
    return this.#cache.stats;
  }

  /** Drops the cached read of `uri` without telling subscribers (see {@link notifyUpdated}). */
  invalidate(uri: string): void {
    this.#cache.invalidate(uri);
  }

  /** Registers a URI template (`uriTemplate`). */
  register(definition: ResourceTemplateDefinition): RegistrationHandle;
  /** Registers a static resource (`uri`). */
  register(definition: ResourceDefinition): RegistrationHandle;
  register(definition: ResourceDefinition | ResourceTemplateDefinition): RegistrationHandle;
  register(definition: ResourceDefinition | ResourceTemplateDefinition): RegistrationHandle {
    if (typeof definition !== 'object' || definition === null)
      throw new TypeError('resource must be an object');
    if (typeof definition.name !== 'string' || definition.name.length === 0) {
      throw new TypeError('resource name must be a non-empty string');
    }
    if (typeof definition.read !== 'function')
      throw new TypeError(`resource "${definition.name}": read must be a function`);
    if ('uriTemplate' in definition && definition.uriTemplate !== undefined) {
      const source = checkUri(definition.uriTemplate, 'uriTemplate');
      let template: UriTemplate;
      try {
        template = new UriTemplate(source);
      } catch (error) {
        throw new TypeError(
          `uriTemplate ${JSON.stringify(quote(source))} is invalid: ${(error as Error).message}`,
        );
      }
      const listed: ResourceTemplate = { uriTemplate: source, ...metadataOf(definition) };
      return this.#templates.add(source, { kind: 'template', definition, template, listed });
    }
    const def = definition as ResourceDefinition;
    const uri = checkUri(def.uri, 'uri');
    const listed: Resource = { uri, ...metadataOf(def), ...(def.size !== undefined && { size: def.size }) };
    return this.#static.add(uri, { kind: 'static', definition: def, listed });
  }

  /** Removes a static resource by URI or a template by its template string. */
  remove(uriOrTemplate: string): boolean {
    return this.#static.remove(uriOrTemplate) || this.#templates.remove(uriOrTemplate);
  }

  enable(uriOrTemplate: string): void {
    this.#registryOf(uriOrTemplate).setEnabled(uriOrTemplate, true);
  }

  disable(uriOrTemplate: string): void {
    this.#registryOf(uriOrTemplate).setEnabled(uriOrTemplate, false);
  }

  #registryOf(key: string): Registry<StaticEntry, Resource> | Registry<TemplateEntry, ResourceTemplate> {
    if (this.#static.has(key)) return this.#static;
    if (this.#templates.has(key)) return this.#templates;
    throw new McpKitError('NOT_FOUND', `Resource ${quote(key)} not found`);
  }

  /** Static resources as `resources/list` shows them (without template-listed ones). */
  listStatic(): readonly Resource[] {
    return this.#static.listed();
  }

  /**
   * The listed static resources when no template lists its own (then `list()` would answer the
   * same, and this array stays the same until the catalog changes); `undefined` otherwise.
   */
  fixedList(): readonly Resource[] | undefined {
    for (const entry of this.#templates.entries()) if (entry.definition.list) return undefined;
    return this.#static.listed();
  }

  /** Every listed resource: static ones, then those the templates' `list` callbacks return. */
  async list(ctx: ResourceContext): Promise<Resource[]> {
    const resources = [...this.#static.listed()];
    for (const entry of this.#templates.entries()) {
      if (!entry.definition.list) continue;
      const listed = await entry.definition.list(ctx);
      const { uriTemplate: _t, ...meta } = entry.listed;
      for (const resource of listed) resources.push({ ...meta, ...resource });
    }
    return resources;
  }

  /** Templates as `resources/templates/list` shows them. */
  listTemplates(): readonly ResourceTemplate[] {
    return this.#templates.listed();
  }

  /** Number of registered static resources and templates. */
  get size(): number {
    return this.#static.size + this.#templates.size;
  }

  /** Finds what serves `uri`: a static resource first, then the first matching template. */
  resolve(uri: string):
    | { kind: 'static'; definition: ResourceDefinition }
    | {
        kind: 'template';
        definition: ResourceTemplateDefinition;
        variables: TemplateVariables;
      }
    | undefined {
    const entry = this.#static.get(uri);
    if (entry) return { kind: 'static', definition: entry.definition };
    for (const t of this.#templates.entries()) {
      const variables = t.template.match(uri);
      if (variables) return { kind: 'template', definition: t.definition, variables };
    }
    return undefined;
  }

  /** Reads a resource by URI through the cache, or throws `NOT_FOUND` (`INVALID_ARGUMENT` for a bad URI). */
  async read(uri: string, ctx: ResourceContext): Promise<ReadResourceResult> {
    // The URI comes from a caller (REST path, MCP params): a bad one is their error, not a 500.
    try {
      checkUri(uri, 'uri');
    } catch (error) {
      throw new McpKitError('INVALID_ARGUMENT', (error as Error).message, { cause: error });
    }
    const found = this.resolve(uri);
    if (!found) throw new McpKitError('NOT_FOUND', `Resource ${quote(uri)} not found`);
    const ttl = found.definition.ttlMs ?? this.#cache.defaultTtlMs;
    return this.#cache.read(uri, ttl, async () => {
      const value =
        found.kind === 'static'
          ? await found.definition.read(uri, ctx)
          : await found.definition.read(uri, found.variables, ctx);
      return toReadResult(value, uri, found.definition.mimeType);
    });
  }

  /** The completer for a template variable, if the template declares one. */
  completer(uriTemplate: string, variable: string): Completer | undefined {
    return this.#templates.get(uriTemplate)?.definition.complete?.[variable];
  }

  /**
   * The URI the registered template `uriTemplate` gives for `variables` (RFC 6570 expansion), or the
   * template string itself when it is not registered.
   */
  expand(uriTemplate: string, variables: Readonly<Record<string, string | undefined>>): string {
    return this.#templates.get(uriTemplate)?.template.expand(variables) ?? uriTemplate;
  }

  /** Whether `uriTemplate` is a registered template (or a static URI). */
  hasReference(uri: string): 'template' | 'static' | undefined {
    if (this.#templates.get(uri)) return 'template';
    if (this.#static.get(uri)) return 'static';
    return undefined;
  }

  /**
   * Listens for updates to one URI. Returns the function that stops listening; the listener set is
   * dropped when its last listener goes.
   */
  subscribe(uri: string, listener: ResourceUpdateListener): () => void {
    let set = this.#subscribers.get(uri);
    if (!set) {
      set = new Set();
      this.#subscribers.set(uri, set);
      this.#startWatch(uri);
    }
    set.add(listener);
    return () => {
      const current = this.#subscribers.get(uri);
      if (!current?.delete(listener) || current.size > 0) return;
      this.#subscribers.delete(uri);
      const stop = this.#watches.get(uri);
      this.#watches.delete(uri);
      stop?.();
    };
  }

  /** Runs the `watch` hook of what serves `uri`, if it has one; a failing hook is ignored. */
  #startWatch(uri: string): void {
    const watch = this.resolve(uri)?.definition.watch;
    if (!watch) return;
    try {
      this.#watches.set(uri, watch(uri));
    } catch {
      // a subscription without updates is still a subscription
    }
  }

  /** Number of live subscriptions, across all URIs. */
  get subscriptionCount(): number {
    let n = 0;
    for (const set of this.#subscribers.values()) n += set.size;
    return n;
  }

  /** Drops the cached read of `uri` and tells every subscriber of `uri` (and only them) that it changed. */
  notifyUpdated(uri: string): void {
    this.#cache.invalidate(uri);
    this.#onUpdated(uri);
    const set = this.#subscribers.get(uri);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(uri);
      } catch {
        // one broken subscriber must not stop the others
      }
    }
  }
}
