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
    this.#headers ??= new Headers(this.#init.headers);
    return this.#headers;
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
      headers: this.#headers ?? this.#init.headers,
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

/** The tagged body of `response`, if it has one and it was not read. */
export function bodyTextOf(response: Response): BodyText | undefined {
  const text = (response as Response & { [BODY_TEXT]?: BodyText })[BODY_TEXT];
  return text !== undefined && !response.bodyUsed ? text : undefined;
}
