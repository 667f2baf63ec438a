/**
 * Errors in the route's own form, on every door: whatever refuses a request (Host, Origin,
 * credentials, a method no route takes, a host framework's body parser, node:http before a request
 * exists, an unexpected failure), the MCP endpoint answers with a JSON-RPC error and every other path
 * (REST, `/`, `/health`, `/metrics`, `/openapi.json`, an unknown path, a path outside the mount point)
 * with an `application/problem+json` problem. Five mounts, each under `/api`: `server.fetch` in
 * process, `listen()`, Express 5 (behind `express.json()` with a small limit), Fastify 5 and Hono 4
 * on `@hono/node-server`.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { mcpkitHono } from 'mcpkit/hono';
import { listen } from 'mcpkit/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type McpKitErrorCode } from '../src/core/errors.js';
import { closeHttp, waitListening } from './fixtures.js';

const KEY = 'dialects-admin-key-0123456789abcdef';
const BASE = '/api';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface Send {
  method?: string;
  /** Below the mount point (`/tools`), or from the root with `absolute`. */
  path: string;
  absolute?: boolean;
  headers?: Record<string, string>;
  body?: string;
  /** A foreign Host: the header (and, in process, the URL's host). */
  foreignHost?: boolean;
}

interface Mount {
  readonly server: McpKitServer;
  /** Whether mcpkit answers paths outside `/api` (it does unless a framework routes them). */
  readonly servesOutside: boolean;
  /** Whether TRACE can be sent (a web `Request` cannot be built with it in process). */
  readonly real: boolean;
  send(init: Send): Promise<Answer>;
  readonly port?: number;
  close(): Promise<void>;
}

function makeServer(options: { basePath?: string } = {}): McpKitServer {
  return createMcpServer({
    name: 'dialects',
    version: '1.0.0',
    logLevel: 'silent',
    auth: { apiKeys: [{ id: 'ops', roles: ['admin'], key: KEY }] },
    ...(options.basePath !== undefined && { http: { basePath: options.basePath } }),
  });
}

function rawSend(port: number, init: Send): Promise<Answer> {
  const path = init.absolute ? init.path : `${BASE}${init.path}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: init.method ?? 'GET',
        path,
        agent: false,
        headers: {
          host: init.foreignHost ? `evil.example:${port}` : `127.0.0.1:${port}`,
          ...init.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.once('error', reject);
    req.end(init.body);
  });
}

function onPort(
  server: McpKitServer,
  port: number,
  close: () => Promise<void>,
  servesOutside = false,
): Mount {
  return { server, servesOutside, real: true, port, send: (init) => rawSend(port, init), close };
}

const MOUNTS: Array<[string, () => Promise<Mount>]> = [
  [
    'server.fetch',
    async () => {
      const server = makeServer({ basePath: BASE });
      return {
        server,
        servesOutside: true,
        real: false,
        async send(init) {
          const path = init.absolute ? init.path : `${BASE}${init.path}`;
          const host = init.foreignHost ? 'evil.example' : 'localhost';
          const response = await server.fetch(
            new Request(`http://${host}${path}`, {
              method: init.method ?? 'GET',
              headers: { host, ...init.headers },
              ...(init.body !== undefined && { body: init.body }),
            }),
          );
          return {
            status: response.status,
            headers: Object.fromEntries(response.headers),
            text: await response.text(),
          };
        },
        close: () => server.close(),
      };
    },
  ],
  [
    'listen()',
    async () => {
      const server = makeServer({ basePath: BASE });
      const listening = await listen(server, { port: 0, websocket: false });
      return onPort(server, listening.port, () => listening.close(), true);
    },
  ],
  [
    'Express 5 behind express.json()',
    async () => {
      const server = makeServer();
      const app = express();
      app.use(express.json({ limit: '1kb' }));
      app.use(BASE, mcpkitExpress(server));
      const httpServer = app.listen(0, '127.0.0.1');
      await waitListening(httpServer);
      return onPort(server, (httpServer.address() as AddressInfo).port, async () => {
        await server.close();
        await closeHttp(httpServer);
      });
    },
  ],
  [
    'Fastify 5',
    async () => {
      const server = makeServer();
      const app = Fastify();
      await app.register(mcpkitFastify, { server, prefix: BASE });
      await app.listen({ port: 0, host: '127.0.0.1' });
      return onPort(server, (app.server.address() as AddressInfo).port, async () => {
        await server.close();
        app.server.closeAllConnections();
        await app.close();
      });
    },
  ],
  [
    'Hono 4 on @hono/node-server',
    async () => {
      const server = makeServer();
      const app = new Hono();
      app.route(BASE, mcpkitHono(server));
      const httpServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as http.Server;
      await waitListening(httpServer);
      return onPort(server, (httpServer.address() as AddressInfo).port, async () => {
        await server.close();
        await closeHttp(httpServer);
      });
    },
  ],
];

