/**
 * `CatalogServer`: the SDK's `Server` with three shortcuts on its hot path, each taken only for
 * messages a cheap structural check proves the SDK's own zod schemas would accept unchanged.
 *
 * - **Classification.** The SDK classifies every incoming message with up to four `safeParse`
 *   calls (response? error? request? notification?), the two that fail on a request allocating
 *   their issues. A plain request (exactly `jsonrpc`, `id`, `method` and optional `params`, with
 *   valid types) goes straight to the SDK's request dispatch instead, the same call its classifier
 *   ends in.
 * - **`tools/call`.** The SDK parses a `tools/call` request twice (once where the handler is
 *   registered, once in the `Server`'s result-checking wrapper) and its result once. A call whose
 *   params hold only `name`, `arguments` and `_meta`, answered with text content only, skips those
 *   parses; the input-required seam and the request-state check still run as the SDK runs them,
 *   and anything outside those shapes takes the SDK's full path.
 *
 * - **The 2026-07-28 envelope.** Every modern request's `_meta` envelope (protocol version, client
 *   info and capabilities) is parsed against the SDK's schema; a client sends the same envelope
 *   with every request, so one the schema accepted is remembered by its JSON text (a bounded set)
 *   and not parsed again.
 *
 * They reach into members the SDK declares private. They are looked up once; if the SDK in use
 * lacks any of them the server is a plain `Server` (`fastPathActive()` says which), so an SDK change
 * costs speed, never behaviour. test/fast-server.test.ts pins them for the installed SDK and
 * compares both paths' answers.
 */
import {
  isInputRequiredResult,
  type JSONRPCMessage,
  type MessageExtraInfo,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type ServerContext,
  type Transport,
} from '@modelcontextprotocol/server';
import { isBareTextBlock, isJsonRpcId, isPlainObject } from '../core/plainJson.js';

/** A request handler as the SDK stores it. */
type StoredHandler = (request: WireCall, ctx: ServerContext) => Promise<unknown>;

/** A JSON-RPC request as it reaches a handler. */
interface WireCall {
  method: string;
  params?: Record<string, unknown>;
}

/** The SDK's private members the shortcuts use, each checked before it is relied on. */
interface ServerInternals {
  _onrequest(request: JSONRPCMessage, extra?: MessageExtraInfo): void;
  _requestHandlers: Map<string, StoredHandler>;
  _negotiatedWireCodec(): WireCodec;
  _invokeInputRequiredCapableHandler(
    method: string,
    handler: StoredHandler,
    request: WireCall,
    ctx: ServerContext,
  ): Promise<unknown>;
}

/** The parts of the SDK's era codec the shortcuts use. */
interface WireCodec {
  validateResult(
    method: string,
    value: unknown,
  ): { ok: true; value: unknown } | { ok: false; reason: string; message?: string };
  checkInboundEnvelope(material: { envelope?: unknown }): string | undefined;
}

const RELATED_TASK_KEY = 'io.modelcontextprotocol/related-task';

/** Whether the installed SDK has every member the shortcuts use. */
const SUPPORTED = (() => {
  const proto = Server.prototype as unknown as Partial<Record<keyof ServerInternals, unknown>>;
  return (
    typeof proto._onrequest === 'function' &&
    typeof proto._negotiatedWireCodec === 'function' &&
    typeof proto._invokeInputRequiredCapableHandler === 'function'
  );
})();

/** Envelopes remembered per codec; each codec's set is cleared when full. */
const MAX_ENVELOPES = 256;
/** Longer envelopes are parsed every time: each codec's set stays under about 512 KiB. */
const MAX_ENVELOPE_CHARS = 1024;

/** Each era codec with the envelope check remembered, made once per codec. */
const rememberingCodecs = new WeakMap<WireCodec, WireCodec>();

/**
 * `codec` with its envelope check remembering envelopes it accepted. Envelopes arrive parsed from
 * JSON, so two with the same JSON text are the same value to the schema; only acceptances are
 * remembered, so a refusal is always the schema's own, worded by it. Each codec remembers what it
 * accepted itself: the 2025 era's check accepts anything, which the 2026 era's must not inherit.
 */
