/** Consumer fixture (scripts/check-consumers.mjs): `mcpkit/unstable`, with no optional peer installed. */
import { createMcpServer } from 'mcpkit';
import { parseTraceparent, Tracing, UriTemplate } from 'mcpkit/unstable';

export const match = new UriTemplate('notes://{id}').match('notes://7');
export const parent = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
export const tracing = new Tracing(false);

const server = createMcpServer({ name: 'unstable', version: '1.0.0' });
export const onStart = server.executor.on('start', (event) => console.error(event.tool));
