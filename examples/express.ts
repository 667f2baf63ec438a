/**
 * mcpkit inside an Express 5 app: the app keeps its own routes and middleware; mcpkit serves MCP at
 * /api/mcp and REST at /api/tools, /api/resources, /api/prompts, /api/openapi.json, …
 *
 *   npx tsx examples/express.ts        (PORT and HOST honoured)
 *   curl -s localhost:3000/api/tools/calculate/execute -H 'content-type: application/json' \
 *        -d '{"arguments":{"expression":"6*7"}}'
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createMcpServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({ name: 'express-host', version: '0.1.0' });
registerDemoCatalog(server);

const app = express();
app.use(express.json()); // the host's own parser: mcpkit works with or without it
app.get('/', (_req, res) => {
  res.json({ app: 'my express app', mcp: '/api/mcp', rest: '/api/openapi.json' });
});
app.use('/api', mcpkitExpress(server));

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const httpServer = app.listen(port, host, () => {
  const { port: bound } = httpServer.address() as AddressInfo;
  console.log(`express app on http://${host}:${bound}/ — MCP at /api/mcp, REST under /api`);
});
process.once('SIGINT', () => {
  void server.close().then(() => httpServer.close(() => process.exit(0)));
});
