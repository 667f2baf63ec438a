import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';

const SUBPROTOCOL = 'mcp';
const OPEN = 1;
const CLOSED = 3;
/** How long `close()` waits for the server's close frame. */
const CLOSE_WAIT_MS = 5_000;

/** The part of the WebSocket API both the web-standard `WebSocket` and `ws` offer. */
interface SocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** A WebSocket constructor: the global one, `ws`'s, or one the caller supplies. */
export type WebSocketConstructor = new (
  url: string,
  protocols: string | string[],
  options?: { headers?: Record<string, string>; maxPayload?: number },
) => SocketLike;

/** Options for {@link WebSocketClientTransport}. */
export interface WebSocketClientTransportOptions {
  /**
   * Extra headers for the upgrade request (`Authorization`, say). Browsers' `WebSocket` cannot send
   * headers, so setting this always uses the `ws` package.
   */
  headers?: Record<string, string>;
  /** Largest incoming message in bytes (with `ws` only). Default: `ws`'s 100 MiB. */
  maxPayloadBytes?: number;
  /** The WebSocket implementation. Default: the global `WebSocket` where there is one, else `ws`. */
  WebSocket?: WebSocketConstructor;
}

async function resolveConstructor(options: WebSocketClientTransportOptions): Promise<WebSocketConstructor> {
  if (options.WebSocket) return options.WebSocket;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global && !options.headers && options.maxPayloadBytes === undefined) return global;
  let mod: { WebSocket?: unknown; default?: { WebSocket?: unknown } };
  try {
    mod = (await import('ws')) as typeof mod;
  } catch {
    throw new Error(
      'WebSocketClientTransport needs a WebSocket: a runtime with a global WebSocket, or the "ws" package (npm install ws)',
    );
  }
  return (mod.WebSocket ?? mod.default?.WebSocket) as WebSocketConstructor;
}

/**
 * An SDK client `Transport` over WebSocket (subprotocol `mcp`, one JSON-RPC message per text frame),
 * for the SDK v2 `Client`, which ships none. Uses the global `WebSocket` where the runtime has one and
 * the `ws` package otherwise (or when `headers` are set).
 *
 * @example
 * ```ts
 * import { Client } from '@modelcontextprotocol/client';
 * import { WebSocketClientTransport } from 'mcpkit/node';
 *
 * const client = new Client({ name: 'agent', version: '1.0.0' });
 * await client.connect(new WebSocketClientTransport('ws://127.0.0.1:3000/mcp'));
 * const { tools } = await client.listTools();
 * ```
 */
export class WebSocketClientTransport implements Transport {
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;

  readonly #url: string;
  readonly #options: WebSocketClientTransportOptions;
  #socket: SocketLike | undefined;
  #closed: Promise<void> | undefined;
  #closedEmitted = false;

  constructor(url: string | URL, options: WebSocketClientTransportOptions = {}) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
      throw new TypeError(`url must be a ws: or wss: URL (got ${JSON.stringify(parsed.protocol)})`);
    }
    this.#url = parsed.href;
    this.#options = options;
  }

  async start(): Promise<void> {
    if (this.#socket) throw new Error('WebSocketClientTransport already started');
    const WebSocketImpl = await resolveConstructor(this.#options);
    const { headers, maxPayloadBytes } = this.#options;
    const extra =
      headers || maxPayloadBytes !== undefined
        ? {
            ...(headers && { headers }),
            ...(maxPayloadBytes !== undefined && { maxPayload: maxPayloadBytes }),
          }
        : undefined;
    const socket = extra
      ? new WebSocketImpl(this.#url, SUBPROTOCOL, extra)
      : new WebSocketImpl(this.#url, SUBPROTOCOL);
    this.#socket = socket;
    let opened = false;
    this.#closed = new Promise<void>((resolve) => {
      socket.addEventListener('close', () => {
        resolve();
        this.#emitClose();
      });
    });
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => {
        opened = true;
        if (socket.protocol !== SUBPROTOCOL) {
          socket.close(1000);
          reject(new Error(`the server did not agree to the "${SUBPROTOCOL}" subprotocol`));
          return;
        }
        resolve();
      });
      socket.addEventListener('error', (event: { error?: unknown; message?: string }) => {
        const error =
          event.error instanceof Error ? event.error : new Error(event.message ?? 'WebSocket error');
        if (!opened) reject(error);
        else this.onerror?.(error);
      });
      socket.addEventListener('close', (event: { code?: number; reason?: string }) => {
        if (!opened) reject(new Error(`WebSocket closed before opening (code ${event.code ?? 'unknown'})`));
      });
    });
    socket.addEventListener('message', (event: { data: unknown }) => {
      if (typeof event.data !== 'string') {
        this.onerror?.(new Error('unexpected binary WebSocket message'));
        return;
      }
      let message: JSONRPCMessage;
      try {
        message = JSON.parse(event.data) as JSONRPCMessage;
      } catch (error) {
        this.onerror?.(error as Error);
        return;
      }
      this.onmessage?.(message);
    });
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN) throw new Error('WebSocket is not open');
    socket.send(JSON.stringify(message));
  }

  /** Closes the connection (code 1000) and waits for the server's close frame. */
  async close(): Promise<void> {
    const socket = this.#socket;
    if (!socket) {
      this.#emitClose();
      return;
    }
    if (socket.readyState !== CLOSED) socket.close(1000);
    // A server that never answers the close frame must not hold the caller.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#closed,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    this.#emitClose();
  }

  #emitClose(): void {
    if (this.#closedEmitted) return;
    this.#closedEmitted = true;
    this.onclose?.();
  }
}
