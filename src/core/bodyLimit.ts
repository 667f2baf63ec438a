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
 * Reads a request's whole body under both limits: through the Node bridge's direct reader when the
 * request has one, else through its web stream. A `Content-Length` over `limit` is refused before
 * anything is read.
 */
export function readBodyLimited(request: Request, limit: number, timeoutMs: number): Promise<LimitedRead> {
  if (Number(request.headers.get('content-length')) > limit) return Promise.resolve({ tooLarge: true });
  return rawBodyOf(request)?.(limit, timeoutMs) ?? readStreamLimited(request.body, limit, timeoutMs);
}
