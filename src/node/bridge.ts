/**
 * The Node bridge: a light web `Request` over a Node `IncomingMessage` (headers and body read on
 * demand, departure as a cancel signal) and `writeWebResponse`, which writes string answers in one
 * write. Size: the light request must behave exactly as undici's does for every property a handler may
 * touch, and keeping those pieces together is how that is checked.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { directBodyReader, RAW_BODY, type RawBodyReader } from '../core/bodyLimit.js';
import { type RequestSource, sourceOf, type TrustProxy } from '../core/forwarded.js';
import { refuse } from '../core/refusal.js';
import type { CancelSignal } from '../execution/signal.js';
import { mcpRequestRefusal } from '../http/answers.js';
import { BRIDGED, bodyTextOf, DEPARTURE, plainFieldsOf } from '../http/bodyText.js';

/** Options of {@link toWebRequest}. */
export interface WebRequestOptions {
  /** The body, when a framework's parser already consumed the stream (re-serialised). */
  body?: Uint8Array | string;
  /** Which proxies to believe about the client (the server's `http.trustProxy`). Default `false`. */
  trustProxy?: TrustProxy;
  /** The request's source, when the caller already worked it out with {@link requestSource}. */
  source?: RequestSource;
  /**
   * The request target (path and query) to build the URL from, instead of `req.url`: for a framework
   * that strips its mount prefix from `req.url` (Express's `req.originalUrl` keeps it).
   */
  target?: string;
}

/**
 * The client's address and the origin it addressed: the connection and its `Host` header, or, when
 * the connection's peer is a trusted proxy, what the trusted hops say (`X-Forwarded-For`, `-Proto`,
 * `-Host`). Never throws.
 *
 * @example
 * ```ts
 * const { origin, address } = requestSource(req, ['loopback']);
 * ```
 */
export function requestSource(req: IncomingMessage, trustProxy: TrustProxy = false): RequestSource {
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  return sourceOf(
    { peer: req.socket?.remoteAddress, encrypted, header: (name) => req.headers[name] },
    trustProxy,
  );
}

/** The path and query of a request target, whatever its form (origin-form, absolute-form, `*`). */
function targetOf(url: string | undefined): string {
  if (url === undefined || url === '') return '/';
  if (url.startsWith('/')) return url;
  try {
    const absolute = new URL(url);
    return `${absolute.pathname}${absolute.search}`;
  } catch {
    return `/${url}`;
  }
}

/**
 * The one bridge between node:http and the web-standard handler, used by `listen()` and by every
 * framework adapter.
 *
 * - The body stays in the Node stream until something reads it: mcpkit's own routes read it directly
 *   under their limits; `body`, `json()`, `text()`, `clone()` and the rest stream it, with
 *   backpressure. If the handler stops reading early (a body over the limit, or one too slow to
 *   arrive), the rest is not read and the connection is closed once the response is out.
 * - The request's `signal` aborts when the client goes away (made when first asked for).
 * - The response is streamed with backpressure; SSE headers are flushed at once.
 * - The URL is the one the client addressed: scheme and host from the connection and its `Host`
 *   header, or from `X-Forwarded-Proto` / `X-Forwarded-Host` when `options.trustProxy` believes the
 *   connection's peer. A missing or malformed `Host` gives a host that fails every allow-list.
 * - A `TRACE` or `TRACK` request, which the fetch API cannot build, comes as a bodiless `GET` whose
 *   `method` still says what the client sent, so the handler can refuse it (405) like any other.
 *
 * @example
 * ```ts
 * createServer(async (req, res) => {
 *   const response = await server.fetch(toWebRequest(req, res, { trustProxy: 'loopback' }));
 *   await writeWebResponse(req, res, response);
 * });
 * ```
 */
export function toWebRequest(
  req: IncomingMessage,
  res?: ServerResponse,
  options: WebRequestOptions = {},
): Request {
  return buildRequest({ req, res, options, lazy: false });
}

