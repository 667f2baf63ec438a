import { type Refusal, refuse } from '../core/refusal.js';
import { isWireRequest, type RefusedMessage, refusedMessage } from '../protocol/gate.js';
import { mcpMessageRefusals } from './answers.js';
import { setPlainHeader } from './bodyText.js';

/** The first protocol revision of the stateless (per-request envelope) era. */
/**
 * Whether a POST body is one JSON-RPC request that the SDK's classifier, under a modern version
 * header, can only send to the modern path: not `initialize` (the legacy handshake), not a batch,
 * not something that could pass for a response.
 */
export function isModernOnly(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const m = body as Record<string, unknown>;
  return (
    typeof m.method === 'string' &&
    m.method !== 'initialize' &&
    'id' in m &&
    !('result' in m) &&
    !('error' in m)
  );
}

export function isListen(body: unknown): boolean {
  return isWireRequest(body) && body.method === 'subscriptions/listen';
}

export function tooManyStreams(limit: number): Refusal {
  return refuse('RATE_LIMITED', `Too many open streams for this caller (limit ${limit}); close one first`, {
    headers: { 'retry-after': '5' },
    data: { retryAfterSeconds: 5, limit },
  });
}

const MAX_ERROR_TEXT = 256;
/** The longest run of an SDK error's text kept whole: past it, a run is what the caller sent. */
const MAX_ECHO = 64;

/** `text` with every run longer than an echo may be (a name, a URI) cut short, and bounded in all. */
export function boundText(text: string): string {
  const cut = text.replace(/[^\s"]{65,}/g, (run) => `${run.slice(0, MAX_ECHO)}…`);
  return cut.length > MAX_ERROR_TEXT ? `${cut.slice(0, MAX_ERROR_TEXT)}…` : cut;
}

/**
 * An error answer of the SDK's with its message and string data cut to a short prefix (control
 * characters escaped), so no refusal repeats a long name, URI or header back; other answers as
 * they are.
 */
export async function boundedError(response: Response): Promise<Response> {
  if (!response.headers.get('content-type')?.startsWith('application/json')) return response;
  const text = await response.text();
  const rebuilt = (body: string) =>
    new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  // A short answer cannot repeat much of anything.
  if (text.length <= MAX_ERROR_TEXT * 2) return rebuilt(text);
  let answer: { error?: { message?: unknown; data?: unknown } };
  try {
    answer = JSON.parse(text);
  } catch {
    return rebuilt(text.slice(0, MAX_ERROR_TEXT));
  }
  const error = answer?.error;
  if (error && typeof error === 'object') {
    if (typeof error.message === 'string') error.message = boundText(error.message);
    if (error.data !== undefined) error.data = boundStrings(error.data, 8);
  }
  const body = JSON.stringify(answer);
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

/** `value` with every string cut to a short prefix, and nesting past `depth` dropped. */
export function boundStrings(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return value.length > MAX_ECHO ? `${value.slice(0, MAX_ECHO)}…` : value;
  if (value === null || typeof value !== 'object' || depth <= 0)
    return typeof value === 'object' ? undefined : value;
  if (Array.isArray(value)) return value.slice(0, 20).map((v) => boundStrings(v, depth - 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value).slice(0, 20))
    out[key.slice(0, 64)] = boundStrings(v, depth - 1);
  return out;
}

/** `response` with `release` called once its body has been read to the end, or abandoned. */
export function releaseWhenDone(response: Response, release: () => void): Response {
  if (!response.body) {
    release();
    return response;
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  response.body
    .pipeTo(writable)
    .catch(() => {})
    .finally(release);
  return new Response(readable, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * The answer to a batch part of which the policy refused: the SDK's answer to the rest, with a
 * JSON-RPC error for each refused request added: into the JSON array, as SSE events before the
 * stream's own, or as the whole answer when the SDK had nothing to say (202).
 */
export async function mergeRefused(
  response: Response,
  refused: readonly RefusedMessage[],
): Promise<Response> {
  const errors = refused.map(refusedMessage);
  const type = response.headers.get('content-type') ?? '';
  if (response.status === 202 || !response.body) return mcpMessageRefusals(refused, true);
  if (type.startsWith('application/json')) {
    const answered = (await response.json()) as unknown;
    const all = [...errors, ...(Array.isArray(answered) ? answered : [answered])];
    return new Response(JSON.stringify(all), { status: response.status, headers: response.headers });
  }
  if (type.startsWith('text/event-stream')) {
    const encoder = new TextEncoder();
    const prefix = errors.map((e) => `event: message\ndata: ${JSON.stringify(e)}\n\n`).join('');
    const reader = response.body.getReader();
    let first = true;
    const merged = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (first) {
          first = false;
          controller.enqueue(encoder.encode(prefix));
          return;
        }
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(merged, { status: response.status, headers: response.headers });
  }
  return response;
}

/** `response` with one more header; rebuilt when its headers are immutable. */
export function withHeader(response: Response, name: string, value: string): Response {
  if (setPlainHeader(response, name, value)) return response;
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const headers = new Headers(response.headers);
    headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

export function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
