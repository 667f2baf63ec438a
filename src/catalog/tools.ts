/**
 * The tool catalog: definitions checked at registration, schemas compiled, JSON Schema built once
 * (lazily), `defineTool`. Size: just over 400 lines, most of them the public types' documentation.
 */
import type {
  CallToolResult,
  ContentBlock,
  CreateMessageRequest,
  CreateMessageResult,
  Icon,
  ServerContext,
  Tool,
  ToolAnnotations,
} from '@modelcontextprotocol/server';
import { McpKitError, quote } from '../core/errors.js';
import {
  type CompiledSchema,
  compileSchema,
  EMPTY_OBJECT_SCHEMA,
  EMPTY_SHAPE_SCHEMA,
  type InferSchema,
  isEmptyShape,
  type SchemaInput,
} from '../schema.js';
import type { CallerIdentity, Logger } from '../types.js';
import { type CatalogHooks, type RegistrationHandle, Registry } from './registry.js';

/** Where a call came from. */
export type CallOrigin = 'memory' | 'stdio' | 'http' | 'websocket' | 'rest' | 'chain' | 'internal';

/** MCP logging back to the client that made the call (a no-op where the client cannot receive it). */
export interface ClientLog {
  debug(data: unknown, logger?: string): Promise<void>;
  info(data: unknown, logger?: string): Promise<void>;
  warning(data: unknown, logger?: string): Promise<void>;
  error(data: unknown, logger?: string): Promise<void>;
}

