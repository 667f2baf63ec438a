/**
 * Streamable HTTP: sessions for 2025-era clients, the modern stateless era, and every error case —
 * each answered with JSON, never an HTML page, a stack or a file path.
 */
import { type Server as HttpServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { mcpkitHono } from 'mcpkit/hono';
import { listen } from 'mcpkit/node';
import { jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeHttp, fixtureServer, waitListening } from './fixtures.js';

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

function expectNoLeak(text: string) {
  expect(text).not.toMatch(/\bat .+:\d+:\d+/);
  expect(text).not.toMatch(/\/(home|root|usr|work|tmp)\//);
  expect(text).not.toMatch(/<html/i);
}

async function openSession(server = fixtureServer()) {
  const res = await request(server, '/mcp', jsonRpcPost(INIT));
  expect(res.status).toBe(200);
  const sessionId = res.headers.get('mcp-session-id');
  await res.text();
  expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
  const initialized = await request(
    server,
    '/mcp',
    jsonRpcPost(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { 'mcp-session-id': sessionId!, 'mcp-protocol-version': '2025-11-25' },
    ),
  );
  expect(initialized.status).toBe(202);
  return { server, sessionId: sessionId! };
}

describe('2025-era sessions', () => {
  it('gives each initialize a distinct random session id and serves requests on it', async () => {
    const server = fixtureServer();
    const a = await openSession(server);
    const b = await openSession(server);
    expect(a.sessionId).not.toBe(b.sessionId);
    expect(server.connectionCounts().httpSessions).toBe(2);
    const res = await request(
      server,
      '/mcp',
      jsonRpcPost(
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'add', arguments: { a: 2, b: 3 } } },
        { 'mcp-session-id': a.sessionId, 'mcp-protocol-version': '2025-11-25' },
      ),
    );
    expect(res.status).toBe(200);
    const body = await readJsonRpc(res);
    expect(body.result.structuredContent).toEqual({ sum: 5 });
    await server.close();
  });

  it('answers 400 when the session id is missing', async () => {
    const server = fixtureServer();
    const res = await request(server, '/mcp', jsonRpcPost({ jsonrpc: '2.0', id: 2, method: 'tools/list' }));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = await res.json();
    expect(body.error.message).toMatch(/Mcp-Session-Id/);
  });

  it('answers 404 for an unknown session, on POST, GET and DELETE', async () => {
    const server = fixtureServer();
    const headers = { 'mcp-session-id': 'no-such-session', 'mcp-protocol-version': '2025-11-25' };
    const post = await request(
      server,
      '/mcp',
      jsonRpcPost({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, headers),
    );
    const get = await request(server, '/mcp', { headers: { ...headers, accept: 'text/event-stream' } });
    const del = await request(server, '/mcp', { method: 'DELETE', headers });
    for (const res of [post, get, del]) {
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe(-32001);
    }
  });

  it('ends a session on DELETE, after which its id is unknown', async () => {
    const { server, sessionId } = await openSession();
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    const del = await request(server, '/mcp', { method: 'DELETE', headers });
    expect(del.status).toBe(200);
    expect(server.connectionCounts().httpSessions).toBe(0);
    const after = await request(
      server,
      '/mcp',
      jsonRpcPost({ jsonrpc: '2.0', id: 3, method: 'tools/list' }, headers),
    );
    expect(after.status).toBe(404);
  });

  it('expires idle sessions', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
    try {
      const server = fixtureServer({ http: { sessionIdleTimeoutMs: 60_000 } });
      const { sessionId } = await openSession(server);
      vi.advanceTimersByTime(30_000);
      expect(server.connectionCounts().httpSessions).toBe(1);
      vi.advanceTimersByTime(61_000);
      expect(server.connectionCounts().httpSessions).toBe(0);
      const res = await request(
        server,
        '/mcp',
        jsonRpcPost({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': sessionId }),
      );
      expect(res.status).toBe(404);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses initialize past the live-session cap and keeps existing sessions working', async () => {
    const server = fixtureServer({ http: { maxSessions: 2 } });
    const first = await openSession(server);
    await openSession(server);
    const third = await request(server, '/mcp', jsonRpcPost(INIT));
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('5');
    const still = await request(
      server,
      '/mcp',
      jsonRpcPost(
        { jsonrpc: '2.0', id: 9, method: 'tools/list' },
        { 'mcp-session-id': first.sessionId, 'mcp-protocol-version': '2025-11-25' },
      ),
    );
    expect(still.status).toBe(200);
  });

  it('stateless mode serves 2025-era clients without sessions', async () => {
    const server = fixtureServer({ http: { stateless: true } });
    const res = await request(server, '/mcp', jsonRpcPost(INIT));
    expect(res.status).toBe(200);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    const list = await request(
      server,
      '/mcp',
      jsonRpcPost({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-protocol-version': '2025-11-25' }),
    );
    expect(list.status).toBe(200);
    expect((await readJsonRpc(list)).result.tools.map((t: { name: string }) => t.name)).toContain('add');
    expect(server.connectionCounts().httpSessions).toBe(0);
  });
});

describe('request validation', () => {
  const server = fixtureServer({ http: { maxBodyBytes: 1024 } });

  it('refuses a foreign Host header (DNS rebinding) with 403', async () => {
    const res = await request(server, '/mcp', jsonRpcPost(INIT, { host: 'evil.example.com' }));
    expect(res.status).toBe(403);
    expect((await res.json()).error.message).toContain('evil.example.com');
  });

  it('refuses a foreign Origin with 403 and accepts a loopback one', async () => {
    const bad = await request(server, '/mcp', jsonRpcPost(INIT, { origin: 'http://evil.example.com' }));
    expect(bad.status).toBe(403);
    const good = await request(server, '/mcp', jsonRpcPost(INIT, { origin: 'http://localhost:5173' }));
    expect(good.status).toBe(200);
    await good.text();
  });

  it('accepts any host when told to', async () => {
    const open = fixtureServer({ http: { allowedHosts: 'any' } });
    const res = await request(open, '/mcp', jsonRpcPost(INIT, { host: 'mcp.example.com' }));
    expect(res.status).toBe(200);
    await res.text();
  });

  it('answers malformed JSON with a JSON-RPC parse error as JSON', async () => {
    const res = await request(server, '/mcp', jsonRpcPost('{"jsonrpc": "2.0", "id": 1, "method": '));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = await res.json();
    expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await request(server, '/mcp', jsonRpcPost({ ...INIT, padding: 'x'.repeat(4096) }));
    expect(res.status).toBe(413);
    expect((await res.json()).error.message).toMatch(/Payload Too Large/);
  });

  it('refuses a non-JSON content type with 415', async () => {
    const res = await request(server, '/mcp', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INIT),
    });
    expect(res.status).toBe(415);
  });

  it('answers other methods with 405 and an Allow header', async () => {
    const res = await request(server, '/mcp', { method: 'PUT', body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST, DELETE');
  });

  it('answers unknown paths with a JSON 404', async () => {
    const res = await request(server, '/nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('never leaks stacks or paths from a crashing tool', async () => {
    const { server: s, sessionId } = await openSession();
    const res = await request(
      s,
      '/mcp',
      jsonRpcPost(
        { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'boom', arguments: {} } },
        { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      ),
    );
    const text = await res.text();
    expect(text).toContain('kaboom');
    expect(text).toContain('error id');
    expectNoLeak(text);
  });
});

describe('over a real socket', () => {
  let closeServer: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await closeServer?.();
    closeServer = undefined;
  });

  it.each([
    ['0.0.0.0', 'http://127.0.0.1:'],
    ['::', 'http://[::1]:'],
  ])('bound to every interface (%s), names a URL a local client can use', async (host, prefix) => {
    const server = fixtureServer();
    const listening = await listen(server, { port: 0, host, websocket: false });
    closeServer = listening.close;
    expect(listening.host).toBe(host);
    expect(listening.url).toBe(`${prefix}${listening.port}`);
    // the default allow-list admits it: no 403 for the address listen() printed
    expect((await fetch(`${listening.url}/health`)).status).toBe(200);
  });

  it('refuses a lying Content-Length without reading the body', async () => {
    const server = fixtureServer({ http: { maxBodyBytes: 1024 } });
    const listening = await listen(server, { port: 0 });
    closeServer = listening.close;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${listening.url}/mcp`,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'content-length': String(10 * 1024 * 1024),
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('{"jsonrpc":"2.0"');
    });
    expect(status).toBe(413);
  });

  it('refuses an oversized chunked body with 413', async () => {
    const server = fixtureServer({ http: { maxBodyBytes: 1024 } });
    const listening = await listen(server, { port: 0 });
    closeServer = listening.close;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${listening.url}/mcp`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => {});
      for (let i = 0; i < 16; i++) req.write('x'.repeat(512));
      req.end();
      setTimeout(() => reject(new Error('no response')), 5000).unref();
    });
    expect(status).toBe(413);
  });

  it('close() ends connections that carry no response at once, not after the grace period', async () => {
    const server = fixtureServer();
    // A regression would wait out this grace (longer than the test's timeout) for the client to leave.
    const listening = await listen(server, { port: 0, closeGraceMs: 60_000 });
    // A connection that never sends a request, as an HTTP client's spare keep-alive socket does.
    const idle = connect(listening.port, '127.0.0.1');
    await new Promise((resolve) => idle.once('connect', resolve));
    const idleClosed = new Promise((resolve) => idle.once('close', resolve));
    // A session whose SSE stream the client abandoned: the server ends it when it closes.
    const client = new Client({ name: 't', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`)));
    await client.listTools();
    await client.close();
    await listening.close();
    await idleClosed;
    expect(idle.destroyed).toBe(true);
  });

  it('closes sessions and streams on close(), and the port stops answering', async () => {
    const server = fixtureServer();
    const listening = await listen(server, { port: 0 });
    const client = new Client({ name: 't', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`)));
    expect(server.connectionCounts().httpSessions).toBe(1);
    await listening.close();
    expect(server.connectionCounts().httpSessions).toBe(0);
    await expect(fetch(`${listening.url}/mcp`)).rejects.toThrow();
    await client.close().catch(() => {});
  });
});

