/**
 * The outbound policy: where mcpkit may send a request on someone's behalf — declarative HTTP tools
 * (`POST /tools`, integrations) and model endpoints (integrations, completions). One allow-list, one
 * address classifier, and on Node one connection that goes to the address that was checked.
 */
import { McpKitError, quote } from '../core/errors.js';
import { redactText } from '../core/redaction.js';
import { type AddressRange, addressRange, parseIp } from './address.js';
import { type Connector, createNodeConnector, type OutboundInit, type ResolvedAddress } from './connect.js';

export type { OutboundInit } from './connect.js';

/** Where mcpkit may send requests on a caller's behalf (`createMcpServer({ outbound })`). */
export interface OutboundOptions {
  /**
   * Hostnames requests may go to: exact names or IP literals, or `*.example.com` for subdomains.
   * Default none: no declarative HTTP tool can be registered, and models reach only their
   * provider's own API (`api.openai.com`, `api.anthropic.com`).
   */
  allowedHosts?: readonly string[];
  /**
   * Allow loopback, private, link-local, shared, reserved and every other non-public address, in
   * every spelling (IPv4-mapped and NAT64 IPv6 included). Default `false`.
   */
  allowPrivateNetworks?: boolean;
  /**
   * Resolves a hostname to its addresses, for the check (and, on Node, for the connection itself).
   * Default on Node: the operating system's resolver. Elsewhere, without one, only IP literals and
   * local names (`localhost`, `*.local`, …) are checked.
   */
  resolveHost?: (hostname: string) => Promise<string[]>;
  /**
   * The `fetch` to send with. Default on Node: a connection pinned to the checked address. A `fetch`
   * of yours resolves the name again, after the check: a resolver that answers differently the
   * second time (DNS rebinding) is then not caught.
   */
  fetch?: typeof fetch;
}

/** Per-request options of {@link OutboundPolicy.fetch}. */
export interface OutboundFetchOptions {
  /** Hosts allowed for this request besides the allow-list (a provider's own API). */
  also?: readonly string[];
  /** A `fetch` for this request instead of the policy's (check-then-fetch, as with `OutboundOptions.fetch`). */
  fetch?: typeof fetch;
}

/** The hosts of the built-in model providers, allowed for model requests whatever the allow-list says. */
export const MODEL_PROVIDER_HOSTS: readonly string[] = ['api.openai.com', 'api.anthropic.com'];

/** A hostname without IPv6 brackets or trailing dots, lowercased. */
function bareHost(hostname: string): string {
  return hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.+$/, '');
}

function hostMatches(host: string, entry: string): boolean {
  const rule = bareHost(entry);
  if (rule.startsWith('*.')) return host.endsWith(rule.slice(1)) && host.length > rule.length - 1;
  if (host === rule) return true;
  // IP literals match in any spelling: `::ffff:7f00:1` is `::ffff:127.0.0.1`.
  const [a, b] = [parseIp(host), parseIp(rule)];
  return !!a && !!b && a.version === b.version && a.bytes.every((x, i) => x === b.bytes[i]);
}

/**
 * Whether `value` can be a header value as it is: no control characters (tab aside), nothing past
 * Latin-1. Anything else makes a request fail with an error that quotes the header.
 */
export function isHeaderText(value: string): boolean {
  return /^[\t\u0020-\u007e\u0080-\u00ff]*$/.test(value);
}

/** Why a connection attempt failed, in words that carry nothing from the error itself. */
export function connectionFailure(error: unknown): string {
  let cause: unknown = error;
  for (let depth = 0; depth < 4 && cause && typeof cause === 'object'; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (code === 'ECONNREFUSED') return 'connection refused';
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
      if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return 'connection reset';
      if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'connection timed out';
      if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
      if (/CERT|TLS|SSL/.test(code)) return 'TLS handshake failed';
    }
    cause = (cause as { cause?: unknown }).cause;
  }
  return 'connection failed';
}

