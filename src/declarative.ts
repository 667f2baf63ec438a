/**
 * Declarative tools: tools that are data, not code, so they can arrive over REST or from storage.
 * `kind: "http"` calls an HTTP endpoint on an allow-listed host; `kind: "chain"` runs existing tools
 * in sequence with `$ref` arguments. SSRF is the risk of the first kind, so every request (and every
 * redirect hop) goes through the server's outbound policy: scheme, host allow-list, no private
 * address in any spelling unless explicitly allowed, and on Node a connection to the address that
 * was checked. Error answers are summarised, never passed on.
 */
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/server';
import type { ToolContext, ToolDefinition } from './catalog/tools.js';
import { readStreamLimited } from './core/bodyLimit.js';
import { isAbortError, McpKitError, quote } from './core/errors.js';
import { maskSecrets } from './core/redaction.js';
import { jsonDepth, MAX_JSON_DEPTH, parseJsonSafe } from './core/safeJson.js';
import { resolveRefs } from './execution/chain.js';
import {
  connectionFailure,
  describeUpstreamError,
  isHeaderText,
  type OutboundOptions,
  OutboundPolicy,
  summariseUpstreamError,
} from './net/outbound.js';
import type { JsonSchema } from './schema.js';

/** Limits of declarative HTTP tools, and the outbound policy their requests go through. */
export interface DeclarativeToolOptions {
  /**
   * The outbound policy every request and redirect hop goes through (the server passes its own,
   * `server.outbound`, built from `createMcpServer({ outbound })`). Default: one built from the
   * deprecated fields below.
   */
  outbound?: OutboundPolicy;
  /** Largest response body read, in bytes. Default 1 MiB. */
  maxResponseBytes?: number;
  /** Timeout of one HTTP call in ms. Default 10 000. */
  timeoutMs?: number;
  /** Most redirects followed (each one checked like the first request). Default 3. */
  maxRedirects?: number;
  /**
   * Values that must never reach a caller: masked wherever an answer or an error would carry them
   * (an integration passes the secrets its tools' headers hold).
   */
  secrets?: readonly string[];
  /**
   * Where HTTP tools read their upstream's answers (parse its JSON, pick an error's message): in the
   * server's thread unless this says otherwise. It gives the pools (`createIsolation()` from
   * `mcpkit/node`), the levels a definition may ask for in its `isolation` field (an integration's for
   * all of its HTTP tools), and the level of a definition that asks for none. Without it, a
   * definition that asks for `worker` or `process` is refused.
   */
  isolation?: DeclarativeIsolationOptions;
  /** @deprecated Use `outbound.allowedHosts` (`createMcpServer({ outbound })`). */
  allowedHosts?: readonly string[];
  /** @deprecated Use `outbound.allowPrivateNetworks`. */
  allowPrivateNetworks?: boolean;
  /** @deprecated Use `outbound.resolveHost`. */
  resolveHost?: (hostname: string) => Promise<string[]>;
  /** @deprecated Use `outbound.fetch`. */
  fetch?: typeof fetch;
}

/**
 * The outbound policy `options` name: `options.outbound`, else one built from `overrides` (the
 * server's `outbound` option) over the deprecated `allowedHosts`, `allowPrivateNetworks`,
 * `resolveHost` and `fetch`.
 */
export function outboundOf(options: DeclarativeToolOptions, overrides: OutboundOptions = {}): OutboundPolicy {
  if (options.outbound) return options.outbound;
  const { allowedHosts, allowPrivateNetworks, resolveHost, fetch } = options;
  return new OutboundPolicy({
    ...(allowedHosts !== undefined && { allowedHosts }),
    ...(allowPrivateNetworks !== undefined && { allowPrivateNetworks }),
    ...(resolveHost !== undefined && { resolveHost }),
    ...(fetch !== undefined && { fetch }),
    ...overrides,
  });
}

