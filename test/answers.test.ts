/**
 * How a 2025-era POST is answered on every mount: JSON when nothing precedes the result, an SSE
 * stream when something does (progress, a log message, a long call's keep-alive), decided before
 * the first byte. SDK v1 and v2 clients see the same behaviour either way; cancellation, session
 * end and repeated ids are handled without a request left hanging.
 */
import type { Server as HttpServer } from 'node:http';
import { serve } from '@hono/node-server';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/server';
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
import { SessionTransport } from '../src/http/sessionTransport.js';
import { closeHttp, deferred, messagesOf, portOf, waitListening } from './fixtures.js';

const VERSION = '2025-06-18';
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** Releases of the `hold` tool's calls, by the text they were called with. */
const holds = new Map<string, () => void>();
const cancelled: string[] = [];

function buildServer(): McpKitServer {
  // What an answer looks like is the subject here, not load shedding (test/overload.test.ts): a busy
  // test host must not turn one of 64 concurrent calls into a 503.
  const server = createMcpServer({ name: 'answers', version: '1.0.0', logLevel: 'silent', overload: false });
  server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
  server.tools.register({
    name: 'count',
    inputSchema: { to: z.number().int().min(1).max(10) },
    handler: async ({ to }, ctx) => {
      for (let i = 1; i <= to; i++) await ctx.progress(i, to, `step ${i}`);
      return `counted to ${to}`;
    },
  });
  server.tools.register({
    name: 'whoami',
    handler: (_args, ctx) => `request ${JSON.stringify(ctx.requestId)}`,
  });
  server.tools.register({
    name: 'hold',
    inputSchema: { key: z.string() },
    timeoutMs: 10_000,
    handler: ({ key }, ctx) =>
      new Promise<string>((resolve, reject) => {
        holds.set(key, () => resolve(`released ${key}`));
        ctx.signal.addEventListener('abort', () => {
          cancelled.push(key);
          reject(new Error('cancelled'));
        });
      }),
  });
  return server;
}

interface Mounted {
  name: string;
  url: string;
  close(): Promise<void>;
}

async function mount(name: 'listen' | 'express' | 'fastify' | 'hono'): Promise<Mounted> {
  const server = buildServer();
  if (name === 'listen') {
    const listening = await listen(server, { port: 0 });
    return { name, url: `${listening.url}/mcp`, close: () => listening.close() };
  }
  let httpServer: HttpServer;
  let close: () => Promise<void>;
  if (name === 'express') {
    const app = express();
    app.use('/api', mcpkitExpress(server));
    httpServer = app.listen(0, '127.0.0.1');
    close = () => closeHttp(httpServer);
  } else if (name === 'fastify') {
    const app = Fastify();
    await app.register(mcpkitFastify, { server, prefix: '/api' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    httpServer = app.server;
    close = async () => {
      app.server.closeAllConnections();
      await app.close();
    };
  } else {
    const app = new Hono();
    app.route('/api', mcpkitHono(server));
    httpServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as HttpServer;
    close = () => closeHttp(httpServer);
  }
  await waitListening(httpServer);
  return {
    name,
    url: `http://127.0.0.1:${portOf(httpServer)}/api/mcp`,
    close: async () => {
      await server.close();
      await close();
    },
  };
}

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { ...HEADERS, ...headers }, body: JSON.stringify(body) });
}

/** Opens a session by hand; returns the headers its requests carry. */
async function openSession(url: string): Promise<Record<string, string>> {
  const init = await post(
    url,
    {},
    {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } },
    },
  );
  expect(init.status).toBe(200);
  expect(init.headers.get('content-type')).toBe('application/json');
  expect((await init.json()).result.protocolVersion).toBe(VERSION);
  const headers = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': VERSION };
  const ack = await post(url, headers, { jsonrpc: '2.0', method: 'notifications/initialized' });
  expect(ack.status).toBe(202);
  return headers;
}

const call = (
  id: number | string,
  name: string,
  args: Record<string, unknown>,
  meta?: Record<string, unknown>,
) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta && { _meta: meta }) },
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
}