function rememberingEnvelopes(codec: WireCodec): WireCodec {
  let remembering = rememberingCodecs.get(codec);
  if (remembering) return remembering;
  /** Envelopes (as JSON text) this codec's check accepted. */
  const acceptedEnvelopes = new Set<string>();
  const check = (material: { envelope?: unknown }): string | undefined => {
    const envelope = material.envelope;
    if (!isPlainObject(envelope)) return codec.checkInboundEnvelope(material);
    let key: string;
    try {
      key = JSON.stringify(envelope);
    } catch {
      return codec.checkInboundEnvelope(material);
    }
    if (key.length > MAX_ENVELOPE_CHARS) return codec.checkInboundEnvelope(material);
    if (acceptedEnvelopes.has(key)) return undefined;
    const refusal = codec.checkInboundEnvelope(material);
    if (refusal === undefined) {
      if (acceptedEnvelopes.size >= MAX_ENVELOPES) acceptedEnvelopes.clear();
      acceptedEnvelopes.add(key);
    }
    return refusal;
  };
  remembering = Object.create(codec, { checkInboundEnvelope: { value: check } }) as WireCodec;
  rememberingCodecs.set(codec, remembering);
  return remembering;
}

/**
 * Whether `value` is a plain object the SDK's record and loose-object schemas return key for key:
 * they drop an own `__proto__` key (one JSON.parse makes), so an object holding one is not plain.
 */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return isPlainObject(value) && !Object.hasOwn(value, '__proto__');
}

/**
 * Whether `meta` is a request `_meta` both eras' schemas accept as it is: a plain object whose
 * progress token, if any, is valid, without the 2025 era's task-relation key (a nested shape).
 */
function isPlainMeta(meta: unknown): boolean {
  if (meta === undefined) return true;
  if (!isPlainRecord(meta)) return false;
  const token = meta.progressToken;
  return (token === undefined || isJsonRpcId(token)) && meta[RELATED_TASK_KEY] === undefined;
}

/**
 * Whether `message` is a request the SDK's classifier would call a request: exactly `jsonrpc`
 * `"2.0"`, a string or safe-integer `id`, a string `method` and optional object `params` whose
 * `_meta` is plain. Anything else (responses, notifications, odd shapes) takes the SDK's classifier.
 */
export function isPlainRequest(message: unknown): boolean {
  if (!isPlainObject(message)) return false;
  let keys = 0;
  for (const key in message) {
    if (key !== 'jsonrpc' && key !== 'id' && key !== 'method' && key !== 'params') return false;
    keys++;
  }
  if (
    keys < 3 ||
    message.jsonrpc !== '2.0' ||
    typeof message.method !== 'string' ||
    !isJsonRpcId(message.id)
  ) {
    return false;
  }
  const params = message.params;
  if (params === undefined) return keys === 3;
  return isPlainObject(params) && isPlainMeta(params._meta);
}

/** Whether `params` of a `tools/call` hold only a string name, object arguments and a plain `_meta`. */
export function isPlainCall(params: unknown): boolean {
  if (!isPlainObject(params)) return false;
  for (const key in params) {
    if (key !== 'name' && key !== 'arguments' && key !== '_meta') return false;
  }
  const args = params.arguments;
  return (
    typeof params.name === 'string' &&
    (args === undefined || isPlainRecord(args)) &&
    isPlainMeta(params._meta)
  );
}

/**
 * Whether `result` is a tool result both eras' schemas return as it is: text content only
 * (`type` and `text`, nothing else), an optional boolean `isError` and an optional plain-object
 * `structuredContent`, and no other field.
 */
export function isPlainCallResult(result: unknown): boolean {
  if (!isPlainObject(result)) return false;
  for (const key in result) {
    if (key !== 'content' && key !== 'isError' && key !== 'structuredContent') return false;
  }
  const { content, isError, structuredContent } = result;
  if (!Array.isArray(content)) return false;
  if (isError !== undefined && typeof isError !== 'boolean') return false;
  if (structuredContent !== undefined && !isPlainRecord(structuredContent)) return false;
  return content.every(isBareTextBlock);
}

