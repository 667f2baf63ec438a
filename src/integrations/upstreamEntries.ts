/**
 * An upstream's entries in the shared catalogs: its tools and prompts as `<id>__<name>`, its
 * resources and templates under `upstream://<id>/` followed by the upstream's own URI, so nothing it
 * names can collide with a local entry or another integration's. Entries are swapped in whenever the
 * upstream's offer changes; they stay listed (failing fast with `UNAVAILABLE`) while it is down,
 * or leave the catalog then when the integration says `hideUnavailable`. An upstream entry never
 * replaces an entry that is already there: it is skipped with a warning.
 */
import type { ReadResourceResult } from '@modelcontextprotocol/server';
import type { PromptCatalog, PromptDefinition } from '../catalog/prompts.js';
import type { RegistrationHandle } from '../catalog/registry.js';
import type { ResourceCatalog, ResourceContext } from '../catalog/resources.js';
import type { ToolCatalog, ToolContext, ToolDefinition } from '../catalog/tools.js';
import type { CancelSignal } from '../execution/signal.js';
import type { CallerIdentity, Logger } from '../types.js';
import { namespacedName } from './contributions.js';
import type { Integration, IntegrationType } from './types.js';
import {
  type ForwardOptions,
  type UpstreamLink,
  type UpstreamLogMessage,
  type UpstreamOffer,
  upstreamText,
} from './upstream.js';

/** Catalog names: what the tool catalog accepts. */
const CATALOG_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** The prefix of every URI an upstream of integration `id` contributes. */
export function upstreamUriPrefix(id: string): string {
  return `upstream://${id}/`;
}

/** What an {@link UpstreamEntries} works with. */
export interface UpstreamEntriesOptions {
  id: string;
  tools: ToolCatalog;
  resources: ResourceCatalog;
  prompts: PromptCatalog;
  logger: Logger;
  /** The kinds the integration contributes (its `types`). */
  types: readonly IntegrationType[];
  forwardCaller: 'none' | 'meta';
  hideUnavailable: boolean;
}

/** The logger name an upstream's log message carries to mcpkit's clients: `<id>` or `<id>/<its own>`. */
export function loggerName(id: string, logger: string | undefined): string {
  return logger ? `${id}/${logger}` : id;
}

function isSchemaObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether the caller of a call takes progress: `false` only when the context says so. */
function takesProgress(ctx: ToolContext): boolean {
  return (ctx as { takesProgress?: unknown }).takesProgress !== false;
}

/** Whether a call came with an MCP request context, asked without building it where the context can tell. */
function hasMcp(ctx: ToolContext): boolean {
  const told = (ctx as { hasMcp?: unknown }).hasMcp;
  return typeof told === 'boolean' ? told : ctx.mcp !== undefined;
}

/** The `_meta` a forwarded request carries: the caller's id only when the integration says so. */
function metaFor(forward: 'none' | 'meta', caller: CallerIdentity | undefined) {
  return forward === 'meta' && caller ? { 'io.mcpkit/caller': { id: caller.id } } : undefined;
}

/**
 * The listed fields of an upstream resource or template, taken one by one: nothing else it sends
 * (a `uriTemplate` beside a `uri`, a `ttlMs`) reaches the catalog.
 */
function metadataOf(entry: Record<string, unknown>, id: string) {
  const text = (key: string) => (typeof entry[key] === 'string' ? { [key]: entry[key] as string } : {});
  const meta = entry._meta;
  return {
    name: entry.name as string,
    ...text('title'),
    ...text('description'),
    ...text('mimeType'),
    ...(typeof entry.annotations === 'object' &&
      entry.annotations !== null && { annotations: entry.annotations }),
    ...(Array.isArray(entry.icons) && { icons: entry.icons }),
    _meta: {
      ...(typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? meta : {}),
      'io.mcpkit/integration': id,
    },
  };
}

/** One upstream's registrations, replaced as a whole when its offer changes. */
export class UpstreamEntries {
  readonly #options: UpstreamEntriesOptions;
  #link: UpstreamLink | undefined;
  #handles: RegistrationHandle[] = [];
  #names: Integration['contributes'] = { tools: [], resources: [], prompts: [] };
  /** Our URI → how many of our subscriptions watch it upstream. */
  readonly #watching = new Map<string, number>();

  constructor(options: UpstreamEntriesOptions) {
    this.#options = options;
  }

  /** Binds the link whose offers this registers (set once, before the link starts). */
  bind(link: UpstreamLink): void {
    this.#link = link;
  }