/**
 * Where a declarative HTTP tool reads its upstream's answer: `none`, in the server's thread; `worker`,
 * in a worker thread with a heap limit and a hard timeout; `process`, in a child process under Node's
 * permission model.
 *
 * @example
 * ```ts
 * const spec: HttpToolSpec = { name: 'search', kind: 'http', isolation: 'worker', http: { url } };
 * ```
 */
export type DeclarativeIsolationLevel = 'none' | 'worker' | 'process';

/** The levels a definition's `isolation` field may name. */
export const DECLARATIVE_ISOLATION_LEVELS: readonly DeclarativeIsolationLevel[] = [
  'none',
  'worker',
  'process',
];

/**
 * An upstream's answer, as it goes to be read in isolation: its text (secrets masked already).
 *
 * @example
 * ```ts
 * const answer: UpstreamAnswer = { text: '{"a":1}', ok: true, json: true, maxDepth: 64, maxResultBytes: 1 << 20 };
 * ```
 */
export interface UpstreamAnswer {
  /** The body as text, at most `maxResponseBytes` of it, with the tool's secrets masked. */
  text: string;
  /** Whether the upstream answered 2xx. */
  ok: boolean;
  /** Whether its content type says JSON. */
  json: boolean;
  /** How deep its JSON may nest before it is taken as text. */
  maxDepth: number;
  /** The longest copy of the read that may come back, in bytes. */
  maxResultBytes: number;
}

/**
 * One read of an upstream's answer in isolation: where, what, within which limits.
 *
 * @example
 * ```ts
 * await pools.readUpstreamAnswer({ level: 'worker', answer, limits: { timeoutMs: 5_000, maxMemoryMb: 128 } }, ctx);
 * ```
 */
export interface UpstreamRead {
  level: Exclude<DeclarativeIsolationLevel, 'none'>;
  answer: UpstreamAnswer;
  limits: { timeoutMs: number; maxMemoryMb: number };
}

/**
 * What reading an upstream's answer gives: its JSON object, or the message of its error.
 *
 * @example
 * ```ts
 * const { value, message } = await pools.readUpstreamAnswer(read, ctx);
 * ```
 */
export interface UpstreamReading {
  /** A 2xx JSON answer's object (absent: the answer is its text). */
  value?: Record<string, unknown>;
  /** A failed answer's own message (`error.message`, `error` or `message` of its JSON), if any. */
  message?: string;
}

/**
 * Pools that read upstream answers in isolation. `createIsolation()` from `mcpkit/node` returns one;
 * another implementation must hold the same limits.
 *
 * @example
 * ```ts
 * import { createIsolation } from 'mcpkit/node';
 *
 * const pools: DeclarativeIsolationPools = createIsolation();
 * ```
 */
export interface DeclarativeIsolationPools {
  /** Reads `read.answer` at `read.level`, within `read.limits`, for the call `ctx` (its signal cancels it). */
  readUpstreamAnswer(read: UpstreamRead, ctx: ToolContext): Promise<UpstreamReading>;
}

/**
 * How declarative HTTP tools may be isolated (`createMcpServer({ declarativeTools: { isolation } })`).
 *
 * @example
 * ```ts
 * createMcpServer({ declarativeTools: { isolation: { pools: createIsolation(), default: 'worker' } } });
 * ```
 */
export interface DeclarativeIsolationOptions {
  /** The pools: `createIsolation()` from `mcpkit/node` (close it after the server). */
  pools: DeclarativeIsolationPools;
  /**
   * The levels a definition may name in its `isolation` field, beside `default`. Default
   * `['worker']`: `process` starts programs, so it is taken only when the operator lists it here.
   */
  allow?: readonly DeclarativeIsolationLevel[];
  /** The level of a definition that names none. Default `'none'`. */
  default?: DeclarativeIsolationLevel;
  /** Hard time limit of one read, in ms. Default 5 000. */
  timeoutMs?: number;
  /** Heap limit of the worker or process that reads, in MB. Default 128. */
  maxMemoryMb?: number;
}

