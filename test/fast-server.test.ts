/**
 * CatalogServer's shortcuts (src/protocol/fastServer.ts) against the SDK's own path: the same
 * handler behind a plain SDK `Server` and behind a `CatalogServer`, fed the same raw JSON-RPC
 * messages, must answer the same. Plain shapes take the shortcuts, everything else the SDK's path,
 * so both kinds are sent: the answers are the oracle, not a list of expected values.
 */
import { InMemoryTransport, type JSONRPCMessage, Server } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { jsonRpcPost, readJsonRpc } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SharedModernTransport } from '../src/http/modernTransport.js';
import { CatalogServer, isPlainCall, isPlainCallResult, isPlainRequest } from '../src/protocol/fastServer.js';
import { openRaw } from './websocketHelpers.js';

/** What each tool name answers: the shapes the shortcuts take and the ones they must hand back. */
const RESULTS: Record<string, () => unknown> = {
  text: () => ({ content: [{ type: 'text', text: 'hi' }] }),
  error: () => ({ content: [{ type: 'text', text: 'bad' }], isError: true }),
  structured: () => ({ content: [{ type: 'text', text: '{"n":1}' }], structuredContent: { n: 1 } }),
  image: () => ({ content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }] }),
  extraBlockKey: () => ({ content: [{ type: 'text', text: 'hi', stray: 1 }] }),
  annotated: () => ({ content: [{ type: 'text', text: 'hi', annotations: { priority: 1 } }] }),
  meta: () => ({ content: [], _meta: { trace: 'x' } }),
  noContent: () => ({ structuredContent: { n: 2 } }),
  badIsError: () => ({ content: [], isError: 'yes' }),
  badBlock: () => ({ content: [{ type: 'text', text: 5 }] }),
  notObject: () => 'just a string',
  arrayStructured: () => ({ content: [], structuredContent: [1, 2] }),
  // An own `__proto__` key (as JSON.parse makes one): the SDK's record schema drops it.
  protoStructured: () => ({ content: [], structuredContent: JSON.parse('{"__proto__":{"x":1},"n":1}') }),
  throws: () => {
    throw Object.assign(new Error('boom'), { code: -32001 });
  },
};

const handler = async (request: { params: { name: string; arguments?: unknown; _meta?: unknown } }) => {
  // What the handler is given: the SDK hands it the request its schema returned (method and params).
  if (request.params.name === 'keys')
    return { content: [{ type: 'text', text: Object.keys(request).join() }] };
  const make = RESULTS[request.params.name];
  if (!make)
    return { content: [{ type: 'text', text: `args ${JSON.stringify(request.params.arguments ?? null)}` }] };
  return make();
};

