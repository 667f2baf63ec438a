/**
 * Responses mcpkit builds from a string carry that string under this symbol, so the Node bridge can
 * write it directly instead of reading it back through the web stream machinery (which costs more
 * than the rest of a small REST request). Other runtimes ignore it.
 */
export const BODY_TEXT: unique symbol = Symbol.for('mcpkit.bodyText');

/** A response with a string body, tagged with {@link BODY_TEXT}. */
export function textResponse(text: string, init: ResponseInit): Response {
  const response = new Response(text, init);
  (response as Response & { [BODY_TEXT]?: string })[BODY_TEXT] = text;
  return response;
}

/** The tagged string body of `response`, if it has one and it was not read. */
export function bodyTextOf(response: Response): string | undefined {
  const text = (response as Response & { [BODY_TEXT]?: string })[BODY_TEXT];
  return typeof text === 'string' && !response.bodyUsed ? text : undefined;
}

/**
 * Requests the Node bridge builds carry a direct reader of the underlying body under this symbol:
 * mcpkit's REST routes read the body through it (limit applied) instead of the web stream. It
 * answers `undefined` once the web stream has started.
 */
export const RAW_BODY: unique symbol = Symbol.for('mcpkit.rawBody');

/** Reads the whole body up to `limit` bytes. */
export type RawBodyReader = (
  limit: number,
) => Promise<{ tooLarge: true } | { tooLarge: false; bytes: Uint8Array }> | undefined;

/** The direct body reader of a request built by the Node bridge, if any. */
export function rawBodyOf(request: Request): RawBodyReader | undefined {
  return (request as Request & { [RAW_BODY]?: RawBodyReader })[RAW_BODY];
}

/**
 * Reads a web stream whole, up to `limit` bytes: stops (and cancels the stream) as soon as more has
 * arrived, so a huge or endless body is never buffered.
 */
export async function readStreamLimited(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<{ tooLarge: true } | { tooLarge: false; bytes: Uint8Array }> {
  if (!body) return { tooLarge: false, bytes: new Uint8Array(0) };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return { tooLarge: true };
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { tooLarge: false, bytes };
}