  /** The names currently in the catalogs. */
  get names(): Integration['contributes'] {
    return structuredClone(this.#names);
  }

  /** Applies an offer (`undefined`: the upstream is unavailable). */
  apply(offer: UpstreamOffer | undefined): void {
    if (!offer) {
      if (this.#options.hideUnavailable) this.clear();
      return;
    }
    this.clear();
    const { types } = this.#options;
    const tools = types.includes('tools') ? offer.tools.flatMap((t) => this.#tool(t)) : [];
    const prompts = types.includes('prompts') ? offer.prompts.flatMap((p) => this.#prompt(p)) : [];
    const withResources = types.includes('resources');
    this.#registerTools(tools);
    if (withResources) {
      for (const r of offer.resources) this.#registerResource(r);
      for (const t of offer.resourceTemplates) this.#registerTemplate(t);
    }
    for (const p of prompts) {
      if (this.#attempt('prompt', p.name, () => this.#options.prompts.register(p)))
        this.#names.prompts.push(p.name);
    }
  }

  /** Takes every entry out of the catalogs. */
  clear(): void {
    for (const handle of this.#handles) handle.remove();
    this.#handles = [];
    this.#names = { tools: [], resources: [], prompts: [] };
  }

  /** Forwards an update of the upstream's own `uri` to our subscribers. */
  updated(uri: string): void {
    this.#options.resources.notifyUpdated(upstreamUriPrefix(this.#options.id) + uri);
  }

  // ---- internals ---------------------------------------------------------------------------

  #forwardOptions(ctx: { signal: AbortSignal; caller?: CallerIdentity | undefined }): ForwardOptions {
    const meta = metaFor(this.#options.forwardCaller, ctx.caller);
    return { signal: ctx.signal, ...(meta && { meta }) };
  }

  #requireLink(): UpstreamLink {
    if (!this.#link) throw new Error('upstream entries used before their link was bound');
    return this.#link;
  }

  #tool(tool: UpstreamOffer['tools'][number]): ToolDefinition[] {
    const { id, logger } = this.#options;
    const local = typeof tool?.name === 'string' ? tool.name : '';
    const name = namespacedName(id, local);
    if (!CATALOG_NAME.test(name) || !CATALOG_NAME.test(local)) {
      logger.warn(
        { integration: id, tool: upstreamText(local) },
        'upstream tool with an unusable name skipped',
      );
      return [];
    }
    const link = this.#requireLink();
    const definition: ToolDefinition = {
      name,
      ...(typeof tool.title === 'string' && { title: tool.title }),
      ...(typeof tool.description === 'string' && { description: tool.description }),
      inputSchema: (tool.inputSchema ?? { type: 'object' }) as ToolDefinition['inputSchema'],
      // Listed as the upstream gave it; the executor checks each result's structuredContent against
      // it, once (the link does not: it asks with a shape check only, see UpstreamLink.callTool).
      ...(isSchemaObject(tool.outputSchema) && {
        outputSchema: tool.outputSchema as ToolDefinition['outputSchema'],
      }),
      ...(tool.annotations && { annotations: tool.annotations }),
      _meta: { 'io.mcpkit/integration': id, 'io.mcpkit/upstream': { name: local } },
      handler: (args: unknown, ctx: ToolContext) => {
        // The call's cancellation as the executor hands it without an AbortController, where it can.
        const options: ForwardOptions = {
          signal: (ctx as { cancellation?: CancelSignal }).cancellation ?? ctx.signal,
        };
        const meta = metaFor(this.#options.forwardCaller, ctx.caller);
        if (meta) options.meta = meta;
        // Progress is asked of the upstream only when the caller takes it (the executor's context
        // says so; any other context is asked as before).
        if (takesProgress(ctx)) {
          options.onprogress = (p) => {
            void ctx.progress(p.progress, p.total, p.message).catch(() => {});
          };
        }
        // The upstream's log messages during the call reach the caller's client (at its own level),
        // under the integration's name. The call's MCP context is reached for on the first message:
        // a session builds it on first use.
        if (hasMcp(ctx)) {
          options.onlog = (m: UpstreamLogMessage) => {
            const mcp = ctx.mcp;
            if (!mcp) return false;
            void mcp.mcpReq.log(m.level, m.data, loggerName(id, m.logger)).catch(() => {});
            return true;
          };
        }
        return link.callTool(local, args as Record<string, unknown>, options);
      },
    };
    return [definition];
  }

  #prompt(prompt: UpstreamOffer['prompts'][number]): PromptDefinition[] {
    const { id, logger } = this.#options;
    const local = typeof prompt?.name === 'string' ? prompt.name : '';
    const name = namespacedName(id, local);
    if (!CATALOG_NAME.test(name) || !CATALOG_NAME.test(local)) {
      logger.warn(
        { integration: id, prompt: upstreamText(local) },
        'upstream prompt with an unusable name skipped',
      );
      return [];
    }
    const link = this.#requireLink();
    const args = (Array.isArray(prompt.arguments) ? prompt.arguments : [])
      .filter((a) => typeof a?.name === 'string' && a.name !== '')
      .map((a) => ({
        name: a.name,
        ...(typeof a.description === 'string' && { description: a.description }),
        ...(a.required === true && { required: true }),
      }));
    return [
      {
        name,
        ...(typeof prompt.title === 'string' && { title: prompt.title }),
        ...(typeof prompt.description === 'string' && { description: prompt.description }),
        arguments: args,
        _meta: { 'io.mcpkit/integration': id, 'io.mcpkit/upstream': { name: local } },
        render: (values, ctx) =>
          link.getPrompt(local, values as Record<string, string>, this.#forwardOptions(ctx)),
      },
    ];
  }

  /** Reads the upstream's own URI and answers with our URIs in the contents. */
  async #read(uri: string, ctx: { signal: AbortSignal; caller?: CallerIdentity | undefined }) {
    const prefix = upstreamUriPrefix(this.#options.id);
    const own = uri.slice(prefix.length);
    const result = await this.#requireLink().readResource(own, this.#forwardOptions(ctx));
    const contents = Array.isArray(result?.contents) ? result.contents : [];
    return {
      ...result,
      contents: contents.map((c) => ({
        ...c,
        uri: typeof c.uri === 'string' && !c.uri.startsWith(prefix) ? prefix + c.uri : uri,
      })),
    } as ReadResourceResult;
  }

  #registerResource(resource: UpstreamOffer['resources'][number]): void {
    const { id } = this.#options;
    if (typeof resource?.uri !== 'string' || typeof resource.name !== 'string') return;
    const uri = upstreamUriPrefix(id) + resource.uri;
    const ok = this.#attempt('resource', uri, () =>
      this.#options.resources.register({
        ...metadataOf(resource, id),
        ...(typeof resource.size === 'number' && { size: resource.size }),
        uri,
        ttlMs: 0,
        read: (read: string, ctx: ResourceContext) => this.#read(read, ctx),
        watch: (own: string) => this.#watch(own),
      } as Parameters<ResourceCatalog['register']>[0]),
    );
    if (ok) this.#names.resources.push(uri);
  }

  #registerTemplate(template: UpstreamOffer['resourceTemplates'][number]): void {
    const { id } = this.#options;
    if (typeof template?.uriTemplate !== 'string' || typeof template.name !== 'string') return;
    const uriTemplate = upstreamUriPrefix(id) + template.uriTemplate;
    const ok = this.#attempt('resource template', uriTemplate, () =>
      this.#options.resources.register({
        ...metadataOf(template, id),
        uriTemplate,
        ttlMs: 0,
        read: (read, _variables, ctx) => this.#read(read, ctx),
        watch: (own: string) => this.#watch(own),
      } as Parameters<ResourceCatalog['register']>[0]),
    );
    if (ok) this.#names.resources.push(uriTemplate);
  }

  /** Subscribes upstream while someone here listens to `uri` (ours); returns the stop function. */
  #watch(uri: string): () => void {
    const prefix = upstreamUriPrefix(this.#options.id);
    const own = uri.slice(prefix.length);
    const link = this.#requireLink();
    this.#watching.set(uri, (this.#watching.get(uri) ?? 0) + 1);
    void link.subscribe(own).catch(() => {});
    return () => {
      const left = (this.#watching.get(uri) ?? 1) - 1;
      if (left > 0) {
        this.#watching.set(uri, left);
        return;
      }
      this.#watching.delete(uri);
      void link.unsubscribe(own).catch(() => {});
    };
  }

  #registerTools(tools: ToolDefinition[]): void {
    const { tools: catalog } = this.#options;
    if (tools.length > 1) {
      try {
        this.#handles.push(...catalog.registerMany(tools));
        this.#names.tools.push(...tools.map((t) => t.name));
        return;
      } catch {
        // one of them does not fit: register them one by one, skipping what fails
      }
    }
    for (const tool of tools) {
      if (this.#attempt('tool', tool.name, () => catalog.register(tool))) this.#names.tools.push(tool.name);
    }
  }

  #attempt(kind: string, name: string, register: () => RegistrationHandle): boolean {
    try {
      this.#handles.push(register());
      return true;
    } catch (error) {
      this.#options.logger.warn(
        {
          integration: this.#options.id,
          kind,
          name: upstreamText(name),
          reason: upstreamText((error as Error)?.message),
        },
        'upstream entry skipped',
      );
      return false;
    }
  }
}