/** What a tool handler receives beside its arguments. */
export interface ToolContext {
  /** Aborted when the call is cancelled, times out, or its client goes away. */
  readonly signal: AbortSignal;
  /** The tool's name. */
  readonly toolName: string;
  /** The JSON-RPC request id, when the call came over MCP. */
  readonly requestId?: string | number;
  /** The MCP session, when there is one. */
  readonly sessionId?: string;
  /** Who is calling (set by the policy layer when authentication is configured). */
  readonly caller?: CallerIdentity;
  /** The door the call came through. */
  readonly origin: CallOrigin;
  /** The server-side logger, bound to this call. */
  readonly logger: Logger;
  /** MCP logging to the calling client. */
  readonly log: ClientLog;
  /**
   * Reports progress. Reaches the client as `notifications/progress` when the request carried a
   * progress token; a no-op otherwise.
   */
  progress(progress: number, total?: number, message?: string): Promise<void>;
  /** Calls another tool through the same executor, with this call's signal and caller. */
  callTool(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /**
   * Asks the calling client's model for a completion (MCP sampling, 2025-era sessions). Fails with
   * `UNAVAILABLE` when the call did not come over MCP or the client does not offer sampling.
   */
  sample(params: CreateMessageRequest['params']): Promise<CreateMessageResult>;
  /**
   * The SDK's request context when the call came over MCP (absent on REST and internal calls): for
   * elicitation (`mcp.mcpReq.elicitInput`), sampling, multi-round-trip `inputResponses`, and the like.
   */
  readonly mcp?: ServerContext;
}

/**
 * What a handler may return: a string (one text block), a content block or an array of them, a
 * full `CallToolResult`, or a plain object (becomes `structuredContent` plus a JSON text block).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers that return nothing are typed `void`
export type ToolReturn = string | ContentBlock | ContentBlock[] | CallToolResult | object | undefined | void;

/** A tool handler. */
export type ToolHandler<TArgs = Record<string, unknown>> = (
  args: TArgs,
  ctx: ToolContext,
) => ToolReturn | Promise<ToolReturn>;

/** A tool as registered in code. */
export interface ToolDefinition<TInput extends SchemaInput | undefined = SchemaInput | undefined> {
  /** Unique name: 1–128 characters of `A-Z a-z 0-9 _ - .`. */
  name: string;
  title?: string;
  description?: string;
  /**
   * Input schema: zod schema or shape, or JSON Schema. Defaults to "any object". `{}` (a shape
   * without fields) declares a tool without arguments.
   */
  inputSchema?: TInput;
  /** Output schema; when set, results carry validated `structuredContent`. */
  outputSchema?: SchemaInput;
  annotations?: ToolAnnotations;
  icons?: Icon[];
  _meta?: Record<string, unknown>;
  /** Per-tool timeout in milliseconds; overrides the executor default. `0` disables it. */
  timeoutMs?: number;
  /**
   * Whether a failed call may be retried. Defaults to `annotations.idempotentHint`. Only failures
   * that may pass on their own are retried: never invalid arguments, an `McpKitError` whose code
   * says the request is wrong (`INVALID_ARGUMENT`, `NOT_FOUND`, …), a validation failure the handler
   * threw, or a cancelled or timed-out call (docs/tools.md, "Retries").
   */
  idempotent?: boolean;
  /** Further attempts after a failure, for idempotent tools. Default: the executor's policy (2). */
  retries?: number;
  /** Calls of this tool running at once; more wait in a bounded queue. Default: unlimited. */
  concurrency?: number;
  /**
   * How `ctx.callTool` runs the calls this tool makes: `'tool'` (the default for tools written in
   * code) trusts them with the tool's own rights, unchecked; `'caller'` checks each as if this
   * tool's caller had made it (permission, visibility, and one of its `execute` rate-limit tokens).
   * Declarative tools (registered over REST or from an integration) always act as their caller.
   */
  callToolAs?: 'tool' | 'caller';
  /**
   * Whether a call may run as a task (the MCP tasks extension, `io.modelcontextprotocol/tasks`):
   * `'forbidden'` (default) always answers synchronously; `'optional'` runs as a task for clients
   * that declared the extension and synchronously for the rest; `'required'` runs as a task and
   * refuses other clients with `-32021`. The object form's `start: 'handler'` lets the handler run
   * in the request first (for multi-round-trip input) and create the task by returning
   * `runAsTask(work)`. See docs/tools.md, "Tasks".
   */
  task?: TaskSupport | { support: TaskSupport; start?: 'call' | 'handler' };
  handler: ToolHandler<TInput extends SchemaInput ? InferSchema<TInput> : Record<string, unknown>>;
}

/** A registered tool with its schemas compiled once. */
export interface RegisteredTool {
  readonly name: string;
  readonly definition: ToolDefinition;
  readonly input: CompiledSchema;
  readonly output: CompiledSchema | undefined;
  /** The tool as `tools/list` shows it, computed once, when first read. */
  readonly descriptor: Tool;
  /** Task support, when the tool may run as a task (`undefined` when forbidden). */
  readonly task?: { readonly support: 'optional' | 'required'; readonly start: 'call' | 'handler' };
}

/** How a tool takes part in the tasks extension. */
export type TaskSupport = 'forbidden' | 'optional' | 'required';

function compileTaskSupport(name: string, task: ToolDefinition['task']): RegisteredTool['task'] {
  if (task === undefined) return undefined;
  const { support, start = 'call' } = typeof task === 'string' ? { support: task } : task;
  if (support !== 'forbidden' && support !== 'optional' && support !== 'required') {
    throw new TypeError(`tool "${name}": task must be 'forbidden', 'optional' or 'required'`);
  }
  if (start !== 'call' && start !== 'handler') {
    throw new TypeError(`tool "${name}": task.start must be 'call' or 'handler'`);
  }
  return support === 'forbidden' ? undefined : { support, start };
}

const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** How long one background slice of listed-form building may hold the event loop. */
const WARM_SLICE_MS = 4;

/**
 * Identity helper that types a tool definition's handler from its schema.
 *
 * @example
 * ```ts
 * const add = defineTool({
 *   name: 'add',
 *   inputSchema: { a: z.number(), b: z.number() },
 *   handler: ({ a, b }) => String(a + b),
 * });
 * server.tools.register(add);
 * ```
 */
export function defineTool<TInput extends SchemaInput | undefined = undefined>(
  definition: ToolDefinition<TInput>,
): ToolDefinition<TInput> {
  return definition;
}

/** Told once per tool whose schema could not be converted to JSON Schema when first listed. */
type SchemaErrorReport = (tool: string, error: unknown) => void;

function compileTool(definition: ToolDefinition, report?: SchemaErrorReport): RegisteredTool {
  if (typeof definition !== 'object' || definition === null) throw new TypeError('tool must be an object');
  const { name } = definition;
  if (typeof name !== 'string' || !TOOL_NAME.test(name)) {
    throw new TypeError(
      `tool name must be 1-128 characters of A-Z a-z 0-9 _ - . (got ${typeof name === 'string' ? JSON.stringify(quote(name)) : typeof name})`,
    );
  }
  if (typeof definition.handler !== 'function')
    throw new TypeError(`tool "${name}": handler must be a function`);
  if (
    definition.concurrency !== undefined &&
    !(Number.isInteger(definition.concurrency) && definition.concurrency >= 1)
  ) {
    throw new TypeError(`tool "${name}": concurrency must be a positive integer`);
  }
  if (
    definition.retries !== undefined &&
    !(Number.isInteger(definition.retries) && definition.retries >= 0)
  ) {
    throw new TypeError(`tool "${name}": retries must be a non-negative integer`);
  }
  if (definition.timeoutMs !== undefined && !(definition.timeoutMs >= 0)) {
    throw new TypeError(`tool "${name}": timeoutMs must be a non-negative number`);
  }
  if (
    definition.callToolAs !== undefined &&
    definition.callToolAs !== 'tool' &&
    definition.callToolAs !== 'caller'
  ) {
    throw new TypeError(`tool "${name}": callToolAs must be 'tool' or 'caller'`);
  }
  const input = !definition.inputSchema
    ? EMPTY_OBJECT_SCHEMA
    : isEmptyShape(definition.inputSchema)
      ? EMPTY_SHAPE_SCHEMA
      : compileSchema(definition.inputSchema, `tool "${name}" inputSchema`);
  if (!input.objectRoot) {
    throw new TypeError(`tool "${name}": inputSchema must describe an object (type: "object")`);
  }
  const output = definition.outputSchema
    ? compileSchema(definition.outputSchema, `tool "${name}" outputSchema`, 'output')
    : undefined;
  return new CompiledTool({
    name,
    definition,
    input,
    output,
    task: compileTaskSupport(name, definition.task),
    report,
  });
}

/** What a registered tool is made of, once its definition is checked and its schemas compiled. */
interface CompiledToolParts {
  name: string;
  definition: ToolDefinition;
  input: CompiledSchema;
  output: CompiledSchema | undefined;
  task: RegisteredTool['task'];
  report: SchemaErrorReport | undefined;
}

/** A checked tool definition; its `tools/list` form is built when first read. */
class CompiledTool implements RegisteredTool {
  readonly name: string;
  readonly definition: ToolDefinition;
  readonly input: CompiledSchema;
  readonly output: CompiledSchema | undefined;
  readonly task?: RegisteredTool['task'];
  #descriptor: Tool | undefined;
  readonly #report: SchemaErrorReport | undefined;

