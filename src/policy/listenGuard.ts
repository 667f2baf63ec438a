import { isJSONRPCRequest, type Transport } from '@modelcontextprotocol/server';
import { ERROR_CODES } from '../errors.js';
import { ForwardingTransport } from '../protocol/forwarding.js';
import type { Policy, RequestFacts } from './policy.js';

/**
 * Checks `subscriptions/listen` on a connection (WebSocket, or any `connect()`ed transport with a
 * caller): the SDK's era router answers that method before any mcpkit handler, so the policy looks
 * at it here, on its way in, and answers a refusal itself.
 */
export class ListenGuardTransport extends ForwardingTransport {
  constructor(inner: Transport, policy: Policy, facts: RequestFacts) {
    super(inner);
    inner.onmessage = (message, extra) => {
      if (isJSONRPCRequest(message) && message.method === 'subscriptions/listen') {
        const refused = policy.checkListen(message.params, facts);
        if (refused !== undefined) {
          void inner
            .send({
              jsonrpc: '2.0',
              id: message.id,
              error: { code: ERROR_CODES.FORBIDDEN.jsonRpc, message: refused },
            })
            .catch(() => {});
          return;
        }
      }
      this.onmessage?.(message, extra);
    };
    inner.onclose = () => this.onclose?.();
    inner.onerror = (error) => this.onerror?.(error);
  }

  start(): Promise<void> {
    return this.inner.start();
  }
}
