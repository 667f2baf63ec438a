/**
 * Upstream MCP servers as integrations: what an integration stores to reach one over HTTP, what code
 * attaches to reach one any other way (a program over stdio, an in-process pair), the limits a
 * hostile upstream meets, and the state every view shows.
 */
import type { Transport } from '@modelcontextprotocol/server';

/**
 * An upstream MCP server over Streamable HTTP (either protocol era), as an integration stores it
 * and `POST /integrations` accepts it. Header values may read the integration's secrets as
 * `{{secrets.NAME}}`; the URL goes through the server's outbound policy (allow-list, no private
 * addresses unless allowed), like every outbound request.
 *
 * @example
 * ```ts
 * await server.integrations.create({
 *   id: 'tickets',
 *   name: 'Tickets',
 *   upstream: { url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer {{secrets.TOKEN}}' } },
 *   secrets: { TOKEN: process.env.TICKETS_TOKEN! },
 * });
 * ```
 */
export interface UpstreamSpec {
  /** The upstream's MCP endpoint, an absolute http(s) URL without credentials. */
  url: string;
  /** Headers sent with every request (`Authorization: Bearer {{secrets.TOKEN}}`). */
  headers?: Record<string, string>;
  /**
   * Whether the caller's identity goes upstream: `'none'` (default) sends nothing about who asked;
   * `'meta'` puts `{ id }` of the caller (never its credentials) in each forwarded request's
   * `_meta['io.mcpkit/caller']`.
   */
  forwardCaller?: 'none' | 'meta';
  /** Take the upstream's entries out of the catalog while it is unavailable. Default `false`. */
  hideUnavailable?: boolean;
}

/**
 * An upstream attached in code ({@link IntegrationManager.attachUpstream}): anything that opens an
 * SDK `Transport` to an MCP server, such as `stdioUpstream()` from `mcpkit/node`, which starts a
 * program. Never accepted from a request: a remote caller must not start programs on the host.
 *
 * @example
 * ```ts
 * import { WebSocketClientTransport } from 'mcpkit/node';
 * server.integrations.attachUpstream('other', {
 *   label: 'websocket: other mcpkit',
 *   connect: () => new WebSocketClientTransport('ws://127.0.0.1:4000/mcp'),
 * });
 * ```
 */
export interface UpstreamSource {
  /** Opens a new transport to the upstream; called again for every reconnect. */
  connect(): Transport | Promise<Transport>;
  /** What views show for it (e.g. `stdio: node server.js`). Never put secrets in it. */
  label?: string;
  /** As {@link UpstreamSpec.forwardCaller}. Default `'none'`. */
  forwardCaller?: 'none' | 'meta';
  /** As {@link UpstreamSpec.hideUnavailable}. Default `false`. */
  hideUnavailable?: boolean;
}

/** Where an upstream stands. */
export type UpstreamStatus = 'connecting' | 'ready' | 'unavailable' | 'stopped';

/** An upstream's state, as `GET /integrations/{id}`, `server.integrations.get()` and health show it. */
export interface UpstreamState {
  status: UpstreamStatus;
  /** `http` for a stored URL, `code` for one attached in code. */
  transport: 'http' | 'code';
  /** The URL's origin, or the source's label. */
  target: string;
  /** When `status` last changed (ISO 8601). */
  since: string;
  /** Failed connection attempts since the last success. */
  failures: number;
  /** Why the last attempt or the connection failed (never a secret, a path or a stack). */
  lastError?: string;
  /** What the upstream said it is. */
  server?: { name: string; version: string };
  /** The protocol version agreed with it. */
  protocolVersion?: string;
  /** How many tools, resources, templates and prompts it offers (after limits). */
  offers: { tools: number; resources: number; resourceTemplates: number; prompts: number };
}

/**
 * Bounds on what one upstream may put in the catalog and send back (`integrations.upstreamLimits`).
 * Anything past them is dropped with a warning, or fails the call with `UPSTREAM_ERROR`.
 *
 * @example
 * ```ts
 * createMcpServer({ integrations: { upstreamLimits: { maxEntries: 200, backoff: { maxMs: 10_000 } } } });
 * ```
 */
export interface UpstreamLimits {
  /** Entries of each kind (tools, resources, templates, prompts) taken from one upstream. Default 500. */
  maxEntries?: number;
  /** Bytes of one listed entry's JSON (a tool with its schemas). Default 64 KiB. */
  maxEntryBytes?: number;
  /** Nesting depth of one listed entry's JSON (twice this for an answer to a forwarded request). Default 32. */
  maxDepth?: number;
  /** Bytes of one HTTP response or server-sent event from an HTTP upstream. Default 8 MiB. */
  maxResponseBytes?: number;
  /** Milliseconds to connect and list before an attempt counts as failed. Default 10 000. */
  connectTimeoutMs?: number;
  /** First and longest wait between reconnection attempts, in milliseconds. Default 500 and 30 000. */
  backoff?: { minMs?: number; maxMs?: number };
}
