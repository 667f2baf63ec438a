/**
 * Plain 2026-07-28 requests are served by one shared SDK server bound to the modern era (issue 17),
 * not a server per request. What a client sees must not change: each answer is compared with the
 * SDK's own entry answering the same request (reached by spelling `Mcp-Name` as a Base64 sentinel,
 * which the SDK decodes to the same name but the shared path leaves to the SDK).
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  Server,
} from '@modelcontextprotocol/server';
import { createMcpServer, type McpKitServer, TASKS_EXTENSION_ID } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { jsonRpcPost } from 'mcpkit/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { MAX_UNREAD_SSE_BYTES } from '../src/http/sessionTransport.js';

const MODERN = '2026-07-28';

interface Answer {
  status: number;
  type: string;
  body: string;
}

function build(): McpKitServer {
  const server = createMcpServer({ name: 'shared-modern', version: '1', logLevel: 'silent' });
  server.tools.register({
    name: 'echo',
    inputSchema: { text: z.string() },
    handler: ({ text }) => text,
  });
  server.tools.register({
    name: 'progressive',
    inputSchema: { text: z.string() },
    handler: async ({ text }, ctx) => {
      await ctx.progress(1, 2, 'half');
      return text;
    },
  });
  server.tools.register({
    name: 'broken',
    handler: () => {
      throw new Error('the tool failed at /srv/secret/path');
    },
  });
  server.tools.register({ name: 'job', task: 'required', handler: () => 'done' });
  server.tools.register({
    name: 'sampler',
    handler: async (_args, ctx) => {
      await ctx.sample({ messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 });
      return 'sampled';
    },
  });
  server.resources.register({ uri: 'fixture://note', name: 'note', read: () => 'a note' });
  server.prompts.register({
    name: 'greet',
    arguments: { who: z.string() },
    render: ({ who }) => `Hello ${who}`,
  });
  return server;
}

function envelope(capabilities: object = {}): Record<string, unknown> {
  return {
    [PROTOCOL_VERSION_META_KEY]: MODERN,
    [CLIENT_INFO_META_KEY]: { name: 'shared-test', version: '1' },
    [CLIENT_CAPABILITIES_META_KEY]: capabilities,
  };
}

const sentinel = (name: string) => `=?base64?${Buffer.from(name, 'utf8').toString('base64')}?=`;

interface Call {
  method: string;
  params: Record<string, unknown>;
  /** The name the `Mcp-Name` header carries, when the method has one. */
  name?: string;
  id?: number | string;
}

function post(call: Call, spell: 'literal' | 'sentinel'): Request {
  const body = { jsonrpc: '2.0', id: call.id ?? 1, method: call.method, params: call.params };
  const init = jsonRpcPost(body, {
    'mcp-protocol-version': MODERN,
    'mcp-method': call.method,
    ...(call.name !== undefined && { 'mcp-name': spell === 'literal' ? call.name : sentinel(call.name) }),
  });
  return new Request('http://localhost/mcp', { ...init, headers: { ...init.headers, host: 'localhost' } });
}

async function answer(response: Response): Promise<Answer> {
  return {
    status: response.status,
    type: (response.headers.get('content-type') ?? '').split(';')[0]!,
    // Each failure gets an error id of its own.
    body: (await response.text()).replace(/\b[0-9a-f]{8}\b/g, '<error id>'),
  };
}

