import type {
  GetPromptResult,
  Icon,
  InputRequiredResult,
  Prompt,
  PromptArgument,
  PromptMessage,
  ServerContext,
} from '@modelcontextprotocol/server';
import { isInputRequiredResult, type StandardSchemaV1 } from '@modelcontextprotocol/server';
import { McpKitError, quote } from '../core/errors.js';
import {
  type CompiledSchema,
  compileSchema,
  formatIssues,
  type InferSchema,
  type SchemaInput,
} from '../schema.js';
import type { CallerIdentity } from '../types.js';
import { type CatalogHooks, type RegistrationHandle, Registry } from './registry.js';
import type { Completer } from './resources.js';

/** A prompt argument declared as data (as arrives over REST). */
export interface PromptArgumentSpec {
  name: string;
  description?: string;
  required?: boolean;
}

/** A message of a data prompt; `{{name}}` in text is replaced by the argument's value. */
export interface PromptMessageTemplate {
  role: 'user' | 'assistant';
  content: string | PromptMessage['content'];
}

/** What a prompt renderer receives. */
export interface PromptContext {
  readonly signal: AbortSignal;
  readonly sessionId?: string;
  readonly caller?: CallerIdentity;
  /**
   * The SDK's request context when the prompt is fetched over MCP: for multi-round-trip
   * `inputResponses` and `requestState` (2026-07-28).
   */
  readonly mcp?: ServerContext;
}

/**
 * What a renderer may return: text (one user message), messages, a full `GetPromptResult`, or (over
 * the 2026-07-28 wire) an `inputRequired(...)` result asking the client for input first.
 */
export type PromptReturn = string | PromptMessage[] | GetPromptResult | InputRequiredResult;

/** A prompt: rendered by a function in code, or from message templates given as data. */
/**
 * What `render` receives: the schema's output when `arguments` is a zod schema or shape (or any
 * Standard Schema), otherwise the arguments as strings by name.
 */
export type PromptArgs<TArgs> = TArgs extends StandardSchemaV1 | Record<string, StandardSchemaV1>
  ? InferSchema<TArgs>
  : Record<string, string>;

/** What `arguments` may be: a schema, or a list of argument specs. */
export type PromptArguments = SchemaInput | PromptArgumentSpec[];

export interface PromptDefinition<TArgs extends PromptArguments | undefined = PromptArguments | undefined> {
  name: string;
  title?: string;
  description?: string;
  icons?: Icon[];
  _meta?: Record<string, unknown>;
  /** Argument schema (zod or JSON Schema of string properties), or a list of argument specs. */
  arguments?: TArgs;
  /** Completions for arguments, by argument name. */
  complete?: Record<string, Completer>;
  /** Message templates with `{{name}}` placeholders. Used when `render` is absent. */
  messages?: PromptMessageTemplate[];
  render?(args: PromptArgs<TArgs>, ctx: PromptContext): PromptReturn | Promise<PromptReturn>;
}