async function connect(kind: 'sdk' | 'catalog') {
  const info = { name: 'diff', version: '1.0.0' };
  const options = { capabilities: { tools: {} } };
  const server = kind === 'sdk' ? new Server(info, options) : new CatalogServer(info, options);
  if (server instanceof CatalogServer) server.setToolCallHandler(handler);
  else server.setRequestHandler('tools/call', handler as never);
  server.setRequestHandler('tools/list', async () => ({ tools: [] }));
  const [client, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const answers = new Map<unknown, (message: JSONRPCMessage) => void>();
  client.onmessage = (message) => {
    const id = (message as { id?: unknown }).id;
    answers.get(id)?.(message);
    answers.delete(id);
  };
  await client.start();
  const ask = (message: Record<string, unknown>) =>
    new Promise<JSONRPCMessage | undefined>((resolve) => {
      answers.set(message.id, resolve);
      void client.send(message as JSONRPCMessage);
      // A message the server drops (or that is not a request) gets no answer.
      setTimeout(() => resolve(undefined), 200);
    });
  await ask({
    jsonrpc: '2.0',
    id: 'init',
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
  });
  await client.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
  return { server, ask, close: () => server.close() };
}

/** Sorts object keys, so answers compare by content, not by the order fields were written. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

const call = (id: unknown, params: unknown, extra: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  ...(params !== undefined && { params }),
  ...extra,
});

/** A 2026-07-28 `tools/call` of echo with `meta` as its envelope, sent to `url`: refused, never run. */
async function expectEnvelopeRefused(url: string, id: number, meta: Record<string, unknown>) {
  const headers = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
  const message = call(id, { name: 'echo', arguments: { text: 'hi' }, _meta: meta });
  const text = JSON.stringify(await readJsonRpc(await fetch(`${url}/mcp`, jsonRpcPost(message, headers))));
  expect(text).toContain('envelope');
  expect(text).not.toContain('"text":"hi"');
}

/** Messages, plain and not: every tool above, then shapes the shortcuts must not take. */
const MESSAGES: Record<string, unknown>[] = [
  ...Object.keys(RESULTS).map((name, i) => call(i + 1, { name })),
  call(100, { name: 'echo', arguments: { a: 1 } }),
  call(101, { name: 'echo', arguments: { a: 1 }, _meta: { progressToken: 'p1' } }),
  call(102, { name: 'echo', _meta: { progressToken: 7 } }),
  call(103, { name: 'echo', _meta: { progressToken: 1.5 } }),
  call(104, { name: 'echo', _meta: { progressToken: { x: 1 } } }),
  call(105, { name: 'echo', _meta: { 'io.modelcontextprotocol/related-task': { taskId: 't' } } }),
  call(106, { name: 'echo', task: { ttl: 1000 } }),
  call(107, { name: 'echo', stray: true }),
  call(108, { name: 42 }),
  call(109, { name: 'echo', arguments: [1, 2] }),
  call(110, { name: 'echo', arguments: 'text' }),
  call(111, undefined),
  call(112, { name: 'echo' }, { extra: 1 }),
  call(113.5, { name: 'echo' }),
  call('str-id', { name: 'text' }),
  call(114, { name: 'echo', _meta: 'not an object' }),
  call(122, { name: 'keys' }),
  call(119, { name: 'echo', arguments: JSON.parse('{"__proto__":{"x":1},"b":2}') }),
  call(120, { name: 'echo', _meta: JSON.parse('{"__proto__":{"progressToken":1.5},"k":1}') }),
  call(121, { name: 'echo', arguments: { a: 1e21, b: -0, c: 2 ** 53, d: '\u{1F600}' } }),
  call(-0, { name: 'text' }),
  call(1e21, { name: 'text' }),
  call(2 ** 53, { name: 'text' }),
  { jsonrpc: '2.0', id: 115, method: 'tools/list' },
  { jsonrpc: '2.0', id: 116, method: 'tools/list', params: { _meta: { progressToken: 'x' } } },
  { jsonrpc: '1.0', id: 117, method: 'tools/list' },
  { jsonrpc: '2.0', id: 118, method: 'no/such/method' },
];

describe('CatalogServer shortcuts', () => {
  it('are active on the installed SDK (its private members are where the shortcuts expect them)', async () => {
    const { server, close } = await connect('catalog');
    expect((server as CatalogServer).fastPathActive()).toBe(true);
    await close();
  });

  it('answer every message exactly as the SDK alone does', async () => {
    const sdk = await connect('sdk');
    const catalog = await connect('catalog');
    const plainSeen = { request: 0, call: 0, result: 0 };
    for (const message of MESSAGES) {
      if (isPlainRequest(message)) plainSeen.request++;
      if (message.method === 'tools/call' && isPlainCall(message.params)) plainSeen.call++;
      const [expected, actual] = await Promise.all([sdk.ask(message), catalog.ask(message)]);
      expect(canonical(actual), JSON.stringify(message)).toEqual(canonical(expected));
    }
    for (const make of Object.values(RESULTS)) {
      try {
        if (isPlainCallResult(make())) plainSeen.result++;
      } catch {}
    }
    // Both kinds were exercised: shapes the shortcuts took and shapes they handed to the SDK.
    expect(plainSeen.request).toBeGreaterThan(10);
    expect(plainSeen.request).toBeLessThan(MESSAGES.length);
    expect(plainSeen.call).toBeGreaterThan(5);
    expect(plainSeen.result).toBeGreaterThan(2);
    expect(plainSeen.result).toBeLessThan(Object.keys(RESULTS).length);
    await sdk.close();
    await catalog.close();
  });

  it('take plain shapes only', () => {
    expect(isPlainRequest({ jsonrpc: '2.0', id: 1, method: 'm' })).toBe(true);
    expect(isPlainRequest({ jsonrpc: '2.0', id: 1, method: 'm', params: {} })).toBe(true);
    expect(isPlainRequest({ jsonrpc: '2.0', id: 1, method: 'm', result: {} })).toBe(false);
    expect(isPlainRequest({ jsonrpc: '2.0', id: 2 ** 53, method: 'm' })).toBe(false);
    expect(isPlainRequest({ jsonrpc: '2.0', id: null, method: 'm' })).toBe(false);
    expect(isPlainRequest({ jsonrpc: '2.0', method: 'm' })).toBe(false);
    expect(
      isPlainRequest(Object.assign(Object.create({ inherited: 1 }), { jsonrpc: '2.0', id: 1, method: 'm' })),
    ).toBe(false);
    expect(isPlainCallResult({ content: [{ type: 'text', text: 'a' }] })).toBe(true);
    expect(isPlainCallResult({ content: [{ type: 'text', text: 'a', _meta: {} }] })).toBe(false);
    expect(isPlainCallResult({ content: [], resultType: 'complete' })).toBe(false);
  });
});

describe('the 2026-07-28 envelope check', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  const modernCall = (id: number, meta: Record<string, unknown>) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'echo', arguments: { text: 'hi' }, _meta: meta },
  });
  const envelope = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };

  it('still refuses a bad envelope after the same client sent good ones', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
    const listening = await listen(server, { port: 0 });
    close = () => listening.close();
    const url = `${listening.url}/mcp`;
    const headers = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
    for (let i = 1; i <= 3; i++) {
      const good = await fetch(url, jsonRpcPost(modernCall(i, envelope), headers));
      expect(good.status).toBe(200);
      expect(JSON.stringify(await readJsonRpc(good))).toContain('"text":"hi"');
    }
    // The same keys with values the schema refuses: a capabilities array, a client info without a name.
    for (const bad of [
      { ...envelope, 'io.modelcontextprotocol/clientCapabilities': [] },
      { ...envelope, 'io.modelcontextprotocol/clientInfo': { version: '1' } },
      { ...envelope, 'io.modelcontextprotocol/logLevel': 'loud' },
    ]) {
      const refused = await fetch(url, jsonRpcPost(modernCall(9, bad), headers));
      const text = JSON.stringify(await readJsonRpc(refused));
      expect(text, JSON.stringify(bad)).toContain('envelope');
      expect(text).not.toContain('"text":"hi"');
    }
  });
});

