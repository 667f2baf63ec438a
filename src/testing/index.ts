/**
 * Helpers for testing mcpkit servers, in users' suites as much as ours. `connectClient` needs the SDK
 * client, `@modelcontextprotocol/client`, an optional peer dependency loaded on first use: the other
 * helpers work without it.
 */
import { createRequire } from 'node:module';
import type { Client, ClientOptions } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import type { McpKitServer } from '../server.js';

export {
  createModelServer,
  type ModelServer,
  type ModelServerOptions,
  type ModelServerRequest,
  type ModelTurn,
} from './modelServer.js';

/** Options for {@link connectClient}. */
export interface ConnectClientOptions {
  /** Client name and version. Default `{ name: 'mcpkit-test', version: '0.0.0' }`. */
  clientInfo?: { name: string; version: string };
  /** Options passed to the SDK `Client` (capabilities, `versionNegotiation`, …). */
  clientOptions?: ClientOptions;
}

type ClientModule = typeof import('@modelcontextprotocol/client');

/** `true` in the CommonJS build, `false` in the ESM one (tsup.config.ts); undeclared in the source. */
declare const __MCPKIT_CJS__: boolean | undefined;

const CLIENT_PACKAGE = '@modelcontextprotocol/client';
let clientModule: Promise<ClientModule> | undefined;

/** The SDK client module, imported once; a clear error when it is not installed. */
function loadClient(): Promise<ClientModule> {
  // The CommonJS build requires it, so a CommonJS caller gets the same `Client` class as its own
  // `require` (an `import()` there would hand it the ESM one); the ESM build (and the source, in
  // tests) imports it. `__MCPKIT_CJS__` is defined by the build (tsup.config.ts).
  const load =
    typeof __MCPKIT_CJS__ !== 'undefined' && __MCPKIT_CJS__
      ? new Promise<ClientModule>((resolve) =>
          resolve(createRequire(__filename)(CLIENT_PACKAGE) as ClientModule),
        )
      : import('@modelcontextprotocol/client');
  clientModule ??= load.catch((error: unknown) => {
    clientModule = undefined;
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    const missing =
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      typeof message === 'string' &&
      message.includes(CLIENT_PACKAGE);
    if (!missing) throw error;
    throw new Error(
      `connectClient needs the MCP SDK client, "${CLIENT_PACKAGE}", an optional peer dependency of mcpkit: npm install --save-dev ${CLIENT_PACKAGE}`,
      { cause: error },
    );
  });
  return clientModule;
}

/** A connected client and the way to close both ends. */
export interface ConnectedClient {
  client: Client;
  close(): Promise<void>;
}

/**
 * Connects an SDK v2 `Client` to the server over an in-memory transport pair. Needs
 * `@modelcontextprotocol/client` installed (an optional peer dependency of mcpkit).
 *
 * @example
 * ```ts
 * import { connectClient } from 'mcpkit/testing';
 *
 * const { client, close } = await connectClient(server);
 * const { tools } = await client.listTools();
 * await close();
 * ```
 */
export async function connectClient(
  server: McpKitServer,
  options: ConnectClientOptions = {},
): Promise<ConnectedClient> {
  const { Client } = await loadClient();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const connection = await server.connect(serverSide, { origin: 'memory' });
  const client = new Client(
    options.clientInfo ?? { name: 'mcpkit-test', version: '0.0.0' },
    options.clientOptions,
  );
  await client.connect(clientSide);
  return {
    client,
    async close() {
      await client.close().catch(() => {});
      await connection.close();
    },
  };
}

/**
 * Sends one request through `server.fetch` in process, with a loopback Host header.
 *
 * @example
 * ```ts
 * const res = await request(server, '/mcp', { method: 'DELETE' });
 * expect(res.status).toBe(400);
 * ```
 */
export function request(server: McpKitServer, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('host')) headers.set('host', 'localhost');
  return server.fetch(new Request(new URL(path, 'http://localhost'), { ...init, headers }));
}

/** Builds the body and headers of a JSON-RPC POST to `/mcp`. */
export function jsonRpcPost(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  };
}

/**
 * Reads the JSON-RPC message of a `/mcp` response, whether it came as plain JSON or as an SSE
 * stream (the last `data:` line).
 *
 * @example
 * ```ts
 * const body = await readJsonRpc(await request(server, '/mcp', jsonRpcPost(message, headers)));
 * expect(body.result.tools).toHaveLength(3);
 * ```
 */
export async function readJsonRpc(response: Response): Promise<any> {
  const text = await response.text();
  if (!response.headers.get('content-type')?.includes('text/event-stream')) return JSON.parse(text);
  const data = text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice(6));
  const last = data.at(-1);
  if (last === undefined) throw new Error('The SSE response carried no message');
  return JSON.parse(last);
}
