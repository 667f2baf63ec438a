/**
 * Bodies read whole under a size limit and a timeout, through the Node bridge's direct reader when a
 * request has one and through its web stream otherwise. Runtime-neutral: web streams and timers only.
 */

/**
 * Requests the Node bridge builds carry a direct reader of the underlying body under this symbol:
 * mcpkit's REST routes and `/mcp` read the body through it (limits applied) instead of the web
 * stream. It answers `undefined` once the web stream has started.
 */
export const RAW_BODY: unique symbol = Symbol.for('mcpkit.rawBody');

/**
 * The cause of a refusal given while a body was still arriving (too large, too slow): its answer
 * carries `Connection: close`, so whatever server writes it (`listen()`, `@hono/node-server`,
 * Express) drops the connection rather than keep it open behind a body nobody will read.
 */
export const ABANDONED_BODY: Error = Object.freeze(new Error('the request body was left unread'));

/** The headers of an answer to a request whose body was left unread: the connection goes. */
export const ABANDONED_BODY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  connection: 'close',
});

/** How long a request body may take to arrive whole, by default (`http.bodyTimeoutMs`). */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/** How a limited read of a whole body ended. */
export type LimitedRead =
  | { readonly tooLarge: true; readonly timedOut?: false }
  | { readonly tooLarge: false; readonly timedOut: true }
  | { readonly tooLarge: false; readonly timedOut?: false; readonly bytes: Uint8Array };

/**
 * Reads the whole body up to `limit` bytes, giving up once `timeoutMs` (when given) has passed
 * before the body ended.
 */
export type RawBodyReader = (limit: number, timeoutMs?: number) => Promise<LimitedRead> | undefined;

/** The direct body reader of a request built by the Node bridge, if any. */
export function rawBodyOf(request: Request): RawBodyReader | undefined {
  return (request as Request & { [RAW_BODY]?: RawBodyReader })[RAW_BODY];
}

/**
 * Reads a web stream whole, up to `limit` bytes: stops (and cancels the stream) as soon as more has
 * arrived, so a huge or endless body is never buffered. With `timeoutMs`, a body that has not ended
 * by then is abandoned the same way and reported as `timedOut`.
 */
export function readStreamLimited(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<{ tooLarge: true } | { tooLarge: false; bytes: Uint8Array }>;
export function readStreamLimited(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  timeoutMs: number | undefined,
): Promise<LimitedRead>;
export async function readStreamLimited(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  timeoutMs?: number,
): Promise<LimitedRead> {
  if (!body) return { tooLarge: false, bytes: new Uint8Array(0) };
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired =
    timeoutMs === undefined
      ? undefined
      : new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), timeoutMs);
        });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = expired ? await Promise.race([reader.read(), expired]) : await reader.read();
      if (next === 'timeout') {
        reader.cancel().catch(() => {});
        return { tooLarge: false, timedOut: true };
      }
      if (next.done) break;
      size += next.value.byteLength;
      if (size > limit) {
        reader.cancel().catch(() => {});
        return { tooLarge: true };
      }
      chunks.push(next.value);
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  return { tooLarge: false, bytes: concat(chunks, size) };
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * What {@link directBodyReader} needs of a Node `IncomingMessage` (typed here by shape, so this module
 * stays free of `node:` imports): its headers, its state, and its events.
 */
export interface NodeBodySource {
  readonly headers: Record<string, string | string[] | undefined>;
  readonly destroyed: boolean;
  readonly readableEnded: boolean;
  /** Whether anything has read from it yet (a web stream a middleware built and read, say). */
  readonly readableDidRead: boolean;
  /** `true` once something listens to its data (`null` while nothing has asked for it). */
  readonly readableFlowing: boolean | null;
  pause(): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  once(event: 'end' | 'close', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * A direct reader of a Node request's body straight into memory (for {@link RAW_BODY}), once:
 * `state.taken` says whether it (or the web stream sharing `state`) has started. Past `limit` bytes
 * (declared or received), or once `timeoutMs` has passed before the body ended, it stops: nothing
 * more is buffered or read (the request is paused), and the door closes the connection once the
 * answer is out.
 */
export function directBodyReader(req: NodeBodySource, state: { taken: boolean }): RawBodyReader {
  return (limit, timeoutMs) => {
    // Something else reads the Node request already (under Hono, the web stream a middleware's
    // clone of the request pulled): the body is in that stream, so the caller reads the stream.
    if (state.taken || req.readableDidRead || req.readableFlowing === true) return undefined;
    state.taken = true;
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length']);
      if (declared > limit) {
        req.pause();
        resolve({ tooLarge: true });
        return;
      }
      // The connection closed before anything read the body (a host app's middleware ran meanwhile):
      // neither its end nor its close will come.
      if (req.destroyed && !req.readableEnded) {
        reject(new Error('the request body ended early: the connection closed'));
        return;
      }
      const chunks: Uint8Array[] = [];
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
      const onData = (chunk: Uint8Array) => {
        size += chunk.byteLength;
        if (size > limit) abandon({ tooLarge: true });
        else chunks.push(chunk);
      };
      const onEnd = () => {
        if (done) return;
        stop();
        resolve({ tooLarge: false, bytes: concat(chunks, size) });
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

/**
 * Reads a request's whole body under both limits: through the Node bridge's direct reader when the
 * request has one, else through its web stream. A `Content-Length` over `limit` is refused before
 * anything is read.
 */
export function readBodyLimited(request: Request, limit: number, timeoutMs: number): Promise<LimitedRead> {
  if (Number(request.headers.get('content-length')) > limit) return Promise.resolve({ tooLarge: true });
  return rawBodyOf(request)?.(limit, timeoutMs) ?? readStreamLimited(request.body, limit, timeoutMs);
}
