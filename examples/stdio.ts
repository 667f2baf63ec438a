/**
 * The demo server over stdio, for desktop clients (Claude Desktop, Cursor, …) that start it as a
 * child process. Only MCP messages go to stdout; logs go to stderr.
 *
 *   npx tsx examples/stdio.ts
 */
import { createMcpServer } from 'mcpkit';
import { serveStdio } from 'mcpkit/node';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({ name: 'mcpkit-stdio', version: '0.1.0' });
registerDemoCatalog(server);
await serveStdio(server);