/** Every path that is not the MCP endpoint: each answers problems. */
const REST_PATHS = ['/', '/tools', '/health', '/metrics', '/openapi.json', '/no-such-route'];
const MCP_PATH = '/mcp';
const BEARER = { authorization: `Bearer ${KEY}` };
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'd', version: '1' } },
});
const MCP_POST = {
  method: 'POST',
  path: MCP_PATH,
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: INITIALIZE,
};

/** `answer` is `code` as a REST problem: its status, type, code and the request id it was sent under. */
function expectProblem(answer: Answer, code: McpKitErrorCode, status = ERROR_CODES[code].status): any {
  const seen = `${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, seen).toBe(status);
  expect(answer.headers['content-type'], seen).toBe('application/problem+json');
  const body = JSON.parse(answer.text);
  expect(body, seen).toMatchObject({
    code,
    status,
    type: `urn:mcpkit:error:${code.toLowerCase().replaceAll('_', '-')}`,
  });
  expect(body.requestId, seen).toBe(answer.headers['x-request-id']);
  expect(body.jsonrpc, seen).toBeUndefined();
  return body;
}

/** `answer` is `code` as a JSON-RPC error of the whole request, with the HTTP status. */
function expectRpc(answer: Answer, code: McpKitErrorCode, status = ERROR_CODES[code].status): any {
  const seen = `${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, seen).toBe(status);
  expect(answer.headers['content-type'], seen).toMatch(/^application\/json/);
  const body = JSON.parse(answer.text);
  expect(body, seen).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: ERROR_CODES[code].jsonRpc } });
  return body;
}

describe.each(MOUNTS)('%s', (_name, open) => {
  let mount: Mount;
  beforeAll(async () => {
    mount = await open();
  });
  afterAll(() => mount.close());

  it('refuses a foreign Host before anything else: a problem on every path but /mcp', async () => {
    for (const path of REST_PATHS) {
      const body = expectProblem(await mount.send({ path, foreignHost: true, headers: BEARER }), 'FORBIDDEN');
      expect(body.detail, path).toMatch(/^Invalid Host: evil\.example is not in http\.allowedHosts/);
    }
    const mcp = expectRpc(await mount.send({ ...MCP_POST, foreignHost: true }), 'FORBIDDEN');
    expect(mcp.error.message).toMatch(/is not in http\.allowedHosts/);
  });

  it('refuses a foreign Origin: a problem on every path but /mcp', async () => {
    const origin = { origin: 'https://evil.example', ...BEARER };
    for (const path of REST_PATHS) {
      const body = expectProblem(await mount.send({ path, headers: origin }), 'FORBIDDEN');
      expect(body.detail, path).toMatch(/is not in http\.allowedOrigins/);
    }
    expectRpc(await mount.send({ ...MCP_POST, headers: { ...MCP_POST.headers, ...origin } }), 'FORBIDDEN');
  });

  it('asks for credentials in the same forms (only /health answers without)', async () => {
    for (const path of REST_PATHS) {
      const answer = await mount.send({ path });
      if (path === '/health') {
        expect(answer.status).toBe(200);
        expect(answer.headers['content-type']).toBe('application/json');
        continue;
      }
      expectProblem(answer, 'UNAUTHORIZED');
      expect(answer.headers['www-authenticate'], path).toMatch(/^Bearer /);
    }
    const mcp = await mount.send(MCP_POST);
    expectRpc(mcp, 'UNAUTHORIZED');
    expect(mcp.headers['www-authenticate']).toMatch(/^Bearer /);
  });

  it('answers a path no route serves with a 404 problem', async () => {
    expectProblem(await mount.send({ path: '/no-such-route', headers: BEARER }), 'NOT_FOUND');
    expectProblem(await mount.send({ path: '/mcp/more', headers: BEARER }), 'NOT_FOUND');
  });

  it('refuses a method no route takes (TRACE, which the fetch API cannot build) in the route’s form', async () => {
    if (!mount.real) {
      // On a fetch runtime such a request cannot exist: the fetch API refuses to build it.
      expect(() => new Request('http://localhost/tools', { method: 'TRACE' })).toThrow(TypeError);
      return;
    }
    const rest = await mount.send({ method: 'TRACE', path: '/tools', headers: BEARER });
    expectProblem(rest, 'METHOD_NOT_ALLOWED');
    expect(rest.headers.allow).toBe('GET, POST');
    const health = await mount.send({ method: 'TRACE', path: '/health', headers: BEARER });
    expectProblem(health, 'METHOD_NOT_ALLOWED');
    const mcp = await mount.send({ method: 'TRACE', path: MCP_PATH, headers: BEARER });
    expectRpc(mcp, 'METHOD_NOT_ALLOWED');
    expect(mcp.headers.allow).toBe('GET, POST, DELETE');
  });

  it('answers paths outside the mount point with problems, Host and Origin still checked', async () => {
    if (!mount.servesOutside) {
      // Mounted in a framework app, mcpkit never answers outside its prefix: the app does.
      const elsewhere = await mount.send({ path: '/elsewhere', absolute: true });
      expect(elsewhere.status).toBe(404);
      expect(elsewhere.headers['content-type'] ?? '').not.toMatch(/problem\+json/);
      expect(elsewhere.headers['x-request-id']).toBeUndefined();
      return;
    }
    expectProblem(await mount.send({ path: '/elsewhere', absolute: true }), 'NOT_FOUND');
    expectProblem(await mount.send({ path: '/mcp', absolute: true }), 'NOT_FOUND');
    expectProblem(await mount.send({ path: '/elsewhere', absolute: true, foreignHost: true }), 'FORBIDDEN');
  });
});

