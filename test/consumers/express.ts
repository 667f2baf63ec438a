/** Consumer fixture (scripts/check-consumers.mjs): `mcpkit/express`, with only `express` installed. */
import express from 'express';
import { createMcpServer } from 'mcpkit';
import { type McpkitExpressOptions, mcpkitExpress } from 'mcpkit/express';

const server = createMcpServer({ name: 'express-app', version: '1.0.0' });
const options: McpkitExpressOptions = { fetchOptions: () => undefined };

export const app = express();
app.use(express.json());
app.use('/api', mcpkitExpress(server, options));