/** The longest upstream error message passed on. */
const UPSTREAM_MESSAGE_LENGTH = 200;

/**
 * The message an upstream's error body gives for itself: `error.message`, `error` or `message` of its
 * JSON (a body up to 1 MiB), else `undefined`. (`src/node/isolation/httpAnswer.mjs` reads it the same
 * way in a worker.)
 *
 * @example
 * ```ts
 * upstreamErrorMessage('{"error":{"message":"model not found"}}'); // 'model not found'
 * ```
 */
export function upstreamErrorMessage(body: string): unknown {
  if (body.length > 1024 * 1024) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    return typeof parsed?.error === 'object' && parsed.error !== null
      ? parsed.error.message
      : typeof parsed?.error === 'string'
        ? parsed.error
        : parsed?.message;
  } catch {
    return undefined; // not JSON: summarised by type and size
  }
}

/**
 * What a caller may learn from an upstream error answer: the `error.message` (or `message`, or
 * `error` string) of a JSON body, redacted, without control characters and cut to 200 characters;
 * for any other body only its type and size. The body itself is never passed on.
 *
 * @example
 * ```ts
 * summariseUpstreamError('{"error":{"message":"model not found"}}', 'application/json'); // 'model not found'
 * summariseUpstreamError('<html>…</html>', 'text/html'); // 'a text/html body of 14 bytes'
 * ```
 */
export function summariseUpstreamError(
  body: string,
  contentType: string | null,
  secrets: ReadonlyArray<string | undefined> = [],
): string {
  return describeUpstreamError({ message: upstreamErrorMessage(body), body, contentType, secrets });
}

/**
 * {@link summariseUpstreamError} with the body's own message read already (in isolation, by
 * `declarativeTools.isolation`): the body is not parsed again.
 *
 * @example
 * ```ts
 * describeUpstreamError({ message: 'model not found', body, contentType: 'application/json', secrets: [] });
 * ```
 */
export function describeUpstreamError(error: {
  message: unknown;
  body: string;
  contentType: string | null;
  secrets: ReadonlyArray<string | undefined>;
}): string {
  const { message, body, contentType, secrets } = error;
  if (typeof message === 'string' && message.trim() !== '') {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
    const plain = message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
    return redactText(plain, { secrets, maxLength: UPSTREAM_MESSAGE_LENGTH });
  }
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const bytes = new TextEncoder().encode(body).byteLength;
  if (bytes === 0) return 'an empty body';
  const named = /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(type) ? type : 'untyped';
  return `a ${named} body of ${bytes} bytes`;
}

/**
 * The outbound policy of a server (`server.outbound`): checks a URL's scheme, credentials, host
 * allow-list and address range, and sends requests to checked addresses only. Redirects are never
 * followed here: a caller that follows one checks the next URL again.
 *
 * @example
 * ```ts
 * const outbound = new OutboundPolicy({ allowedHosts: ['api.example.com'] });
 * outbound.check(new URL('http://[::ffff:7f00:1]/')); // throws FORBIDDEN: not on the allow-list
 * const response = await outbound.fetch(new URL('https://api.example.com/v1/items'), { method: 'GET' });
 * ```
 */
export class OutboundPolicy {
  /** The allow-list, as given. */
  readonly allowedHosts: readonly string[];
  /** Whether non-public addresses may be reached. */
  readonly allowPrivateNetworks: boolean;
  readonly #resolveHost: OutboundOptions['resolveHost'];
  readonly #fetch: typeof fetch | undefined;
  #connector: Connector | null | undefined;

