/**
 * Quickstart: an MCP server with demo tools, resources and prompts on http://127.0.0.1:3000/mcp
 * (Streamable HTTP) and ws://127.0.0.1:3000/mcp (WebSocket) on the same port.
 *
 *   npm start            (or: npx tsx examples/quickstart.ts)
 *   PORT=4000 HOST=127.0.0.1 npm start
 *   HOST=0.0.0.0 ALLOWED_HOSTS=devbox.local npm start   (reachable from other machines as devbox.local)
 */
import { localhostAllowedHostnames } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({
  name: 'mcpkit-quickstart',
  version: '0.1.0',
  instructions: 'Demo server: a calculator, a unit converter, text statistics and a countdown with progress.',
  // Only loopback names are admitted in `Host` by default (DNS rebinding); other machines reach the
  // server by the names listed here.
  ...(process.env.ALLOWED_HOSTS && {
    http: { allowedHosts: [...localhostAllowedHostnames(), ...process.env.ALLOWED_HOSTS.split(',')] },
  }),
});
registerDemoCatalog(server);

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const listening = await listen(server, { port, host });

const mcpUrl = `${listening.url}/mcp`;
// A whole 2025-era exchange with curl: initialize answers with the session id, which every later
// request carries with the negotiated version, and notifications/initialized ends the handshake.
const PROTOCOL_VERSION = '2025-11-25';
const json = (message: object) => `'${JSON.stringify(message)}'`;
const headers = "-H 'content-type: application/json' -H 'accept: application/json, text/event-stream'";
const curlExchange = [
  `URL=${mcpUrl}`,
  `INIT=$(curl -si "$URL" ${headers} \\`,
  `  -d ${json({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'curl', version: '1' } } })})`,
  `printf '%s\\n' "$INIT" | tail -n 1`,
  `SID=$(printf '%s\\n' "$INIT" | grep -i '^mcp-session-id:' | cut -d' ' -f2 | tr -d '\\r')`,
  `mcp() { curl -s "$URL" ${headers} -H 'mcp-protocol-version: ${PROTOCOL_VERSION}' -H "mcp-session-id: $SID" -d "$1"; echo; }`,
  `mcp ${json({ jsonrpc: '2.0', method: 'notifications/initialized' })}`,
  `mcp ${json({ jsonrpc: '2.0', id: 2, method: 'tools/list' })}`,
  `mcp ${json({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'calculate', arguments: { expression: '2 * (3 + 4)' } } })}`,
];

console.log(`mcpkit quickstart listening on ${mcpUrl}

Connect a client:
  MCP Inspector:  npx @modelcontextprotocol/inspector   (transport "Streamable HTTP", URL ${mcpUrl})
  Claude Code:    claude mcp add --transport http mcpkit ${mcpUrl}
  WebSocket:      ${listening.websocket ? `${mcpUrl.replace(/^http/, 'ws')} (subprotocol "mcp"; WebSocketClientTransport from mcpkit/node)` : 'off (install the optional "ws" package)'}
  REST:           curl -s ${listening.url}/tools   (index: ${listening.url}/, OpenAPI 3.1: ${listening.url}/openapi.json)

curl, a whole MCP exchange (paste into a shell: initialize, then the session id on every request):
${curlExchange.map((line) => `    ${line}`).join('\n')}

${
  ['127.0.0.1', 'localhost', '::1'].includes(host) || process.env.ALLOWED_HOSTS
    ? ''
    : `Bound to ${host}: other machines are refused (403) until the name they use is listed, e.g.
  HOST=${host} ALLOWED_HOSTS=my-machine.local npm start

`
}Tools: ${server.tools
  .list()
  .map((t) => t.name)
  .join(', ')}
Press Ctrl+C to stop.`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void listening.close().then(() => process.exit(0));
  });
}
