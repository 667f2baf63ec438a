import {
  type AuthInfo,
  isJSONRPCRequest,
  type JSONRPCMessage,
  PerRequestHTTPServerTransport,
  type TransportSendOptions,
} from '@modelcontextprotocol/server';
import { isPlainRequest } from '../protocol/fastServer.js';
import { isWireRequest } from '../protocol/gate.js';
import { type LADDER_REFUSED, StatelessTransport } from './statelessTransport.js';

/**
 * Methods the one shared modern server serves: requests that carry everything they need in their
 * own envelope and leave nothing behind. The rest (`server/discover`, `subscriptions/listen`, the
 * tasks extension's methods, anything unknown) go through the SDK's entry, one server per request.
 */
const SHARED_MODERN_METHODS = new Set([
  'tools/call',
  'tools/list',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'ping',
]);

/** `_meta` key of the per-request envelope's protocol revision. */
const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';

/** The body field a method's `Mcp-Name` header mirrors (SEP-2243). */
const NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};

/** A header value that means exactly itself: visible ASCII, no Base64 sentinel, no padding. */
const PLAIN_HEADER = /^[\x21-\x7e]+$/;

/**
 * Whether one POST of the 2026-07-28 era is a plain request the shared modern server may serve:
 * one JSON-RPC request of a method in {@link SHARED_MODERN_METHODS}, whose envelope names `revision`
 * and whose standard headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) say literally what
 * its body says. Anything the SDK's entry could refuse on those grounds, or decode differently, goes
 * there instead, so the answer is always the SDK's own.
 */
export function isSharedModernRequest(request: Request, body: unknown, revision: string): boolean {
  if (!isWireRequest(body) || !SHARED_MODERN_METHODS.has(body.method)) return false;
  const params = (body as { params?: unknown }).params;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return false;
  const meta = (params as { _meta?: unknown })._meta;
  if (
    typeof meta !== 'object' ||
    meta === null ||
    (meta as Record<string, unknown>)[PROTOCOL_VERSION_KEY] !== revision
  )
    return false;
  const headers = request.headers;
  if (headers.get('mcp-protocol-version') !== revision || headers.get('mcp-method') !== body.method)
    return false;
  const source = NAME_SOURCE[body.method];
  if (source === undefined) return isValidRequest(body);
  const value = (params as Record<string, unknown>)[source];
  const name = headers.get('mcp-name');
  if (typeof value !== 'string' || name !== value || !PLAIN_HEADER.test(name) || name.startsWith('=?'))
    return false;
  return isValidRequest(body);
}

/**
 * The SDK entry's own test of a JSON-RPC request (an integer or string id, a progress token that is
 * one, …), last because it is the dearest: a body it refuses goes there to be refused, never to the
 * shared server, which would otherwise serve it (a fractional id) or never answer it (an object as
 * progress token).
 */
function isValidRequest(body: unknown): boolean {
  // A plain request is one the SDK's schema accepts as it is; only other shapes need the schema.
  return isPlainRequest(body) || (!Array.isArray(body) && isJSONRPCRequest(body));
}

/**
 * The transport of the one server that serves plain 2026-07-28 requests. It is the SDK's
 * per-request transport by type, so `Server.connect` binds the server to the modern era from its
 * classification (the SDK's own, public way of marking an instance modern), and then it serves any
 * number of exchanges at once, as {@link StatelessTransport} does for the 2025 era: each request
 * under a private id, a JSON answer unless something must go out before the result, the handler
 * cancelled when its client leaves.
 *
 * A request the server refuses synchronously, before any handler ran (the SDK's validation ladder),
 * resolves to {@link LADDER_REFUSED}, and the caller serves it through the SDK's entry instead: every
 * refusal is the SDK's own, status and all.
 */
export class SharedModernTransport extends PerRequestHTTPServerTransport {
  readonly #exchanges: StatelessTransport;
  #closed = false;

  constructor(revision: string) {
    const classification = { era: 'modern' as const, revision };
    super({ classification });
    this.#exchanges = new StatelessTransport({ jsonResponse: false, modern: classification });
    this.#exchanges.onmessage = (message, extra) => this.onmessage?.(message, extra);
  }

  override async start(): Promise<void> {}

  /** Serves one request that passed {@link isSharedModernRequest}. */
  serve(
    request: Request,
    body: unknown,
    authInfo: AuthInfo | undefined,
  ): Promise<Response | typeof LADDER_REFUSED> | Response {
    return this.#exchanges.handle(request, body, authInfo);
  }

  /** The id the client sent for the request served under private id `id`. */
  clientIdOf(id: string | number): string | number | undefined {
    return this.#exchanges.clientIdOf(id);
  }

  /** The handler of the request served under `id` ended (see {@link StatelessTransport.requestSettled}). */
  requestSettled(id: string | number): void {
    this.#exchanges.requestSettled(id);
  }

  override send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.#exchanges.send(message, options);
  }

  override async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#exchanges.close();
    this.onclose?.();
  }
}
