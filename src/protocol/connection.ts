import {
  isInitializeRequest,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type Server,
  type Transport,
} from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { ForwardingTransport } from './forwarding.js';

/** How a connection builds its SDK server, once it knows the protocol era. */
export type ServerFactory = (era: 'legacy' | 'modern') => Server;

/**
 * Holds a started transport's messages until the connection has decided who serves them, then
 * hands them over in order. The consumer (an SDK `Server`, or the SDK's era router) sees an ordinary
 * transport whose `start()` delivers what arrived so far.
 */
class HeldTransport extends ForwardingTransport {
  #held: Array<[JSONRPCMessage, MessageExtraInfo | undefined]> | undefined = [];

  constructor(inner: Transport, onFirst: (message: JSONRPCMessage) => void, onEnd: () => void) {
    super(inner);
    let first = true;
    inner.onmessage = (message, extra) => {
      if (this.#held) {
        this.#held.push([message, extra]);
        if (first) {
          first = false;
          onFirst(message);
        }
        return;
      }
      this.onmessage?.(message, extra);
    };
    inner.onerror = (error) => this.onerror?.(error);
    inner.onclose = () => {
      this.onclose?.();
      onEnd();
    };
  }

  /** The inner transport is already started; this delivers the held messages. */
  async start(): Promise<void> {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const [message, extra] of held) this.onmessage?.(message, extra);
  }
}

/** A served connection. */
export interface ServedConnection {
  close(): Promise<void>;
}

/**
 * Serves one connection-oriented transport in whichever era its client speaks. A connection that
 * opens with a 2025-era `initialize` gets one SDK server connected straight to the transport, the
 * cheapest path per message; anything else (a 2026-07-28 `server/discover` probe or request) goes
 * through the SDK's era router, which pins the era and serves `subscriptions/listen`.
 */
export async function serveConnection(
  transport: Transport,
  factory: ServerFactory,
  options: { onerror: (error: Error) => void; onEnd: () => void },
): Promise<ServedConnection> {
  let close: () => Promise<void> = () => transport.close();
  let ended = false;
  const held: HeldTransport = new HeldTransport(
    transport,
    (first) => {
      if (isInitializeRequest(first)) {
        const server = factory('legacy');
        close = () => server.close();
        server.connect(held).catch((error: unknown) => {
          options.onerror(error as Error);
          void transport.close().catch(() => {});
        });
        return;
      }
      const handle = serveStdio(({ era }) => factory(era), { transport: held, onerror: options.onerror });
      close = () => handle.close();
    },
    () => {
      if (ended) return;
      ended = true;
      options.onEnd();
    },
  );
  await transport.start();
  return {
    close: async () => {
      await close().catch(() => {});
      await transport.close().catch(() => {});
    },
  };
}
