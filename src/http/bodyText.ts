import type { CancelSignal } from '../execution/signal.js';
/**
 * Responses mcpkit builds from a string carry that string under this symbol, so the Node bridge can
 * write it directly instead of reading it back through the web stream machinery (which costs more
 * than the rest of a small REST request). Other runtimes ignore it.
 */
export const BODY_TEXT: unique symbol = Symbol.for('mcpkit.bodyText');

/**
 * Requests built by the Node bridge for mcpkit's own doors carry this mark: their answer is written
 * by the bridge, which reads a string body directly, so it may stay a {@link TextResponse} to the
 * end. Every other request (a fetch runtime, Hono, a caller's own `toWebRequest`) gets a real
 * `Response`, as runtimes that check the object's internal type require.
 */
export const BRIDGED: unique symbol = Symbol.for('mcpkit.bridged');

/**
 * Requests the Node bridge builds carry the client's departure under this symbol: a
 * {@link CancelSignal} that aborts when the client leaves before its answer is out, with no
 * `AbortController` built for a request nobody cancels.
 */
export const DEPARTURE: unique symbol = Symbol.for('mcpkit.departure');

/**
 * Whether the client of `request` is gone, and a way to hear when it goes: the Node bridge's
 * departure, or else the request's own signal.
 */
export function departureOf(request: Request): CancelSignal {
  return (request as Request & { [DEPARTURE]?: CancelSignal })[DEPARTURE] ?? request.signal;
}

/** `response` as a real `Response` unless `request` came through the Node bridge. */
export function answerFor(request: Request, response: Response): Response {
  if (response instanceof TextResponse && !(request as Request & { [BRIDGED]?: true })[BRIDGED]) {
    return response.realize();
  }
  return response;
}

/**
 * A body mcpkit built whole: a string, or parts (strings and UTF-8 bytes, in order) when some of it
 * is kept encoded between requests, as a list answer's items are.
 */
export type BodyText = string | readonly (string | Uint8Array)[];

/** A response with a string body, tagged with {@link BODY_TEXT}. */
export function textResponse(text: BodyText, init: ResponseInit): Response {
  return new TextResponse(text, init) as unknown as Response;
}

/**
 * A `Response` (by prototype, so `instanceof Response` holds) whose web-stream machinery is built
 * only when something asks for the body. Status and headers are its own: the handler's own work
 * (an `x-request-id`, rate-limit headers) and the Node bridge's direct write never build the real
 * response; `body`, `text()`, `clone()` and every other member build it once and delegate to it.
 */
class TextResponse {
  readonly [BODY_TEXT]: BodyText;
  readonly #init: ResponseInit;
  #headers: Headers | undefined;
  /** The headers as plain fields, while no `Headers` was asked for (see {@link plainFieldsOf}). */
  #fields: Record<string, string> | undefined;
  #real: Response | undefined;

  constructor(text: BodyText, init: ResponseInit) {
    this[BODY_TEXT] = text;
    this.#init = init;
  }

  get status(): number {
    return this.#real ? this.#real.status : (this.#init.status ?? 200);
  }
  get statusText(): string {
    return this.#real ? this.#real.statusText : (this.#init.statusText ?? '');
  }
  get ok(): boolean {
    const status = this.status;
    return status >= 200 && status < 300;
  }
  get headers(): Headers {
    if (this.#real) return this.#real.headers;
    if (!this.#headers) {
      this.#headers = new Headers(this.#fields ?? this.#init.headers);
      this.#fields = undefined;
    }
    return this.#headers;
  }

  /**
   * The headers as plain lower-case fields, exactly as `Headers` would hold them, while nothing has
   * asked for the `Headers` object; `undefined` once it exists or when the initial headers are not
   * plain (a `Headers`, pairs, or a value `Headers` would normalise).
   */
  fields(): Record<string, string> | undefined {
    if (this.#real || this.#headers) return undefined;
    this.#fields ??= plainCopy(this.#init.headers);
    return this.#fields;
  }
  get bodyUsed(): boolean {
    return this.#real ? this.#real.bodyUsed : false;
  }

  /** The real response, built on first need from the text, the status and the headers as they are now. */
  realize(): Response {
    const text = this[BODY_TEXT];
    // Parts go in a Blob, which encodes the strings and copies the bytes: the kept ones stay intact.
    this.#real ??= new Response(typeof text === 'string' ? text : new Blob(text as BlobPart[]), {
      status: this.#init.status ?? 200,
      statusText: this.#init.statusText ?? '',
      headers: this.#headers ?? this.#fields ?? this.#init.headers,
    });
    return this.#real;
  }

  static {
    Object.setPrototypeOf(TextResponse.prototype, Response.prototype);
    const own = new Set(Object.getOwnPropertyNames(TextResponse.prototype));
    for (const name of Object.getOwnPropertyNames(Response.prototype)) {
      if (own.has(name) || name === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(Response.prototype, name)!;
      if (descriptor.get) {
        Object.defineProperty(TextResponse.prototype, name, {
          get(this: TextResponse) {
            return (this.realize() as unknown as Record<string, unknown>)[name];
          },
          configurable: true,
        });
      } else if (typeof descriptor.value === 'function') {
        Object.defineProperty(TextResponse.prototype, name, {
          value(this: TextResponse, ...args: unknown[]) {
            const real = this.realize() as unknown as Record<string, (...a: unknown[]) => unknown>;
            return real[name]!(...args);
          },
          configurable: true,
          writable: true,
        });
      }
    }
  }
}

/** A lower-case header name (an RFC 9110 token), which `Headers` keeps as it is. */
const PLAIN_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** A header value `Headers` keeps unchanged: visible ASCII and inner spaces or tabs, or nothing. */
const PLAIN_VALUE = /^(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?$/;

/** A copy of plain initial headers, or `undefined` when `Headers` would have to judge them. */
function plainCopy(init: HeadersInit | undefined): Record<string, string> | undefined {
  const fields: Record<string, string> = Object.create(null);
  if (init === undefined) return fields;
  if (Object.getPrototypeOf(init) !== Object.prototype) return undefined;
  for (const [name, value] of Object.entries(init as Record<string, unknown>)) {
    if (typeof value !== 'string' || !PLAIN_NAME.test(name) || !PLAIN_VALUE.test(value)) return undefined;
    fields[name] = value;
  }
  return fields;
}

/**
 * The headers of a response mcpkit built from a string, as plain lower-case fields, when no
 * `Headers` object was built for it: what the Node bridge writes without building one.
 */
export function plainFieldsOf(response: Response): Record<string, string> | undefined {
  return response instanceof TextResponse ? response.fields() : undefined;
}

/**
 * Sets a header on a response mcpkit built from a string without building its `Headers`, when the
 * name and value are ones `Headers` would keep as they are. Whether it did: otherwise the caller
 * sets it through `response.headers`, which judges (or refuses) it as always.
 */
export function setPlainHeader(response: Response, name: string, value: string): boolean {
  if (!PLAIN_NAME.test(name) || !PLAIN_VALUE.test(value)) return false;
  const fields = plainFieldsOf(response);
  if (fields === undefined) return false;
  fields[name] = value;
  return true;
}

/** The tagged body of `response`, if it has one and it was not read. */
export function bodyTextOf(response: Response): BodyText | undefined {
  const text = (response as Response & { [BODY_TEXT]?: BodyText })[BODY_TEXT];
  return text !== undefined && !response.bodyUsed ? text : undefined;
}
