/**
 * mcpkit on a fetch runtime: the module's default export, `{ fetch }`, is the whole server (MCP at
 * /mcp, REST beside it), in the shape a Cloudflare Worker's entry module, `deno serve` and Bun take.
 *
 * Deployed, requests name the public host, and the default `http.allowedHosts` admits loopback names
 * only: without the list below every request gets 403 ("… is not in http.allowedHosts …"). Anyone
 * who can reach the deployment can call its tools: configure `auth` (docs/security.md) first.
 */
import { createMcpServer } from 'mcpkit';
import { registerDemoCatalog } from './demo-catalog.js';

const server = createMcpServer({
  name: 'mcpkit-on-a-fetch-runtime',
  version: '0.1.0',
  http: {
    // The host names clients reach this deployment by (no port, no scheme).
    allowedHosts: ['mcp.example.com'],
    // Browsers also send Origin: the hosts of web pages that may call the server. Default: loopback.
    allowedOrigins: ['app.example.com'],
    // No session outlives a request: isolates come and go between requests.
    stateless: true,
  },
});
registerDemoCatalog(server);

export default { fetch: (request: Request) => server.fetch(request) };
