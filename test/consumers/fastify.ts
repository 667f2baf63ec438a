/** Consumer fixture (scripts/check-consumers.mjs): `mcpkit/fastify`, with only `fastify` installed. */
import Fastify from 'fastify';
import { createMcpServer } from 'mcpkit';
import { mcpkitFastify } from 'mcpkit/fastify';

const server = createMcpServer({ name: 'fastify-app', version: '1.0.0' });

export async function start(): Promise<string> {
  const app = Fastify();
  await app.register(mcpkitFastify, { server, prefix: '/api' });
  return app.listen({ port: 0 });
}
