/**
 * Declarative HTTP tools and SSRF: a tool registered over REST reaches only allow-listed hosts, never
 * a private address unless told to, and every redirect hop is checked like the first request.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpServer, type DeclarativeToolOptions } from 'mcpkit';
import { jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { isPrivateAddress } from 'mcpkit/unstable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let target: Server;
let port = 0;
const hits: string[] = [];

beforeAll(async () => {
  target = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url?.startsWith('/redirect-metadata')) {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end();
      return;
    }
    if (req.url?.startsWith('/redirect-local')) {
      res.writeHead(302, { location: `http://127.0.0.1:${port}/weather?city=Redirected` }).end();
      return;
    }
    if (req.url?.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(4096));
      return;
    }
    const city = new URL(req.url ?? '/', 'http://x').searchParams.get('city');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ city, temperature: 21 }));
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  port = (target.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => target.close(resolve));
});

const json = { 'content-type': 'application/json' };

function weatherTool(path = '/weather?city={city}') {
  return {
    name: 'weather',
    kind: 'http',
    description: 'Weather for a city',
    inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    http: { url: `http://127.0.0.1:${port}${path}` },
  };
}

async function registerAndRun(
  options: DeclarativeToolOptions,
  tool = weatherTool(),
  args: unknown = { city: 'Oslo' },
) {
  const server = createMcpServer({ logLevel: 'silent', declarativeTools: options });
  const registered = await request(server, '/tools', {
    method: 'POST',
    headers: json,
    body: JSON.stringify(tool),
  });
  if (registered.status !== 201) return { registered, server };
  const executed = await request(server, `/tools/${tool.name}/execute`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ arguments: args }),
  });
  return { registered, executed, server };
}

describe('declarative HTTP tools', () => {
  it('call an allow-listed loopback host when private networks are allowed', async () => {
    const { registered, executed, server } = await registerAndRun({
      allowedHosts: ['127.0.0.1'],
      allowPrivateNetworks: true,
    });
    expect(registered.status).toBe(201);
    expect(executed!.status).toBe(200);
    expect((await executed!.json()).structuredContent).toEqual({ city: 'Oslo', temperature: 21 });
    // and MCP clients see the tool at once
    const init = await request(
      server,
      '/mcp',
      jsonRpcPost({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    );
    const session = init.headers.get('mcp-session-id')!;
    await init.text();
    const list = await readJsonRpc(
      await request(
        server,
        '/mcp',
        jsonRpcPost(
          { jsonrpc: '2.0', id: 2, method: 'tools/list' },
          { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
        ),
      ),
    );
    expect(list.result.tools.map((t: { name: string }) => t.name)).toEqual(['weather']);
  });

  it('percent-encode arguments into the URL, so they cannot change its path or host', async () => {
    hits.length = 0;
    const { executed } = await registerAndRun(
      { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
      weatherTool(),
      {
        city: '../admin?x=1&city=@evil.example.com',
      },
    );
    expect(executed!.status).toBe(200);
    expect(hits).toEqual(['/weather?city=..%2Fadmin%3Fx%3D1%26city%3D%40evil.example.com']);
  });

  it('refuse a private address when private networks are not allowed, even on the allow-list', async () => {
    hits.length = 0;
    // A literal is known at registration: refused then, not at the first call.
    const { registered, executed } = await registerAndRun({ allowedHosts: ['127.0.0.1'] });
    expect(registered.status).toBe(403);
    expect(executed).toBeUndefined();
    expect((await registered.json()).detail).toMatch(/127\.0\.0\.1 is a loopback address/);
    expect(hits).toEqual([]);
  });

  it('refuse to register a tool whose host is off the allow-list', async () => {
    const { registered } = await registerAndRun({
      allowedHosts: ['api.example.com'],
      allowPrivateNetworks: true,
    });
    expect(registered.status).toBe(403);
    const none = await registerAndRun({});
    expect(none.registered.status).toBe(403);
  });

  it('check every redirect hop: off-list or metadata addresses are refused', async () => {
    hits.length = 0;
    const { executed } = await registerAndRun(
      { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
      weatherTool('/redirect-metadata'),
    );
    expect(executed!.status).toBe(403);
    expect((await executed!.json()).detail).toMatch(/169\.254\.169\.254 is not on the outbound allow-list/);
    const followed = await registerAndRun(
      { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
      weatherTool('/redirect-local'),
    );
    expect((await followed.executed!.json()).structuredContent).toEqual({
      city: 'Redirected',
      temperature: 21,
    });
  });

  it('refuse names that resolve to private addresses when a resolver is given', async () => {
    const { executed } = await registerAndRun(
      { allowedHosts: ['internal.example.com'], resolveHost: async () => ['10.0.0.7'] },
      { ...weatherTool(), http: { url: 'http://internal.example.com/weather?city={city}' } },
    );
    expect(executed!.status).toBe(403);
    expect((await executed!.json()).detail).toMatch(/resolves to a private address/);
  });

  it('cap the response size and refuse placeholders in the host', async () => {
    const big = await registerAndRun(
      { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true, maxResponseBytes: 1024 },
      weatherTool('/big'),
    );
    const body = await big.executed!.json();
    expect(body.isError).toBe(true);
    expect(JSON.stringify(body)).toMatch(/larger than 1024 bytes/);
    const { registered } = await registerAndRun(
      { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
      { ...weatherTool(), http: { url: 'http://{host}/x' } },
    );
    expect(registered.status).toBe(400);
  });
});

describe('isPrivateAddress', () => {
  it('knows loopback, private, link-local, CGNAT, multicast and mapped addresses', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '[::1]',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      'localhost',
      'db.localhost',
    ]) {
      expect([address, isPrivateAddress(address)]).toEqual([address, true]);
    }
    for (const address of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2001:4860:4860::8888', 'example.com']) {
      expect([address, isPrivateAddress(address)]).toEqual([address, false]);
    }
  });
});