/**
 * {@link toWebRequest} for mcpkit's own Node doors (`listen()`, the Express and Fastify adapters),
 * whose answer the bridge writes itself: the body stays in the Node stream until something reads
 * it, the signal is made when first asked for, and the request is marked so that string answers
 * reach {@link writeWebResponse} without their web stream ever being built.
 */
export function bridgeRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: WebRequestOptions = {},
): Request {
  return buildRequest({ req, res, options, lazy: true });
}

/** Methods the fetch API builds no request with (CONNECT never reaches a `request` listener). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** One Node exchange to build a web request from: `lazy` for mcpkit's own doors (see bridgeRequest). */
interface Build {
  req: IncomingMessage;
  res: ServerResponse | undefined;
  options: WebRequestOptions;
  lazy: boolean;
}

function buildRequest(build: Build): Request {
  const method = build.req.method ?? 'GET';
  if (!FORBIDDEN_METHODS.has(method.toUpperCase())) return buildAs(method, build);
  // Built bodiless as a GET that still tells its own method, so the handler refuses it (405) in its
  // route's form like any other method it does not take, instead of the door failing to build it.
  const request = buildAs('GET', { ...build, options: { ...build.options, body: undefined } });
  Object.defineProperty(request, 'method', { value: method, enumerable: true });
  return request;
}

function buildAs(method: string, { req, res, options, lazy }: Build): Request {
  const replaced = options.body !== undefined;
  // The URL as the client addressed it (its Host, or what a trusted proxy says), the path appended
  // as it came: `//x%2F` is a path here, never an authority.
  const url = `${(options.source ?? requestSource(req, options.trustProxy)).origin}${targetOf(options.target ?? req.url)}`;
  const hasBody = method !== 'GET' && method !== 'HEAD';
  if (!lazy) {
    // A complete web request: body and signal in the request itself, for any consumer at all.
    const controller = new AbortController();
    if (res && departed(res)) controller.abort();
    else
      res?.once('close', () => {
        if (!res.writableFinished) controller.abort();
      });
    const headers = new Headers();
    appendRaw(headers, req.rawHeaders, replaced);
    const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: controller.signal };
    const state = { taken: false };
    if (hasBody) {
      init.body = (options.body as BodyInit | undefined) ?? bodyStream(req, state);
      init.duplex = 'half';
    }
    const request = new Request(url, init);
    if (hasBody && !replaced)
      (request as Request & { [RAW_BODY]?: RawBodyReader })[RAW_BODY] = directBodyReader(req, state);
    return request;
  }
  const departure = new Departure(res);
  const state: Bridged = {
    url,
    method,
    raw: req.rawHeaders,
    replaced,
    departure,
    // A GET or HEAD has no body, whatever a parser made of one (undici refuses to build it with one).
    body: replaced && hasBody ? (options.body as BodyInit) : undefined,
    stream: undefined,
    headers: undefined,
    full: undefined,
  };
  if (!hasBody || replaced) return bridged(state);
  const read = { taken: false };
  const request = bridged({ ...state, stream: () => bodyStream(req, read) });
  request[RAW_BODY] = directBodyReader(req, read);
  return request;
}

/** Whether the response closed (the connection went) before the answer was out. */
function departed(res: ServerResponse): boolean {
  return res.destroyed && !res.writableFinished;
}

/**
 * Whether the client went away before its answer was out. mcpkit's own code listens to it directly
 * (it is a {@link CancelSignal}); an `AbortSignal` is made only when someone asks for the request's
 * `signal`: most requests are answered without anything listening.
 */
class Departure implements CancelSignal {
  #reason: DOMException | undefined;
  #controller: AbortController | undefined;
  #listeners: Set<() => void> | undefined;

  constructor(res: ServerResponse | undefined) {
    // The client may be gone already (a host app's middleware ran while it left): no close will come.
    if (res && departed(res)) {
      this.#reason = new DOMException('The client disconnected', 'AbortError');
      return;
    }
    res?.once('close', () => {
      if (res.writableFinished) return;
      this.#reason = new DOMException('The client disconnected', 'AbortError');
      this.#controller?.abort(this.#reason);
      const listeners = this.#listeners;
      this.#listeners = undefined;
      if (listeners) for (const listener of listeners) listener();
    });
  }

  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  get reason(): unknown {
    return this.#reason;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.#reason !== undefined) return;
    this.#listeners ??= new Set();
    this.#listeners.add(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners?.delete(listener);
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }
}