interface CommonSpec {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: JsonSchema;
  annotations?: ToolAnnotations;
}

/** An HTTP call: `{arg}` in the URL's path and query, and in header values, is filled from the arguments. */
export interface HttpToolSpec extends CommonSpec {
  kind: 'http';
  http: {
    method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    url: string;
    headers?: Record<string, string>;
    /** The request body: `"$arguments"` sends the arguments as JSON; an object may hold `$ref`s into `input`. */
    body?: unknown;
  };
  /**
   * Where its upstream's answers are read (see {@link DeclarativeIsolationLevel}): one of the levels
   * the server allows (`declarativeTools.isolation`). Default: the server's default level, or its
   * integration's `isolation`.
   */
  isolation?: DeclarativeIsolationLevel;
}

/** A chain of existing tools, in the executor's declarative form. */
export interface ChainToolSpec extends CommonSpec {
  kind: 'chain';
  steps: Array<{ tool: string; name?: string; args?: Record<string, unknown> }>;
}

/** A declarative tool, as `POST /tools` accepts it. */
export type DeclarativeToolSpec = HttpToolSpec | ChainToolSpec;

const PLACEHOLDER = /\{([A-Za-z0-9_.-]+)\}/g;

function invalid(message: string): McpKitError {
  return new McpKitError('INVALID_ARGUMENT', message);
}

/** A header name (an RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers a tool may not set: they steer the connection or the message framing, not the request. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
]);

/**
 * Fills `{name}` placeholders from the arguments: percent-encoded in the URL; in a header, a value
 * with a control character (or one past Latin-1) is refused before any header is built.
 */
function fill(template: string, args: Record<string, unknown>, into: 'url' | 'header'): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = args[name];
    if (value === undefined || value === null) return '';
    const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    if (into === 'url') return encodeURIComponent(text);
    if (!isHeaderText(text)) {
      throw invalid(
        `Argument ${quote(name)} cannot go in a header: it holds a control character or a character outside Latin-1`,
      );
    }
    return text;
  });
}

/** Checks a spec's headers whole: names are tokens, none steers the connection, values are header text. */
function checkHeaders(headers: unknown): Record<string, string> {
  if (headers === undefined) return {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
    throw invalid('http.headers must be an object of strings');
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) throw invalid(`http.headers: ${quote(name)} is not a header name`);
    if (RESERVED_HEADERS.has(name.toLowerCase()) || name.toLowerCase().startsWith('proxy-'))
      throw invalid(`http.headers: ${quote(name)} cannot be set by a tool`);
    // The value is never echoed: an integration's secrets are filled in before this check.
    if (typeof value !== 'string') throw invalid(`http.headers.${name} must be a string`);
    if (!isHeaderText(value))
      throw invalid(`http.headers.${name} holds a control character or a character outside Latin-1`);
    out[name] = value;
  }
  return out;
}

async function readLimited(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  const read = declared > limit ? { tooLarge: true as const } : await readStreamLimited(response.body, limit);
  if (read.tooLarge) {
    await response.body?.cancel().catch(() => {});
    throw new McpKitError('UPSTREAM_ERROR', `Response larger than ${limit} bytes`);
  }
  return new TextDecoder().decode(read.bytes);
}

/** How deep a declarative tool spec may nest (its input schema and chain arguments included). */
export const MAX_SPEC_DEPTH = 32;

function validateCommon(spec: CommonSpec): void {
  if (typeof spec.name !== 'string') throw invalid('name must be a string');
  // A spec is listed with the tool (`_meta`): one that cannot be serialised, or nests absurdly deep,
  // would break every tools/list. It is refused whole, before anything is registered.
  if (jsonDepth(spec, MAX_SPEC_DEPTH) > MAX_SPEC_DEPTH) {
    throw invalid(`the tool nests deeper than ${MAX_SPEC_DEPTH} levels`);
  }
  try {
    JSON.stringify(spec);
  } catch {
    throw invalid('the tool must be plain JSON data');
  }
  if (spec.inputSchema !== undefined && (typeof spec.inputSchema !== 'object' || spec.inputSchema === null)) {
    throw invalid('inputSchema must be a JSON Schema object');
  }
}

