/**
 * One contract suite, five mounts: `server.fetch` in process, `mcpkit/node` on port 0, and Express,
 * Fastify and Hono each on a real listener on port 0, mounted under /api beside a route of the host
 * app that must keep working. Every route, every error case, SSE streaming, and MCP over /mcp.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Validator } from '@seriousme/openapi-schema-validator';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { mcpkitExpress } from 'mcpkit/express';
import { mcpkitFastify } from 'mcpkit/fastify';
import { mcpkitHono } from 'mcpkit/hono';
import { listen } from 'mcpkit/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

type Call = (path: string, init?: RequestInit) => Promise<Response>;

interface Mount {
  /** Calls a path below the mount point (`/tools`), as a remote client would. */
  call: Call;
  /** The mount point (`/api`), or `''` at the root. */
  prefix: string;
  /** The MCP endpoint URL, for a real client (undefined in process). */
  mcpUrl?: string;
  /** A route of the host app, and what it answers. */
  hostRoute?: { path: string; text: string };
  close(): Promise<void>;
}

function makeServer(): McpKitServer {
  const server = createMcpServer({
    name: 'contract',
    version: '1.0.0',
    logLevel: 'silent',
    http: { maxBodyBytes: 64 * 1024 },
  });
  server.tools.register({
    name: 'add',
    description: 'Add two numbers',
    inputSchema: { a: z.number(), b: z.number() },
    handler: ({ a, b }) => ({ sum: a + b }),
  });
  server.tools.register({ name: 'sleepy', timeoutMs: 50, handler: () => new Promise(() => {}) });
  server.tools.register({
    name: 'fails',
    handler: () => {
      throw new Error('broken at /srv/app/tool.js:3');
    },
  });
  server.resources.register({
    uri: 'config://app',
    name: 'config',
    mimeType: 'application/json',
    read: () => '{"debug":false}',
  });
  server.prompts.register({
    name: 'greet',
    arguments: [{ name: 'name', required: true }],
    messages: [{ role: 'user', content: 'Hello {{name}}' }],
  });
  return server;
}

const HOST_TEXT = 'host app still here';

async function realCall(base: string): Promise<Call> {
  return (path, init) => fetch(`${base}${path}`, init);
}

const mounts: Array<[string, () => Promise<Mount & { server: McpKitServer }>]> = [
  [
    'server.fetch in process',
    async () => {
      const server = makeServer();
      const call: Call = (path, init = {}) => {
        const headers = new Headers(init.headers);
        headers.set('host', 'localhost');
        return server.fetch(new Request(`http://localhost${path}`, { ...init, headers }));
      };
      return { server, call, prefix: '', close: () => server.close() };
    },
  ],
  [
    'mcpkit/node listen',
    async () => {
      const server = makeServer();
      const listening = await listen(server, { port: 0 });
      return {
        server,
        call: await realCall(listening.url),
        prefix: '',
        mcpUrl: `${listening.url}/mcp`,
        close: listening.close,
      };
    },
  ],
  [
    'Express 5 under /api (after express.json())',
    async () => {
      const server = makeServer();
      const app = express();
      app.use(express.json());
      app.get('/', (_req, res) => {
        res.send(HOST_TEXT);
      });
      app.use('/api', mcpkitExpress(server));
      const httpServer = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => httpServer.once('listening', resolve));
      const base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
      return {
        server,
        call: await realCall(`${base}/api`),
        prefix: '/api',
        mcpUrl: `${base}/api/mcp`,
        hostRoute: { path: `${base}/`, text: HOST_TEXT },
        close: async () => {
          await server.close();
          httpServer.closeAllConnections();
          await new Promise((resolve) => httpServer.close(resolve));
        },
      };
    },
  ],
  [
    'Fastify 5 under /api',
    async () => {
      const server = makeServer();
      const app = Fastify();
      app.get('/', async () => HOST_TEXT);
      await app.register(mcpkitFastify, { server, prefix: '/api' });
      const address = await app.listen({ port: 0, host: '127.0.0.1' });
      return {
        server,
        call: await realCall(`${address}/api`),
        prefix: '/api',
        mcpUrl: `${address}/api/mcp`,
        hostRoute: { path: `${address}/`, text: HOST_TEXT },
        close: async () => {
          await server.close();
          await app.close();
        },
      };
    },
  ],
  [
    'Hono 4 under /api on @hono/node-server',
    async () => {
      const server = makeServer();
      const app = new Hono();
      app.get('/', (c) => c.text(HOST_TEXT));
      app.route('/api', mcpkitHono(server));
      const httpServer = await new Promise<ReturnType<typeof serve>>((resolve) => {
        const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
      });
      const base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
      return {
        server,
        call: await realCall(`${base}/api`),
        prefix: '/api',
        mcpUrl: `${base}/api/mcp`,
        hostRoute: { path: `${base}/`, text: HOST_TEXT },
        close: async () => {
          await server.close();
          await new Promise((resolve) => httpServer.close(resolve));
        },
      };
    },
  ],
];