/** What a bridged request knows before (and instead of) a full `Request` is built. */
interface Bridged {
  readonly url: string;
  readonly method: string;
  /** `req.rawHeaders`: names and values, alternating, as they came. */
  readonly raw: readonly string[];
  /** Drop `Content-Length` and `Transfer-Encoding`: the body was replaced by a parser's result. */
  readonly replaced: boolean;
  readonly departure: Departure;
  /** A body given whole (a framework's parser already read the stream). */
  readonly body: BodyInit | undefined;
  /** The Node stream's body as a web stream, made on first use. */
  readonly stream: (() => ReadableStream<Uint8Array>) | undefined;
  headers: Headers | undefined;
  full: Request | undefined;
}

const STATE: unique symbol = Symbol('mcpkit.bridgedRequest');

type BridgedRequest = Request & { [STATE]: Bridged; [RAW_BODY]?: RawBodyReader };

/**
 * A request for mcpkit's own Node doors that builds no undici `Request` unless something needs one.
 * `method`, `url`, `headers` (see {@link NodeHeaders}) and `signal` answer from the Node request;
 * every other member (the body's readers, `clone()`, `cache`, ...) reads a full `Request` built on
 * first use, once, with the body streamed from the Node stream. It is an `instanceof Request`, and
 * undici's own state is read through to the full request, so `new Request(bridged)` works too.
 */
function bridged(state: Bridged): BridgedRequest {
  if (!lightRequests()) return marked(fullRequest(state), state);
  const request = Object.create(BRIDGED_PROTOTYPE) as BridgedRequest;
  request[STATE] = state;
  return request;
}

/** A full request carrying what a bridged one carries, for a Node whose undici refuses the light one. */
function marked(request: Request, state: Bridged): BridgedRequest {
  Object.defineProperty(request, BRIDGED, { value: true });
  Object.defineProperty(request, DEPARTURE, { value: state.departure });
  return request as BridgedRequest;
}

let light: boolean | undefined;

/**
 * Whether undici takes a light request where it takes a `Request` (`new Request(bridged)`,
 * `fetch(bridged)`). Node 20 and 22 keep a request's state under symbols, which the light request
 * reads through to its full one; Node 24's undici keeps it in private fields, which only a real
 * `Request` has, so there every bridged request is built whole (and mcpkit's pipeline is as fast as
 * it was before light requests). Decided once, by trying.
 *
 * @internal Exported for tests.
 */
export function lightRequests(): boolean {
  if (light === undefined) {
    const probe = Object.create(BRIDGED_PROTOTYPE) as BridgedRequest;
    probe[STATE] = {
      url: 'http://localhost/',
      method: 'GET',
      raw: ['x-probe', '1'],
      replaced: false,
      departure: new Departure(undefined),
      body: undefined,
      stream: undefined,
      headers: undefined,
      full: undefined,
    };
    try {
      const copy = new Request(probe);
      light = copy.url === 'http://localhost/' && copy.headers.get('x-probe') === '1';
    } catch {
      light = false;
    }
  }
  return light;
}

/**
 * Forces the Node bridge to build whole requests (`false`), as on a Node whose undici refuses light
 * ones, or back to deciding by trying (`undefined`).
 *
 * @internal For tests.
 */
export function setLightRequests(value: false | undefined): void {
  light = value;
}

/** The full `Request` behind a bridged one, built on first use. */
function fullRequest(state: Bridged): Request {
  if (state.full) return state.full;
  const init: RequestInit & { duplex?: 'half' } = {
    method: state.method,
    headers: headersOf(state),
    signal: state.departure.signal,
  };
  const body = state.body ?? state.stream?.();
  if (body !== undefined) {
    init.body = body;
    init.duplex = 'half';
  }
  state.full = new Request(state.url, init);
  return state.full;
}

