/**
 * Declarative tools: tools that are data, not code, so they can arrive over REST or from storage.
 * `kind: "http"` calls an HTTP endpoint on an allow-listed host; `kind: "chain"` runs existing tools
 * in sequence with `$ref` arguments. SSRF is the risk of the first kind, so every request (and every
 * redirect hop) is checked: scheme, host allow-list, and no private or loopback address unless
 * explicitly allowed.
 */
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/server';
import type { ToolDefinition } from './catalog/tools.js';
import { McpKitError } from './errors.js';
import { resolveRefs } from './executor.js';
import { readStreamLimited } from './http/bodyText.js';
import { jsonDepth, parseJsonSafe } from './http/safeJson.js';
import type { JsonSchema } from './schema.js';

/** Limits on what declarative HTTP tools may reach. */
export interface DeclarativeToolOptions {
  /**
   * Hostnames HTTP tools may call: exact names, or `*.example.com` for subdomains. Empty (the
   * default) means no HTTP tool can be registered.
   */
  allowedHosts?: readonly string[];
  /** Allow loopback, private, link-local and other non-public addresses. Default `false`. */
  allowPrivateNetworks?: boolean;
  /** Largest response body read, in bytes. Default 1 MiB. */
  maxResponseBytes?: number;
  /** Timeout of one HTTP call in ms. Default 10 000. */
  timeoutMs?: number;
  /** Most redirects followed (each one checked like the first request). Default 3. */
  maxRedirects?: number;
  /**
   * Resolves a hostname to addresses, so that names pointing at private addresses are refused too
   * (`nodeDnsResolver` from `mcpkit/node`). Without one, only IP literals and `localhost` are checked.
   */
  resolveHost?: (hostname: string) => Promise<string[]>;
  /** The fetch implementation. Default: the global `fetch`. */
  fetch?: typeof fetch;
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

function ipv4(host: string): number[] | undefined {
  const parts = host.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return undefined;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

/** Whether `address` (an IP literal, or a name) is loopback, private, link-local or otherwise not public. */
export function isPrivateAddress(address: string): boolean {
  const host = address.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const v4 = ipv4(host);
  if (v4) {
    const [a, b] = v4 as [number, number, number, number];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 198 && (b === 18 || b === 19)) ||
      a >= 224
    );
  }
  if (host.includes(':')) {
    if (host === '::' || host === '::1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    if (mapped) return isPrivateAddress(mapped[1]!);
    return /^(fc|fd|fe8|fe9|fea|feb|ff)/.test(host);
  }
  return false;
}

function hostAllowed(hostname: string, allowed: readonly string[]): boolean {
  const host = hostname.toLowerCase();
  return allowed.some((entry) => {
    const rule = entry.toLowerCase();
    return rule.startsWith('*.')
      ? host.endsWith(rule.slice(1)) && host.length > rule.length - 1
      : host === rule;
  });
}

async function checkTarget(
  url: URL,
  options: Required<Omit<DeclarativeToolOptions, 'resolveHost' | 'fetch'>> & DeclarativeToolOptions,
) {
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new McpKitError('FORBIDDEN', `Scheme ${url.protocol} is not allowed`);
  if (url.username || url.password)
    throw new McpKitError('FORBIDDEN', 'URLs with credentials are not allowed');
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  if (!hostAllowed(hostname, options.allowedHosts)) {
    throw new McpKitError('FORBIDDEN', `Host ${hostname} is not on the allow-list`);
  }
  if (options.allowPrivateNetworks) return;
  if (isPrivateAddress(hostname)) throw new McpKitError('FORBIDDEN', `Host ${hostname} is a private address`);
  if (options.resolveHost && !ipv4(hostname) && !hostname.includes(':')) {
    const addresses = await options.resolveHost(hostname);
    if (addresses.some(isPrivateAddress))
      throw new McpKitError('FORBIDDEN', `Host ${hostname} resolves to a private address`);
  }
}

function fill(template: string, args: Record<string, unknown>, encode: boolean): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = args[name];
    if (value === undefined || value === null) return '';
    const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    return encode ? encodeURIComponent(text) : text.replace(/[\r\n]/g, ' ');
  });
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
 *   { allowedHosts: ['api.example.com'] },
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
  const allowedHosts = options.allowedHosts ?? [];
  if (!hostAllowed(template.hostname.replace(/^\[|\]$/g, ''), allowedHosts)) {
    throw new McpKitError('FORBIDDEN', `Host ${template.hostname} is not on the allow-list for HTTP tools`);
  }
  const method = http.method ?? 'GET';
  if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method))
    throw invalid('http.method is not supported');
  const limits = {
    allowedHosts,
    allowPrivateNetworks: options.allowPrivateNetworks ?? false,
    maxResponseBytes: options.maxResponseBytes ?? 1024 * 1024,
    timeoutMs: options.timeoutMs ?? 10_000,
    maxRedirects: options.maxRedirects ?? 3,
    ...(options.resolveHost && { resolveHost: options.resolveHost }),
  };
  const doFetch = options.fetch ?? globalThis.fetch;
  return async (args, ctx) => {
    const input = args as Record<string, unknown>;
    let url = new URL(fill(http.url, input, true));
    const headers = Object.fromEntries(
      Object.entries(http.headers ?? {}).map(([k, v]) => [k, fill(String(v), input, false)]),
    );
    let body: string | undefined;
    if (http.body !== undefined && method !== 'GET') {
      body = JSON.stringify(http.body === '$arguments' ? input : resolveRefs(http.body, { input }));
      headers['content-type'] ??= 'application/json';
    }
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(limits.timeoutMs)]);
    for (let hop = 0; ; hop++) {
      await checkTarget(url, limits);
      const response = await doFetch(url, {
        method,
        headers,
        ...(body !== undefined && { body }),
        redirect: 'manual',
        signal,
      });
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel().catch(() => {});
        if (hop >= limits.maxRedirects) throw new McpKitError('UPSTREAM_ERROR', 'Too many redirects');
        url = new URL(location, url);
        continue;
      }
      const text = await readLimited(response, limits.maxResponseBytes);
      if (!response.ok) {
        return {
          content: [{ type: 'text', text: `HTTP ${response.status}: ${text.slice(0, 2000)}` }],
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
