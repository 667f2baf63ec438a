import type { IncomingMessage, ServerResponse } from 'node:http';
import { mcpRequestRefusal } from '../http/answers.js';
import { BRIDGED, bodyTextOf, type LimitedRead, RAW_BODY, type RawBodyReader } from '../http/bodyText.js';
import { type RequestSource, sourceOf, type TrustProxy } from '../http/forwarded.js';
import { refuse } from '../policy/refusal.js';

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
  return sourceOf(req.socket?.remoteAddress, encrypted, (name) => req.headers[name], trustProxy);
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
  return buildRequest(req, res, options, false);
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
  return buildRequest(req, res, options, true);
}

/** Methods the fetch API builds no request with (CONNECT never reaches a `request` listener). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

function buildRequest(
  req: IncomingMessage,
  res: ServerResponse | undefined,
  options: WebRequestOptions,
  lazy: boolean,
): Request {
  const method = req.method ?? 'GET';
  if (!FORBIDDEN_METHODS.has(method.toUpperCase())) return buildAs(method, req, res, options, lazy);
  // Built bodiless as a GET that still tells its own method, so the handler refuses it (405) in its
  // route's form like any other method it does not take, instead of the door failing to build it.
  const request = buildAs('GET', req, res, { ...options, body: undefined }, lazy);
  Object.defineProperty(request, 'method', { value: method, enumerable: true });
  return request;
}

function buildAs(
  method: string,
  req: IncomingMessage,
  res: ServerResponse | undefined,
  options: WebRequestOptions,
  lazy: boolean,
): Request {
  const headers = new Headers();
  const replaced = options.body !== undefined;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    // HTTP/2 pseudo-headers are not valid in a Headers object
    if (name.startsWith(':')) continue;
    // A body re-serialised from a parser's result has its own length.
    if (replaced && /^(content-length|transfer-encoding)$/i.test(name)) continue;
    try {
      headers.append(name, req.rawHeaders[i + 1]!);
    } catch {
      // a header value undici refuses is dropped, not fatal
    }
  }
  // The URL as the client addressed it (its Host, or what a trusted proxy says), the path appended
  // as it came: `//x%2F` is a path here, never an authority.
  const url = `${(options.source ?? requestSource(req, options.trustProxy)).origin}${targetOf(options.target ?? req.url)}`;
  const hasBody = method !== 'GET' && method !== 'HEAD';
  if (!lazy) {
    // A complete web request: body and signal in the request itself, for any consumer at all.
    const controller = new AbortController();
    res?.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: controller.signal };
    const state = { taken: false };
    if (hasBody) {
      init.body = (options.body as BodyInit | undefined) ?? bodyStream(req, state);
      init.duplex = 'half';
    }
    const request = new Request(url, init);
    if (hasBody && !replaced)
      (request as Request & { [RAW_BODY]?: RawBodyReader })[RAW_BODY] = readDirect(req, state);
    return request;
  }
  const departure = new Departure(res);
  if (!hasBody) return new NodeRequest(url, { method, headers }, departure);
  if (replaced) {
    return new NodeRequest(
      url,
      { method, headers, body: options.body as BodyInit, duplex: 'half' } as RequestInit,
      departure,
    );
  }
  const state = { taken: false };
  const request = new NodeRequest(url, { method, headers }, departure, () => bodyStream(req, state));
  request[RAW_BODY] = readDirect(req, state);
  return request;
}

/**
 * Whether the client went away before its answer was out, as an `AbortSignal` made only when someone
 * asks for it: most requests are answered without anything listening.
 */
class Departure {
  #left = false;
  #controller: AbortController | undefined;

  constructor(res: ServerResponse | undefined) {
    res?.once('close', () => {
      if (res.writableFinished) return;
      this.#left = true;
      this.#controller?.abort();
    });
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#left) this.#controller.abort();
    }
    return this.#controller.signal;
  }
}

/** The members of `Request` that read or expose the body. */
const BODY_MEMBERS = new Set([
  'body',
  'bodyUsed',
  'arrayBuffer',
  'blob',
  'bytes',
  'formData',
  'json',
  'text',
  'clone',
]);

/**
 * The web request handed to the handler. A POST body stays in the Node stream until something reads
 * it: mcpkit's own routes take it through `RAW_BODY` under their limits, and only a consumer that asks
 * for `body`, `json()` and the like gets a web stream over it (a full `Request`, built then, once), so
 * the common request never pays for a `ReadableStream` or a followed `AbortSignal`.
 */