describe('answers no route decided', () => {
  it('server.fetch: an unexpected failure is a 500 in the route’s form, without details', async () => {
    const server = makeServer();
    const failing = {
      get clientAddress(): string {
        throw new Error('exploded at /srv/app/secret.ts:1');
      },
    };
    try {
      for (const [path, init] of [
        ['/tools', {}],
        ['/mcp', MCP_POST],
      ] as const) {
        const response = await server.fetch(
          new Request(`http://localhost${path}`, {
            method: 'method' in init ? init.method : 'GET',
            headers: { ...('headers' in init && init.headers), ...BEARER },
            ...('body' in init && { body: init.body }),
          }),
          failing,
        );
        const answer = {
          status: response.status,
          headers: Object.fromEntries(response.headers),
          text: await response.text(),
        };
        const body = path === '/mcp' ? expectRpc(answer, 'INTERNAL') : expectProblem(answer, 'INTERNAL');
        expect(JSON.stringify(body)).not.toMatch(/exploded|\/srv\//);
      }
    } finally {
      await server.close();
    }
  });

  it('Express: a body express.json() refused is answered by mcpkit in the route’s form, after Host and credentials', async () => {
    const mount = await MOUNTS[2]![1]();
    try {
      const big = JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'ping',
        params: { pad: 'x'.repeat(4096) },
      });
      const json = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      const rest = await mount.send({
        method: 'POST',
        path: '/tools',
        headers: { ...json, ...BEARER },
        body: big,
      });
      expect(expectProblem(rest, 'PAYLOAD_TOO_LARGE').detail).toContain(
        "host app's parser allows (1024 bytes)",
      );
      const mcp = await mount.send({
        method: 'POST',
        path: MCP_PATH,
        headers: { ...json, ...BEARER },
        body: big,
      });
      expectRpc(mcp, 'PAYLOAD_TOO_LARGE');
      // The request stages still come first.
      expectRpc(
        await mount.send({ method: 'POST', path: MCP_PATH, headers: json, body: big }),
        'UNAUTHORIZED',
      );
      expectProblem(
        await mount.send({
          method: 'POST',
          path: '/tools',
          headers: { ...json, ...BEARER },
          body: big,
          foreignHost: true,
        }),
        'FORBIDDEN',
      );
      // A charset the parser cannot read: 415, in the route's form.
      const latin = { ...json, 'content-type': 'application/json; charset=x-unknown', ...BEARER };
      expectProblem(
        await mount.send({ method: 'POST', path: '/tools', headers: latin, body: '{}' }),
        'UNSUPPORTED_MEDIA_TYPE',
      );
      expectRpc(
        await mount.send({ method: 'POST', path: MCP_PATH, headers: latin, body: '{}' }),
        'UNSUPPORTED_MEDIA_TYPE',
      );
    } finally {
      await mount.close();
    }
  });

  it('listen(): what node:http refuses before a request exists takes the form of the path its request line names', async () => {
    const server = makeServer({ basePath: BASE });
    const listening = await listen(server, { port: 0, websocket: false });
    const overflow = (path: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(listening.port, '127.0.0.1');
        let received = '';
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
        });
        socket.on('error', () => {});
        socket.once('close', () => resolve(received));
        socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      });
    const parse = (raw: string): Answer => {
      const [head = '', text = ''] = raw.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((line) => [
          line.slice(0, line.indexOf(':')).toLowerCase(),
          line.slice(line.indexOf(':') + 2),
        ]),
      );
      return { status: Number(statusLine.split(' ')[1]), headers, text };
    };
    try {
      expectRpc(parse(await overflow(`${BASE}/mcp`)), 'INVALID_REQUEST', 431);
      expectProblem(parse(await overflow(`${BASE}/tools?x=1`)), 'INVALID_REQUEST', 431);
      expectProblem(parse(await overflow('/elsewhere')), 'INVALID_REQUEST', 431);
    } finally {
      await listening.close();
    }
  });
});
