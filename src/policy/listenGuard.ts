import {
  isJSONRPCRequest,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type Transport,
} from '@modelcontextprotocol/server';
import { ForwardingTransport } from '../protocol/forwarding.js';
import type { ListenCheck, Policy, RequestFacts } from './policy.js';

/**
 * Checks `subscriptions/listen` on a connection (WebSocket, or any `connect()`ed transport with a
 * caller): the SDK's era router answers that method before any mcpkit handler, so the policy looks
 * at it here, on its way in, and answers a refusal itself. While an asynchronous rate store decides,
 * later messages wait behind it, so the connection's order is kept.
 */
export class ListenGuardTransport extends ForwardingTransport {
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

  /** Passes `message` on, or answers it with a refusal; a promise while the rate store decides. Never rejects. */
  #deliver(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): Promise<void> | undefined {
    try {
      if (isJSONRPCRequest(message) && message.method === 'subscriptions/listen') {
        const checked = this.#policy.checkListen(message.params, this.#facts);
        if (checked instanceof Promise) {
          return checked.then(
            (refusal) => this.#settle(message, extra, refusal),
            (error: unknown) => {
              // The rate store failed: the request gets an error rather than no answer.
              this.#settle(message, extra, {
                status: 403,
                error: { code: -32603, message: 'Internal error' },
              });
              this.onerror?.(error instanceof Error ? error : new Error(String(error)));
            },
          );
        }
        this.#settle(message, extra, checked);
        return undefined;
      }
      this.onmessage?.(message, extra);
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
    return undefined;
  }

  #settle(
    message: JSONRPCMessage & { id?: unknown },
    extra: MessageExtraInfo | undefined,
    refusal: ListenCheck,
  ): void {
    if (refusal !== undefined) {
      void this.inner
        .send({ jsonrpc: '2.0', id: message.id as string | number, error: refusal.error })
        .catch(() => {});
      return;
    }
    try {
      this.onmessage?.(message, extra);
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