const JSON_HEADERS = { 'content-type': 'application/json' };
const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { ...JSON_HEADERS, ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

async function expectProblem(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const body = await res.json();
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
  expect(body.requestId).toBe(res.headers.get('x-request-id'));
  expect(JSON.stringify(body)).not.toMatch(/\/srv\/|at .+:\d+:\d+/);
  return body;
}

/** Reads SSE events from a streaming response until `count` events arrived. */
async function readEvents(res: Response, count: number): Promise<Array<{ event: string; data: any }>> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: Array<{ event: string; data: any }> = [];
  let buffer = '';
  while (events.length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) });
      cut = buffer.indexOf('\n\n');
    }
  }
  reader.releaseLock();
  return events;
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}

describe.each(mounts)('%s', (_name, setup) => {
  let mount: Mount & { server: McpKitServer };
  beforeAll(async () => {
    mount = await setup();
  });
  afterAll(async () => {
    await mount.close();
  });

  it('leaves the host app’s own route working', async () => {
    if (!mount.hostRoute) return;
    const res = await fetch(mount.hostRoute.path);
    expect(await res.text()).toBe(mount.hostRoute.text);
  });

  it('lists and describes tools, with pagination', async () => {
    const list = await (await mount.call('/tools')).json();
    expect(list.items.map((t: { name: string }) => t.name)).toEqual(['add', 'sleepy', 'fails']);
    const first = await (await mount.call('/tools?limit=1')).json();
    expect(first).toMatchObject({ items: [{ name: 'add' }], nextCursor: '1' });
    const second = await (await mount.call(`/tools?limit=2&cursor=${first.nextCursor}`)).json();
    expect(second.items.map((t: { name: string }) => t.name)).toEqual(['sleepy', 'fails']);
    expect(second.nextCursor).toBeUndefined();
    expect(await (await mount.call('/tools/add')).json()).toMatchObject({
      name: 'add',
      inputSchema: { type: 'object' },
    });
    await expectProblem(await mount.call('/tools/nope'), 404, 'NOT_FOUND');
    await expectProblem(await mount.call('/tools?limit=0'), 400, 'INVALID_ARGUMENT');
  });

  it('executes tools, mapping failures to statuses', async () => {
    const ok = await mount.call('/tools/add/execute', post({ arguments: { a: 2, b: 40 } }));
    expect(ok.status).toBe(200);
    const body = await ok.json();
    expect(body.structuredContent).toEqual({ sum: 42 });
    expect(body.durationMs).toBeGreaterThanOrEqual(0);
    const invalid = await expectProblem(
      await mount.call('/tools/add/execute', post({ arguments: { a: 'x' } })),
      400,
      'INVALID_ARGUMENT',
    );
    expect(invalid.issues.map((i: { path: string }) => i.path).sort()).toEqual(['a', 'b']);
    await expectProblem(await mount.call('/tools/nope/execute', post({})), 404, 'NOT_FOUND');
    await expectProblem(await mount.call('/tools/sleepy/execute', post({})), 504, 'TIMEOUT');
    const failed = await mount.call('/tools/fails/execute', post({}));
    expect(failed.status).toBe(200);
    const failure = await failed.json();
    expect(failure.isError).toBe(true);
    expect(JSON.stringify(failure)).not.toContain('/srv/');
  });

  it('runs batches and chains', async () => {
    const batch = await (
      await mount.call(
        '/tools/batch',
        post({
          calls: [
            { tool: 'add', arguments: { a: 1, b: 1 } },
            { tool: 'nope' },
            { tool: 'add', arguments: { a: 2, b: 2 } },
          ],
        }),
      )
    ).json();
    expect(
      batch.results.map(
        (r: { structuredContent?: unknown; isError?: boolean }) => r.structuredContent ?? r.isError,
      ),
    ).toEqual([{ sum: 2 }, true, { sum: 4 }]);
    const chain = await (
      await mount.call(
        '/tools/chain',
        post({
          input: { x: 5 },
          steps: [
            { name: 'first', tool: 'add', args: { a: { $ref: 'input.x' }, b: 1 } },
            { tool: 'add', args: { a: { $ref: 'steps.first.structuredContent.sum' }, b: 10 } },
          ],
        }),
      )
    ).json();
    expect(chain.ok).toBe(true);
    expect(chain.result.structuredContent).toEqual({ sum: 16 });
    await expectProblem(await mount.call('/tools/batch', post({ calls: [] })), 400, 'INVALID_ARGUMENT');
  });

  it('registers a declarative chain tool that MCP clients see, and removes it', async () => {
    const created = await mount.call(
      '/tools',
      post({
        name: 'add_ten',
        kind: 'chain',
        description: 'Adds ten',
        inputSchema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
        steps: [{ tool: 'add', args: { a: { $ref: 'input.n' }, b: 10 } }],
      }),
    );
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('tools/add_ten');
    const run = await (await mount.call('/tools/add_ten/execute', post({ arguments: { n: 1 } }))).json();
    expect(run.structuredContent).toEqual({ sum: 11 });
    expect(mount.server.tools.list().map((t) => t.name)).toContain('add_ten');
    await expectProblem(
      await mount.call('/tools', post({ name: 'add_ten', kind: 'chain', steps: [{ tool: 'add' }] })),
      409,
      'ALREADY_EXISTS',
    );
    await expectProblem(
      await mount.call('/tools', post({ name: 'x', kind: 'magic' })),
      400,
      'INVALID_ARGUMENT',
    );
    expect((await mount.call('/tools/add_ten', { method: 'DELETE' })).status).toBe(204);
    await expectProblem(await mount.call('/tools/add_ten', { method: 'DELETE' }), 404, 'NOT_FOUND');
  });

  it('lists, registers, reads and removes resources; URIs are percent-encoded', async () => {
    const uri = 'notes://today';
    const created = await mount.call(
      '/resources',
      post({ uri, name: 'today', mimeType: 'text/plain', text: 'buy milk' }),
    );
    expect(created.status).toBe(201);
    const list = await (await mount.call('/resources')).json();
    expect(list.items.map((r: { uri: string }) => r.uri)).toEqual(['config://app', uri]);
    const read = await (await mount.call(`/resources/${encodeURIComponent(uri)}`)).json();
    expect(read.contents).toEqual([{ uri, mimeType: 'text/plain', text: 'buy milk' }]);
    await expectProblem(
      await mount.call(`/resources/${encodeURIComponent('notes://none')}`),
      404,
      'NOT_FOUND',
    );
    await expectProblem(
      await mount.call('/resources', post({ uri: 'x://y', name: 'y' })),
      400,
      'INVALID_ARGUMENT',
    );
    expect((await mount.call(`/resources/${encodeURIComponent(uri)}`, { method: 'DELETE' })).status).toBe(
      204,
    );
  });

  it('streams resource updates as server-sent events until the client goes away', async () => {
    const base = mount.server.resources.subscriptionCount;
    const controller = new AbortController();
    const res = await mount.call(`/resources/${encodeURIComponent('config://app')}/subscribe`, {
      method: 'POST',
      headers: { accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const [subscribed] = await readEvents(res, 1);
    expect(subscribed).toEqual({ event: 'subscribed', data: { uri: 'config://app' } });
    expect(mount.server.resources.subscriptionCount).toBe(base + 1);
    mount.server.resources.notifyUpdated('config://app');
    const [updated] = await readEvents(res, 1);
    expect(updated).toEqual({ event: 'updated', data: { uri: 'config://app' } });
    controller.abort();
    await until(() => mount.server.resources.subscriptionCount === base);
    await expectProblem(
      await mount.call(`/resources/${encodeURIComponent('config://none')}/subscribe`, { method: 'POST' }),
      404,
      'NOT_FOUND',
    );
  });

  it('registers, describes, generates and removes prompts', async () => {
    const created = await mount.call(
      '/prompts',
      post({
        name: 'ask',
        arguments: [{ name: 'q', required: true }],
        messages: [{ role: 'user', content: 'Q: {{q}}' }],
      }),
    );
    expect(created.status).toBe(201);
    expect(await (await mount.call('/prompts/ask')).json()).toMatchObject({
      name: 'ask',
      arguments: [{ name: 'q', required: true }],
    });
    const generated = await (
      await mount.call('/prompts/ask/generate', post({ arguments: { q: 'why?' } }))
    ).json();
    expect(generated.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Q: why?' } }]);
    const invalid = await expectProblem(
      await mount.call('/prompts/ask/generate', post({ arguments: {} })),
      400,
      'INVALID_ARGUMENT',
    );
    expect(invalid.details.issues).toEqual([{ path: 'q', message: 'Required' }]);
    expect((await (await mount.call('/prompts')).json()).items.map((p: { name: string }) => p.name)).toEqual([
      'greet',
      'ask',
    ]);
    expect((await mount.call('/prompts/ask', { method: 'DELETE' })).status).toBe(204);
  });

  it('answers every error case with a problem and a request id', async () => {
    const put = await mount.call('/tools', { method: 'PUT' });
    await expectProblem(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.get('allow')).toBe('GET, POST');
    await expectProblem(
      await mount.call('/tools', { headers: { accept: 'text/html' } }),
      406,
      'NOT_ACCEPTABLE',
    );
    await expectProblem(
      await mount.call('/tools/add/execute', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'a=1',
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    await expectProblem(
      await mount.call('/tools/add/execute', post('{"arguments": ')),
      400,
      'INVALID_REQUEST',
    );
    await expectProblem(
      await mount.call('/tools/add/execute', post({ arguments: { a: 1, b: 2 }, pad: 'x'.repeat(80 * 1024) })),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    await expectProblem(await mount.call('/no/such/route'), 404, 'NOT_FOUND');
    const echoed = await mount.call('/health', { headers: { 'x-request-id': 'trace-123' } });
    expect(echoed.headers.get('x-request-id')).toBe('trace-123');
    const replaced = await mount.call('/health', { headers: { 'x-request-id': 'bad id\twith tab' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves health, summary and a valid OpenAPI 3.1 document with each tool’s schema', async () => {
    expect(await (await mount.call('/health')).json()).toMatchObject({ status: 'ok' });
    expect(await (await mount.call('/summary')).json()).toMatchObject({ tools: 3, resources: 1, prompts: 1 });
    const doc = await (await mount.call('/openapi.json')).json();
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/usage'].get.parameters.map((p: { name: string }) => p.name)).toEqual([
      'window',
      'limit',
    ]);
    expect(
      doc.paths['/tools/add/execute'].post.requestBody.content['application/json'].schema.properties
        .arguments,
    ).toMatchObject({
      properties: { a: { type: 'number' }, b: { type: 'number' } },
    });
  });

  it('serves GET /usage with the calls made through this mount', async () => {
    await mount.call('/tools/add/execute', post({ arguments: { a: 1, b: 2 } }));
    const usage = await (await mount.call('/usage?window=start')).json();
    expect(usage.scope).toBe('node');
    const add = usage.tools.items.find((r: { key: string }) => r.key === 'add');
    expect(add.start.calls).toBeGreaterThanOrEqual(1);
    expect(add.hour).toBeUndefined();
    expect(usage.callers.items.map((r: { key: string }) => r.key)).toContain('(none)');
    await expectProblem(await mount.call('/usage?limit=0'), 400, 'INVALID_ARGUMENT');
  });

  it('answers GET / at the mount point with an index whose links work', async () => {
    for (const path of ['', '/']) {
      const res = await mount.call(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      const index = await res.json();
      expect(index).toEqual({
        name: 'contract',
        version: '1.0.0',
        links: {
          mcp: `${mount.prefix}/mcp`,
          openapi: `${mount.prefix}/openapi.json`,
          health: `${mount.prefix}/health`,
        },
      });
    }
    const { links } = await (await mount.call('/')).json();
    const follow = (link: string, init?: RequestInit) => mount.call(link.slice(mount.prefix.length), init);
    expect((await (await follow(links.health)).json()).status).toBe('ok');
    const doc = await (await follow(links.openapi)).json();
    expect(doc.servers).toEqual([{ url: mount.prefix || '/' }]);
    expect(doc.paths['/'].get.operationId).toBe('get-index');
    const initialize = await follow(
      links.mcp,
      post(
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-11-25',
            capabilities: {},
            clientInfo: { name: 'c', version: '1' },
          },
        },
        { accept: 'application/json, text/event-stream' },
      ),
    );
    expect(initialize.status).toBe(200);
    expect(initialize.headers.get('mcp-session-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((await follow('/', { method: 'HEAD' })).status).toBe(200);
    await expectProblem(await mount.call('/', { method: 'POST' }), 405, 'METHOD_NOT_ALLOWED');
  });

  it('serves MCP on /mcp to an SDK client', async () => {
    if (!mount.mcpUrl) {
      const res = await mount.call('/mcp', { method: 'GET', headers: { accept: 'text/event-stream' } });
      expect(res.status).toBe(400); // no session id: the MCP endpoint answered, not a REST route
      return;
    }
    const client = new Client({ name: 'contract', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mount.mcpUrl)));
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('add');
    expect((await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } })).structuredContent).toEqual({
      sum: 42,
    });
    await client.close();
  });
});