function headersOf(state: Bridged): Headers {
  state.headers ??= new NodeHeaders(state.raw, state.replaced);
  return state.headers;
}

const BRIDGED_PROTOTYPE: object = (() => {
  const proto = Object.create(Request.prototype) as Record<PropertyKey, unknown>;
  const own: Record<string, (state: Bridged) => unknown> = {
    method: (state) => state.method,
    url: (state) => state.url,
    headers: headersOf,
    signal: (state) => state.departure.signal,
    // Until a full request exists nothing read the body as a web stream.
    bodyUsed: (state) => state.full?.bodyUsed ?? false,
  };
  for (const [name, get] of Object.entries(own)) {
    Object.defineProperty(proto, name, {
      get(this: BridgedRequest) {
        return get(this[STATE]);
      },
    });
  }
  Object.defineProperty(proto, BRIDGED, { value: true });
  Object.defineProperty(proto, DEPARTURE, {
    get(this: BridgedRequest) {
      return this[STATE].departure;
    },
  });
  // Everything else reads the full request: the members of `Request` (whatever this Node's undici
  // has: bytes(), formData(), ...), and the state undici keeps under symbols, which its own
  // functions read from a request they are given (`new Request(bridged)`, say).
  const probe = new Request('http://localhost/');
  const keys = [
    ...Reflect.ownKeys(Request.prototype),
    ...Object.getOwnPropertySymbols(probe).filter((key) => !(key in Request.prototype)),
  ];
  for (const key of keys) {
    if (key === 'constructor' || key === Symbol.toStringTag || (typeof key === 'string' && key in own))
      continue;
    const descriptor =
      Object.getOwnPropertyDescriptor(Request.prototype, key) ?? Object.getOwnPropertyDescriptor(probe, key);
    if (!descriptor) continue;
    if (typeof descriptor.value === 'function' && Object.hasOwn(Request.prototype, key)) {
      Object.defineProperty(proto, key, {
        value(this: BridgedRequest, ...args: unknown[]) {
          const full = fullRequest(this[STATE]) as unknown as Record<
            PropertyKey,
            (...a: unknown[]) => unknown
          >;
          return full[key]!(...args);
        },
        writable: true,
        configurable: true,
      });
    } else {
      Object.defineProperty(proto, key, {
        get(this: BridgedRequest) {
          return (fullRequest(this[STATE]) as unknown as Record<PropertyKey, unknown>)[key];
        },
        configurable: true,
      });
    }
  }
  return proto;
})();

/** Undici's `Headers` methods that read or change the list; `get` and `has` are answered lazily. */
const PENDING: unique symbol = Symbol('mcpkit.pendingHeaders');

/**
 * The headers of a bridged request. `get()` and `has()`, all that mcpkit's pipeline asks, answer
 * from the raw Node headers with the `Headers` rules (names match case-insensitively; repeated
 * fields join with `, `, `Cookie` with `; `; values are trimmed, and a value undici would refuse is
 * dropped), with no undici list built. Any other use (iteration, `set`, `append`, copying into a
 * new `Headers`) first fills the real list, in the order the fields came.
 */
class NodeHeaders extends Headers {
  [PENDING]: PendingFields | undefined;

  constructor(raw: readonly string[], replaced: boolean) {
    super();
    this[PENDING] = { raw, replaced };
  }

  override get(name: string): string | null {
    const pending = this[PENDING];
    if (!pending || !HEADER_NAME.test(name)) return super.get(name);
    return fieldOf(pending, name.toLowerCase()) ?? null;
  }

  override has(name: string): boolean {
    const pending = this[PENDING];
    if (!pending || !HEADER_NAME.test(name)) return super.has(name);
    return fieldOf(pending, name.toLowerCase()) !== undefined;
  }

