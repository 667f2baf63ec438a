/**
 * Consumer fixture (scripts/check-consumers.mjs): the root entry and `mcpkit/node` as an app uses
 * them, with no optional peer installed. Written without top-level await so that one text compiles
 * as ESM and as CommonJS.
 */
import { createServer } from 'node:http';
import * as otel from '@opentelemetry/api';
import { createMcpServer, defineTool, McpKitError, type McpKitServer } from 'mcpkit';
import {
  attachWebSocket,
  createIsolation,
  type IsolatedHandler,
  isolatedTool,
  listen,
  type ServerWebSocket,
  serveStdio,
  toNodeListener,
  WebSocketClientTransport,
  WebSocketServerTransport,
} from 'mcpkit/node';
import { z } from 'zod';

// The README's first example.
export async function weather(): Promise<McpKitServer> {
  const server = createMcpServer({ name: 'weather', version: '1.0.0' });

  server.tools.register({
    name: 'forecast',
    description: 'Forecast for a city',
    inputSchema: { city: z.string(), days: z.number().int().min(1).max(7).default(3) },
    handler: async ({ city, days }, ctx) => {
      await ctx.progress(1, 2, 'fetching');
      const res = await fetch(`https://api.example.com/forecast?q=${city}&days=${days}`, {
        signal: ctx.signal,
      });
      return await res.json();
    },
  });

  const { url } = await listen(server, { port: 3000 });
  console.error(`MCP endpoint: ${url}/mcp`);
  return server;
}

// The tracing option takes the OpenTelemetry API module and a tracer of it.
export const traced = createMcpServer({ tracing: { tracer: otel.trace.getTracer('app'), api: otel } });

export const add = defineTool({
  name: 'add',
  inputSchema: { a: z.number(), b: z.number() },
  handler: ({ a, b }) => ({ sum: a + b }),
});

export async function doors(server: McpKitServer): Promise<void> {
  server.tools.register(add);
  // The public classes are typed emitters (on/off/once/emit).
  const onSuccess = (event: { tool: string }) => console.error(event.tool);
  server.executor.on('success', onSuccess);
  server.executor.once('error', () => {});
  server.executor.off('success', onSuccess);
  server.integrations.on('loaded', ({ count }) => console.error(count));
  server.tasks?.on('expired', (taskId, reason) => console.error(taskId, reason));
  const http = createServer(
    toNodeListener((request, { address }) => server.fetch(request, { clientAddress: address })),
  );
  const ws = await attachWebSocket(http, server);
  await ws.close();
  await serveStdio(server);
  const response = await server.fetch(new Request('http://localhost/health'));
  if (!response.ok) throw new McpKitError('INTERNAL', 'unhealthy');
}

/** The server side of a socket from any WebSocket library shaped like `ws`. */
export function serveSocket(server: McpKitServer, socket: ServerWebSocket) {
  return server.connect(new WebSocketServerTransport(socket), { origin: 'websocket' });
}

export const client = new WebSocketClientTransport('ws://127.0.0.1:3000/mcp');

// An isolated tool: its handler typed from the schema the server registers.
const primesInput = { below: z.number().int().min(2) };
export const primes: IsolatedHandler<typeof primesInput> = ({ below }, ctx) => {
  void ctx.progress(1, 2);
  return { below, count: below > 2 ? 1 : 0 };
};

export async function isolated(server: McpKitServer): Promise<void> {
  const isolation = createIsolation({ maxWorkers: 1, metrics: server.metrics });
  server.tools.register(
    isolation.tool('/srv/app/tools/primes.js', {
      name: 'primes',
      inputSchema: primesInput,
      isolate: { level: 'process', timeoutMs: 1_000, permissions: { fsRead: ['/srv/app/data'] } },
    }),
  );
  server.tools.register(isolatedTool('/srv/app/tools/echo.js', { name: 'echo' }));
  console.error(isolation.stats().faults.memory);
  await isolation.close();
}
