/**
 * mcpkit as a Hono 4 sub-app under /api, served by @hono/node-server (the same app runs on Bun,
 * Deno and edge runtimes with their own `serve`).
 *
 *   npx tsx examples/hono.ts           (PORT and HOST honoured)
 *   curl -s localhost:3000/api/tools | head -c 300
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createMcpServer } from 'mcpkit';
import { mcpkitHono } from 'mcpkit/hono';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({ name: 'hono-host', version: '0.1.0' });
registerDemoCatalog(server);

const app = new Hono();
app.get('/', (c) => c.json({ app: 'my hono app', mcp: '/api/mcp', rest: '/api/openapi.json' }));
app.route('/api', mcpkitHono(server));

const port = Number(process.env.PORT ?? 3000);
const hostname = process.env.HOST ?? '127.0.0.1';
const httpServer = serve({ fetch: app.fetch, port, hostname }, (info) => {
  console.log(`hono app on http://${hostname}:${info.port}/ — MCP at /api/mcp, REST under /api`);
});
process.once('SIGINT', () => {
  void server.close().then(() => httpServer.close(() => process.exit(0)));
});
