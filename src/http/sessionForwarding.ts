/**
 * 2025-era sessions served by any node: a node asked for a session it does not hold forwards the
 * request to the node that does (its address from the shared {@link SessionDirectory}) and streams
 * the answer back, SSE included. The forwarded request carries the caller's own headers, so the
 * owner runs the whole admission pipeline on the original credentials; the node adds one header,
 * signed with the cluster's shared secret (HMAC-SHA-256 over the method, target, session, client
 * address, the origin the client addressed and the time), which only says "a node forwarded this,
 * for this client, addressed to this origin": never who the caller is. An owner never forwards a
 * forwarded request again. Web Crypto and fetch only: runtime-neutral.
 */
import type { CancelSignal } from '../execution/signal.js';

/** The header a forwarding node adds. */
export const FORWARDED_HEADER = 'mcpkit-forwarded';
/** How far the signer's clock may be from the verifier's, in seconds. */
const MAX_SKEW_SECONDS = 30;
const VERSION = 'v1';

/** What a verified forwarded request vouches for. */
export interface Vouched {
  /** The client address the forwarding node saw (after its own `trustProxy`); `''` when unknown. */
  readonly address: string;
  /** The origin the client addressed (scheme and host), for the Host check and OAuth metadata. */
  readonly origin: string;
}

const UTF8 = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = globalThis.crypto.subtle.importKey(
      'raw',
      UTF8.encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
    // One secret per deployment; a handful at most in a test process.
    if (keys.size >= 16) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

function base64url(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const raw = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function signedText(
  time: string,
  request: { method: string; target: string; sessionId: string },
  vouched: Vouched,
): Uint8Array {
  const { method, target, sessionId } = request;
  return UTF8.encode(
    [`mcpkit-forward ${VERSION}`, time, method, target, sessionId, vouched.address, vouched.origin].join(
      '\n',
    ),
  );
}

/** The path and query a request names: what the signature binds. */
function targetOf(url: URL): string {
  return `${url.pathname}${url.search}`;
}

/** The header value a forwarding node sends. */
async function sign(
  secret: string,
  request: { method: string; target: string; sessionId: string },
  vouched: Vouched,
): Promise<string> {
  const time = String(Math.floor(Date.now() / 1000));
  const mac = await globalThis.crypto.subtle.sign(
    'HMAC',
    await keyFor(secret),
    signedText(time, request, vouched) as BufferSource,
  );
  const address = base64url(UTF8.encode(vouched.address));
  const origin = base64url(UTF8.encode(vouched.origin));
  return `${VERSION}.${time}.${address}.${origin}.${base64url(new Uint8Array(mac))}`;
}

/**
 * Verifies the forwarding header of `request`: what it vouches for, or `undefined` when it is not a
 * valid signature of this cluster for this very request (wrong secret, another request's, stale).
 *
 * @example
 * ```ts
 * const vouched = await verifyForwarded(request, url, secret);
 * if (!vouched) return forbidden();
 * ```
 */
export async function verifyForwarded(
  request: Request,
  url: URL,
  secret: string,
): Promise<Vouched | undefined> {
  const header = request.headers.get(FORWARDED_HEADER);
  const sessionId = request.headers.get('mcp-session-id');
  if (header === null || sessionId === null || header.length > 2048) return undefined;
  const parts = header.split('.');
  if (parts.length !== 5 || parts[0] !== VERSION || !/^\d{1,12}$/.test(parts[1]!)) return undefined;
  const time = parts[1]!;
  if (Math.abs(Date.now() / 1000 - Number(time)) > MAX_SKEW_SECONDS) return undefined;
  const address = fromBase64url(parts[2]!);
  const origin = fromBase64url(parts[3]!);
  const mac = fromBase64url(parts[4]!);
  if (!address || !origin || !mac) return undefined;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let vouched: Vouched;
  try {
    vouched = { address: decoder.decode(address), origin: decoder.decode(origin) };
  } catch {
    return undefined;
  }
  const ok = await globalThis.crypto.subtle.verify(
    'HMAC',
    await keyFor(secret),
    mac as BufferSource,
    signedText(time, { method: request.method, target: targetOf(url), sessionId }, vouched) as BufferSource,
  );
  if (!ok) return undefined;
  try {
    if (new URL(vouched.origin).origin !== vouched.origin) return undefined;
  } catch {
    return undefined;
  }
  return vouched;
}

/**
 * Request headers a hop must not pass on (RFC 9110 §7.6.1), the ones fetch sets itself, and
 * `Expect` (this node answered the client's `100-continue` and read the body already; fetch
 * refuses to send the header at all).
 */
const HOP_REQUEST = new Set([
  'expect',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'accept-encoding',
  FORWARDED_HEADER,
]);
/** Response headers not passed back: hop-by-hop, and the length and coding of a body fetch decoded. */
const HOP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'trailer',
  'upgrade',
  'content-length',
  'content-encoding',
]);

