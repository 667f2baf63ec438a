import type { Readable, Writable } from 'node:stream';
import type { JSONRPCMessage, Transport, TransportSendOptions } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { jsonDepth, MAX_JSON_DEPTH, stripPollution } from '../core/safeJson.js';
import { NotificationFence } from '../protocol/fence.js';
import { ForwardingTransport } from '../protocol/forwarding.js';
import type { Connection, McpKitServer } from '../server.js';

/** Options for {@link serveStdio}. */
export interface ServeStdioOptions {
  /** Where messages come from. Default `process.stdin`. */
  stdin?: Readable;
  /** Where messages go. Default `process.stdout`; nothing else is ever written there. */
  stdout?: Writable;
}

/**
 * The SDK's stdio transport with every incoming message cleaned of `__proto__` and
 * `constructor.prototype` keys. The SDK parses each line itself (`JSON.parse`, then its message
 * schema, which keeps such keys as own properties), so the cleaning happens as messages come out.
 * A response waits until the client has dispatched its request's progress (see
 * {@link NotificationFence}).
 */
class StdioConnectionTransport extends ForwardingTransport {
  readonly #fence: NotificationFence;

  constructor(inner: Transport) {
    super(inner);
    this.#fence = new NotificationFence((message, options) => inner.send(message, options));
    inner.onmessage = (message, extra) => {
      // Bounded like every other door's messages: a document nested past the limit is refused.
      if (jsonDepth(message, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
        const id = (message as { id?: unknown }).id;
        if (typeof id === 'string' || typeof id === 'number') {
          void inner
            .send({
              jsonrpc: '2.0',
              id,
              error: {
                code: -32600,
                message: `Invalid Request: the JSON nests deeper than ${MAX_JSON_DEPTH} levels`,
              },
            })
            .catch(() => {});
        }
        return;
      }
      if (this.#fence.receive(message)) return;
      this.onmessage?.(stripPollution(message), extra);
    };
    inner.onclose = () => {
      this.#fence.close();
      this.onclose?.();
    };
    inner.onerror = (error) => this.onerror?.(error);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  override send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.#fence.send(message, options);
  }
}

/**
 * Serves an mcpkit server over stdio, for desktop clients that start the server as a child process.
 * Only MCP messages are written to stdout; logs go to stderr. Incoming messages lose any
 * `__proto__` and `constructor.prototype` keys before a handler sees them, and one nested deeper
 * than 64 levels is refused (`-32600`).
 * The result of a call that reported progress is written once the client has answered a `ping`,
 * so that SDK clients dispatch every progress before the result (docs/transports.md).
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { serveStdio } from 'mcpkit/node';
 *
 * const server = createMcpServer({ name: 'desktop-tools' });
 * await serveStdio(server);
 * ```
 */
export async function serveStdio(server: McpKitServer, options: ServeStdioOptions = {}): Promise<Connection> {
  const transport = new StdioConnectionTransport(new StdioServerTransport(options.stdin, options.stdout));
  return server.connect(transport, { origin: 'stdio' });
}
