/**
 * Hostile input on every door (REST, MCP over HTTP, WebSocket, stdio): prototype-pollution keys are
 * dropped before any handler sees them, JSON-RPC batches are refused where the protocol version
 * forbids them, and handlers that crash give errors without taking the server down.
 */
import { PassThrough } from 'node:stream';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { type Listening, listen, serveStdio } from 'mcpkit/node';
import { jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseJsonSafe, stripPollution } from '../src/core/safeJson.js';
import { messagesOf } from './fixtures.js';
import { rawPeer } from './websocketHelpers.js';

/** The classic gadget: a recursive merge by assignment, as found in many config libraries. */
function naiveMerge(target: Record<string, any>, source: Record<string, any>): Record<string, any> {
  for (const key in source) {
    const value = source[key];
    if (typeof value === 'object' && value !== null) {
      if (typeof target[key] !== 'object' && typeof target[key] !== 'function') target[key] = {};
      naiveMerge(target[key], value);
    } else {
      target[key] = value;
    }
  }
  return target;
}

const polluted = () => ({}) as { polluted?: unknown; isAdmin?: unknown };

/** Arguments that pollute `Object.prototype` through `naiveMerge`, and give `isAdmin` to a copy. */
const HOSTILE_ARGS =
  '{"__proto__":{"isAdmin":true,"polluted":"proto"},' +
  '"constructor":{"prototype":{"polluted":"ctor"}},' +
  '"nested":{"deeper":[{"\\u005f_proto__":{"polluted":"escaped"}}]},"keep":1}';

/** What the `probe` tool saw: inherited flags, own keys, and whether merging polluted anything. */
interface ProbeReport {
  isAdmin: unknown;
  copiedIsAdmin: unknown;
  ownKeys: string[];
  plainPrototype: boolean;
  pollutedAfterMerge: unknown;
  keep: unknown;
}

function probeServer(): McpKitServer {
  const server = createMcpServer({ name: 'hostile', version: '1.0.0', logLevel: 'silent' });
  server.tools.register({
    name: 'probe',
    description: 'Reports what it received',
    handler: (args) => {
      const copy = Object.assign({}, args) as { isAdmin?: unknown };
      naiveMerge({}, args as Record<string, unknown>);
      const report: ProbeReport = {
        isAdmin: (args as { isAdmin?: unknown }).isAdmin,
        copiedIsAdmin: copy.isAdmin,
        ownKeys: Object.getOwnPropertyNames(args).sort(),
        plainPrototype: Object.getPrototypeOf(args) === Object.prototype,
        pollutedAfterMerge: polluted().polluted,
        keep: (args as { keep?: unknown }).keep,
      };
      return { content: [{ type: 'text', text: JSON.stringify(report) }] };
    },
  });
  server.tools.register({
    name: 'add',
    description: 'Adds',
    inputSchema: {
      type: 'object',
      properties: { a: { type: 'number' }, b: { type: 'number' } },
      required: ['a', 'b'],
    },
    handler: (args) => String((args.a as number) + (args.b as number)),
  });
  return server;
}

function expectClean(report: ProbeReport): void {
  expect(report.isAdmin).toBeUndefined();
  expect(report.copiedIsAdmin).toBeUndefined();
  expect(report.ownKeys).toEqual(['keep', 'nested']);
  expect(report.plainPrototype).toBe(true);
  expect(report.pollutedAfterMerge).toBeUndefined();
  expect(report.keep).toBe(1);
  expect(polluted().polluted).toBeUndefined();
  expect(polluted().isAdmin).toBeUndefined();
}

function reportOf(result: { content?: Array<{ type: string; text?: string }> }): ProbeReport {
  const text = result.content?.find((c) => c.type === 'text')?.text;
  if (text === undefined) throw new Error(`no text content in ${JSON.stringify(result)}`);
  return JSON.parse(text) as ProbeReport;
}

const INIT = (protocolVersion = '2025-11-25', id: number | string = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 't', version: '1' } },
});

