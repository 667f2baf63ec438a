import { textResponse } from './bodyText.js';

const EVENT_PREFIX = 'event: message\ndata: ';
const EVENT_SUFFIX = '\n\n';
/** One decoder for every chunk: `decode` without `stream` keeps no state between calls. */
const UTF8 = new TextDecoder();
/** Headers that describe an SSE stream, not the answer. */
const STREAM_HEADERS = new Set(['content-type', 'cache-control', 'connection', 'x-accel-buffering']);

/**
 * Answers a POST that carries one JSON-RPC request with JSON when nothing else goes out before its
 * result; SSE otherwise.
 *
 * The SDK's 2025-era transport answers every such POST with an SSE stream, opened at once. The spec
 * lets a server answer with `application/json` instead, and a stream is only needed when something
 * precedes the result: progress, a log message, a server-to-client request, or a keep-alive comment
 * while a long call runs. So this waits for the stream's first bytes (nothing has reached the client
 * yet) and decides then:
 *
 * - the first event is the response to `id` and the stream ends with it: one JSON body, written in
 *   one piece;
 * - anything else (another message first, an event with an `id:` for resumption, a comment): the same
 *   SSE stream, its first bytes put back in front, so the client sees what it always saw.
 *
 * `signal` is the request's: if the client leaves while this waits, the stream is cancelled as the
 * bridge would have cancelled it.
 */
export async function settleAnswer(response: Response, id: unknown, signal: AbortSignal): Promise<Response> {
  const body = response.body;
  if (response.status !== 200 || body === null) return response;
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) return response;
  const reader = body.getReader();
  const cancel = () => {
    reader.cancel().catch(() => {});
  };
  signal.addEventListener('abort', cancel, { once: true });
  const held: Uint8Array[] = [];
  try {
    const first = await reader.read();
    if (!first.done) {
      held.push(first.value);
      const payload = responsePayload(first.value, id);
      if (payload !== undefined) {
        const next = await reader.read();
        if (next.done) return textResponse(payload, { status: 200, headers: jsonHeaders(response.headers) });
        held.push(next.value);
      }
    } else return replay(response, held, undefined);
  } catch {
    // the stream failed (or was cancelled) before deciding: pass on what it gave, then its end
    return replay(response, held, undefined);
  } finally {
    signal.removeEventListener('abort', cancel);
  }
  return replay(response, held, reader);
}

/**
 * The JSON text of `chunk` when it is exactly one SSE `message` event, without an id, carrying the
 * response (result or error) to `id`.
 */
function responsePayload(chunk: Uint8Array, id: unknown): string | undefined {
  const text = UTF8.decode(chunk);
  if (!text.startsWith(EVENT_PREFIX) || !text.endsWith(EVENT_SUFFIX)) return undefined;
  const payload = text.slice(EVENT_PREFIX.length, -EVENT_SUFFIX.length);
  // One `data:` line: JSON.stringify never writes a raw line break.
  if (payload.includes('\n')) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  return m.id === id && ('result' in m || 'error' in m) ? payload : undefined;
}

function jsonHeaders(from: Headers): Headers {
  const headers = new Headers();
  for (const [name, value] of from) if (!STREAM_HEADERS.has(name)) headers.append(name, value);
  headers.set('content-type', 'application/json');
  return headers;
}

/** The SSE answer again: `held` first, then whatever `reader` still gives. */
function replay(
  response: Response,
  held: readonly Uint8Array[],
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined,
): Response {
  let index = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (index < held.length) {
          controller.enqueue(held[index++]!);
          return;
        }
        if (!reader) {
          controller.close();
          return;
        }
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(error);
        }
      },
      cancel(reason) {
        return reader?.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(stream, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
