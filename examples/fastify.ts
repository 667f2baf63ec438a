/**
 * mcpkit as a Fastify 5 plugin under /api, beside the app's own routes and content-type parsers.
 *
 *   npx tsx examples/fastify.ts        (PORT and HOST honoured)
 *   curl -s localhost:3000/api/openapi.json | head -c 300
 */
import Fastify from 'fastify';
import { createMcpServer } from 'mcpkit';
import { mcpkitFastify } from 'mcpkit/fastify';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({ name: 'fastify-host', version: '0.1.0' });
registerDemoCatalog(server);

const app = Fastify();
app.get('/', async () => ({ app: 'my fastify app', mcp: '/api/mcp', rest: '/api/openapi.json' }));
await app.register(mcpkitFastify, { server, prefix: '/api' });

const address = await app.listen({
  port: Number(process.env.PORT ?? 3000),
  host: process.env.HOST ?? '127.0.0.1',
});
console.log(`fastify app on ${address}/ — MCP at /api/mcp, REST under /api`);
process.once('SIGINT', () => {
  void server.close().then(() => app.close().then(() => process.exit(0)));
});