describe('the remembered 2026-07-28 envelopes', () => {
  it('are not fed by a 2025-era WebSocket connection of the same server', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
    const listening = await listen(server, { port: 0 });
    const bad = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'ws', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': 'poisoned',
    };
    const socket = await openRaw(`${listening.url.replace(/^http/, 'ws')}/mcp`);
    try {
      const answers = new Map<unknown, (message: unknown) => void>();
      socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        answers.get(message.id)?.(message);
      });
      const ask = (message: Record<string, unknown>) =>
        new Promise<unknown>((resolve) => {
          answers.set(message.id, resolve);
          socket.send(JSON.stringify(message));
        });
      await ask({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws', version: '1' } },
      });
      socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      // The 2025 era has no envelope: its check lets this one through.
      const legacy = await ask(call(2, { name: 'echo', arguments: { text: 'hi' }, _meta: bad }));
      expect(JSON.stringify(legacy)).toContain('"text":"hi"');
      await expectEnvelopeRefused(listening.url, 3, bad);
    } finally {
      socket.close();
      await listening.close();
    }
  });

  it('are not fed by a 2025-era server, whose envelope check accepts anything', async () => {
    // A 2025-era session answers a call whose _meta carries an envelope the 2026 schema refuses.
    const legacy = await connect('catalog');
    const bad = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': ['poisoned'],
    };
    const answer = await legacy.ask(call(1, { name: 'text', _meta: bad }));
    expect(JSON.stringify(answer)).toContain('"text":"hi"');
    await legacy.close();
    // The same envelope toward a 2026-07-28 server of the same process is still refused.
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register({ name: 'echo', inputSchema: { text: z.string() }, handler: ({ text }) => text });
    const listening = await listen(server, { port: 0 });
    try {
      await expectEnvelopeRefused(listening.url, 2, bad);
    } finally {
      await listening.close();
    }
  });
});

