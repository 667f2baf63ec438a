import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERROR_CODES, type McpKitErrorCode } from '../core/errors.js';
import { answersJsonRpc } from '../http/handler.js';
import { problemType } from '../http/problem.js';
import type { McpKitServer } from '../server.js';
import { nodeListener } from './bridge.js';
import { RequestPacer } from './pacer.js';
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
   * Connections the kernel may hold completed but not yet accepted (the `listen()` backlog; the
   * system's `somaxconn` caps it). Past it, a new connection waits for its SYN to be retried, 1 s
   * and more, before the server can see it. Default 4096 (Node's own default is 511).
   */
  backlog?: number;
  /**
   * MCP over WebSocket on the same port (subprotocol `mcp`, at the MCP path): `true`, `false`, or
   * {@link AttachWebSocketOptions}. Default `true` when the optional `ws` package is installed;
   * asking for it explicitly without `ws` fails.
   */
  websocket?: boolean | AttachWebSocketOptions;
  /**
   * How long a client may take to send a request's headers, in ms, before node:http answers 408 and
   * closes the connection (slow-header attacks). `0` disables. Default 30 000.
   */
  headersTimeoutMs?: number;
  /**
   * How long a client may take to send a whole request, headers and body, in ms, before node:http
   * answers 408 and closes the connection. A backstop behind `http.bodyTimeoutMs`, which answers
   * first with mcpkit's own error body. `0` disables. Default: `http.bodyTimeoutMs` + 30 000.
   */
  requestTimeoutMs?: number;
}

/** A running listener. */
export interface Listening {
  /**
   * Base URL, for example `http://127.0.0.1:3000`; the MCP endpoint is `${url}/mcp`. Bound to every
   * interface (`0.0.0.0`, `::`), it names the loopback address; `host` is the address bound.
   */
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
  const backlog = options.backlog ?? 4096;
  if (!Number.isInteger(backlog) || backlog < 1 || backlog > 65535) {
    throw new TypeError(
      `backlog must be an integer from 1 to 65535 (got ${JSON.stringify(options.backlog)})`,
    );
  }
  const grace = options.closeGraceMs ?? 5_000;
  const headersTimeout = timeoutOption('headersTimeoutMs', options.headersTimeoutMs, 30_000);
  const requestTimeout = timeoutOption(
    'requestTimeoutMs',
    options.requestTimeoutMs,
    server.httpOptions.bodyTimeoutMs + 30_000,
  );
  const serve = nodeListener(
    (request, { address, queuedMs }) =>
      server.fetch(request, {
        ...(address !== undefined && { clientAddress: address }),
        ...(queuedMs !== undefined && { queuedMs }),
      }),
    { trustProxy: server.httpOptions.trustProxy },
    true,
  );
  // Requests are served in bounded turns of the event loop, so accepting connections keeps up under
  // load (see pacer.ts); a request whose client left while it waited is not started.
  const pacer = new RequestPacer<[IncomingMessage, ServerResponse]>(([req, res], waited) => {
    if (res.destroyed) return;
    serve(req, res, waited);
  });
  // The request target each connection last sent: bytes node:http cannot parse after it belong to
  // that exchange, and its route decides the form of the answer (see answerClientError).
  const targets = new WeakMap<Duplex, string | undefined>();
  const httpServer = createServer(
    {
      // node:http refuses a headers timeout longer than the request timeout (unless that is off)
      headersTimeout: requestTimeout === 0 ? headersTimeout : Math.min(headersTimeout, requestTimeout),
      requestTimeout,
      // how often those two are checked (node:http's default is every 30 s)
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      targets.set(req.socket, req.url);
      pacer.push([req, res]);
    },
  );
  httpServer.on('connection', () => pacer.accepted());
  httpServer.on('clientError', (error: ClientError, socket: Duplex) =>
    answerClientError(error, { socket, sent: targets.get(socket), paths: server.httpOptions }),
  );
  const sockets = trackResponses(httpServer);
  const wsOption = options.websocket ?? (await loadWs()) !== undefined;
  const websocket = wsOption
    ? await attachWebSocket(httpServer, server, wsOption === true ? {} : wsOption)
    : undefined;
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen({ port, host, backlog }, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  // Bound to every interface: the URL names the loopback address, which this machine's clients can
  // reach and the default `http.allowedHosts` admits (`http://0.0.0.0:3000` is refused with 403).
  const reachable =
    address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  const urlHost = address.family === 'IPv6' ? `[${reachable}]` : reachable;
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
        // node:http's own idle check misses a connection that never sent a request and one whose
        // streamed response was cut short; either would hold close() until the client dropped it.
        sockets.closeIdle();
        const timer = setTimeout(() => httpServer.closeAllConnections(), grace);
        timer.unref();
        await stopped;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}

/**
 * Counts the responses in flight on each connection of `httpServer`, so that closing can end every
 * connection carrying none at once, and each remaining one as soon as its last response is done.
 */
function trackResponses(httpServer: HttpServer): { closeIdle(): void } {
  const inFlight = new Map<Socket, number>();
  let closing = false;
  httpServer.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      inFlight.set(socket, left);
      if (closing && left === 0) socket.destroy();
    });
  });
  return {
    closeIdle() {
      closing = true;
      for (const [socket, count] of inFlight) if (count === 0) socket.destroy();
    },
  };
}

function timeoutOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative integer of ms (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Statuses for what node:http refuses before a request exists (malformed HTTP, slow headers). */
const CLIENT_ERROR_STATUS: Record<string, [number, string, McpKitErrorCode]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'INVALID_REQUEST'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'REQUEST_TIMEOUT'],
};

/** node:http's `clientError`: with the bytes it could not parse, when there were some. */
type ClientError = NodeJS.ErrnoException & { rawPacket?: Buffer };

/** The request target of the request line at the start of `packet`, if it has one. */
function requestTarget(packet: Buffer | undefined): string | undefined {
  if (!Buffer.isBuffer(packet)) return undefined;
  return /^[A-Z]{1,20} (\/\S*) HTTP\/1\.[01]\r?\n/.exec(packet.toString('latin1', 0, 8192))?.[1];
}

/** The path of an origin-form request target, as the URL the bridge builds has it. */
function pathOf(target: string | undefined): string | undefined {
  if (target === undefined || !target.startsWith('/')) return undefined;
  try {
    // appended to an origin, as the bridge builds URLs: `//x` stays a path
    return new URL(`http://localhost${target}`).pathname;
  } catch {
    return undefined;
  }
}

/**
 * node:http's `clientError`, answered as every other mcpkit error is (JSON, no details) instead of
 * node's bare status line, then the connection is closed. The answer takes the form of the route the
 * exchange names (a JSON-RPC error on the MCP endpoint, a problem elsewhere): the request the
 * connection already sent, whose answer is still to come (what cannot be parsed follows it), else the
 * request line that failed; a problem when there is neither (headers that never finished). Nothing
 * is written once a response has started on the connection (a pipelined request after a good one).
 */
function answerClientError(
  error: ClientError,
  {
    socket,
    sent,
    paths,
  }: { socket: Duplex; sent: string | undefined; paths: { basePath: string; mcpPath: string } },
): void {
  const [status, reason, code] = CLIENT_ERROR_STATUS[error.code ?? ''] ?? [
    400,
    'Bad Request',
    'INVALID_REQUEST',
  ];
  if (error.code === 'ECONNRESET' || !socket.writable || (socket as Socket).bytesWritten > 0) {
    socket.destroy();
    return;
  }
  const path = pathOf(sent ?? requestTarget(error.rawPacket));
  const requestId = globalThis.crypto.randomUUID();
  const rpc = path !== undefined && answersJsonRpc(path, paths);
  const type = rpc ? 'application/json' : 'application/problem+json';
  const body = JSON.stringify(
    rpc
      ? { jsonrpc: '2.0', error: { code: -32600, message: reason }, id: null }
      : { type: problemType(code), title: ERROR_CODES[code].title, status, detail: reason, code, requestId },
  );
  // destroyed once the answer is handed to the kernel, not before (that could cut it)
  socket.once('finish', () => socket.destroy());
  setTimeout(() => socket.destroy(), 1_000).unref();
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: ${type}\r\n` +
      `X-Request-Id: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