/** Why a forward failed before any answer came back. */
export type ForwardFailure = 'gone' | 'timeout' | 'failed';

/** Errors of a connection that never opened: the owner is not there (any more). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function failureOf(error: unknown, timedOut: boolean): ForwardFailure {
  if (timedOut) return 'timeout';
  let cause: unknown = error;
  for (let depth = 0; depth < 4 && cause !== null && typeof cause === 'object'; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE.has(code)) return 'gone';
    cause = (cause as { cause?: unknown }).cause;
  }
  return 'failed';
}

/** One request to forward. */
export interface ForwardRequest {
  readonly request: Request;
  readonly url: URL;
  readonly sessionId: string;
  /** The body already read (POST), under the server's limits. */
  readonly body: Uint8Array | undefined;
  /** The owner's advertised origin. */
  readonly owner: string;
  readonly secret: string;
  /** The client address this node saw. */
  readonly address: string | undefined;
  /** How long to wait for the owner's response headers. */
  readonly timeoutMs: number;
  /** The client's departure: the forward is cut when the client leaves. */
  readonly departure: CancelSignal;
  /** This request's id, sent on so both nodes log the same one. */
  readonly requestId?: string;
}

/**
 * Sends `forward.request` to its session's owner and returns the owner's answer, its body streamed
 * (an SSE stream stays open as long as the owner's does and the client stays); or why it failed.
 *
 * @example
 * ```ts
 * const answer = await forwardToOwner({ request, url, sessionId, body, owner, secret,
 *   address, timeoutMs: 120_000, departure: request.signal });
 * ```
 */
export async function forwardToOwner(forward: ForwardRequest): Promise<Response | ForwardFailure> {
  const { request, url, sessionId, owner, departure } = forward;
  const target = targetOf(url);
  const headers = new Headers();
  for (const [name, value] of request.headers) if (!HOP_REQUEST.has(name)) headers.set(name, value);
  headers.set('accept-encoding', 'identity');
  if (forward.requestId !== undefined) headers.set('x-request-id', forward.requestId);
  headers.set(
    FORWARDED_HEADER,
    await sign(
      forward.secret,
      { method: request.method, target, sessionId },
      { address: forward.address ?? '', origin: url.origin },
    ),
  );
  const controller = new AbortController();
  const onDeparture = () => controller.abort();
  if (departure.aborted) return 'failed';
  departure.addEventListener('abort', onDeparture, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, forward.timeoutMs);
  let response: Response;
  try {
    // Concatenated, not resolved: a target starting `//` must not name another host.
    response = await fetch(new URL(`${owner}${target}`), {
      method: request.method,
      headers,
      redirect: 'manual',
      signal: controller.signal,
      ...(forward.body !== undefined && { body: forward.body as BodyInit }),
    });
  } catch (error) {
    departure.removeEventListener('abort', onDeparture);
    return failureOf(error, timedOut);
  } finally {
    clearTimeout(timer);
  }
  const answerHeaders = new Headers();
  // Appended, not set: each `Set-Cookie` comes on its own and must not replace the one before.
  for (const [name, value] of response.headers)
    if (!HOP_RESPONSE.has(name)) answerHeaders.append(name, value);
  const body = response.body;
  if (!body) {
    departure.removeEventListener('abort', onDeparture);
    return new Response(null, { status: response.status, headers: answerHeaders });
  }
  // The body streams through; when it ends, or the client leaves (the abort cuts the fetch), stop
  // listening for the departure.
  const relay = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      flush: () => departure.removeEventListener('abort', onDeparture),
    }),
  );
  return new Response(relay, { status: response.status, headers: answerHeaders });
}
