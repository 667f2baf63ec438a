/**
 * The two servers under test, built from the same tool specs: mcpkit (`createMcpServer`) and a bare
 * SDK v2 `McpServer` (`registerTool`), each reachable by an SDK v2 `Client` in memory or over
 * Streamable HTTP on loopback.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  type CallToolResult,
  InMemoryTransport,
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  LATEST_PROTOCOL_VERSION,
  McpServer,
  type Transport,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { listen, toNodeListener } from 'mcpkit/node';
import { z } from 'zod';

/** The implementations compared. */
export type Impl = 'mcpkit' | 'sdk';

/** A tool both implementations register: same zod input schema, same answer on the wire. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: z.ZodObject;
  /** The text the tool answers with. */
  run(args: Record<string, unknown>): string;
}

/** A connected client and the way to tear down both ends. */
export interface Target {
  readonly impl: Impl;
  readonly client: Client;
  close(): Promise<void>;
}

const CLIENT_INFO = { name: 'mcpkit-bench', version: '0.0.0' };
const SERVER_INFO = { name: 'bench', version: '0.0.0' };

/** The trivial tool of the round-trip benchmarks. */
export function echoTool(): ToolSpec {
  return {
    name: 'echo',
    description: 'Echo text back',
    inputSchema: z.object({ text: z.string() }),
    run: (args) => String(args.text),
  };
}

/**
 * `count` distinct tools with 2-3 field schemas, built fresh on every call so neither implementation
 * can share conversion work (or zod's internal caches) with the other.
 */
export function catalogTools(count: number): ToolSpec[] {
  return Array.from({ length: count }, (_, i): ToolSpec => {
    const shape =
      i % 2 === 0
        ? {
            query: z.string().min(1).describe('What to search for'),
            limit: z.number().int().min(1).max(100).optional().describe('Most results to return'),
            tags: z.array(z.string()).optional(),
          }
        : {
            id: z.string().describe('Record id'),
            mode: z.enum(['fast', 'thorough']).default('fast'),
          };
    return {
      name: `tool_${i}`,
      description: `Benchmark tool number ${i}`,
      inputSchema: z.object(shape),
      run: () => 'ok',
    };
  });
}

export function buildMcpkit(tools: readonly ToolSpec[]): McpKitServer {
  const server = createMcpServer({ ...SERVER_INFO, logLevel: 'silent' });
  server.tools.registerMany(
    tools.map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: t.inputSchema,
      // mcpkit's idiomatic return: a string becomes one text block.
      handler: (args: Record<string, unknown>) => t.run(args),
    })),
  );
  return server;
}

export function buildSdk(tools: readonly ToolSpec[]): McpServer {
  const server = new McpServer(SERVER_INFO);
  for (const t of tools) {
    server.registerTool(
      t.name,
      { description: t.description, inputSchema: t.inputSchema },
      (args): CallToolResult => ({ content: [{ type: 'text', text: t.run(args) }] }),
    );
  }
  return server;
}

/** Builds a server of `impl` with `tools` and serves it on `transport`; returns its teardown. */
async function serveInMemory(
  impl: Impl,
  tools: readonly ToolSpec[],
  transport: Transport,
): Promise<() => Promise<void>> {
  if (impl === 'mcpkit') {
    const server = buildMcpkit(tools);
    const connection = await server.connect(transport);
    return async () => {
      await connection.close();
      await server.close();
    };
  }
  const server = buildSdk(tools);
  await server.connect(transport);
  return () => server.close();
}

/**
 * The `fetch` the benchmarks' SDK HTTP clients use. The SDK's `StreamableHTTPClientTransport` hands
 * one long-lived `AbortSignal` to every request, and Node 20's fetch adds an abort listener to it per
 * request that only garbage collection removes: thousands pile up, and each new one costs more
 * (about 2.5 ms of CPU per call after a few thousand calls, for either server). POSTs therefore go
 * out without that signal (the benchmarks never abort one); the standalone GET stream keeps it, so
 * closing the client still ends it.
 */
export const benchFetch: typeof fetch = (input, init) =>
  init?.method === 'POST' && init.signal ? fetch(input, { ...init, signal: null }) : fetch(input, init);

/** An SDK client connected in memory to a fresh server of `impl` serving `tools`. */
export async function memoryTarget(impl: Impl, tools: readonly ToolSpec[]): Promise<Target> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const closeServer = await serveInMemory(impl, tools, serverSide);
  const client = new Client(CLIENT_INFO);
  await client.connect(clientSide);
  return {
    impl,
    client,
    async close() {
      await client.close().catch(() => {});
      await closeServer();
    },
  };
}

/**
 * An SDK client connected over Streamable HTTP (2025-era session) on loopback to a fresh server of
 * `impl`. mcpkit is served by `listen()`. The bare SDK is one sessionful
 * `WebStandardStreamableHTTPServerTransport` on node:http behind the same `toNodeListener` bridge
 * `listen()` uses, so only the request handling differs.
 */
export async function httpTarget(impl: Impl, tools: readonly ToolSpec[]): Promise<Target> {
  let url: string;
  let closeServer: () => Promise<void>;
  if (impl === 'mcpkit') {
    const listening = await listen(buildMcpkit(tools), { port: 0, closeGraceMs: 1_000 });
    url = `${listening.url}/mcp`;
    closeServer = () => listening.close();
  } else {
    const server = buildSdk(tools);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: randomUUID });
    await server.connect(transport);
    const httpServer = createServer(toNodeListener((request) => transport.handleRequest(request)));
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(0, '127.0.0.1', resolve);
    });
    const { port } = httpServer.address() as AddressInfo;
    url = `http://127.0.0.1:${port}/mcp`;
    closeServer = async () => {
      const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await server.close();
      httpServer.closeAllConnections();
      await stopped;
    };
  }
  const client = new Client(CLIENT_INFO);
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: benchFetch }));
  return {
    impl,
    client,
    async close() {
      await client.close().catch(() => {});
      await closeServer();
    },
  };
}

/** A bare JSON-RPC peer on the in-memory pair: no SDK `Client`, so no client-side result parsing. */
export interface RawTarget {
  readonly impl: Impl;
  /** Sends one request and resolves with its result, serialised as a wire transport would. */
  request(method: string, params?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/**
 * A raw JSON-RPC peer connected in memory to a fresh server of `impl`, after the 2025-era
 * `initialize` handshake. Timing its requests isolates the server's share of the work.
 */
export async function rawMemoryTarget(impl: Impl, tools: readonly ToolSpec[]): Promise<RawTarget> {
  const [peer, serverSide] = InMemoryTransport.createLinkedPair();
  const closeServer = await serveInMemory(impl, tools, serverSide);
  const pending = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  let nextId = 1;
  peer.onmessage = (message: JSONRPCMessage) => {
    if (!isJSONRPCResultResponse(message) && !isJSONRPCErrorResponse(message)) return;
    const waiter = pending.get(message.id as number);
    if (!waiter) return;
    pending.delete(message.id as number);
    if (isJSONRPCErrorResponse(message)) waiter.reject(new Error(message.error.message));
    // Serialising is part of what any real transport does with the answer.
    else waiter.resolve(JSON.stringify(message));
  };
  await peer.start();
  const request = (method: string, params?: Record<string, unknown>) =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      peer.send({ jsonrpc: '2.0', id, method, ...(params && { params }) }).catch(reject);
    });
  await request('initialize', {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: CLIENT_INFO,
  });
  await peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return {
    impl,
    request,
    async close() {
      await peer.close().catch(() => {});
      await closeServer();
    },
  };
}
