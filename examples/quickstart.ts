/**
 * Quickstart: an MCP server with demo tools, resources and prompts on http://127.0.0.1:3000/mcp
 * (Streamable HTTP) and ws://127.0.0.1:3000/mcp (WebSocket) on the same port.
 *
 *   npm start            (or: npx tsx examples/quickstart.ts)
 *   PORT=4000 HOST=127.0.0.1 npm start
 */
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({
  name: 'mcpkit-quickstart',
  version: '0.1.0',
  instructions: 'Demo server: a calculator, a unit converter, text statistics and a countdown with progress.',
});
registerDemoCatalog(server);

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const listening = await listen(server, { port, host });

console.log(`mcpkit quickstart listening on ${listening.url}/mcp

Connect a client:
  MCP Inspector:  npx @modelcontextprotocol/inspector   (transport "Streamable HTTP", URL ${listening.url}/mcp)
  Claude Code:    claude mcp add --transport http mcpkit ${listening.url}/mcp
  WebSocket:      ${listening.websocket ? `${listening.url.replace(/^http/, 'ws')}/mcp (subprotocol "mcp"; WebSocketClientTransport from mcpkit/node)` : 'off (install the optional "ws" package)'}
  curl:           curl -s ${listening.url}/mcp -H 'content-type: application/json' \\
                    -H 'accept: application/json, text/event-stream' \\
                    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

Tools: ${server.tools
  .list()
  .map((t) => t.name)
  .join(', ')}
Press Ctrl+C to stop.`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void listening.close().then(() => process.exit(0));
  });
}