describe('CatalogServer shortcuts on the 2026-07-28 era', () => {
  const ENVELOPE = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };

  /** A server of `kind` bound to the 2026-07-28 era through the transport mcpkit's HTTP door uses. */
  async function modern(kind: 'sdk' | 'catalog') {
    const info = { name: 'diff', version: '1.0.0' };
    const options = { capabilities: { tools: {} }, supportedProtocolVersions: ['2026-07-28'] };
    const server = kind === 'sdk' ? new Server(info, options) : new CatalogServer(info, options);
    if (server instanceof CatalogServer) server.setToolCallHandler(handler);
    else server.setRequestHandler('tools/call', handler as never);
    server.setRequestHandler('tools/list', async () => ({ tools: [] }));
    const transport = new SharedModernTransport('2026-07-28');
    await server.connect(transport);
    const ask = async (message: Record<string, unknown>) => {
      const request = new Request('http://localhost/mcp', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
        },
        body: JSON.stringify(message),
      });
      const answered = (async () => {
        const answer = await transport.serve(request, message, undefined);
        if (typeof answer === 'symbol') return answer.toString();
        return { status: answer.status, body: await answer.text() };
      })();
      // A message the server drops gets no answer.
      return Promise.race([answered, new Promise((resolve) => setTimeout(() => resolve('no answer'), 300))]);
    };
    return { ask, close: () => server.close() };
  }

  const withEnvelope = (message: Record<string, unknown>, envelope: unknown = ENVELOPE) => {
    const params = (message.params ?? {}) as Record<string, unknown>;
    const meta = params._meta;
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return message;
    return { ...message, params: { ...params, _meta: { ...meta, ...(envelope as object) } } };
  };

  it('answer every message exactly as the SDK alone does', async () => {
    const sdk = await modern('sdk');
    const catalog = await modern('catalog');
    const messages = [
      ...MESSAGES.map((message) => {
        const params = (message.params ?? {}) as Record<string, unknown>;
        return withEnvelope({ ...message, params: { _meta: {}, ...params } });
      }),
      // Envelopes the schema refuses, each sent twice (the second time the memo could answer).
      ...[
        { ...ENVELOPE, 'io.modelcontextprotocol/clientCapabilities': [] },
        { ...ENVELOPE, 'io.modelcontextprotocol/clientInfo': { version: '1' } },
        { ...ENVELOPE, 'io.modelcontextprotocol/protocolVersion': 7 },
        JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(ENVELOPE).slice(1)}`),
      ].flatMap((envelope, i) => [
        withEnvelope(call(300 + i, { name: 'text', _meta: {} }), envelope),
        withEnvelope(call(400 + i, { name: 'text', _meta: {} }), envelope),
      ]),
      call(500, { name: 'text' }),
      withEnvelope(call(501, { name: 'text', _meta: {}, requestState: 'abc' })),
      withEnvelope(call(502, { name: 'text', _meta: {}, inputResponses: { a: { action: 'cancel' } } })),
    ];
    let shortcuts = 0;
    for (const message of messages) {
      if (isPlainRequest(message) && message.method === 'tools/call' && isPlainCall(message.params))
        shortcuts++;
      const expected = await sdk.ask(message);
      const actual = await catalog.ask(message);
      expect(actual, JSON.stringify(message)).toEqual(expected);
    }
    expect(shortcuts).toBeGreaterThan(10);
    await sdk.close();
    await catalog.close();
  });
});
