/**
 * Consumer fixture (scripts/check-consumers.mjs): `mcpkit/node`'s WebSocket transport over sockets
 * of the `ws` package, with only `ws` and `@types/ws` installed.
 */
import { createMcpServer } from 'mcpkit';
import { WebSocketServerTransport } from 'mcpkit/node';
import { WebSocketServer } from 'ws';

const server = createMcpServer({ name: 'ws-app', version: '1.0.0' });

export const wss = new WebSocketServer({
  port: 0,
  handleProtocols: (protocols) => (protocols.has('mcp') ? 'mcp' : false),
});
wss.on('connection', (socket) => {
  void server.connect(new WebSocketServerTransport(socket, { heartbeatMs: 15_000 }), {
    origin: 'websocket',
  });
});