/**
 * Compiles a declarative tool into a tool definition whose handler enforces `options`.
 *
 * @example
 * ```ts
 * const def = compileDeclarativeTool(
 *   { name: 'weather', kind: 'http', http: { url: 'https://api.example.com/weather?city={city}' } },
 *   { outbound: new OutboundPolicy({ allowedHosts: ['api.example.com'] }) },
 * );
 * server.tools.register(def);
 * ```
 */
export function compileDeclarativeTool(
  spec: DeclarativeToolSpec,
  options: DeclarativeToolOptions = {},
): ToolDefinition {
  if (typeof spec !== 'object' || spec === null) throw invalid('the tool must be a JSON object');
  validateCommon(spec);
  const common = {
    name: spec.name,
    // Data acts as whoever calls it: a chain's steps are checked and paid for as that caller's own.
    callToolAs: 'caller' as const,
    ...(spec.title !== undefined && { title: spec.title }),
    ...(spec.description !== undefined && { description: spec.description }),
    ...(spec.inputSchema !== undefined && { inputSchema: spec.inputSchema }),
    ...(spec.annotations !== undefined && { annotations: spec.annotations }),
    _meta: { 'io.mcpkit/declarative': spec },
  };
  if (spec.kind === 'chain') {
    if ((spec as { isolation?: unknown }).isolation !== undefined)
      throw invalid('isolation applies to http tools only: a chain runs its steps, each under its own');
    return { ...common, handler: chainHandler(spec) };
  }
  if (spec.kind === 'http') return { ...common, handler: httpHandler(spec, options) };
  throw invalid('kind must be "http" or "chain"');
}

/**
 * The tools a chain spec's steps call (none for other kinds, or for input that is not a chain): what
 * its author must be allowed to run to register it.
 */
export function chainStepTools(spec: unknown): string[] {
  const chain = spec as { kind?: unknown; steps?: unknown } | null;
  if (typeof chain !== 'object' || chain === null || chain.kind !== 'chain' || !Array.isArray(chain.steps)) {
    return [];
  }
  const tools: string[] = [];
  for (const step of chain.steps) {
    const tool = (step as { tool?: unknown } | null)?.tool;
    if (typeof tool === 'string') tools.push(tool);
  }
  return tools;
}

function chainHandler(spec: ChainToolSpec): ToolDefinition['handler'] {
  if (!Array.isArray(spec.steps) || spec.steps.length === 0) throw invalid('steps must be a non-empty array');
  spec.steps.forEach((step, i) => {
    if (typeof step?.tool !== 'string') throw invalid(`steps[${i}].tool must be a tool name`);
  });
  return async (input, ctx) => {
    const results: CallToolResult[] = [];
    const named: Record<string, CallToolResult> = {};
    let last: CallToolResult = { content: [] };
    for (const step of spec.steps) {
      const args = resolveRefs(step.args ?? {}, { input, steps: Object.assign([...results], named) });
      // Through ctx.callTool: the steps run inside this call's slots, so limits cannot deadlock.
      last = await ctx.callTool(step.tool, args);
      results.push(last);
      if (step.name !== undefined) named[step.name] = last;
      if (last.isError) return last;
    }
    return last;
  };
}

