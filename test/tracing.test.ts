/**
 * OpenTelemetry traces: spans for HTTP requests, MCP requests, tool executions, resource reads and
 * completion steps, nested through the registered context manager, with an incoming `traceparent`
 * honoured. The SDK is registered globally here only; mcpkit finds it through `@opentelemetry/api`.
 */
import * as otel from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { createMcpServer, type McpKitServer, type ModelClient } from 'mcpkit';
import { jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { parseTraceparent } from 'mcpkit/unstable';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixtureServer } from './fixtures.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

async function openSession(server: McpKitServer) {
  const res = await request(server, '/mcp', jsonRpcPost(INIT));
  const sessionId = res.headers.get('mcp-session-id')!;
  await res.text();
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
  await request(
    server,
    '/mcp',
    jsonRpcPost({ jsonrpc: '2.0', method: 'notifications/initialized' }, headers),
  );
  return headers;
}

/** Posts one JSON-RPC request to `/mcp` on the session `headers` name; resolves with the answer. */
async function postMcp(
  server: McpKitServer,
  headers: Record<string, string>,
  id: number,
  method: string,
  params: object,
) {
  return readJsonRpc(
    await request(server, '/mcp', jsonRpcPost({ jsonrpc: '2.0', id, method, params }, headers)),
  );
}

const byName = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);
const one = (name: string): ReadableSpan => {
  const spans = byName(name);
  expect(spans, `spans named ${name}`).toHaveLength(1);
  return spans[0]!;
};
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

beforeAll(() => {
  contextManager.enable();
  otel.context.setGlobalContextManager(contextManager);
  otel.trace.setGlobalTracerProvider(provider);
});

afterAll(async () => {
  otel.trace.disable();
  otel.context.disable();
  await provider.shutdown();
});

afterEach(() => exporter.reset());