describe.each(['listen', 'express', 'fastify', 'hono'] as const)('2025-era answers on %s', (name) => {
  let mounted: Mounted;
  beforeAll(async () => {
    mounted = await mount(name);
  });
  afterAll(async () => {
    await mounted.close();
  });

  it('answers a call without progress with one JSON body', async () => {
    const headers = await openSession(mounted.url);
    const response = await post(mounted.url, headers, call(7, 'echo', { text: 'plain' }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('mcp-session-id')).toBe(headers['mcp-session-id']);
    expect(response.headers.get('content-length')).not.toBeNull();
    const body = await response.json();
    expect(body).toMatchObject({
      jsonrpc: '2.0',
      id: 7,
      result: { content: [{ type: 'text', text: 'plain' }] },
    });
  });

  it('streams a call that reports progress, the result last', async () => {
    const headers = await openSession(mounted.url);
    const response = await post(
      mounted.url,
      headers,
      call('p-1', 'count', { to: 3 }, { progressToken: 'tok' }),
    );
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const messages = await messagesOf(response);
    expect(messages.map((m) => m.method ?? 'result')).toEqual([
      'notifications/progress',
      'notifications/progress',
      'notifications/progress',
      'result',
    ]);
    expect(messages.slice(0, 3).map((m) => m.params.progress)).toEqual([1, 2, 3]);
    expect(messages[3]).toMatchObject({ id: 'p-1', result: { content: [{ text: 'counted to 3' }] } });
  });

  it('answers the same call without a progress token with JSON', async () => {
    const headers = await openSession(mounted.url);
    const response = await post(mounted.url, headers, call(8, 'count', { to: 3 }));
    expect(response.headers.get('content-type')).toBe('application/json');
    expect((await response.json()).result.content[0].text).toBe('counted to 3');
  });

  it.each([
    ['SDK v2', 2],
    ['SDK v1', 1],
  ] as const)('gives an %s client its progress and its plain answers alike', async (_label, generation) => {
    const client =
      generation === 2
        ? new ClientV2({ name: 't', version: '1' })
        : new ClientV1({ name: 't', version: '1' });
    const transport = generation === 2 ? new HttpV2(new URL(mounted.url)) : new HttpV1(new URL(mounted.url));
    await client.connect(transport as never);
    try {
      const progress: number[] = [];
      const onprogress = (p: { progress: number }) => progress.push(p.progress);
      const counted =
        generation === 2
          ? await (client as ClientV2).callTool({ name: 'count', arguments: { to: 4 } }, { onprogress })
          : await (client as ClientV1).callTool({ name: 'count', arguments: { to: 4 } }, undefined, {
              onprogress,
            });
      expect(progress).toEqual([1, 2, 3, 4]);
      expect((counted as { content: Array<{ text: string }> }).content[0]!.text).toBe('counted to 4');
      const plain = await client.callTool({ name: 'echo', arguments: { text: 'x' } });
      expect((plain as { content: Array<{ text: string }> }).content[0]!.text).toBe('x');
      const tools = await client.listTools();
      expect(tools.tools.map((t: { name: string }) => t.name).sort()).toEqual([
        'count',
        'echo',
        'hold',
        'whoami',
      ]);
    } finally {
      await client.close();
    }
  });

  it('answers many concurrent calls of one session, each with its own result', async () => {
    const headers = await openSession(mounted.url);
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) =>
        (await post(mounted.url, headers, call(i, 'echo', { text: `n${i}` }))).json(),
      ),
    );
    for (const [i, answer] of answers.entries())
      expect(answer).toMatchObject({ id: i, result: { content: [{ text: `n${i}` }] } });
  });

  it('serves a request id already in flight in the session: each request gets its own answer, under its id', async () => {
    const headers = await openSession(mounted.url);
    const key = `${name}-dup`;
    const first = post(mounted.url, headers, call(99, 'hold', { key }));
    await until(() => holds.has(key));
    const second = await post(mounted.url, headers, call(99, 'echo', { text: 'second' }));
    expect(second.status).toBe(200);
    expect(await second.json()).toMatchObject({ id: 99, result: { content: [{ text: 'second' }] } });
    // The handler of a repeat sees the id its client sent, not the private one.
    const repeat = await post(mounted.url, headers, call(99, 'whoami', {}));
    expect(await repeat.json()).toMatchObject({ id: 99, result: { content: [{ text: 'request 99' }] } });
    const third = await post(mounted.url, headers, [
      call(99, 'echo', { text: 'a' }),
      call(99, 'echo', { text: 'b' }),
    ]);
    // 2025-06-18 refuses batches; the id check comes after, so this is the batch refusal
    expect(third.status).toBe(400);
    holds.get(key)!();
    const answer = await (await first).json();
    expect(answer).toMatchObject({ id: 99, result: { content: [{ text: `released ${key}` }] } });
  });

  it('keeps 64 concurrent requests that all share one id apart', async () => {
    const headers = await openSession(mounted.url);
    const responses = await Promise.all(
      Array.from({ length: 64 }, (_, i) => post(mounted.url, headers, call(1, 'echo', { text: `t${i}` }))),
    );
    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 64 }, () => 200));
    const answers = await Promise.all(responses.map((r) => r.json()));
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: 64 }, () => 1));
    expect(answers.map((a) => a.result.content[0].text)).toEqual(
      Array.from({ length: 64 }, (_, i) => `t${i}`),
    );
  });

  it('ends the wait for a cancelled call, and the call itself is aborted', async () => {
    const headers = await openSession(mounted.url);
    const key = `${name}-cancel`;
    const pending = post(mounted.url, headers, call(5, 'hold', { key }));
    await until(() => holds.has(key));
    const ack = await post(mounted.url, headers, {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 5, reason: 'test' },
    });
    expect(ack.status).toBe(202);
    const answer = await (await pending).json();
    expect(answer).toMatchObject({ id: 5, error: { code: -32800 } });
    await until(() => cancelled.includes(key));
  });

  it('ignores a cancellation the SDK would ignore: the call keeps running and keeps its answer', async () => {
    const headers = await openSession(mounted.url);
    const key = `${name}-badcancel`;
    const pending = post(mounted.url, headers, call(6, 'hold', { key }));
    await until(() => holds.has(key));
    const ack = await post(mounted.url, headers, {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 6, reason: 0 },
    });
    expect(ack.status).toBe(202);
    const reuse = await post(mounted.url, headers, call(6, 'echo', { text: 'reused' }));
    expect(await reuse.json()).toMatchObject({ id: 6, result: { content: [{ text: 'reused' }] } });
    holds.get(key)!();
    expect(await (await pending).json()).toMatchObject({
      id: 6,
      result: { content: [{ text: `released ${key}` }] },
    });
    expect(cancelled).not.toContain(key);
  });

  it('cancels the repeat of an id once the first request with it is answered', async () => {
    const headers = await openSession(mounted.url);
    const [first, second] = [`${name}-rep-1`, `${name}-rep-2`];
    const a = post(mounted.url, headers, call(11, 'hold', { key: first }));
    await until(() => holds.has(first));
    const b = post(mounted.url, headers, call(11, 'hold', { key: second }));
    await until(() => holds.has(second));
    holds.get(first)!();
    expect(await (await a).json()).toMatchObject({
      id: 11,
      result: { content: [{ text: `released ${first}` }] },
    });
    await post(mounted.url, headers, {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 11 },
    });
    expect(await (await b).json()).toMatchObject({ id: 11, error: { code: -32800 } });
    await until(() => cancelled.includes(second));
  });

  it('refuses batches in a session that asked for a version it cannot have', async () => {
    const init = await post(
      mounted.url,
      {},
      {
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: 'not-a-version',
          capabilities: {},
          clientInfo: { name: 't', version: '1' },
        },
      },
    );
    const headers = { 'mcp-session-id': init.headers.get('mcp-session-id')! };
    expect((await init.json()).result.protocolVersion).not.toBe('not-a-version');
    const batch = await post(mounted.url, headers, [
      call(1, 'echo', { text: 'a' }),
      call(2, 'echo', { text: 'b' }),
    ]);
    expect(batch.status).toBe(400);
    expect((await batch.json()).error.message).toContain('batches are not allowed');
  });

  it('answers a call still running when its session is deleted, instead of leaving it hanging', async () => {
    const headers = await openSession(mounted.url);
    const key = `${name}-delete`;
    const pending = post(mounted.url, headers, call(1, 'hold', { key }));
    await until(() => holds.has(key));
    const deleted = await fetch(mounted.url, { method: 'DELETE', headers });
    expect(deleted.status).toBe(200);
    const answer = await pending;
    expect(answer.status).toBe(404);
    expect((await answer.json()).error.code).toBe(-32001);
    const after = await post(mounted.url, headers, call(2, 'echo', { text: 'x' }));
    expect(after.status).toBe(404);
  });

  it('under load: with 64 calls in flight on two sessions, a cancel ends its call, a deleted session ends its own, progress streams, and the rest answer', async () => {
    const a = await openSession(mounted.url);
    const b = await openSession(mounted.url);
    const keys = (tag: string) => Array.from({ length: 32 }, (_, i) => `${name}-load-${tag}-${i}`);
    // Both sessions use the same ids: each session's are its own.
    const onA = keys('a').map((key, i) => post(mounted.url, a, call(1000 + i, 'hold', { key })));
    const onB = keys('b').map((key, i) => post(mounted.url, b, call(1000 + i, 'hold', { key })));
    await until(() => [...keys('a'), ...keys('b')].every((key) => holds.has(key)));
    const counting = post(mounted.url, a, call('load-count', 'count', { to: 3 }, { progressToken: 'load' }));
    const plain = post(mounted.url, a, call('load-echo', 'echo', { text: 'plain' }));
    const ack = await post(mounted.url, a, {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 1005, reason: 'test' },
    });
    expect(ack.status).toBe(202);
    const deleted = await fetch(mounted.url, { method: 'DELETE', headers: { ...HEADERS, ...b } });
    expect(deleted.status).toBe(200);
    for (const [i, key] of keys('a').entries()) if (i !== 5) holds.get(key)!();

    const answersA = await Promise.all(onA.map(async (pending) => (await pending).json()));
    expect(answersA[5]).toMatchObject({ id: 1005, error: { code: -32800 } });
    answersA.forEach((answer, i) => {
      if (i !== 5) {
        expect(answer).toMatchObject({
          id: 1000 + i,
          result: { content: [{ text: `released ${keys('a')[i]}` }] },
        });
      }
    });
    const answersB = await Promise.all(onB.map((pending) => pending));
    expect(answersB.map((answer) => answer.status)).toEqual(keys('b').map(() => 404));
    // The cancelled call and every call of the deleted session were aborted; no other call was.
    await until(() => [keys('a')[5]!, ...keys('b')].every((key) => cancelled.includes(key)));
    expect(cancelled.filter((key) => key.startsWith(`${name}-load-a-`))).toEqual([keys('a')[5]]);

    const streamed = await counting;
    expect(streamed.headers.get('content-type')).toBe('text/event-stream');
    expect((await messagesOf(streamed)).map((m) => m.method ?? 'result')).toEqual([
      'notifications/progress',
      'notifications/progress',
      'notifications/progress',
      'result',
    ]);
    const echoed = await plain;
    expect(echoed.headers.get('content-type')).toBe('application/json');
    expect(await echoed.json()).toMatchObject({ id: 'load-echo', result: { content: [{ text: 'plain' }] } });
  });

  it('gives the standalone GET stream one holder at a time', async () => {
    const headers = await openSession(mounted.url);
    const controller = new AbortController();
    const stream = await fetch(mounted.url, {
      headers: { ...headers, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toBe('text/event-stream');
    const second = await fetch(mounted.url, { headers: { ...headers, accept: 'text/event-stream' } });
    expect(second.status).toBe(409);
    await second.body?.cancel();
    controller.abort();
  });

  it('refuses what the SDK transport refuses, with its codes', async () => {
    const headers = await openSession(mounted.url);
    const noAccept = await fetch(mounted.url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(call(1, 'echo', { text: 'x' })),
    });
    expect(noAccept.status).toBe(406);
    const badVersion = await post(
      mounted.url,
      { ...headers, 'mcp-protocol-version': '1999-01-01' },
      call(1, 'echo', { text: 'x' }),
    );
    expect(badVersion.status).toBe(400);
    const invalid = await post(mounted.url, headers, {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      extra: true,
    });
    expect(invalid.status).toBe(400);
    expect((await invalid.json()).error.code).toBe(-32600);
    const reinit = await post(mounted.url, headers, {
      jsonrpc: '2.0',
      id: 3,
      method: 'initialize',
      params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    expect(reinit.status).toBe(400);
    expect((await reinit.json()).error.message).toContain('already initialized');
  });
});

describe('http.stateless answers', () => {
  it('answers a plain call with JSON and a call with progress with SSE, the result last', async () => {
    const server = createMcpServer({
      name: 's',
      version: '1',
      logLevel: 'silent',
      http: { stateless: true },
    });
    server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
    server.tools.register({
      name: 'count',
      inputSchema: { to: z.number().int() },
      handler: async ({ to }, ctx) => {
        for (let i = 1; i <= to; i++) await ctx.progress(i, to);
        return `counted to ${to}`;
      },
    });
    const listening = await listen(server, { port: 0 });
    try {
      const url = `${listening.url}/mcp`;
      const headers = { 'mcp-protocol-version': VERSION };
      const plain = await post(url, headers, call(1, 'echo', { text: 'x' }));
      expect(plain.headers.get('content-type')).toBe('application/json');
      expect(await plain.json()).toMatchObject({ id: 1, result: { content: [{ text: 'x' }] } });
      const streamed = await post(url, headers, call(2, 'count', { to: 2 }, { progressToken: 't' }));
      expect(streamed.headers.get('content-type')).toBe('text/event-stream');
      const messages = await messagesOf(streamed);
      expect(messages.map((m) => m.method ?? m.id)).toEqual([
        'notifications/progress',
        'notifications/progress',
        2,
      ]);
    } finally {
      await listening.close();
    }
  });
});

describe('the session transport on its own', () => {
  async function connected(options: { keepAliveMs?: number; jsonResponse?: boolean } = {}) {
    const transport = new SessionTransport({
      jsonResponse: options.jsonResponse ?? false,
      onsessioninitialized: () => {},
      onsessionclosed: () => {},
      ...(options.keepAliveMs !== undefined && { keepAliveMs: options.keepAliveMs }),
    });
    const release = deferred();
    const server = new Server({ name: 's', version: '1' }, { capabilities: { tools: {}, logging: {} } });
    server.setRequestHandler('tools/list', async (_request, ctx) => {
      await release.promise;
      void ctx;
      return { tools: [] };
    });
    await server.connect(transport);
    const request = (body: unknown, headers: Record<string, string> = {}) =>
      transport.handleRequest(
        new Request('http://localhost/mcp', {
          method: 'POST',
          headers: { ...HEADERS, ...headers },
          body: JSON.stringify(body),
        }),
        { parsedBody: body },
      );
    const init = await request({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    const headers = {
      'mcp-session-id': init.headers.get('mcp-session-id')!,
      'mcp-protocol-version': VERSION,
    };
    return { transport, server, release, request: (body: unknown) => request(body, headers) };
  }

  it('turns a long call into an SSE stream with keep-alives, the result last', async () => {
    const { request, release, server } = await connected({ keepAliveMs: 40 });
    const response = await request({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe(': keepalive\n\n');
    release.resolve();
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('"id":1');
    expect(rest).toContain('"tools":[]');
    await server.close();
  });

  it('answers a batch with one JSON array in request order', async () => {
    const { request, release, server } = await connected();
    release.resolve();
    const response = await request([
      { jsonrpc: '2.0', id: 'b', method: 'tools/list' },
      { jsonrpc: '2.0', id: 'a', method: 'ping' },
    ]);
    expect(response.headers.get('content-type')).toBe('application/json');
    const body = await response.json();
    expect(body.map((m: { id: string }) => m.id)).toEqual(['b', 'a']);
    await server.close();
  });

  it('keeps JSON under jsonResponse, even for a long call', async () => {
    const { request, release, server } = await connected({ jsonResponse: true, keepAliveMs: 20 });
    const pending = request({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    await new Promise((resolve) => setTimeout(resolve, 80));
    release.resolve();
    const response = await pending;
    expect(response.headers.get('content-type')).toBe('application/json');
    expect((await response.json()).result.tools).toEqual([]);
    await server.close();
  });

  it('answers a batch that repeats an id with each request under the id it was sent with', async () => {
    const { request, release, server } = await connected();
    release.resolve();
    const response = await request([
      { jsonrpc: '2.0', id: 'same', method: 'tools/list' },
      { jsonrpc: '2.0', id: 'same', method: 'ping' },
    ]);
    const body = await response.json();
    expect(body).toHaveLength(2);
    expect(body.map((m: { id: string }) => m.id)).toEqual(['same', 'same']);
    expect(body[0].result.tools).toEqual([]);
    expect(body[1].result).toEqual({});
    await server.close();
  });

  it('never gives a repeat the private id a client already used in the same batch', async () => {
    const { request, release, server } = await connected();
    release.resolve();
    const response = await request([
      { jsonrpc: '2.0', id: 'mcpkit-repeated-id-1', method: 'ping' },
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: 1, method: 'ping' },
    ]);
    const body = await response.json();
    expect(body.map((m: { id: unknown }) => m.id)).toEqual(['mcpkit-repeated-id-1', 1, 1]);
    expect(body.every((m: { result?: unknown }) => m.result !== undefined)).toBe(true);
    await server.close();
  });

  it("keeps a batch member's result when a cancellation for it comes after it was answered", async () => {
    const { request, release, server } = await connected();
    const pending = request([
      { jsonrpc: '2.0', id: 'slow', method: 'tools/list' },
      { jsonrpc: '2.0', id: 'quick', method: 'ping' },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await request({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'quick' } });
    release.resolve();
    const body = await (await pending).json();
    expect(body[1]).toEqual({ jsonrpc: '2.0', id: 'quick', result: {} });
    expect(body[0].result.tools).toEqual([]);
    await server.close();
  });

  it('refuses a batch larger than 100 messages', async () => {
    const { request, server } = await connected();
    const response = await request(
      Array.from({ length: 101 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })),
    );
    expect(response.status).toBe(400);
    expect((await response.json()).error.code).toBe(-32600);
    await server.close();
  });
});