/** The SDK `Server` with the shortcuts described above. */
export class CatalogServer extends Server {
  #fast = false;

  constructor(...args: ConstructorParameters<typeof Server>) {
    super(...args);
    if (!SUPPORTED) return;
    const codecOf = (Server.prototype as unknown as ServerInternals)._negotiatedWireCodec;
    (this as unknown as ServerInternals)._negotiatedWireCodec = function (this: ServerInternals) {
      return rememberingEnvelopes(codecOf.call(this));
    };
  }

  /** Whether this server takes the shortcuts (the installed SDK has what they use). */
  fastPathActive(): boolean {
    return this.#fast;
  }

  override async connect(transport: Transport): Promise<void> {
    const before = transport.onmessage;
    await super.connect(transport);
    if (!SUPPORTED) return;
    const classify = transport.onmessage;
    if (!classify) return;
    const internals = this as unknown as ServerInternals;
    transport.onmessage = (message, extra) => {
      if (!isPlainRequest(message)) return classify(message, extra);
      before?.(message, extra);
      internals._onrequest(message, extra);
    };
  }

  /**
   * Registers `handler` for `tools/call` as the SDK does, then puts the shortcut in front of what
   * the SDK stored: a plain call runs `handler` through the SDK's input-required seam, and only a
   * result outside the plain shape is parsed.
   */
  setToolCallHandler(handler: (request: any, ctx: ServerContext) => unknown): void {
    this.setRequestHandler('tools/call', handler as never);
    if (!SUPPORTED) return;
    const internals = this as unknown as ServerInternals;
    const handlers: unknown = internals._requestHandlers;
    const full = handlers instanceof Map ? internals._requestHandlers.get('tools/call') : undefined;
    if (!full) return;
    // The SDK hands `handler` what its schema returned: method and params, params (and their
    // arguments and _meta) copied one level deep. The same here, without the parse.
    const run: StoredHandler = async (request, ctx) =>
      handler({ method: request.method, params: copiedParams(request.params) }, ctx);
    internals._requestHandlers.set('tools/call', async (request, ctx) => {
      if (!isPlainCall(request.params)) return full(request, ctx);
      const result = await internals._invokeInputRequiredCapableHandler('tools/call', run, request, ctx);
      if (isInputRequiredResult(result) || isPlainCallResult(result)) return result;
      return checkedResult(internals, result);
    });
    this.#fast = true;
  }
}

/** Plain call params copied as the SDK's schema copies them: params, arguments and _meta, one level. */
function copiedParams(params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (params === undefined) return undefined;
  const copy = { ...params };
  if (params.arguments !== undefined) copy.arguments = { ...(params.arguments as object) };
  if (params._meta !== undefined) copy._meta = { ...(params._meta as object) };
  return copy;
}

/** Fields of result families other than a tool's (a task, an input request): never given content. */
const FOREIGN_RESULT_KEYS = ['task', 'inputRequests', 'requestState'];

/**
 * What the SDK's `Server` does with a `tools/call` result outside the plain shape: a result without
 * content gets an empty one (unless it belongs to another result family), then it is parsed.
 */
function checkedResult(internals: ServerInternals, result: unknown): unknown {
  const filled =
    typeof result === 'object' &&
    result !== null &&
    !Array.isArray(result) &&
    (result as { content?: unknown }).content === undefined &&
    !FOREIGN_RESULT_KEYS.some((key) => key in result)
      ? { ...result, content: [] }
      : result;
  const outcome = internals._negotiatedWireCodec().validateResult('tools/call', filled);
  if (outcome.ok) return outcome.value;
  const inEra = outcome.reason !== 'not-in-era';
  throw new ProtocolError(
    inEra ? ProtocolErrorCode.InvalidParams : ProtocolErrorCode.InternalError,
    inEra
      ? `Invalid tools/call result: ${outcome.message}`
      : 'No wire schema for tools/call in the resolved era',
  );
}