describe('spans with a globally registered provider', () => {
  it('nests HTTP → tools/call under the incoming traceparent, one span for the call and its run', async () => {
    const server = fixtureServer();
    const headers = await openSession(server);
    exporter.reset();
    const answer = await postMcp(server, { ...headers, traceparent: TRACEPARENT }, 2, 'tools/call', {
      name: 'add',
      arguments: { a: 1, b: 2 },
    });
    expect(answer.result.structuredContent).toEqual({ sum: 3 });

    const http = one('POST /mcp');
    const mcp = one('tools/call add');
    // The MCP conventions: the server span of tools/call is the tool's execution span.
    expect(
      exporter
        .getFinishedSpans()
        .map((s) => s.name)
        .sort(),
    ).toEqual(['POST /mcp', 'tools/call add']);
    expect(http.spanContext().traceId).toBe(TRACE_ID);
    expect(parentOf(http)).toBe(PARENT_ID);
    expect(parentOf(mcp)).toBe(http.spanContext().spanId);
    expect(mcp.spanContext().traceId).toBe(TRACE_ID);

    expect(http.kind).toBe(otel.SpanKind.SERVER);
    expect(http.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/mcp',
      'http.response.status_code': 200,
    });
    expect(mcp.kind).toBe(otel.SpanKind.SERVER);
    expect(mcp.attributes).toEqual({
      'mcp.method.name': 'tools/call',
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'add',
      'mcp.session.id': headers['mcp-session-id'],
      'jsonrpc.request.id': '2',
      'network.transport': 'tcp',
      'network.protocol.name': 'http',
      'mcpkit.origin': 'http',
    });
    expect(mcp.status.code).toBe(otel.SpanStatusCode.UNSET);
    await server.close();
  });

  it('marks a tools/call span whose tool failed with tool_error, and keeps made-up names out of span names', async () => {
    const server = fixtureServer();
    const headers = await openSession(server);
    exporter.reset();
    const call = (id: number, name: string) =>
      postMcp(server, headers, id, 'tools/call', { name, arguments: {} });
    expect((await call(5, 'boom')).result.isError).toBe(true);
    const boom = one('tools/call boom');
    expect(boom.status.code).toBe(otel.SpanStatusCode.ERROR);
    expect(boom.attributes).toMatchObject({ 'error.type': 'tool_error', 'mcpkit.error.code': 'INTERNAL' });

    expect((await call(6, 'made-up-name-42')).error.code).toBe(-32602);
    const unknown = one('tools/call');
    expect(unknown.attributes).toMatchObject({
      'gen_ai.tool.name': 'made-up-name-42',
      'error.type': '-32602',
    });
    await server.close();
  });

  it('takes the parent from params._meta.traceparent and links the HTTP request span', async () => {
    const server = fixtureServer();
    const headers = await openSession(server);
    exporter.reset();
    const answer = await postMcp(server, headers, 7, 'tools/call', {
      name: 'add',
      arguments: { a: 2, b: 2 },
      _meta: { traceparent: TRACEPARENT },
    });
    expect(answer.result.structuredContent).toEqual({ sum: 4 });
    const http = one('POST /mcp');
    const mcp = one('tools/call add');
    expect(parentOf(http)).toBeUndefined();
    expect(http.spanContext().traceId).not.toBe(TRACE_ID);
    expect(mcp.spanContext().traceId).toBe(TRACE_ID);
    expect(parentOf(mcp)).toBe(PARENT_ID);
    expect(mcp.links.map((l) => l.context.spanId)).toEqual([http.spanContext().spanId]);
    await server.close();
  });

  it('records the client address on the HTTP and MCP request spans', async () => {
    // The MCP request learns the address from the facts the policy layer keeps for each request.
    const server = fixtureServer({ auth: { anonymous: ['admin'] } });
    const headers = await openSession(server);
    exporter.reset();
    const init = jsonRpcPost(
      { jsonrpc: '2.0', id: 8, method: 'tools/list', params: {} },
      {
        ...headers,
        host: 'localhost',
      },
    );
    const res = await server.fetch(new Request('http://localhost/mcp', init), {
      clientAddress: '203.0.113.7',
    });
    expect((await readJsonRpc(res)).result.tools.length).toBeGreaterThan(0);
    expect(one('POST /mcp').attributes['client.address']).toBe('203.0.113.7');
    expect(one('tools/list').attributes['client.address']).toBe('203.0.113.7');
    await server.close();
  });

  it('starts a new trace without a traceparent, and keeps REST route names bounded', async () => {
    const server = fixtureServer();
    await request(server, '/tools/add/call', jsonRpcPost({ a: 1, b: 1 }));
    await request(server, '/tools/no-such-tool-123', {});
    const spans = exporter.getFinishedSpans().filter((s) => s.kind === otel.SpanKind.SERVER);
    const names = spans.map((s) => s.name);
    expect(names.some((n) => n.includes('no-such-tool-123'))).toBe(false);
    for (const span of spans) expect(parentOf(span)).toBeUndefined();
    await server.close();
  });

  it('nests ctx.callTool under the calling tool, with the caller as an attribute', async () => {
    const server = fixtureServer();
    server.tools.register({
      name: 'outer',
      handler: async (_args, ctx) => ctx.callTool('add', { a: 2, b: 3 }),
    });
    await server.executor.execute('outer', {}, { caller: { id: 'user-7' }, origin: 'rest' });
    const outer = one('execute_tool outer');
    const inner = one('execute_tool add');
    expect(parentOf(outer)).toBeUndefined();
    expect(parentOf(inner)).toBe(outer.spanContext().spanId);
    expect(inner.spanContext().traceId).toBe(outer.spanContext().traceId);
    expect(outer.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'outer',
      'mcpkit.caller.id': 'user-7',
      'mcpkit.origin': 'rest',
    });
    expect(inner.attributes).toMatchObject({ 'mcpkit.caller.id': 'user-7', 'mcpkit.origin': 'internal' });
    await server.close();
  });

  it('gives a resource read its own span under the HTTP request', async () => {
    const server = fixtureServer();
    const headers = await openSession(server);
    exporter.reset();
    const answer = await postMcp(server, headers, 3, 'resources/read', { uri: 'fixture://greeting' });
    expect(answer.result.contents[0].text).toBe('hello');
    const read = one('resources/read');
    expect(read.attributes).toMatchObject({
      'mcp.method.name': 'resources/read',
      'mcp.resource.uri': 'fixture://greeting',
    });
    expect(parentOf(read)).toBe(one('POST /mcp').spanContext().spanId);
    await server.close();
  });

  it('marks a failing tool span, and a failed MCP request span', async () => {
    const server = fixtureServer();
    const result = await server.executor.execute('boom', {});
    expect(result.isError).toBe(true);
    const boom = one('execute_tool boom');
    expect(boom.status.code).toBe(otel.SpanStatusCode.ERROR);
    expect(boom.attributes).toMatchObject({ 'error.type': 'tool_error', 'mcpkit.error.code': 'INTERNAL' });

    const headers = await openSession(server);
    exporter.reset();
    expect((await postMcp(server, headers, 4, 'prompts/get', { name: 'nope' })).error).toBeDefined();
    const get = one('prompts/get');
    expect(get.status.code).toBe(otel.SpanStatusCode.ERROR);
    expect(get.attributes).toMatchObject({ 'gen_ai.prompt.name': 'nope', 'error.type': '-32602' });
    await server.close();
  });

  it('records a tool run into a span the caller passes instead of starting its own', async () => {
    const server = fixtureServer();
    const span = provider.getTracer('caller').startSpan('my tool run');
    const result = await server.executor.execute('boom', {}, { span });
    span.end();
    expect(result.isError).toBe(true);
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['my tool run']);
    expect(one('my tool run').attributes).toMatchObject({
      'error.type': 'tool_error',
      'mcpkit.error.code': 'INTERNAL',
    });
    await server.close();
  });

  it('traces a completion job, one span per step, tool calls under their step', async () => {
    let turn = 0;
    const model: ModelClient = {
      name: 'scripted',
      async complete() {
        turn++;
        const usage = { inputTokens: 10, outputTokens: 5 };
        if (turn === 1) {
          return {
            text: '',
            toolCalls: [{ id: 'c1', name: 'add', arguments: '{"a":1,"b":2}' }],
            finishReason: 'tool_calls',
            usage,
          };
        }
        return { text: 'three', toolCalls: [], finishReason: 'stop', usage };
      },
      // biome-ignore lint/correctness/useYield: never streamed here
      async *stream() {
        throw new Error('not streamed');
      },
    };
    const server = fixtureServer({ completions: { providers: { scripted: model } } });
    const job = await server.completions.run({
      model: { provider: 'scripted', model: 'm' },
      messages: [{ role: 'user', content: 'add' }],
    });
    expect(job.status).toBe('succeeded');
    const completion = one('completion');
    const steps = byName('completion step');
    expect(steps).toHaveLength(2);
    for (const step of steps) expect(parentOf(step)).toBe(completion.spanContext().spanId);
    const first = steps.find((s) => s.attributes['mcpkit.completion.step'] === 0)!;
    expect(parentOf(one('execute_tool add'))).toBe(first.spanContext().spanId);
    expect(completion.attributes).toMatchObject({
      'gen_ai.provider.name': 'scripted',
      'gen_ai.request.model': 'm',
      'mcpkit.completion.status': 'succeeded',
      'gen_ai.usage.input_tokens': 20,
    });
    await server.close();
  });

  it('honours tracing: false', async () => {
    const server = fixtureServer({ tracing: false });
    await server.executor.execute('add', { a: 1, b: 1 });
    await request(server, '/tools', {});
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    await server.close();
  });

  it('uses an explicit tracer and API when given', async () => {
    const tracer = provider.getTracer('explicit');
    const server = createMcpServer({ logLevel: 'silent', tracing: { tracer, api: otel } });
    server.tools.register({ name: 'noop', handler: () => 'ok' });
    await server.executor.execute('noop', {});
    expect(one('execute_tool noop').instrumentationScope.name).toBe('explicit');
    await server.close();
  });
});