  static {
    const proto = NodeHeaders.prototype as unknown as Record<PropertyKey, unknown>;
    for (const key of Reflect.ownKeys(Headers.prototype)) {
      if (key === 'constructor' || key === 'get' || key === 'has') continue;
      const descriptor = Object.getOwnPropertyDescriptor(Headers.prototype, key)!;
      if (typeof descriptor.value !== 'function') continue;
      const base = descriptor.value as (...args: unknown[]) => unknown;
      Object.defineProperty(proto, key, {
        value(this: NodeHeaders, ...args: unknown[]) {
          fill(this);
          return base.apply(this, args);
        },
        writable: true,
        configurable: true,
      });
    }
  }
}

/** A field name as `Headers` accepts it (an HTTP token); anything else goes to undici, which throws. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A request field value as undici keeps it: trimmed of HTTP whitespace; refused with NUL, CR or LF. */
function fieldValue(value: string): string | undefined {
  const trimmed = /^[\t\n\r ]|[\t\n\r ]$/.test(value) ? value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '') : value;
  return /[\0\r\n]/.test(trimmed) ? undefined : trimmed;
}

/** Whether a raw field is left out of a bridged request's headers. */
function skipped(lower: string, replaced: boolean): boolean {
  // HTTP/2 pseudo-headers are not valid in a Headers object; a body re-serialised from a parser's
  // result has its own length.
  return lower.startsWith(':') || (replaced && (lower === 'content-length' || lower === 'transfer-encoding'));
}

/** The raw Node header fields of a bridged request, before (and instead of) a `Headers` list. */
interface PendingFields {
  /** `req.rawHeaders`: names and values, alternating, as they came. */
  readonly raw: readonly string[];
  /** Drop `Content-Length` and `Transfer-Encoding` (see {@link skipped}). */
  readonly replaced: boolean;
}

/**
 * The value a `Headers` list would give for `lower` (a lower-case field name): the raw fields of
 * that name, each trimmed, those undici would refuse left out, joined with `, ` (`; ` for
 * `Cookie`); `undefined` when there is none. Found by a scan of the raw fields, with nothing built
 * for the fields not asked about: a request is asked about a handful of its fields.
 */
function fieldOf({ raw, replaced }: PendingFields, lower: string): string | undefined {
  if (skipped(lower, replaced)) return undefined;
  let joined: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name !== lower && !isNamed(name, lower)) continue;
    const value = fieldValue(raw[i + 1]!);
    if (value === undefined) continue;
    joined = joined === undefined ? value : `${joined}${lower === 'cookie' ? '; ' : ', '}${value}`;
  }
  return joined;
}

/**
 * Whether raw field name `name` is `lower` (a lower-case token) but for the case of its ASCII
 * letters, compared without building a lower-cased copy. Only ASCII folds: a character from outside
 * ASCII never matches one of a token.
 */
function isNamed(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Appends the pending raw fields to the real list of `headers`, once. */
function fill(headers: NodeHeaders): void {
  const pending = headers[PENDING];
  if (!pending) return;
  headers[PENDING] = undefined;
  appendRaw(headers, pending.raw, pending.replaced);
}

/** Appends raw Node header fields to `headers`, in order, dropping what undici refuses. */
function appendRaw(headers: Headers, raw: readonly string[], replaced: boolean): void {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (skipped(name.toLowerCase(), replaced)) continue;
    try {
      Headers.prototype.append.call(headers, name, raw[i + 1]!);
    } catch {
      // a field undici refuses is dropped, not fatal
    }
  }
}

/**
 * The request body as a web stream that starts reading the Node stream only when first read, so the
 * direct reader below can take the body instead when mcpkit's own code reads it.
 */