  constructor({ name, definition, input, output, task, report }: CompiledToolParts) {
    this.name = name;
    this.definition = definition;
    this.input = input;
    this.output = output;
    if (task) this.task = task;
    this.#report = report;
  }

  // Built on first read: a zod schema's JSON Schema is converted then, not at registration.
  get descriptor(): Tool {
    if (this.#descriptor === undefined) {
      const { definition, input, output } = this;
      this.#descriptor = {
        name: this.name,
        ...(definition.title !== undefined && { title: definition.title }),
        ...(definition.description !== undefined && { description: definition.description }),
        inputSchema: input.jsonSchema as Tool['inputSchema'],
        ...(output && { outputSchema: output.jsonSchema as Tool['outputSchema'] }),
        ...(definition.annotations && { annotations: definition.annotations }),
        ...(definition.icons && { icons: definition.icons }),
        ...(definition._meta && { _meta: definition._meta }),
      };
      const failure = input.conversionError ?? output?.conversionError;
      if (failure !== undefined) this.#report?.(this.name, failure);
    }
    return this.#descriptor;
  }
}

/**
 * The shared tool catalog (`server.tools`). Every MCP session and the REST API read from it; any
 * change notifies every connected session with `notifications/tools/list_changed`.
 *
 * @example
 * ```ts
 * const handle = server.tools.register({
 *   name: 'echo',
 *   inputSchema: { text: z.string() },
 *   handler: ({ text }) => text,
 * });
 * handle.disable();
 * ```
 */
