/**
 * Declarative tools: tools that are data, not code, so they can arrive over REST or from storage.
 * `kind: "http"` calls an HTTP endpoint on an allow-listed host; `kind: "chain"` runs existing tools
 * in sequence with `$ref` arguments. SSRF is the risk of the first kind, so every request (and every
 * redirect hop) goes through the server's outbound policy: scheme, host allow-list, no private
 * address in any spelling unless explicitly allowed, and on Node a connection to the address that
 * was checked. Error answers are summarised, never passed on.
 */
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/server';
import type { ToolDefinition } from './catalog/tools.js';
import { readStreamLimited } from './core/bodyLimit.js';
import { isAbortError, McpKitError, quote } from './core/errors.js';
import { maskSecrets } from './core/redaction.js';
import { jsonDepth, parseJsonSafe } from './core/safeJson.js';
import { resolveRefs } from './execution/chain.js';
import {
  connectionFailure,
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
  if (spec.kind === 'chain') return { ...common, handler: chainHandler(spec) };
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
      if (!response.ok) {
        const summary = summariseUpstreamError(text, response.headers.get('content-type'), secrets);
        return {
          content: [{ type: 'text', text: `HTTP ${response.status} from ${quote(host)}: ${summary}` }],
          isError: true,
        };
      }
      if (response.headers.get('content-type')?.includes('json')) {
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
