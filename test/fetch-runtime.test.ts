/**
 * mcpkit as a fetch runtime deploys it: requests arrive with the public host in their URL (Workers,
 * Deno Deploy). The loopback-only default refuses them, with a 403 that names the option to set;
 * examples/fetch-runtime.ts, which the README shows, sets it and serves a real MCP client.
 */
import { readFileSync } from 'node:fs';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpServer } from 'mcpkit';
import { jsonRpcPost } from 'mcpkit/testing';
import { afterAll, describe, expect, it } from 'vitest';
import deployed from '../examples/fetch-runtime.js';

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

describe('the loopback-only default on a fetch runtime', () => {
  const server = createMcpServer({ name: 'edge', logLevel: 'silent' });
  afterAll(() => server.close());

  it('refuses a public host with a 403 that names http.allowedHosts, on REST and on /mcp', async () => {
    const rest = await server.fetch(new Request('https://mcp.example.com/tools'));
    expect(rest.status).toBe(403);
    expect(rest.headers.get('content-type')).toBe('application/problem+json');
    const problem = await rest.json();
    expect(problem).toMatchObject({ code: 'FORBIDDEN', status: 403 });
    expect(problem.detail).toMatch(/^Invalid Host: mcp\.example\.com is not in http\.allowedHosts, /);

    const mcp = await server.fetch(new Request('https://mcp.example.com/mcp', jsonRpcPost(INIT)));
    expect(mcp.status).toBe(403);
    const answer = await mcp.json();
    expect(answer.error.code).toBe(-32003);
    expect(answer.error.message).toMatch(/is not in http\.allowedHosts/);
    // It names the option, never what the allow-list holds.
    for (const text of [problem.detail, answer.error.message]) {
      expect(text).not.toMatch(/localhost|127\.0\.0\.1|::1/);
    }
  });

  it('refuses a foreign Origin naming http.allowedOrigins', async () => {
    const res = await server.fetch(
      new Request('http://localhost/tools', { headers: { origin: 'https://app.example.com' } }),
    );
    expect(res.status).toBe(403);
    const { detail } = await res.json();
    expect(detail).toMatch(/^Invalid Origin: app\.example\.com is not in http\.allowedOrigins, /);
    expect(detail).not.toMatch(/localhost|127\.0\.0\.1|::1/);
  });
});

describe('examples/fetch-runtime.ts', () => {
  it('serves its public host: REST, and a real MCP client through the exported fetch', async () => {
    const health = await deployed.fetch(new Request('https://mcp.example.com/health'));
    expect(health.status).toBe(200);
    const client = new Client({ name: 'edge-client', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('https://mcp.example.com/mcp'), {
        fetch: (input, init) => deployed.fetch(new Request(input, init)),
      }),
    );
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('calculate');
    const result = await client.callTool({ name: 'calculate', arguments: { expression: '6 * 7' } });
    expect(result.structuredContent).toEqual({ expression: '6 * 7', value: 42 });
    await client.close();
  });

  it('admits the web page it lists, and still refuses every other host and origin', async () => {
    const page = await deployed.fetch(
      new Request('https://mcp.example.com/tools', { headers: { origin: 'https://app.example.com' } }),
    );
    expect(page.status).toBe(200);
    const other = await deployed.fetch(new Request('https://other.example.net/tools'));
    expect(other.status).toBe(403);
    expect((await other.json()).detail).not.toContain('mcp.example.com');
    const foreignPage = await deployed.fetch(
      new Request('https://mcp.example.com/tools', { headers: { origin: 'https://evil.example' } }),
    );
    expect(foreignPage.status).toBe(403);
  });

  it('is what the README shows for a fetch runtime: allowedHosts set, stateless', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('On any fetch runtime'));
    const snippet = section.slice(
      section.indexOf('```ts'),
      section.indexOf('```', section.indexOf('```ts') + 5),
    );
    expect(snippet).toMatch(/allowedHosts: \['mcp\.example\.com'\]/);
    expect(snippet).toMatch(/stateless: true/);
    expect(snippet).toContain('export default { fetch: (request: Request) => server.fetch(request) }');
    expect(section.slice(0, 1500)).toContain('examples/fetch-runtime.ts');
  });
});