export class ToolCatalog {
  readonly #registry: Registry<RegisteredTool, Tool>;
  /** Tools whose listed form is not built yet, built in the background a few ms at a time. */
  #unlisted: RegisteredTool[] = [];
  /** How many of `#unlisted` are built (and dropped from it). */
  #warmed = 0;
  #warming: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  readonly #report: SchemaErrorReport | undefined;

  /** @internal */
  constructor({ report, ...hooks }: CatalogHooks & { report?: SchemaErrorReport }) {
    this.#registry = new Registry({ kind: 'Tool', toListed: (tool) => tool.descriptor, ...hooks });
    this.#report = report;
  }

  /** Registers a tool; throws if the name is taken or the definition is invalid. */
  register<TInput extends SchemaInput | undefined>(definition: ToolDefinition<TInput>): RegistrationHandle {
    const compiled = compileTool(definition as ToolDefinition, this.#report);
    const handle = this.#registry.add(compiled.name, compiled);
    this.#warmLater(compiled);
    return handle;
  }

  /** Replaces a registered tool's definition (same name), keeping its enabled state. */
  update<TInput extends SchemaInput | undefined>(definition: ToolDefinition<TInput>): void {
    const compiled = compileTool(definition as ToolDefinition, this.#report);
    this.#registry.replace(compiled.name, compiled);
    this.#warmLater(compiled);
  }

  /** Removes a tool; returns whether it existed. */
  remove(name: string): boolean {
    return this.#registry.remove(name);
  }

  enable(name: string): void {
    this.#registry.setEnabled(name, true);
  }

  disable(name: string): void {
    this.#registry.setEnabled(name, false);
  }

  /** Whether a tool with this name is registered (enabled or not). */
  has(name: string): boolean {
    return this.#registry.has(name);
  }

  /** The enabled tool with this name. */
  get(name: string): RegisteredTool | undefined {
    return this.#registry.get(name);
  }

  /** The enabled tool with this name, or a `NOT_FOUND` error (`INVALID_ARGUMENT` for an impossible name). */
  require(name: string): RegisteredTool {
    const tool = this.#registry.get(name);
    if (tool) return tool;
    if (typeof name !== 'string' || name.length > 128) {
      throw new McpKitError('INVALID_ARGUMENT', 'The tool name is longer than 128 characters');
    }
    const peeked = this.#registry.peek(name);
    throw new McpKitError(
      'NOT_FOUND',
      peeked ? `Tool ${quote(name)} is disabled` : `Tool ${quote(name)} not found`,
    );
  }

  /** The enabled tools as `tools/list` shows them (cached until the next change). */
  list(): readonly Tool[] {
    return this.#registry.listed();
  }

  /** Number of registered tools, enabled or not. */
  get size(): number {
    return this.#registry.size;
  }

  /** Stops building listed forms in the background (`server.close()` calls it). @internal */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#warming);
    this.#warming = undefined;
    this.#unlisted = [];
    this.#warmed = 0;
  }

  /**
   * Builds the listed forms of new tools in slices of a few milliseconds on later turns of the
   * event loop, so registration stays cheap and the first `tools/list` rarely pays for conversion
   * (if it comes first, it builds what is left itself). Never keeps the process alive.
   */
  #warmLater(tool: RegisteredTool): void {
    if (this.#closed) return;
    this.#unlisted.push(tool);
    this.#scheduleWarm();
  }

  #scheduleWarm(): void {
    if (this.#warming !== undefined) return;
    this.#warming = setTimeout(() => this.#warm(), 0);
    (this.#warming as { unref?: () => void }).unref?.();
  }

  #warm(): void {
    this.#warming = undefined;
    const pending = this.#unlisted;
    const deadline = performance.now() + WARM_SLICE_MS;
    while (this.#warmed < pending.length) {
      const tool = pending[this.#warmed]!;
      pending[this.#warmed++] = undefined as never;
      void tool.descriptor;
      if ((this.#warmed & 15) === 0 && performance.now() >= deadline) break;
    }
    if (this.#warmed < pending.length) {
      if (!this.#closed) this.#scheduleWarm();
      return;
    }
    this.#unlisted = [];
    this.#warmed = 0;
  }

  /** Registers many tools with a single `list_changed`. */
  registerMany(definitions: ToolDefinition<any>[]): RegistrationHandle[] {
    return this.#registry.batch(() => definitions.map((d) => this.register(d)));
  }
}