async function openSession(server: McpKitServer, protocolVersion = '2025-11-25'): Promise<string> {
  const res = await request(server, '/mcp', jsonRpcPost(INIT(protocolVersion)));
  expect(res.status).toBe(200);
  await res.text();
  const sessionId = res.headers.get('mcp-session-id')!;
  const done = await request(
    server,
    '/mcp',
    jsonRpcPost(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion },
    ),
  );
  expect(done.status).toBe(202);
  return sessionId;
}

/** Every `data:` message of an SSE body, or the JSON body. */

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' },
};

describe('parseJsonSafe and stripPollution', () => {
  it('the gadget is real: plain JSON.parse + naiveMerge pollutes Object.prototype', () => {
    try {
      naiveMerge({}, JSON.parse(HOSTILE_ARGS) as Record<string, unknown>);
      expect(polluted().polluted).toBeDefined();
    } finally {
      delete (Object.prototype as { polluted?: unknown }).polluted;
      delete (Object.prototype as { isAdmin?: unknown }).isAdmin;
    }
    expect(polluted().polluted).toBeUndefined();
  });

  it('drops __proto__ and constructor.prototype at any depth, escaped spellings included', () => {
    const value = parseJsonSafe(HOSTILE_ARGS) as Record<string, any>;
    naiveMerge({}, value);
    expect(polluted().polluted).toBeUndefined();
    expect(value).toEqual({ nested: { deeper: [{}] }, keep: 1 });
    expect(Object.hasOwn(value, '__proto__')).toBe(false);
    expect(Object.hasOwn(value.nested.deeper[0], '__proto__')).toBe(false);
  });

  it('keeps a constructor key that carries no prototype, and behaves as JSON.parse otherwise', () => {
    expect(parseJsonSafe('{"constructor":"Alice","x":[1,{"constructor":{"name":"n"}}]}')).toEqual({
      constructor: 'Alice',
      x: [1, { constructor: { name: 'n' } }],
    });
    for (const text of ['1', '"s"', 'null', '[1,2]', '{"a":{"b":[true,false]}}', '"\\u00e9"']) {
      expect(parseJsonSafe(text)).toEqual(JSON.parse(text));
    }
    expect(() => parseJsonSafe('{"a":')).toThrow(SyntaxError);
    expect(() => parseJsonSafe('{"__proto__":')).toThrow(SyntaxError);
  });

  it('refuses documents nested past the limit before parsing them, and takes deep ones when allowed', () => {
    const depth = 100_000;
    const deep = `${'['.repeat(depth)}{"__proto__":{"polluted":1}}${']'.repeat(depth)}`;
    expect(() => parseJsonSafe(deep)).toThrow(/nests deeper than 64 levels/);
    // Brackets inside strings do not count.
    expect(parseJsonSafe(JSON.stringify({ text: '['.repeat(1000) }))).toEqual({ text: '['.repeat(1000) });
    expect(() => parseJsonSafe(`${'['.repeat(65)}${']'.repeat(65)}`)).toThrow(/deeper than 64/);
    expect(parseJsonSafe(`${'['.repeat(64)}${']'.repeat(64)}`)).toBeDefined();
    // Objects and arrays count alike, and many shallow ones are no deeper than one.
    const mixed = (objects: number, arrays: number) =>
      `${'{"a":'.repeat(objects)}${'['.repeat(arrays)}1${']'.repeat(arrays)}${'}'.repeat(objects)}`;
    expect(() => parseJsonSafe(mixed(33, 32))).toThrow(/deeper than 64/);
    expect(parseJsonSafe(mixed(32, 32))).toBeDefined();
    expect(parseJsonSafe(JSON.stringify(Array.from({ length: 500 }, () => ({ a: [1] }))))).toHaveLength(500);
    let value = parseJsonSafe(deep, Number.POSITIVE_INFINITY) as unknown;
    for (let i = 0; i < depth; i++) value = (value as unknown[])[0];
    expect(Object.hasOwn(value as object, '__proto__')).toBe(false);
    const plain = JSON.parse(deep) as unknown;
    let inner = stripPollution(plain);
    for (let i = 0; i < depth; i++) inner = (inner as unknown[])[0];
    expect(Object.hasOwn(inner as object, '__proto__')).toBe(false);
  });

  it('stripPollution cleans in place, survives cycles and leaves class instances alone', () => {
    const message = JSON.parse(`{"params":{"arguments":${HOSTILE_ARGS}}}`) as Record<string, any>;
    message.self = message;
    const when = new Date(0);
    message.when = when;
    expect(stripPollution(message)).toBe(message);
    expect(message.params.arguments).toEqual({ nested: { deeper: [{}] }, keep: 1 });
    expect(message.when).toBe(when);
    expect(stripPollution(null)).toBeNull();
    expect(stripPollution('x')).toBe('x');
  });
});