describe('propagation', () => {
  /** A propagator of a made-up format: `x-parent: <trace id>/<span id>`. */
  const custom: otel.TextMapPropagator = {
    inject() {},
    extract(context, carrier, getter) {
      const value = getter.get(carrier, 'x-parent');
      const [traceId, spanId] = (Array.isArray(value) ? value[0] : value)?.split('/') ?? [];
      if (!traceId || !spanId) return context;
      return otel.trace.setSpanContext(context, { traceId, spanId, traceFlags: 1, isRemote: true });
    },
    fields: () => ['x-parent'],
  };

  it('takes the parent of an HTTP request from the registered propagator', async () => {
    otel.propagation.setGlobalPropagator(custom);
    try {
      const server = fixtureServer();
      await request(server, '/tools', { headers: { 'x-parent': `${TRACE_ID}/${PARENT_ID}` } });
      const http = one('GET /tools');
      expect(http.spanContext().traceId).toBe(TRACE_ID);
      expect(parentOf(http)).toBe(PARENT_ID);
      await server.close();
    } finally {
      otel.propagation.disable();
    }
  });

  it('without a propagator, reads traceparent even inside an active span', async () => {
    const server = fixtureServer();
    const outer = provider.getTracer('app');
    await outer.startActiveSpan('app work', async (span) => {
      await request(server, '/tools', { headers: { traceparent: TRACEPARENT } });
      span.end();
    });
    const http = one('GET /tools');
    expect(http.spanContext().traceId).toBe(TRACE_ID);
    expect(parentOf(http)).toBe(PARENT_ID);
    await server.close();
  });
});