let servers: McpKitServer[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const CASES: Record<string, Call> = {
  'a successful call': {
    method: 'tools/call',
    name: 'echo',
    params: { name: 'echo', arguments: { text: 'hi' }, _meta: envelope() },
  },
  'a call with progress (SSE)': {
    method: 'tools/call',
    name: 'progressive',
    params: { name: 'progressive', arguments: { text: 'p' }, _meta: { ...envelope(), progressToken: 'tok' } },
  },
  'invalid arguments': {
    method: 'tools/call',
    name: 'echo',
    params: { name: 'echo', arguments: { text: 7 }, _meta: envelope() },
  },
  'an unknown tool': {
    method: 'tools/call',
    name: 'nope',
    params: { name: 'nope', arguments: {}, _meta: envelope() },
  },
  'a tool that throws': {
    method: 'tools/call',
    name: 'broken',
    params: { name: 'broken', arguments: {}, _meta: envelope() },
  },
  'a task tool for a client without the extension (-32021)': {
    method: 'tools/call',
    name: 'job',
    params: { name: 'job', arguments: {}, _meta: envelope() },
  },
  'an envelope without client capabilities': {
    method: 'tools/call',
    name: 'echo',
    params: {
      name: 'echo',
      arguments: { text: 'x' },
      _meta: { [PROTOCOL_VERSION_META_KEY]: MODERN, [CLIENT_INFO_META_KEY]: { name: 'x', version: '1' } },
    },
  },
  'an envelope whose client info is not an object': {
    method: 'tools/call',
    name: 'echo',
    params: {
      name: 'echo',
      arguments: { text: 'x' },
      _meta: { ...envelope(), [CLIENT_INFO_META_KEY]: 'me' },
    },
  },
  'a tool that asks for sampling (none on this era)': {
    method: 'tools/call',
    name: 'sampler',
    params: { name: 'sampler', arguments: {}, _meta: envelope({ sampling: {} }) },
  },
  'a prompt': {
    method: 'prompts/get',
    name: 'greet',
    params: { name: 'greet', arguments: { who: 'Ada' }, _meta: envelope() },
  },
  'an unknown prompt': { method: 'prompts/get', name: 'gone', params: { name: 'gone', _meta: envelope() } },
  'a resource': {
    method: 'resources/read',
    name: 'fixture://note',
    params: { uri: 'fixture://note', _meta: envelope() },
  },
  'an unknown resource': {
    method: 'resources/read',
    name: 'fixture://none',
    params: { uri: 'fixture://none', _meta: envelope() },
  },
  'a fractional id (regression: the shared server served it)': {
    method: 'tools/call',
    name: 'echo',
    id: 1.5,
    params: { name: 'echo', arguments: { text: 'f' }, _meta: envelope() },
  },
  'an object as progress token (regression: the shared server never answered)': {
    method: 'tools/call',
    name: 'progressive',
    params: {
      name: 'progressive',
      arguments: { text: 'p' },
      _meta: { ...envelope(), progressToken: { a: 1 } },
    },
  },
  'a string id': {
    method: 'tools/call',
    name: 'echo',
    id: 'abc',
    params: { name: 'echo', arguments: { text: 's' }, _meta: envelope() },
  },
};

describe('2026-07-28 requests on the shared modern server', () => {
  for (const [label, call] of Object.entries(CASES)) {
    it(`answers ${label} exactly as the SDK's entry does`, async () => {
      const server = build();
      servers.push(server);
      const shared = await answer(await server.fetch(post(call, 'literal')));
      const sdk = await answer(await server.fetch(post(call, 'sentinel')));
      expect(shared).toEqual(sdk);
      expect(shared.body).not.toContain('/srv/secret');
    });
  }

  it('serves plain requests on one server, and the SDK entry one server per request', async () => {
    const server = build();
    servers.push(server);
    const connects = vi.spyOn(Server.prototype, 'connect');
    const call = CASES['a successful call']!;
    for (let i = 0; i < 5; i++) expect((await server.fetch(post(call, 'literal'))).status).toBe(200);
    expect(connects).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 3; i++) expect((await server.fetch(post(call, 'sentinel'))).status).toBe(200);
    expect(connects).toHaveBeenCalledTimes(4);
  });

  it('answers a JSON body without progress and an SSE stream with it', async () => {
    const server = build();
    servers.push(server);
    const plain = await answer(await server.fetch(post(CASES['a successful call']!, 'literal')));
    expect(plain.type).toBe('application/json');
    expect(JSON.parse(plain.body).result).toMatchObject({
      resultType: 'complete',
      content: [{ type: 'text', text: 'hi' }],
    });
    const streamed = await answer(await server.fetch(post(CASES['a call with progress (SSE)']!, 'literal')));
    expect(streamed.type).toBe('text/event-stream');
    expect(streamed.body).toContain('"method":"notifications/progress"');
    expect(streamed.body.indexOf('notifications/progress')).toBeLessThan(streamed.body.indexOf('"result"'));
  });

  it('gives concurrent requests that reuse one id each its own answer under that id', async () => {
    const server = build();
    servers.push(server);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let waiting = 0;
    server.tools.register({
      name: 'held',
      inputSchema: { text: z.string() },
      handler: async ({ text }) => {
        if (++waiting === 20) release();
        await gate;
        return text;
      },
    });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server.fetch(
          post(
            {
              method: 'tools/call',
              name: 'held',
              id: 7,
              params: { name: 'held', arguments: { text: `n${i}` }, _meta: envelope() },
            },
            'literal',
          ),
        ),
      ),
    );
    const bodies = await Promise.all(answers.map((r) => r.json()));
    bodies.forEach((body, i) => {
      expect(body.id).toBe(7);
      expect(body.result.content[0].text).toBe(`n${i}`);
    });
  });

  it('cancels the handler when its client leaves, and keeps serving others', async () => {
    const server = build();
    servers.push(server);
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    let abortedWith: unknown;
    const aborted = new Promise<void>((resolve) => {
      server.tools.register({
        name: 'slow',
        handler: (_args, ctx) =>
          new Promise<string>((_resolve, reject) => {
            started();
            ctx.signal.addEventListener('abort', () => {
              abortedWith = ctx.signal.reason;
              resolve();
              reject(ctx.signal.reason);
            });
          }),
      });
    });
    const http = await listen(server, { port: 0, host: '127.0.0.1' });
    try {
      const leaving = new AbortController();
      const request = post(
        { method: 'tools/call', name: 'slow', params: { name: 'slow', arguments: {}, _meta: envelope() } },
        'literal',
      );
      const pending = fetch(`http://127.0.0.1:${http.port}/mcp`, {
        method: 'POST',
        headers: request.headers,
        body: await request.text(),
        signal: leaving.signal,
      }).catch((error: Error) => error.name);
      await running;
      leaving.abort();
      expect(await pending).toBe('AbortError');
      await aborted;
      expect(abortedWith).toBeDefined();
      const next = post(CASES['a successful call']!, 'literal');
      const after = await fetch(`http://127.0.0.1:${http.port}/mcp`, {
        method: 'POST',
        headers: next.headers,
        body: await next.text(),
      });
      expect((await after.json()).result.content[0].text).toBe('hi');
    } finally {
      await http.close();
    }
  });

  it('runs a task tool for a client that declares the extension', async () => {
    const server = build();
    servers.push(server);
    const call: Call = {
      method: 'tools/call',
      name: 'job',
      params: { name: 'job', arguments: {}, _meta: envelope({ extensions: { [TASKS_EXTENSION_ID]: {} } }) },
    };
    const shared = await server.fetch(post(call, 'literal'));
    expect(shared.status).toBe(200);
    expect((await shared.json()).result.taskId).toEqual(expect.any(String));
  });

  it('drops notifications, never the result, past the unread bytes an SSE answer may hold', async () => {
    const server = build();
    servers.push(server);
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const chunk = 'x'.repeat(32 * 1024);
    server.tools.register({
      name: 'chatty',
      handler: async (_args, ctx) => {
        // 400 × 32 KiB of progress while the client reads nothing: 12.5 MiB offered.
        for (let i = 0; i < 400; i++) await ctx.progress(i, 400, chunk);
        setImmediate(finished);
        return 'finished';
      },
    });
    const response = await server.fetch(
      post(
        {
          method: 'tools/call',
          name: 'chatty',
          params: { name: 'chatty', arguments: {}, _meta: { ...envelope(), progressToken: 'p' } },
        },
        'literal',
      ),
    );
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    await done;
    const body = await response.text();
    expect(body.length).toBeLessThan(MAX_UNREAD_SSE_BYTES + 256 * 1024);
    expect(body).toContain('"text":"finished"');
  });
});