function bodyStream(req: IncomingMessage, state: { taken: boolean }): ReadableStream<Uint8Array> {
  let discarding = false;
  let attached = false;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (!attached) {
          attached = true;
          state.taken = true;
          req.on('data', (chunk: Buffer) => {
            if (discarding) return;
            controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
            if ((controller.desiredSize ?? 1) <= 0) req.pause();
          });
          req.once('end', () => {
            if (!discarding) controller.close();
          });
          req.once('error', (error) => {
            if (!discarding) controller.error(error);
          });
        }
        req.resume();
      },
      cancel() {
        // Stop reading: `writeWebResponse` closes the connection once the answer is out.
        discarding = true;
        req.pause();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Writes a web `Response` to a node:http response, streaming the body with backpressure. */
export async function writeWebResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  // An answer mcpkit built keeps its headers as plain fields: no `Headers` to build and walk.
  const fields = plainFieldsOf(response);
  if (fields !== undefined) {
    for (const name in fields) res.setHeader(name, fields[name]!);
  } else {
    const cookies = response.headers.getSetCookie();
    for (const [name, value] of response.headers) {
      if (name === 'set-cookie') continue;
      res.setHeader(name, value);
    }
    if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  }
  // A request body the handler did not read (refused as too large, say) would hold the socket.
  if (!req.complete) {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.destroy());
  }
  // A string body mcpkit built goes out in one write, without the web stream (or its building).
  const text = bodyTextOf(response);
  if (typeof text === 'string') {
    res.setHeader('content-length', Buffer.byteLength(text));
    res.end(text);
    return;
  }
  if (text !== undefined) {
    // Parts: kept bytes (a list answer's items) are written as they are, never re-encoded.
    let length = 0;
    for (const part of text) length += typeof part === 'string' ? Buffer.byteLength(part) : part.byteLength;
    res.setHeader('content-length', length);
    res.cork();
    for (const part of text) res.write(part);
    res.end();
    res.uncork();
    return;
  }
  if (!response.body) {
    res.end();
    return;
  }
  if (response.headers.get('content-type')?.startsWith('text/event-stream')) res.flushHeaders();
  const reader = response.body.getReader();
  const onClose = () => {
    reader.cancel().catch(() => {});
  };
  res.once('close', onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) {
        // The client left before this stream began: whatever feeds it learns so.
        reader.cancel().catch(() => {});
        break;
      }
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const settle = () => {
            res.off('drain', settle);
            res.off('close', settle);
            resolve();
          };
          res.once('drain', settle);
          res.once('close', settle);
        });
      }
    }
  } catch {
    // the stream failed or the client left; nothing more can be sent
  } finally {
    res.off('close', onClose);
    if (!res.destroyed) res.end();
  }
}

/**
 * A node:http request listener over a web-standard `fetch` handler. `fetch` receives the request and
 * its source (the client's address, with `options.trustProxy` applied); a failure is answered with a
 * JSON 500, never an HTML page.
 *
 * @example
 * ```ts
 * createServer(toNodeListener((request, { address }) => server.fetch(request, { clientAddress: address })));
 * ```
 */
export function toNodeListener(
  fetch: (request: Request, source: RequestSource & { req: IncomingMessage }) => Promise<Response>,
  options: { trustProxy?: TrustProxy } = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return nodeListener(fetch, options, false);
}

/**
 * {@link toNodeListener}; `lazy` builds requests with {@link bridgeRequest}, for a `fetch` that is
 * mcpkit's own (`listen()`), whose requests never leave it. `queuedMs`, how long the request waited
 * in `listen()`'s queue, is handed on to `fetch`.
 */
export function nodeListener(
  fetch: (
    request: Request,
    source: RequestSource & { req: IncomingMessage; queuedMs?: number },
  ) => Promise<Response>,
  options: { trustProxy?: TrustProxy },
  lazy: boolean,
): (req: IncomingMessage, res: ServerResponse, queuedMs?: number) => void {
  return (req, res, queuedMs) => {
    let request: Request;
    let source: RequestSource;
    try {
      source = requestSource(req, options.trustProxy);
      request = lazy ? bridgeRequest(req, res, { source }) : toWebRequest(req, res, { source });
    } catch {
      void writeWebResponse(req, res, mcpRequestRefusal(refuse('INVALID_REQUEST', 'Bad Request')));
      return;
    }
    fetch(request, queuedMs === undefined ? { ...source, req } : { ...source, req, queuedMs })
      .then((response) => writeWebResponse(req, res, response))
      .catch(() => failed(res));
  };
}

/** The answer once a handler failed: a JSON 500 when nothing was sent yet, else the connection cut. */
export function failed(res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = 500;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
}