describe('prototype pollution on every door', () => {
  let server: McpKitServer;
  let listening: Listening | undefined;
  beforeAll(() => {
    server = probeServer();
  });
  afterAll(async () => {
    await listening?.close();
    await server.close();
  });
  afterEach(() => {
    expect(polluted().polluted).toBeUndefined();
  });

  it('REST: POST /tools/probe/execute', async () => {
    const res = await request(server, '/tools/probe/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"arguments":${HOSTILE_ARGS},"__proto__":{"timeoutMs":1}}`,
    });
    expect(res.status).toBe(200);
    expectClean(reportOf(await res.json()));
  });

  it('REST through the node bridge (a real socket)', async () => {
    listening ??= await listen(server, { port: 0, websocket: true });
    const res = await fetch(`${listening.url}/tools/probe/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"arguments":${HOSTILE_ARGS}}`,
    });
    expect(res.status).toBe(200);
    expectClean(reportOf(await res.json()));
  });

  it('MCP over HTTP, 2025-era session', async () => {
    const sessionId = await openSession(server);
    const res = await request(
      server,
      '/mcp',
      jsonRpcPost(
        `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"probe","arguments":${HOSTILE_ARGS}}}`,
        { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      ),
    );
    expect(res.status).toBe(200);
    const body = await readJsonRpc(res);
    expectClean(reportOf(body.result));
  });

  it('MCP over HTTP, 2026-07-28 (stateless)', async () => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 8,
      method: 'tools/call',
      params: { name: 'probe', arguments: {}, _meta: MODERN_META },
    }).replace('"arguments":{}', `"arguments":${HOSTILE_ARGS}`);
    const res = await request(
      server,
      '/mcp',
      jsonRpcPost(body, {
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'probe',
      }),
    );
    expect(res.status, await res.clone().text()).toBe(200);
    expectClean(reportOf((await readJsonRpc(res)).result));
  });

  it('WebSocket', async () => {
    listening ??= await listen(server, { port: 0, websocket: true });
    const peer = await rawPeer(`${listening.url.replace('http', 'ws')}/mcp`);
    try {
      const answer = peer.next((m) => m.id === 'ws-1');
      peer.send(
        `{"jsonrpc":"2.0","id":"ws-1","method":"tools/call","params":{"name":"probe","arguments":${HOSTILE_ARGS}}}`,
      );
      expectClean(reportOf((await answer).result));
    } finally {
      peer.socket.terminate();
    }
  });

  it('stdio (serveStdio on a stream pair)', async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const lines: any[] = [];
    let buffered = '';
    const waiters: Array<() => void> = [];
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let index = buffered.indexOf('\n');
      while (index !== -1) {
        lines.push(JSON.parse(buffered.slice(0, index)));
        buffered = buffered.slice(index + 1);
        index = buffered.indexOf('\n');
      }
      for (const wake of waiters.splice(0)) wake();
    });
    const responseTo = async (id: number) => {
      for (;;) {
        const found = lines.find((m) => m.id === id);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    };
    const connection = await serveStdio(server, { stdin, stdout });
    try {
      stdin.write(`${JSON.stringify(INIT('2025-11-25', 1))}\n`);
      expect((await responseTo(1)).result).toBeDefined();
      stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
      stdin.write(
        `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"probe","arguments":${HOSTILE_ARGS}}}\n`,
      );
      expectClean(reportOf((await responseTo(2)).result));
    } finally {
      await connection.close();
    }
  });
});

