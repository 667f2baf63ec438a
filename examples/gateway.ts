/**
 * mcpkit as an embeddable gateway: its own tools plus two upstream MCP servers in one catalog, behind
 * one policy, to any MCP client (at /mcp) and over REST (/tools, /integrations).
 *
 * - `demo`: the demo server (examples/stdio.ts), started as a program over stdio. Programs are
 *   attached in code only; no request can start one.
 * - `remote`: an MCP server over Streamable HTTP, added as a stored integration (it could equally be
 *   added with `POST /integrations`), its bearer token a sealed secret. Set UPSTREAM_URL (and
 *   UPSTREAM_TOKEN) to use yours; by default a second mcpkit is started in-process for it.
 *
 *   npx tsx examples/gateway.ts
 *   curl -s localhost:3000/tools | jq '.items[].name'   # local, demo__*, remote__*
 *   curl -s localhost:3000/integrations/remote | jq .upstreamState
 *
 * PORT and HOST change where it listens (default 127.0.0.1:3000).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMcpServer } from 'mcpkit';
import { listen, stdioUpstream } from 'mcpkit/node';

const here = path.dirname(fileURLToPath(import.meta.url));

// The HTTP upstream: yours, or a small mcpkit on a free port of this machine.
let upstreamUrl = process.env.UPSTREAM_URL;
const upstreamToken = process.env.UPSTREAM_TOKEN ?? 'example-upstream-token-0000';
if (!upstreamUrl) {
  const remote = createMcpServer({
    name: 'remote-upstream',
    auth: { apiKeys: [{ id: 'gateway', roles: ['user'], key: upstreamToken }] },
  });
  remote.tools.register({
    name: 'shout',
    description: 'Upper-cases a text',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    handler: (args) => String((args as { text: string }).text).toUpperCase(),
  });
  const remoteListening = await listen(remote, { port: 0 });
  upstreamUrl = `${remoteListening.url}/mcp`;
}
const upstreamHost = new URL(upstreamUrl).hostname;

const server = createMcpServer({
  name: 'gateway-demo',
  // Upstream URLs go through the outbound policy like every outbound request.
  outbound: {
    allowedHosts: [upstreamHost],
    allowPrivateNetworks: upstreamHost === '127.0.0.1' || upstreamHost === 'localhost',
  },
  integrations: {
    upstreams: {
      demo: {
        name: 'Demo (stdio)',
        ...stdioUpstream({
          command: process.execPath,
          args: ['--import', 'tsx', path.join(here, 'stdio.ts')],
        }),
      },
    },
  },
});
server.tools.register({ name: 'local', description: 'A tool of the gateway itself', handler: () => 'local' });
await server.integrations.ready;

if (!server.integrations.get('remote')) {
  await server.integrations.create({
    id: 'remote',
    name: 'Remote (HTTP)',
    upstream: { url: upstreamUrl, headers: { Authorization: 'Bearer {{secrets.TOKEN}}' } },
    secrets: { TOKEN: upstreamToken },
  });
}

const listening = await listen(server, {
  port: Number(process.env.PORT ?? 3000),
  ...(process.env.HOST && { host: process.env.HOST }),
});
console.error(`gateway listening on ${listening.url}/mcp`);
for (const id of ['demo', 'remote']) {
  const state = server.integrations.get(id)?.upstreamState;
  console.error(`upstream ${id}: ${state?.status ?? 'starting'} (${state?.target ?? ''})`);
}