function httpHandler(spec: HttpToolSpec, options: DeclarativeToolOptions): ToolDefinition['handler'] {
  const http = spec.http;
  if (typeof http !== 'object' || http === null || typeof http.url !== 'string')
    throw invalid('http.url must be a string');
  let template: URL;
  try {
    template = new URL(http.url.replace(PLACEHOLDER, 'x'));
  } catch {
    throw invalid('http.url must be an absolute URL');
  }
  const origin = http.url.slice(0, http.url.indexOf(template.host) + template.host.length);
  if (origin.includes('{'))
    throw invalid('http.url may hold placeholders in its path and query only, not its host');
  const outbound = outboundOf(options);
  // What can be known now is refused now: scheme, credentials, allow-list, private literals.
  outbound.check(template);
  const method = http.method ?? 'GET';
  if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method))
    throw invalid('http.method is not supported');
  const specHeaders = checkHeaders(http.headers);
  const limits = {
    maxResponseBytes: options.maxResponseBytes ?? 1024 * 1024,
    timeoutMs: options.timeoutMs ?? 10_000,
    maxRedirects: options.maxRedirects ?? 3,
  };
  const secrets = [...(options.secrets ?? [])];
  const read = answerReader(spec, options, limits.maxResponseBytes);
  return async (args, ctx) => {
    const input = args as Record<string, unknown>;
    let url = new URL(fill(http.url, input, 'url'));
    let headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(specHeaders)) headers[name] = fill(value, input, 'header');
    let body: string | undefined;
    let verb: string = method;
    if (http.body !== undefined && method !== 'GET') {
      body = JSON.stringify(http.body === '$arguments' ? input : resolveRefs(http.body, { input }));
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
        headers['content-type'] = 'application/json';
    }
    const timeout = AbortSignal.timeout(limits.timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    for (let hop = 0; ; hop++) {
      const host = url.hostname;
      let response: Response;
      let text: string;
      try {
        response = await outbound.fetch(url, {
          method: verb,
          headers,
          ...(body !== undefined && { body }),
          signal,
        });
        const location = response.headers.get('location');
        if (response.status >= 300 && response.status < 400 && location !== null) {
          await response.body?.cancel().catch(() => {});
          if (hop >= limits.maxRedirects) throw new McpKitError('UPSTREAM_ERROR', 'Too many redirects');
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            throw new McpKitError('UPSTREAM_ERROR', `${quote(host)} redirected to an invalid URL`);
          }
          if (
            response.status === 303 ||
            ((response.status === 301 || response.status === 302) && verb === 'POST')
          ) {
            verb = 'GET';
            body = undefined;
          }
          // The tool's headers (and the secrets in them) belong to the origin it names.
          if (next.origin !== url.origin)
            headers =
              body === undefined ? {} : { 'content-type': headers['content-type'] ?? 'application/json' };
          else if (body === undefined)
            headers = Object.fromEntries(
              Object.entries(headers).filter(([h]) => h.toLowerCase() !== 'content-type'),
            );
          url = next;
          continue;
        }
        text = maskSecrets(await readLimited(response, limits.maxResponseBytes), secrets);
      } catch (error) {
        if (error instanceof McpKitError) throw error;
        if (ctx.signal.aborted || (isAbortError(error) && !timeout.aborted)) throw error;
        if (timeout.aborted)
          throw new McpKitError('TIMEOUT', `No answer from ${quote(host)} within ${limits.timeoutMs} ms`);
        throw new McpKitError(
          'UPSTREAM_ERROR',
          `The request to ${quote(host)} failed: ${connectionFailure(error)}`,
        );
      }
      const contentType = response.headers.get('content-type');
      const json = contentType?.includes('json') === true;
      const reading = read && (await read({ text, ok: response.ok, json }, ctx));
      if (!response.ok) {
        const summary = reading
          ? // read in isolation: the body's own message, or none; it is not parsed here again
            describeUpstreamError({ message: reading.message, body: text, contentType, secrets })
          : summariseUpstreamError(text, contentType, secrets);
        return {
          content: [{ type: 'text', text: `HTTP ${response.status} from ${quote(host)}: ${summary}` }],
          isError: true,
        };
      }
      if (reading) return reading.value ?? text;
      if (json) {
        try {
          const parsed = parseJsonSafe(text);
          if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
        } catch {
          // not JSON after all: fall through to text
        }
      }
      return text;
    }
  };
}