class NodeRequest extends Request {
  declare [RAW_BODY]?: RawBodyReader;
  readonly [BRIDGED] = true;
  readonly #departure: Departure;
  readonly #stream: (() => ReadableStream<Uint8Array>) | undefined;
  #full: Request | undefined;

  constructor(
    url: string,
    init: RequestInit,
    departure: Departure,
    stream?: () => ReadableStream<Uint8Array>,
  ) {
    super(url, init);
    this.#departure = departure;
    this.#stream = stream;
  }

  static {
    const proto = NodeRequest.prototype;
    Object.defineProperty(proto, 'signal', {
      get(this: NodeRequest) {
        return this.#departure.signal;
      },
    });
    // Every body member (whatever this Node's undici has: bytes(), formData(), ...) reads the full
    // request once it is built; until then, the request's own (empty) body answers.
    for (const name of Object.getOwnPropertyNames(Request.prototype)) {
      if (!BODY_MEMBERS.has(name)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(Request.prototype, name)!;
      if (descriptor.get) {
        const base = descriptor.get;
        Object.defineProperty(proto, name, {
          get(this: NodeRequest) {
            if (name === 'bodyUsed' && !this.#full) return base.call(this);
            const full = this.#withBody();
            return full ? (full as unknown as Record<string, unknown>)[name] : base.call(this);
          },
        });
      } else if (typeof descriptor.value === 'function') {
        const base = descriptor.value as (...args: unknown[]) => unknown;
        Object.defineProperty(proto, name, {
          value(this: NodeRequest, ...args: unknown[]) {
            const full = this.#withBody() as unknown as
              | Record<string, (...a: unknown[]) => unknown>
              | undefined;
            return full ? full[name]!(...args) : base.apply(this, args);
          },
          writable: true,
        });
      }
    }
  }

  /** The request with its body as a web stream, built on first use; `undefined` when the body is not lazy. */
  #withBody(): Request | undefined {
    if (!this.#stream) return undefined;
    this.#full ??= new Request(this.url, {
      method: this.method,
      headers: this.headers,
      body: this.#stream(),
      duplex: 'half',
      signal: this.signal,
    } as RequestInit);
    return this.#full;
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

/**
 * Reads the Node body straight into memory. Past `limit` bytes (declared or received), or once
 * `timeoutMs` has passed before the body ended, it stops: nothing more is buffered or read (the
 * request is paused), and `writeWebResponse` closes the connection once the answer is out.
 */
function readDirect(req: IncomingMessage, state: { taken: boolean }): RawBodyReader {
  return (limit, timeoutMs) => {
    if (state.taken) return undefined;
    state.taken = true;
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length']);
      if (declared > limit) {
        req.pause();
        resolve({ tooLarge: true });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stop = () => {
        done = true;
        if (timer !== undefined) clearTimeout(timer);
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('close', onClose);
      };
      const abandon = (result: LimitedRead) => {
        if (done) return;
        stop();
        chunks.length = 0;
        req.pause();
        resolve(result);
      };
      const onData = (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > limit) abandon({ tooLarge: true });
        else chunks.push(chunk);
      };
      const onEnd = () => {
        if (done) return;
        stop();
        const all = Buffer.concat(chunks, size);
        resolve({ tooLarge: false, bytes: new Uint8Array(all.buffer, all.byteOffset, all.byteLength) });
      };
      const onError = (error: Error) => {
        if (done) return;
        stop();
        reject(error);
      };
      // the connection closed before the body ended (the client went away)
      const onClose = () => onError(new Error('the request body ended early: the connection closed'));
      if (timeoutMs !== undefined)
        timer = setTimeout(() => abandon({ tooLarge: false, timedOut: true }), timeoutMs);
      req.on('data', onData);
      req.once('end', onEnd);
      req.once('error', onError);
      req.once('close', onClose);
    });
  };
}

/** Writes a web `Response` to a node:http response, streaming the body with backpressure. */
export async function writeWebResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  const cookies = response.headers.getSetCookie();
  for (const [name, value] of response.headers) {
    if (name === 'set-cookie') continue;
    res.setHeader(name, value);
  }
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
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