  constructor(options: OutboundOptions = {}) {
    const hosts = options.allowedHosts ?? [];
    if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== 'string' || h.trim() === ''))
      throw new TypeError('outbound.allowedHosts must be an array of hostnames');
    this.allowedHosts = Object.freeze([...hosts]);
    this.allowPrivateNetworks = options.allowPrivateNetworks === true;
    this.#resolveHost = options.resolveHost;
    this.#fetch = options.fetch;
  }

  /** Whether `hostname` is on the allow-list, or among `also`. */
  allows(hostname: string, also: readonly string[] = []): boolean {
    const host = bareHost(hostname);
    return this.allowedHosts.some((e) => hostMatches(host, e)) || also.some((e) => hostMatches(host, e));
  }

  /**
   * Checks what can be known without resolving: an http(s) URL without credentials, to an allowed
   * host, that is not a private address or a local name (unless private networks are allowed).
   * Throws `FORBIDDEN`.
   */
  check(url: URL, also: readonly string[] = []): void {
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new McpKitError(
        'FORBIDDEN',
        `Scheme ${quote(url.protocol)} is not allowed for outbound requests`,
      );
    if (url.username || url.password)
      throw new McpKitError('FORBIDDEN', 'URLs with credentials are not allowed for outbound requests');
    const host = bareHost(url.hostname);
    if (!this.allows(host, also))
      throw new McpKitError('FORBIDDEN', `Host ${quote(host)} is not on the outbound allow-list`);
    if (this.allowPrivateNetworks) return;
    const range = addressRange(host);
    if (range !== undefined && range !== 'public') throw refusedRange(host, range, 'is');
  }

  /**
   * Sends one request to `url` after {@link check}: on Node over a connection to an address resolved
   * and checked in the same step; elsewhere (or with a `fetch` of yours) after resolving with
   * `resolveHost`, when there is one. A redirect comes back as the 3xx response it is.
   */
  async fetch(url: URL, init: OutboundInit, options: OutboundFetchOptions = {}): Promise<Response> {
    this.check(url, options.also);
    const host = bareHost(url.hostname);
    const custom = options.fetch ?? this.#fetch;
    const connector = custom ? undefined : this.#nodeConnector();
    if (connector) return connector.request(url, init, (name) => this.resolve(name));
    if (!this.allowPrivateNetworks && this.#resolveHost && !parseIp(host)) await this.resolve(host);
    return (custom ?? globalThis.fetch)(url, { ...init, redirect: 'manual' } as RequestInit);
  }

  /**
   * Resolves `hostname` with `resolveHost` (or, on Node, the system resolver) and checks every
   * address it gives: `FORBIDDEN` if one is not public (unless private networks are allowed),
   * `UPSTREAM_ERROR` if it does not resolve.
   */
  async resolve(hostname: string): Promise<ResolvedAddress[]> {
    const host = bareHost(hostname);
    let found: ResolvedAddress[];
    try {
      if (this.#resolveHost) {
        found = (await this.#resolveHost(host)).map((address) => {
          const ip = parseIp(address);
          if (!ip) throw new Error('not an address');
          return { address: address.replace(/^\[(.*)\]$/, '$1'), family: ip.version };
        });
      } else {
        const connector = this.#nodeConnector();
        found = connector ? await connector.lookup(host) : [];
      }
    } catch {
      throw new McpKitError('UPSTREAM_ERROR', `Host ${quote(host)} could not be resolved`);
    }
    if (found.length === 0)
      throw new McpKitError('UPSTREAM_ERROR', `Host ${quote(host)} could not be resolved`);
    if (!this.allowPrivateNetworks) {
      for (const { address } of found) {
        const range = addressRange(address) ?? 'reserved';
        if (range !== 'public') throw refusedRange(host, range, 'resolves to');
      }
    }
    return found;
  }

  /** Closes the idle connections this policy keeps. */
  close(): void {
    this.#connector?.close();
  }

  #nodeConnector(): Connector | undefined {
    if (this.#connector === undefined) this.#connector = createNodeConnector() ?? null;
    return this.#connector ?? undefined;
  }
}

function refusedRange(host: string, range: AddressRange, verb: string): McpKitError {
  const article = /^[aeiou]/.test(range) ? 'an' : 'a';
  return new McpKitError(
    'FORBIDDEN',
    `Host ${quote(host)} ${verb} ${article} ${range} address, which is not allowed`,
    {
      details: { range },
    },
  );
}