describe('JSON-RPC batches', () => {
  const server = probeServer();
  afterAll(() => server.close());
  const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });

  for (const version of ['2025-06-18', '2025-11-25', '2026-07-28']) {
    it(`are refused on /mcp with MCP-Protocol-Version ${version}`, async () => {
      const sessionId = version === '2026-07-28' ? undefined : await openSession(server, version);
      const res = await request(
        server,
        '/mcp',
        jsonRpcPost([ping(1), ping(2)], {
          'mcp-protocol-version': version,
          ...(sessionId && { 'mcp-session-id': sessionId }),
        }),
      );
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: {
          code: -32600,
          message: `Invalid Request: JSON-RPC batches are not allowed in protocol version ${version}`,
        },
      });
    });
  }

  it('are refused for a session that negotiated 2025-06-18 even without the version header', async () => {
    const sessionId = await openSession(server, '2025-06-18');
    const res = await request(
      server,
      '/mcp',
      jsonRpcPost([ping(21), ping(22)], { 'mcp-session-id': sessionId }),
    );
    expect(res.status).toBe(400);
    expect((await res.json()).error).toEqual({
      code: -32600,
      message: 'Invalid Request: JSON-RPC batches are not allowed in protocol version 2025-06-18',
    });
  });

  it('are still served for a 2025-03-26 session (with or without the version header)', async () => {
    const sessionId = await openSession(server, '2025-03-26');
    const withVersion: Record<string, string> = {
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-03-26',
    };
    for (const headers of [withVersion, { 'mcp-session-id': sessionId }]) {
      const res = await request(server, '/mcp', jsonRpcPost([ping(11), ping(12)], headers));
      expect(res.status).toBe(200);
      const ids = (await messagesOf(res)).map((m) => m.id).sort();
      expect(ids).toEqual([11, 12]);
    }
  });

  it('are refused on WebSocket with -32600, and the connection keeps serving', async () => {
    const listening = await listen(server, { port: 0, websocket: true });
    try {
      const peer = await rawPeer(`${listening.url.replace('http', 'ws')}/mcp`);
      const refused = peer.next((m) => m.error !== undefined);
      peer.send([ping(21), ping(22)]);
      expect(await refused).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: {
          code: -32600,
          message:
            'Invalid Request: JSON-RPC batches are not allowed over WebSocket; send one message per frame',
        },
      });
      expect((await peer.request('ping', undefined, 23)).result).toEqual({});
      expect(peer.messages.some((m) => (m as { id?: unknown }).id === 21)).toBe(false);
      peer.socket.terminate();
    } finally {
      await listening.close();
    }
  });
});