interface PromptEntry {
  definition: PromptDefinition;
  schema: CompiledSchema | undefined;
  specs: PromptArgument[];
  listed: Prompt;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

/** Replaces `{{name}}` with `args[name]` (missing optional arguments become empty strings). */
export function fillTemplate(text: string, args: Record<string, string>): string {
  return text.replace(PLACEHOLDER, (_, name: string) =>
    Object.hasOwn(args, name) ? String(args[name]) : '',
  );
}

/**
 * Message templates are data (they arrive over REST too): each must be `{ role, content }` with
 * role `user` or `assistant` and content a string or a content block (`{ type, … }`, `text` a
 * string for text blocks), so rendering never meets a shape it cannot handle.
 */
function checkMessageTemplates(name: string, messages: readonly unknown[]): void {
  messages.forEach((message, i) => {
    const m = message as { role?: unknown; content?: unknown } | null;
    const where = `prompt "${name}": messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw new TypeError(`${where} must be an object`);
    if (m.role !== 'user' && m.role !== 'assistant') {
      throw new TypeError(`${where}.role must be "user" or "assistant"`);
    }
    if (typeof m.content === 'string') return;
    const block = m.content as { type?: unknown; text?: unknown } | null;
    if (
      typeof block !== 'object' ||
      block === null ||
      Array.isArray(block) ||
      typeof block.type !== 'string'
    ) {
      throw new TypeError(`${where}.content must be a string or a content block with a type`);
    }
    if (block.type === 'text' && typeof block.text !== 'string') {
      throw new TypeError(`${where}.content.text must be a string`);
    }
  });
}

function compilePrompt(definition: PromptDefinition): PromptEntry {
  if (typeof definition !== 'object' || definition === null) throw new TypeError('prompt must be an object');
  const { name } = definition;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
    throw new TypeError(
      `prompt name must be 1-128 characters of A-Z a-z 0-9 _ - . (got ${typeof name === 'string' ? JSON.stringify(quote(name)) : typeof name})`,
    );
  }
  if (!definition.render && !Array.isArray(definition.messages)) {
    throw new TypeError(`prompt "${name}": give either render or messages`);
  }
  if (!definition.render) checkMessageTemplates(name, definition.messages!);
  let schema: CompiledSchema | undefined;
  let specs: PromptArgument[] = [];
  if (Array.isArray(definition.arguments)) {
    specs = definition.arguments.map((a) => {
      if (typeof a?.name !== 'string' || a.name.length === 0) {
        throw new TypeError(`prompt "${name}": every argument needs a name`);
      }
      return {
        name: a.name,
        ...(a.description !== undefined && { description: a.description }),
        ...(a.required !== undefined && { required: a.required }),
      };
    });
  } else if (definition.arguments) {
    schema = compileSchema(definition.arguments, `prompt "${name}" arguments`);
    const properties = (schema.jsonSchema.properties ?? {}) as Record<string, { description?: string }>;
    const required = new Set((schema.jsonSchema.required as string[] | undefined) ?? []);
    specs = Object.entries(properties).map(([arg, prop]) => ({
      name: arg,
      ...(prop?.description !== undefined && { description: prop.description }),
      required: required.has(arg),
    }));
  }
  const listed: Prompt = {
    name,
    ...(definition.title !== undefined && { title: definition.title }),
    ...(definition.description !== undefined && { description: definition.description }),
    ...(specs.length > 0 && { arguments: specs }),
    ...(definition.icons && { icons: definition.icons }),
    ...(definition._meta && { _meta: definition._meta }),
  };
  return { definition, schema, specs, listed };
}

function toMessages(value: PromptReturn, description: string | undefined): GetPromptResult {
  // A multi-round-trip `input_required` answer goes back to the client as it is.
  if (isInputRequiredResult(value)) return value as unknown as GetPromptResult;
  if (typeof value === 'string') {
    return {
      ...(description && { description }),
      messages: [{ role: 'user', content: { type: 'text', text: value } }],
    };
  }
  if (Array.isArray(value)) return { ...(description && { description }), messages: value };
  return value;
}

/**
 * The shared prompt catalog (`server.prompts`).
 *
 * @example
 * ```ts
 * server.prompts.register({
 *   name: 'summarise',
 *   arguments: [{ name: 'text', required: true }],
 *   messages: [{ role: 'user', content: 'Summarise this:\n\n{{text}}' }],
 * });
 * ```
 */
export class PromptCatalog {
  readonly #registry: Registry<PromptEntry, Prompt>;

  /** @internal */
  constructor(hooks: CatalogHooks) {
    this.#registry = new Registry({ kind: 'Prompt', toListed: (e) => e.listed, ...hooks });
  }

  register<TArgs extends PromptArguments | undefined>(
    definition: PromptDefinition<TArgs>,
  ): RegistrationHandle {
    const entry = compilePrompt(definition as PromptDefinition);
    return this.#registry.add(definition.name, entry);
  }

  remove(name: string): boolean {
    return this.#registry.remove(name);
  }

  enable(name: string): void {
    this.#registry.setEnabled(name, true);
  }

  disable(name: string): void {
    this.#registry.setEnabled(name, false);
  }

  has(name: string): boolean {
    return this.#registry.has(name);
  }

  get(name: string): Prompt | undefined {
    return this.#registry.get(name)?.listed;
  }

  list(): readonly Prompt[] {
    return this.#registry.listed();
  }

  get size(): number {
    return this.#registry.size;
  }

  /** The completer for one argument of a prompt. */
  completer(name: string, argument: string): Completer | undefined {
    return this.#registry.get(name)?.definition.complete?.[argument];
  }

  /** Validates arguments and renders the prompt into MCP messages. */
  async render(
    name: string,
    args: Record<string, unknown> | undefined,
    ctx: PromptContext,
  ): Promise<GetPromptResult> {
    const entry = this.#registry.get(name);
    if (!entry) throw new McpKitError('NOT_FOUND', `Prompt ${quote(name)} not found`);
    const input = args ?? {};
    let values: Record<string, string>;
    if (entry.schema) {
      const outcome = await entry.schema.validate(input);
      if (!outcome.ok) {
        throw new McpKitError(
          'INVALID_ARGUMENT',
          `Invalid arguments for prompt ${name}: ${formatIssues(outcome.issues)}`,
          {
            details: { issues: outcome.issues },
          },
        );
      }
      values = outcome.value as Record<string, string>;
    } else {
      const missing = entry.specs.filter(
        (s) => s.required && (input[s.name] === undefined || input[s.name] === ''),
      );
      const notString = Object.entries(input).filter(([, v]) => typeof v !== 'string');
      const issues = [
        ...missing.map((s) => ({ path: s.name, message: 'Required' })),
        ...notString.map(([k]) => ({ path: k, message: 'Must be a string' })),
      ];
      if (issues.length > 0) {
        throw new McpKitError(
          'INVALID_ARGUMENT',
          `Invalid arguments for prompt ${name}: ${formatIssues(issues)}`,
          {
            details: { issues },
          },
        );
      }
      values = input as Record<string, string>;
    }
    const { definition } = entry;
    if (definition.render)
      return toMessages(await definition.render(values as never, ctx), definition.description);
    const messages: PromptMessage[] = (definition.messages ?? []).map((m) => ({
      role: m.role,
      content:
        typeof m.content === 'string'
          ? { type: 'text', text: fillTemplate(m.content, values) }
          : m.content.type === 'text'
            ? { ...m.content, text: fillTemplate(m.content.text, values) }
            : m.content,
    }));
    return { ...(definition.description && { description: definition.description }), messages };
  }
}