/**
 * Checks the operator's `declarativeTools.isolation` once, when the server is built: a wrong level or
 * limit is the operator's mistake, reported at start rather than as every definition's.
 *
 * @example
 * ```ts
 * checkDeclarativeIsolation({ pools: createIsolation(), allow: ['worker', 'process'] });
 * ```
 */
export function checkDeclarativeIsolation(isolation: DeclarativeIsolationOptions | undefined): void {
  if (isolation === undefined) return;
  const where = 'declarativeTools.isolation';
  if (typeof isolation?.pools?.readUpstreamAnswer !== 'function')
    throw new TypeError(`${where}.pools must be an isolation (createIsolation() from mcpkit/node)`);
  const levels = [
    ...(isolation.allow ?? []),
    ...(isolation.default === undefined ? [] : [isolation.default]),
  ];
  if (isolation.allow !== undefined && !Array.isArray(isolation.allow))
    throw new TypeError(`${where}.allow must be an array of levels`);
  for (const level of levels) {
    if (!DECLARATIVE_ISOLATION_LEVELS.includes(level))
      throw new TypeError(
        `${where}: ${JSON.stringify(level)} is not a level ("none", "worker" or "process")`,
      );
  }
  for (const option of ['timeoutMs', 'maxMemoryMb'] as const) {
    const value = isolation[option];
    if (value !== undefined && !(Number.isInteger(value) && value > 0))
      throw new TypeError(`${where}.${option} must be a positive integer`);
  }
}

/** A definition's isolation level, checked: one of {@link DECLARATIVE_ISOLATION_LEVELS}. */
function levelOf(value: unknown): DeclarativeIsolationLevel | undefined {
  if (value === undefined) return undefined;
  if (!DECLARATIVE_ISOLATION_LEVELS.includes(value as DeclarativeIsolationLevel))
    throw invalid('isolation must be "none", "worker" or "process"');
  return value as DeclarativeIsolationLevel;
}

/**
 * How an HTTP tool reads its upstream's answers: `undefined` in the server's thread, else a function
 * that reads one in the pools. A level the operator does not allow is refused here, when the tool is
 * compiled (a REST write answers 400), never at call time.
 */
function answerReader(
  spec: HttpToolSpec,
  options: DeclarativeToolOptions,
  maxResponseBytes: number,
):
  | ((answer: Pick<UpstreamAnswer, 'text' | 'ok' | 'json'>, ctx: ToolContext) => Promise<UpstreamReading>)
  | undefined {
  const isolation = options.isolation;
  const asked = levelOf(spec.isolation);
  const fallback = levelOf(isolation?.default) ?? 'none';
  const level = asked ?? fallback;
  if (asked !== undefined && asked !== fallback) {
    const allowed = isolation ? (isolation.allow ?? ['worker']) : [];
    if (!allowed.includes(asked))
      throw invalid(`isolation "${asked}" is not allowed on this server for declarative tools`);
  }
  if (level === 'none') return undefined;
  if (!isolation) throw invalid(`isolation "${level}" is not allowed on this server for declarative tools`);
  const limits = { timeoutMs: isolation.timeoutMs ?? 5_000, maxMemoryMb: isolation.maxMemoryMb ?? 128 };
  // What comes back is a copy of the parsed answer: its size tracks the text's, with room for the
  // copy's own overhead (numbers and tags), so a parse that explodes cannot copy back unbounded.
  const maxResultBytes = maxResponseBytes * 4 + 64 * 1024;
  return (answer, ctx) =>
    isolation.pools.readUpstreamAnswer(
      { level, answer: { ...answer, maxDepth: MAX_JSON_DEPTH, maxResultBytes }, limits },
      ctx,
    );
}
