/**
 * MCP over WebSocket: serves the demo catalog on ws://HOST:PORT/mcp (beside Streamable HTTP on the
 * same port), connects an SDK v2 Client over WebSocket, lists and calls tools, watches a resource,
 * then exits.
 *
 *   npx tsx examples/websocket.ts
 *   PORT=4000 HOST=127.0.0.1 npx tsx examples/websocket.ts
 */
import { Client } from '@modelcontextprotocol/client';
import { createMcpServer } from 'mcpkit';
import { listen, WebSocketClientTransport } from 'mcpkit/node';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({ name: 'mcpkit-websocket', version: '0.1.0', logLevel: 'warn' });
registerDemoCatalog(server);
server.resources.register({
  uri: 'demo://clock',
  name: 'clock',
  mimeType: 'text/plain',
  read: () => new Date().toISOString(),
});

// listen() accepts WebSocket upgrades on /mcp by default (when the optional `ws` package is
// installed); the options below are the WebSocket door's limits, shown with their defaults.
const listening = await listen(server, {
  port: Number(process.env.PORT ?? 0),
  host: process.env.HOST ?? '127.0.0.1',
  websocket: { heartbeatMs: 30_000, maxInFlight: 100, maxBufferedBytes: 8 * 1024 * 1024 },
});
const wsUrl = `${listening.url.replace(/^http/, 'ws')}/mcp`;
console.log(`serving MCP on ${wsUrl} (WebSocket, subprotocol "mcp") and ${listening.url}/mcp (HTTP)`);

const client = new Client({ name: 'websocket-example', version: '0.1.0' });
await client.connect(new WebSocketClientTransport(wsUrl));

const { tools } = await client.listTools();
console.log(`tools: ${tools.map((t) => t.name).join(', ')}`);

const result = await client.callTool({ name: 'calculate', arguments: { expression: '6 * 7' } });
console.log('calculate 6 * 7 →', JSON.stringify(result.structuredContent));

const updated = new Promise<string>((resolve) =>
  client.setNotificationHandler('notifications/resources/updated', (n) => resolve(n.params.uri)),
);
await client.subscribeResource({ uri: 'demo://clock' });
server.resources.notifyUpdated('demo://clock');
console.log('resource updated:', await updated);

await client.close();
await listening.close();
console.log('done');
