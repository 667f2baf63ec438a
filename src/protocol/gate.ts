/**
 * The admission gate of the MCP doors: every JSON-RPC request, of either era and whatever its method
 * (the SDK's built-in `initialize`, `ping`, `server/discover`, `logging/setLevel` and
 * `subscriptions/listen` included), passes {@link Policy.admit} before the SDK dispatches it. On HTTP
 * the handler calls {@link admitRequest} for each request of a POST body; on a connection
 * (WebSocket, or any `connect()`ed transport with a caller) {@link AdmissionTransport} does, in the
 * order the messages arrived. Nothing here touches the SDK's handler registration.
 */
import type { JSONRPCMessage, MessageExtraInfo, Transport } from '@modelcontextprotocol/server';
import { jsonRpcErrorOf, type Refusal } from '../core/refusal.js';
import type { Decision, Policy, RateState, RequestFacts } from '../policy/policy.js';
import { ForwardingTransport } from './forwarding.js';
import { operationOf } from './methods.js';

/** A JSON-RPC request as it came off the wire, before the SDK validated it. */
export interface WireRequest {
  readonly jsonrpc?: unknown;
  readonly id: string | number;
  readonly method: string;
  readonly params?: unknown;
}

/** Whether `value` is a JSON-RPC request (a method and an id): what the gate admits. */
export function isWireRequest(value: unknown): value is WireRequest {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { method?: unknown; id?: unknown };
  return typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number');
}

/** A request the policy refused, with its id. */
export interface RefusedMessage {
  readonly id: string | number;
  readonly refusal: Refusal;
}

/** The JSON-RPC error response for a refused request. */
export function refusedMessage({ id, refusal }: RefusedMessage): JSONRPCMessage {
  return { jsonrpc: '2.0', id, error: jsonRpcErrorOf(refusal) } as JSONRPCMessage;
}

/** An admitted request, with the rate facts for response headers when its class is limited. */
export type Admitted = { readonly refused?: undefined; readonly rate?: RateState | undefined };

/**
 * The policy's decision on one JSON-RPC request: admitted, or refused with its id. Synchronous
 * unless the rate store is asynchronous; never rejects (the policy refuses with `UNAVAILABLE` when the
 * rate store fails, so no request goes through unpaid).
 */
export function admitRequest(
  policy: Policy,
  message: WireRequest,
  facts: RequestFacts,
):
  | Admitted
  | { readonly refused: RefusedMessage }
  | Promise<Admitted | { readonly refused: RefusedMessage }> {
  const decided = policy.admit(operationOf(message.method, message.params), facts);
  return decided instanceof Promise ? decided.then((d) => verdict(message, d)) : verdict(message, decided);
}

function verdict(message: WireRequest, decision: Decision): Admitted | { readonly refused: RefusedMessage } {
  if (decision.ok) return decision.rate ? { rate: decision.rate } : ADMITTED;
  return { refused: { id: message.id, refusal: decision.refusal } };
}

const ADMITTED: Admitted = Object.freeze({});

/**
 * Admits every request arriving on a connection before its consumer (the SDK server, or the SDK's
 * era router) sees it, and answers a refused one itself. Messages keep their order: while an
 * asynchronous rate store decides on one, later ones wait behind it. Notifications and responses go
 * straight through.
 */
export class AdmissionTransport extends ForwardingTransport {
  readonly #policy: Policy;
  readonly #facts: RequestFacts;
  /** The last message still waiting for a decision; later ones are delivered after it. */
  #tail: Promise<void> | undefined;

  constructor(inner: Transport, policy: Policy, facts: RequestFacts) {
    super(inner);
    this.#policy = policy;
    this.#facts = facts;
    inner.onmessage = (message, extra) => {
      const waiting = this.#tail;
      const delivered = waiting
        ? waiting.then(() => this.#deliver(message, extra))
        : this.#deliver(message, extra);
      if (!delivered) return;
      this.#tail = delivered;
      void delivered.then(() => {
        if (this.#tail === delivered) this.#tail = undefined;
      });
    };
    inner.onclose = () => this.onclose?.();
    inner.onerror = (error) => this.onerror?.(error);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  /** Passes `message` on, or answers it with its refusal; a promise while the rate store decides. */
  #deliver(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): Promise<void> | undefined {
    if (!isWireRequest(message)) {
      this.#pass(message, extra);
      return undefined;
    }
    const facts = { ...this.#facts, requestId: String(message.id) };
    const decided = admitRequest(this.#policy, message, facts);
    if (decided instanceof Promise) return decided.then((d) => this.#settle(message, extra, d.refused));
    this.#settle(message, extra, decided.refused);
    return undefined;
  }

  #settle(
    message: JSONRPCMessage,
    extra: MessageExtraInfo | undefined,
    refused: RefusedMessage | undefined,
  ): void {
    if (refused === undefined) {
      this.#pass(message, extra);
      return;
    }
    this.inner.send(refusedMessage(refused)).catch((error: unknown) => {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    });
  }

  #pass(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): void {
    try {
      this.onmessage?.(message, extra);
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