describe('crashing handlers', () => {
  const server = createMcpServer({ name: 'crash', version: '1.0.0', logLevel: 'silent' });
  const secret = new Error('secret failure in /srv/app/handlers/crash.js:12:7');
  server.tools.register({
    name: 'throws',
    handler: () => {
      throw secret;
    },
  });
  server.tools.register({ name: 'rejects', handler: () => Promise.reject(secret) });
  server.tools.register({
    name: 'async_throws',
    handler: async () => {
      await Promise.resolve();
      await new Promise<void>((resolve) => setImmediate(resolve));
      throw secret;
    },
  });
  server.tools.register({
    name: 'throws_non_error',
    handler: () => {
      throw { not: 'an error' };
    },
  });
  server.tools.register({ name: 'fine', handler: () => 'ok' });
  server.resources.register({
    uri: 'crash://sync',
    name: 'sync',
    read: () => {
      throw secret;
    },
  });
  server.resources.register({
    uri: 'crash://async',
    name: 'async',
    read: async () => Promise.reject(secret),
  });
  server.resources.register({
    uriTemplate: 'crash://items/{id}',
    name: 'items',
    read: () => {
      throw secret;
    },
  });
  server.prompts.register({
    name: 'render_throws',
    render: () => {
      throw secret;
    },
  });
  server.prompts.register({ name: 'render_rejects', render: async () => Promise.reject(secret) });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await server.close();
  });

  const noLeak = (text: string) => {
    expect(text).not.toContain('/srv/app');
    expect(text).not.toContain('crash.js');
    expect(text).not.toMatch(/\n\s+at /);
  };

  it('REST: tools give isError results, resources and prompts give problems, never a leak', async () => {
    for (const name of ['throws', 'rejects', 'async_throws', 'throws_non_error']) {
      const res = await request(server, `/tools/${name}/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      const text = await res.text();
      expect(res.status, name).toBe(200);
      expect(JSON.parse(text).isError, name).toBe(true);
      noLeak(text);
    }
    for (const path of [
      '/resources/crash%3A%2F%2Fsync',
      '/resources/crash%3A%2F%2Fasync',
      '/resources/crash%3A%2F%2Fitems%2F1',
    ]) {
      const res = await request(server, path);
      const text = await res.text();
      expect(res.status, path).toBe(500);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      noLeak(text);
    }
    for (const name of ['render_throws', 'render_rejects']) {
      const res = await request(server, `/prompts/${name}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      const text = await res.text();
      expect(res.status, name).toBe(500);
      noLeak(text);
    }
  });

  it('MCP: tools give isError results, resources and prompts give JSON-RPC errors', async () => {
    const sessionId = await openSession(server);
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    let id = 100;
    const call = async (method: string, params: unknown) => {
      const res = await request(
        server,
        '/mcp',
        jsonRpcPost({ jsonrpc: '2.0', id: ++id, method, params }, headers),
      );
      expect(res.status).toBe(200);
      const body = await readJsonRpc(res);
      noLeak(JSON.stringify(body));
      return body;
    };
    for (const name of ['throws', 'rejects', 'async_throws', 'throws_non_error']) {
      expect((await call('tools/call', { name, arguments: {} })).result.isError, name).toBe(true);
    }
    for (const uri of ['crash://sync', 'crash://async', 'crash://items/1']) {
      expect((await call('resources/read', { uri })).error, uri).toBeDefined();
    }
    for (const name of ['render_throws', 'render_rejects']) {
      expect((await call('prompts/get', { name })).error, name).toBeDefined();
    }
    expect((await call('tools/call', { name: 'fine', arguments: {} })).result.content).toEqual([
      { type: 'text', text: 'ok' },
    ]);
  });

  it('the process never saw an unhandled rejection or exception, and the server still serves', async () => {
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    expect(unhandled).toEqual([]);
    expect((await request(server, '/health')).status).toBe(200);
  });
});

describe('bugs the fuzz found', () => {
  const server = probeServer();
  afterAll(() => server.close());

  it('a resource URI with a NUL byte is the caller’s error (400 / -32602), not a 500', async () => {
    const res = await request(server, '/resources/%00');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const sessionId = await openSession(server);
    const mcp = await request(
      server,
      '/mcp',
      jsonRpcPost(
        { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'a\u0000b' } },
        { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      ),
    );
    expect((await readJsonRpc(mcp)).error.code).toBe(-32602);
  });

  it('prompt message templates of the wrong shape are refused at registration, not at render', async () => {
    for (const messages of [
      [1],
      [null],
      [{}],
      ['x'],
      [[]],
      [{ role: 'user' }],
      [{ role: 'system', content: 'x' }],
    ]) {
      const res = await request(server, '/prompts', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bad', messages }),
      });
      expect(res.status, JSON.stringify(messages)).toBe(400);
      expect((await res.json()).code).toBe('INVALID_ARGUMENT');
    }
    expect(() =>
      server.prompts.register({
        name: 'bad',
        messages: [{ role: 'user', content: { type: 'text' } as never }],
      }),
    ).toThrow(TypeError);
    expect(server.prompts.get('bad')).toBeUndefined();
  });
});