describe('without a context manager', () => {
  it('still records every span, and nests again once one is registered', async () => {
    otel.context.disable();
    // Its own Tracing (not the shared global one), first used while no context manager is registered.
    const server = fixtureServer({ tracing: {} });
    server.tools.register({
      name: 'outer',
      handler: async (_args, ctx) => ctx.callTool('add', { a: 1, b: 1 }),
    });
    try {
      await server.executor.execute('outer', {});
      expect(byName('execute_tool outer')).toHaveLength(1);
      expect(byName('execute_tool add')).toHaveLength(1);
    } finally {
      contextManager.enable();
      otel.context.setGlobalContextManager(contextManager);
    }
    exporter.reset();
    await server.executor.execute('outer', {});
    expect(parentOf(one('execute_tool add'))).toBe(one('execute_tool outer').spanContext().spanId);
    await server.close();
  });
});

describe('without a provider', () => {
  it('records nothing and throws nothing', async () => {
    otel.trace.disable();
    try {
      const server = fixtureServer();
      const headers = await openSession(server);
      const answer = await postMcp(server, { ...headers, traceparent: TRACEPARENT }, 2, 'tools/call', {
        name: 'add',
        arguments: { a: 1, b: 2 },
      });
      expect(answer.result.structuredContent).toEqual({ sum: 3 });
      expect((await server.executor.execute('boom', {})).isError).toBe(true);
      expect(exporter.getFinishedSpans()).toHaveLength(0);
      await server.close();
    } finally {
      otel.trace.setGlobalTracerProvider(provider);
    }
  });

  it('parses traceparent strictly', () => {
    expect(parseTraceparent(TRACEPARENT)).toEqual({
      traceId: TRACE_ID,
      spanId: PARENT_ID,
      traceFlags: 1,
      isRemote: true,
    });
    expect(parseTraceparent(`00-${'0'.repeat(32)}-${PARENT_ID}-01`)).toBeUndefined();
    expect(parseTraceparent(`ff-${TRACE_ID}-${PARENT_ID}-01`)).toBeUndefined();
    expect(parseTraceparent('garbage')).toBeUndefined();
    expect(parseTraceparent(null)).toBeUndefined();
  });
});
