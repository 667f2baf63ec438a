/**
 * What an integration contributes to the catalogs, compiled from its stored record under its
 * namespace: declarative tools as `<id>__<name>` (`{{secrets.NAME}}` references resolved into their
 * headers, never into the listed spec), resources as `integration://<id>/<name>`, prompts as
 * `<id>__<name>`; and the namespaced form of a tool attached in code.
 */
import type { PromptCatalog } from '../catalog/prompts.js';
import type { ResourceCatalog } from '../catalog/resources.js';
import type { ToolDefinition } from '../catalog/tools.js';
import { McpKitError } from '../core/errors.js';
import {
  compileDeclarativeTool,
  type DeclarativeIsolationLevel,
  type DeclarativeToolOptions,
  type DeclarativeToolSpec,
} from '../declarative.js';
import type { Logger } from '../types.js';
import type { Live } from './live.js';
import { fieldError, NAMESPACE_SEPARATOR } from './validation.js';

/** The catalog name of an integration's contribution. */
export function namespacedName(id: string, name: string): string {
  return `${id}${NAMESPACE_SEPARATOR}${name}`;
}

/** The URI of an integration's resource. */
export function integrationResourceUri(id: string, name: string): string {
  return `integration://${id}/${name}`;
}

/** A `{{secrets.NAME}}` reference in a header value of a declarative HTTP tool. */
export const SECRET_REF = /\{\{\s*secrets\.([A-Za-z0-9_-]+)\s*\}\}/g;

/** An integration's compiled contributions, ready to register. */
export interface Contributions {
  tools: ToolDefinition[];
  resources: Parameters<ResourceCatalog['register']>[0][];
  prompts: Parameters<PromptCatalog['register']>[0][];
}

/** How to compile: with the server's declarative-tool limits, strictly (`write`) or leniently (`load`). */
export interface CompileOptions {
  declarative: DeclarativeToolOptions;
  logger: Logger;
  mode: 'write' | 'load';
}

/** One declarative tool of an integration, with what compiling it needs. */
interface ToolSource {
  id: string;
  spec: DeclarativeToolSpec;
  /** Its position in the integration's `tools`, for the field named in errors. */
  index: number;
  /** The integration's secrets in clear. */
  secrets: Record<string, string>;
  /** The integration's isolation level, for its http tools that name none. */
  isolation: DeclarativeIsolationLevel | undefined;
}

/** A tool attached in code, as the catalog lists it: namespaced and marked with its integration. */
export function attachedDefinition(id: string, definition: ToolDefinition<any>): ToolDefinition<any> {
  return {
    ...definition,
    name: namespacedName(id, definition.name),
    _meta: { ...definition._meta, 'io.mcpkit/integration': id },
  };
}

/**
 * Compiles an integration's declarative contributions. In `write` mode a bad one is an error naming
 * its field; in `load` mode it is skipped with a warning (the server's options may have changed
 * since it was saved: it stays stored, and a later write reports it).
 */
export function compileContributions(live: Live, options: CompileOptions): Contributions {
  const { stored } = live;
  const id = stored.id;
  const out: Contributions = { tools: [], resources: [], prompts: [] };
  stored.tools.forEach((spec, index) => {
    try {
      const source = { id, spec, index, secrets: live.secrets, isolation: stored.isolation };
      out.tools.push(compileTool(source, options.declarative));
    } catch (error) {
      if (options.mode === 'write') throw error;
      options.logger.warn(
        { integration: id, field: `tools[${index}]`, err: error },
        'integration tool skipped',
      );
    }
  });
  for (const r of stored.resources) {
    const content = r.text !== undefined ? { text: r.text } : { blob: r.blob! };
    const mimeType = r.mimeType;
    out.resources.push({
      uri: integrationResourceUri(id, r.name),
      name: r.name,
      ...(r.title !== undefined && { title: r.title }),
      ...(r.description !== undefined && { description: r.description }),
      ...(mimeType !== undefined && { mimeType }),
      _meta: { 'io.mcpkit/integration': id },
      read: () => ({ ...(mimeType !== undefined && { mimeType }), ...content }),
    });
  }
  for (const p of stored.prompts) {
    out.prompts.push({
      name: namespacedName(id, p.name),
      ...(p.title !== undefined && { title: p.title }),
      ...(p.description !== undefined && { description: p.description }),
      ...(p.arguments && { arguments: p.arguments }),
      messages: p.messages,
      _meta: { 'io.mcpkit/integration': id },
    });
  }
  return out;
}

/** Compiles one declarative tool with its secret references resolved; errors name `tools[i]`. */
function compileTool(source: ToolSource, declarative: DeclarativeToolOptions): ToolDefinition {
  const { id, spec, index: i, secrets } = source;
  const name = namespacedName(id, spec.name);
  let compiled: DeclarativeToolSpec = { ...spec, name };
  if (spec.kind === 'http' && spec.isolation === undefined && source.isolation !== undefined)
    compiled = { ...compiled, isolation: source.isolation } as DeclarativeToolSpec;
  const carried: string[] = [];
  if (spec.kind === 'http' && spec.http?.headers) {
    const headers: Record<string, string> = {};
    for (const [header, value] of Object.entries(spec.http.headers)) {
      headers[header] = String(value).replace(SECRET_REF, (_, secret: string) => {
        const resolved = secrets[secret];
        if (resolved === undefined)
          throw fieldError(
            `tools[${i}].http.headers.${header}`,
            `refers to secrets.${secret}, which is not set`,
          );
        carried.push(resolved);
        return resolved;
      });
    }
    compiled = { ...compiled, http: { ...spec.http, headers } } as DeclarativeToolSpec;
  }
  let definition: ToolDefinition;
  try {
    definition = compileDeclarativeTool(compiled, { ...declarative, secrets: carried });
  } catch (error) {
    if (error instanceof McpKitError || error instanceof TypeError) {
      const code = error instanceof McpKitError ? error.code : 'INVALID_ARGUMENT';
      throw new McpKitError(code, `tools[${i}]: ${error.message}`, { details: { field: `tools[${i}]` } });
    }
    throw error;
  }
  // The listed spec keeps `{{secrets.NAME}}` references, never their values.
  return {
    ...definition,
    _meta: { 'io.mcpkit/declarative': { ...spec, name }, 'io.mcpkit/integration': id },
  };
}
