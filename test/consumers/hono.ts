/** Consumer fixture (scripts/check-consumers.mjs): `mcpkit/hono`, with only `hono` installed. */
import { Hono } from 'hono';
import { createMcpServer } from 'mcpkit';
import { mcpkitHono } from 'mcpkit/hono';

const server = createMcpServer({ name: 'hono-app', version: '1.0.0' });

export const app = new Hono();
app.route('/api', mcpkitHono(server));
export const answer: Promise<Response> = Promise.resolve(app.request('/api/health'));