describe('the modern (2026-07-28) era', () => {
  it('routes requests under a modern version header as the SDK classifier does', async () => {
    const server = fixtureServer();
    const envelope = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    const post = (body: { method: string; [key: string]: unknown }, version = '2026-07-28') =>
      request(
        server,
        '/mcp',
        jsonRpcPost(body, { 'mcp-protocol-version': version, 'mcp-method': body.method }),
      );
    // With the envelope: served.
    const served = await readJsonRpc(
      await post({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope } }),
    );
    expect(served.result.tools.map((t: { name: string }) => t.name)).toContain('add');
    // Without it: the modern path's own refusal, naming what is missing (not a legacy answer).
    const bare = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(bare.status).toBe(400);
    expect((await bare.json()).error).toMatchObject({
      code: -32602,
      message: /missing the required per-request envelope/,
    });
    // The legacy handshake under a modern header: refused as a mismatch.
    const init = await post({
      jsonrpc: '2.0',
      id: 3,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    expect(init.status).toBe(400);
    expect(server.connectionCounts().httpSessions).toBe(0);
    // A header and envelope that disagree: the SDK's -32020-style cross-check, on the modern path.
    const mismatch = await post(
      { jsonrpc: '2.0', id: 4, method: 'tools/list', params: { _meta: envelope } },
      '2026-12-31',
    );
    expect(mismatch.status).toBe(400);
    await server.close();
  });

  it('serves an auto-negotiating client without sessions', async () => {
    const server = fixtureServer();
    const listening = await listen(server, { port: 0 });
    try {
      const client = new Client({ name: 't', version: '1' }, { versionNegotiation: { mode: 'auto' } });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`)));
      const result = await client.callTool({ name: 'add', arguments: { a: 1, b: 41 } });
      expect(result.structuredContent).toEqual({ sum: 42 });
      expect(server.connectionCounts().httpSessions).toBe(0);
      await client.close();
    } finally {
      await listening.close();
    }
  });
});

describe('the index (GET / at the mount point)', () => {
  it('links to the MCP endpoint, OpenAPI and health under http.basePath and http.mcpPath', async () => {
    const server = fixtureServer({ http: { basePath: '/v1', mcpPath: '/rpc' }, title: 'Fixture server' });
    try {
      for (const path of ['/v1', '/v1/', '/v1//']) {
        const res = await request(server, path);
        expect(res.status, path).toBe(200);
        expect(await res.json()).toEqual({
          name: 'fixture',
          version: '1.2.3',
          title: 'Fixture server',
          links: { mcp: '/v1/rpc', openapi: '/v1/openapi.json', health: '/v1/health' },
        });
      }
      // Outside the mount point nothing answers, the root included.
      const outside = await request(server, '/');
      expect(outside.status).toBe(404);
      expect(outside.headers.get('content-type')).toBe('application/problem+json');
      expect((await request(server, '/v1/rpc', jsonRpcPost(INIT))).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  // Every framework adapter stacks http.basePath below the path the framework mounted it at.
  it.each(['express', 'fastify', 'hono'] as const)(
    'includes the %s mount point and http.basePath below it',
    async (framework) => {
      const server = fixtureServer({ http: { basePath: '/v1' } });
      let port: number;
      let stop: () => Promise<void>;
      if (framework === 'express') {
        const app = express();
        app.use('/api', mcpkitExpress(server));
        const httpServer = app.listen(0, '127.0.0.1');
        await waitListening(httpServer);
        port = (httpServer.address() as AddressInfo).port;
        stop = () => closeHttp(httpServer);
      } else if (framework === 'fastify') {
        const app = Fastify();
        await app.register(mcpkitFastify, { server, prefix: '/api' });
        await app.listen({ port: 0, host: '127.0.0.1' });
        port = (app.server.address() as AddressInfo).port;
        stop = () => app.close();
      } else {
        const app = new Hono();
        app.route('/api', mcpkitHono(server));
        const httpServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as HttpServer;
        await waitListening(httpServer);
        port = (httpServer.address() as AddressInfo).port;
        stop = () => closeHttp(httpServer);
      }
      const base = `http://127.0.0.1:${port}`;
      try {
        const index = await (await fetch(`${base}/api/v1`)).json();
        expect(index.links).toEqual({
          mcp: '/api/v1/mcp',
          openapi: '/api/v1/openapi.json',
          health: '/api/v1/health',
        });
        const client = new Client({ name: 'index', version: '1' });
        await client.connect(new StreamableHTTPClientTransport(new URL(`${base}${index.links.mcp}`)));
        expect((await client.listTools()).tools.map((t) => t.name)).toContain('add');
        await client.close();
        const doc = await (await fetch(`${base}${index.links.openapi}`)).json();
        expect(doc.servers).toEqual([{ url: '/api/v1' }]);
        expect((await fetch(`${base}/api/tools`)).status).toBe(404); // below /api but outside /v1
      } finally {
        await server.close();
        await stop();
      }
    },
  );
});
