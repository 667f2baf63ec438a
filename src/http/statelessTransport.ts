import {
  type AuthInfo,
  type JSONRPCMessage,
  type MessageClassification,
  SUPPORTED_PROTOCOL_VERSIONS,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/server';
import type { CancelSignal } from '../execution/signal.js';
import { SETTLING_METHODS } from '../protocol/methods.js';
import { departureOf } from './bodyText.js';
import { jsonRpcError } from './jsonrpc.js';
import {
  checkAccept,
  DEFAULT_KEEP_ALIVE_MS,
  Exchange,
  isPlainJsonRpc,
  KeepAlives,
  unsupportedVersion,
} from './sessionTransport.js';

type Id = string | number;

/** The methods whose handlers report when they end (`requestSettled`): the ones mcpkit serves. */
const SETTLES = new Set<string>(SETTLING_METHODS);

/**
 * At most this many bytes of ids are held for handlers that run on after their request ended (an id
 * costs its UTF-16 length and a Set entry's overhead): a client's ids may be long strings.
 */
const MAX_HELD_BYTES = 1024 * 1024;
/** What holding one id costs, beyond a string id's characters. */
const HELD_ENTRY_BYTES = 48;

function heldBytes(id: Id): number {
  return typeof id === 'string' ? HELD_ENTRY_BYTES + 2 * id.length : HELD_ENTRY_BYTES;
}
type Message = JSONRPCMessage & { id?: Id; method?: string };

/**
 * Methods a shared server must not serve, because they change the state of the server that serves
 * them: `initialize` records the client's capabilities and `logging/setLevel` its log level. Without
 * a session both belong to the one request that carries them, so they get a server of their own.
 */
const PER_REQUEST_METHODS = new Set(['initialize', 'logging/setLevel']);

/**
 * Whether `body` is one request the shared stateless server may serve: a plain JSON-RPC request (no
 * `_meta`, so no progress token or 2026-07-28 envelope) of a method that leaves no state behind.
 * Everything else (batches, notifications, responses, `initialize`) goes to a server of its own.
 */
export function isSharedStatelessRequest(body: unknown): boolean {
  return (
    isPlainJsonRpc(body) &&
    (body as Message).id !== undefined &&
    !PER_REQUEST_METHODS.has((body as Message).method!)
  );
}

/** The extra headers of a JSON answer: none (the exchange copies them into each answer). */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** JSON-RPC `MissingRequiredClientCapability`: answered with HTTP 400 even from a handler. */
const MISSING_CLIENT_CAPABILITY = -32021;

/**
 * What {@link StatelessTransport.handle} resolves to, in the modern era, when the server refused the
 * request synchronously, before any handler ran (the SDK's validation ladder): nothing happened, and
 * the caller serves the request through the SDK's own entry, which answers the refusal exactly.
 */
export const LADDER_REFUSED: unique symbol = Symbol('mcpkit.ladderRefused');

/** How a {@link StatelessTransport} is built. */
export interface StatelessTransportOptions {
  jsonResponse: boolean;
  keepAliveMs?: number;
  /**
   * Serves 2026-07-28 requests: each is delivered with this classification (the SDK's era gate reads
   * it), the version and Accept checks are the caller's, and a synchronous refusal resolves to
   * {@link LADDER_REFUSED}.
   */
  modern?: MessageClassification;
}

/**
 * The transport of the one server that serves `http.stateless` requests of the 2025 era (and, with
 * `modern`, plain 2026-07-28 requests). Without a session nothing ties one POST to another, so two
 * clients may both send id 1 at once: a request is served under its own id unless another in flight
 * holds it, then under a private id, and always answered under the id it came with; the answer is one JSON
 * body unless something must precede the result (a progress or log notification, a request to the
 * client, keep-alives on a long call), then SSE. A client that leaves before its answer cancels the
 * handler, as the end of a per-request server would.
 *
 * What the shared server never sees: notifications and responses from clients (without a session
 * they name nothing it could act on), and the requests of {@link PER_REQUEST_METHODS}.
 */
export class StatelessTransport implements Transport {
  sessionId: string | undefined;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: Transport['onmessage'];

  readonly #inFlight = new Map<Id, Exchange>();
  readonly #jsonResponse: boolean;
  readonly #keepAlives: KeepAlives;
  readonly #modern: MessageClassification | undefined;
  #versions: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
  #next = 0;
  /**
   * Ids of requests over (answered, say on a timeout, or cancelled as their client left) whose
   * handlers, which report their end (`requestSettled`), still run: such a handler may still log or
   * report progress under its id, so a later request with that id is served under a private one
   * until it ends.
   */
  readonly #held = new Set<Id>();
  /** What {@link StatelessTransport.#held} costs, by {@link heldBytes}. */
  #heldBytes = 0;
  /** The exchange of each request in flight whose handler reports its end, by served id. */
  readonly #settling = new Map<Id, Exchange>();
  #closed = false;
  /** The private id whose message is being dispatched, and whether it was refused meanwhile. */
  #dispatching: { id: Id; refused: boolean } | undefined;

  constructor(options: StatelessTransportOptions) {
    this.#jsonResponse = options.jsonResponse;
    this.#modern = options.modern;
    this.#keepAlives = new KeepAlives(options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS, () =>
      this.#inFlight.values(),
    );
  }

  async start(): Promise<void> {}

  setSupportedProtocolVersions(versions: string[]): void {
    this.#versions = versions;
  }

  /** The id the client sent for the request served under private id `id`. */
  clientIdOf(id: Id): Id | undefined {
    return this.#inFlight.get(id)?.originalOf(id);
  }

  /**
   * Serves one POST whose body passed {@link isSharedStatelessRequest} (or, in the modern era, one
   * plain request the handler vetted).
   */
  handle(
    request: Request,
    body: unknown,
    authInfo: AuthInfo | undefined,
  ): Promise<Response | typeof LADDER_REFUSED> | Response {
    if (this.#closed)
      return jsonRpcError(503, { code: -32000, message: 'Service Unavailable: the server is closing' });
    const refused = this.#modern
      ? undefined
      : (checkAccept(request.headers.get('accept')) ??
        unsupportedVersion(request.headers.get('mcp-protocol-version'), this.#versions));
    if (refused) return refused;
    const message = body as Message;
    // The client left before its request got here (during admission or the body's read): nothing
    // runs for it. The Node bridge answers without building an AbortSignal.
    const departure = departureOf(request);
    if (departure.aborted)
      return jsonRpcError(499, { code: -32800, message: 'Request cancelled: the client disconnected' });
    // Served under the client's own id unless another request in flight holds it (two clients may
    // both send id 1): then under a private id, and answered under the client's.
    const own = message.id!;
    const id = this.#inFlight.has(own) || this.#held.has(own) ? this.#privateId() : own;
    const extra: { request: Request; authInfo?: AuthInfo; classification?: MessageClassification } = {
      request,
    };
    if (authInfo) extra.authInfo = authInfo;
    if (this.#modern) extra.classification = this.#modern;
    return new Promise<Response | typeof LADDER_REFUSED>((resolve) => {
      const exchange = new Exchange(
        { ids: [id], headers: NO_HEADERS, originals: id === own ? undefined : new Map([[id, own]]) },
        resolve,
      );
      this.#inFlight.set(id, exchange);
      if (SETTLES.has(message.method!)) this.#settling.set(id, exchange);
      if (!this.#jsonResponse) this.#keepAlives.arm();
      // The client left before its answer: the handler is cancelled, as the SDK's per-request
      // server would be closed.
      this.#watch(departure, id, exchange);
      const dispatching = { id, refused: false };
      this.#dispatching = dispatching;
      try {
        this.onmessage?.((id === own ? message : { ...message, id }) as JSONRPCMessage, extra);
      } finally {
        this.#dispatching = undefined;
      }
      if (dispatching.refused) {
        // The ladder refused it before any handler ran: the SDK's entry answers it exactly.
        // No handler ran, so none will report its end: its id is not held.
        this.#inFlight.delete(id);
        this.#settling.delete(id);
        exchange.end();
        resolve(LADDER_REFUSED);
      }
    });
  }

  /**
   * The handler of the request served under `id` ended (`onRequestSettled` of the server it
   * serves): a cancelled request's id is free again.
   */
  requestSettled(id: Id): void {
    this.#settling.delete(id);
    if (this.#held.delete(id)) this.#heldBytes -= heldBytes(id);
  }

  /**
   * Holds `id` until its handler ends. Bounded by bytes: past {@link MAX_HELD_BYTES} of them
   * (handlers that never end, or requests refused before their handler ran, which never report) the
   * oldest are let go.
   */
  #hold(id: Id): void {
    const held = this.#held;
    if (held.has(id)) return;
    held.add(id);
    this.#heldBytes += heldBytes(id);
    while (this.#heldBytes > MAX_HELD_BYTES) {
      const oldest = held.values().next().value!;
      held.delete(oldest);
      this.#heldBytes -= heldBytes(oldest);
    }
  }

  /**
   * Cancels the handler of `id` if its client leaves before `exchange` is over; when the exchange
   * ends while that handler still runs (it answered on a timeout, say), holds its id until the
   * handler ends.
   *
   * Built here on purpose, not inside {@link StatelessTransport.handle}: a closure made there would
   * hold the whole of that call's scope (the request, its body, the SDK's context) for as long as the
   * exchange keeps its `onEnd`, and a young object held that way by an older one survives
   * young-generation collections and is promoted. Moving these closures out of `handle` halved the
   * bytes promoted per stateless request (6.1 to 3.0 KB) and cut its CPU time by a fifth.
   */
  #watch(departure: CancelSignal, id: Id, exchange: Exchange): void {
    const cancel = () => this.#cancel(id, exchange);
    departure.addEventListener('abort', cancel, { once: true });
    exchange.onEnd = () => {
      departure.removeEventListener('abort', cancel);
      if (this.#settling.get(id) !== exchange) return;
      this.#settling.delete(id);
      this.#hold(id);
    };
  }

  /** A private id no request in flight holds. */
  #privateId(): string {
    let id: string;
    do id = `mcpkit-stateless-${++this.#next}`;
    while (this.#inFlight.has(id) || this.#held.has(id));
    return id;
  }

  /** Cancels the handler of id `id` (its client left) and drops its exchange. */
  #cancel(id: Id, exchange: Exchange): void {
    if (this.#inFlight.get(id) !== exchange || exchange.answered(id)) return;
    this.#inFlight.delete(id);
    // Its handler may run on after the cancellation: its id is held until the handler ends.
    if (this.#settling.delete(id)) this.#hold(id);
    exchange.cancel(id);
    this.onmessage?.({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: id, reason: 'The client disconnected' },
    } as JSONRPCMessage);
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as Message;
    const isResponse = m.method === undefined && m.id !== undefined;
    const related = isResponse ? m.id : options?.relatedRequestId;
    // Without a session there is no stream for messages that belong to no request.
    if (related === undefined) return;
    const exchange = this.#inFlight.get(related);
    if (!exchange) return;
    if (this.#modern && isResponse && 'error' in m) {
      if (this.#dispatching?.id === related) {
        this.#dispatching.refused = true;
        return;
      }
      // As the SDK's per-request transport does: a missing client capability is the client's
      // fault whichever part of the server found it.
      if ((m as { error: { code?: unknown } }).error.code === MISSING_CLIENT_CAPABILITY)
        exchange.status = 400;
    }
    if (exchange.deliver(message, isResponse ? related : undefined, this.#jsonResponse)) {
      this.#inFlight.delete(related);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#keepAlives.stop();
    for (const exchange of this.#inFlight.values()) {
      exchange.abandon(
        jsonRpcError(503, { code: -32000, message: 'Service Unavailable: the server is closing' }),
      );
    }
    this.#inFlight.clear();
    this.#settling.clear();
    this.#held.clear();
    this.#heldBytes = 0;
    this.onclose?.();
  }
}
