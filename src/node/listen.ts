import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpKitServer } from '../server.js';
import { toNodeListener } from './bridge.js';
import {
  type AttachWebSocketOptions,
  attachWebSocket,
  loadWs,
  type WebSocketAttachment,
} from './websocket.js';

/** Options for {@link listen}. */
export interface ListenOptions {
  /** TCP port; `0` picks a free one. Default 3000. */
  port?: number;
  /** Interface to bind. Default `127.0.0.1` (loopback only). */
  host?: string;
  /** How long `close()` waits for open requests before cutting them, in ms. Default 5 000. */
  closeGraceMs?: number;
  /**
   * MCP over WebSocket on the same port (subprotocol `mcp`, at the MCP path): `true`, `false`, or
   * {@link AttachWebSocketOptions}. Default `true` when the optional `ws` package is installed;
   * asking for it explicitly without `ws` fails.
   */
  websocket?: boolean | AttachWebSocketOptions;
}

/** A running listener. */
export interface Listening {
  /** Base URL, for example `http://127.0.0.1:3000`; the MCP endpoint is `${url}/mcp`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The node:http server, for attaching more handlers (WebSocket upgrades, say). */
  readonly httpServer: HttpServer;
  /** The WebSocket door (`ws://…/mcp`), unless turned off or `ws` is not installed. */
  readonly websocket: WebSocketAttachment | undefined;
  /** Ends MCP sessions and open streams, stops accepting, and waits for requests to finish. */
  close(): Promise<void>;
}

/**
 * Serves an mcpkit server over HTTP on node:http.
 *
 * @example
 * ```ts
 * import { createMcpServer } from 'mcpkit';
 * import { listen } from 'mcpkit/node';
 *
 * const server = createMcpServer({ name: 'demo' });
 * const { url, close } = await listen(server, { port: 0 });
 * console.error(`listening on ${url}/mcp`);
 * process.on('SIGTERM', () => void close());
 * ```
 */
export async function listen(server: McpKitServer, options: ListenOptions = {}): Promise<Listening> {
  const port = options.port ?? 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`port must be an integer from 0 to 65535 (got ${JSON.stringify(options.port)})`);
  }
  const host = options.host ?? '127.0.0.1';
  const grace = options.closeGraceMs ?? 5_000;
  const httpServer = createServer(toNodeListener((request) => server.fetch(request)));
  const wsOption = options.websocket ?? (await loadWs()) !== undefined;
  const websocket = wsOption
    ? await attachWebSocket(httpServer, server, wsOption === true ? {} : wsOption)
    : undefined;
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    httpServer,
    websocket,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        await Promise.all([websocket?.close(), server.close()]);
        httpServer.closeIdleConnections();
        const timer = setTimeout(() => httpServer.closeAllConnections(), grace);
        timer.unref();
        await stopped;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
