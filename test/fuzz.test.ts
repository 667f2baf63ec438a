/**
 * Property-based fuzzing of both HTTP doors, in process through `server.fetch`: thousands of random
 * and malformed requests at the REST routes and at `/mcp`. Whatever arrives, every answer has an
 * expected status (never 500), error bodies are JSON and never carry a stack trace or a file path,
 * nothing pollutes `Object.prototype`, and afterwards the server still answers `/health` and a
 * normal `tools/call`.
 *
 * Each option set in `OPTION_SETS` runs the same fuzz: add one (say `{ auth: … }` with the headers
 * that authenticate) to fuzz that configuration too. Reproduce a failure with the seed fast-check
 * prints: `FUZZ_SEED=<seed> npx vitest run test/fuzz.test.ts`.
 */

import fc from 'fast-check';
import { type CreateMcpServerOptions, type McpKitServer, MemoryAuditSink } from 'mcpkit';
import { jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../src/http/rest.js';
import { fixtureServer } from './fixtures.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2_000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const MAX_BODY_BYTES = 64 * 1024;
const FUZZ_KEY = 'fuzz-key-0123456789abcdef';

interface OptionSet {
  /** Shown in the test names. */
  label: string;
  /** Extra `createMcpServer` options. */
  options: CreateMcpServerOptions;
  /**
   * Headers a legitimate client sends with this option set (credentials, say): half the fuzzed
   * requests carry them, and the checks after the fuzz always do.
   */
  headers: Record<string, string>;
}

const OPTION_SETS: OptionSet[] = [
  { label: 'default options', options: {}, headers: {} },
  {
    label: 'policy on',
    options: {
      auth: {
        apiKeys: [
          { id: 'fuzz', key: FUZZ_KEY, roles: ['user'] },
          { id: 'fuzz-admin', key: `${FUZZ_KEY}-admin`, roles: ['admin'] },
        ],
      },
      rules: [{ tools: 'boom*', roles: ['admin'] }],
      // High enough that the fuzz is not all 429s, low enough that it exercises the buckets.
      rateLimit: { default: 1_000_000 },
      audit: { sinks: [new MemoryAuditSink(100)] },
    },
    headers: { authorization: `Bearer ${FUZZ_KEY}` },
  },
];

/** The statuses a request may get. 500 is not among them: any 500 is a bug. */
const ALLOWED_STATUSES = new Set([
  200, 201, 202, 204, 400, 401, 403, 404, 405, 406, 408, 409, 412, 413, 415, 422, 428, 429, 499,
]);

/** What must never appear in a body unless the request itself carried it. */
const LEAK_MARKERS = [
  '    at ',
  '.ts:',
  '.js:',
  '/work/',
  'node_modules',
  '/home/',
  '/root/',
  '/usr/',
  'file://',
];

/**
 * The server every fuzz run targets: the shared fixture catalog, a small body limit, room for many
 * sessions, and two tools of its own.
 */
function makeServer(extra: CreateMcpServerOptions = {}): McpKitServer {
  const server = fixtureServer({
    name: 'fuzz',
    ...extra,
    http: { maxBodyBytes: MAX_BODY_BYTES, maxSessions: 100_000, bodyTimeoutMs: 2_000, ...extra.http },
  });
  server.tools.register({ name: 'anything', description: 'Takes any arguments', handler: () => 'ok' });
  // Not in the fuzz's name pool, so it survives random DELETEs: the checks afterwards call it.
  server.tools.register({
    name: 'sentinel',
    description: 'Answers pong',
    handler: () => 'pong',
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// Shared arbitraries

const printable = (max: number) =>
  fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: max,
  });
const anyText = (max: number) => fc.string({ unit: 'grapheme', maxLength: max });

const NAME_POOL = ['echo', 'add', 'anything', 'greet', 'nope', '__proto__', 'constructor', 'prototype'];

const invalidJson = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '{"a":',
    '[1,2',
    'undefined',
    "{'a':1}",
    '{"a":1}}',
    'NaN',
    '\u0000',
    '\uFEFF{}',
    '{"a":1,}',
  ),
  anyText(200),
);

const pollutingJson = fc.constantFrom(
  '{"__proto__":{"polluted":"yes"}}',
  '{"arguments":{"__proto__":{"polluted":"yes"}}}',
  '{"constructor":{"prototype":{"polluted":"yes"}}}',
  '{"arguments":{"a":{"constructor":{"prototype":{"polluted":"yes"}}}}}',
  '{"arguments":{"\\u005f_proto__":{"polluted":"yes"}}}',
  '[{"__proto__":{"polluted":"yes"}}]',
);

const deepJson = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('array', 'object', 'arguments'))
  .map(([depth, kind]) => {
    if (kind === 'array') return `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const nested = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    return kind === 'object' ? nested : `{"arguments":${nested}}`;
  });

const hugeishJson = fc
  .integer({ min: MAX_BODY_BYTES - 2_048, max: MAX_BODY_BYTES + 16 * 1024 })
  .map((size) => JSON.stringify({ arguments: { text: 'x'.repeat(size) } }));

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/merge-patch+json',
  'application/json;',
  'text/plain',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  '',
  ';;;',
];

const ACCEPTS = [
  'application/json',
  'text/event-stream',
  'application/json, text/event-stream',
  '*/*',
  'application/*',
  'text/html',
  'application/problem+json',
  'image/png',
  'text/plain',
  '',
];

const VERSIONS = [
  '2024-11-05',
  '2025-03-26',
  '2025-06-18',
  '2025-11-25',
  '2026-07-28',
  '1999-01-01',
  '9999-12-31',
];

const protocolVersion = fc.oneof(fc.constantFrom(...VERSIONS), printable(12));
const requestId = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/), printable(200));
/** Mostly absent or loopback, so most requests get past the Host and Origin checks. */
const host = fc.oneof(
  { weight: 12, arbitrary: fc.constant(undefined) },
  fc.constantFrom('localhost', '127.0.0.1:3000', '[::1]', 'evil.example', 'localhost.evil.example', ''),
);
const origin = fc.oneof(
  { weight: 12, arbitrary: fc.constant(undefined) },
  fc.constantFrom('http://localhost:3000', 'http://127.0.0.1', 'https://evil.example', 'null', 'garbage'),
);

/** The headers that are set. */
function headersOf(record: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(record)) if (value !== undefined) out[name] = value;
  return out;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];

// ---------------------------------------------------------------------------------------------
// REST requests

const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NAME_POOL) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'fixture%3A%2F%2Fgreeting',
      'fuzz%3A%2F%2Fitems%2F7',
      'fixture://greeting',
      '%',
      '%zz',
      '%E0%A4%A',
      '%00',
      '..',
      '.',
      '',
      'a'.repeat(300),
    ),
  },
  { weight: 2, arbitrary: anyText(20).map(encodeURIComponent) },
);

const routePath = fc.constantFrom(...ROUTES).chain((route) =>
  fc
    .tuple(
      fc.oneof(
        { weight: 3, arbitrary: fc.constant(route.method) },
        { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
      ),
      fc.tuple(
        ...route.path
          .split('/')
          .slice(1)
          .map((part) => (part.startsWith(':') ? segment : fc.constant(part))),
      ),
    )
    .map(([method, parts]) => ({ method, path: `/${parts.join('/')}` })),
);

const garbagePath = fc
  .tuple(fc.constantFrom(...METHODS), fc.array(segment, { maxLength: 6 }), fc.boolean())
  .map(([method, parts, slash]) => ({ method, path: `/${parts.join('/')}${slash ? '/' : ''}` }));

const query = fc
  .dictionary(
    fc.constantFrom('cursor', 'limit', 'level', 'since', 'requestId', 'x'),
    fc.oneof(
      fc.constantFrom('0', '1', '-1', '100', '1000', '1001', 'abc', '', '99999999999', '1e3', 'debug'),
      anyText(10),
    ),
    { maxKeys: 3 },
  )
  .map((q) => (Object.keys(q).length === 0 ? '' : `?${new URLSearchParams(q).toString()}`));

const restBodyObject = fc.record(
  {
    arguments: fc.oneof(
      fc.record({ text: fc.oneof(anyText(20), fc.integer()) }, { requiredKeys: [] }),
      fc.record(
        { a: fc.oneof(fc.integer(), fc.double(), anyText(3)), b: fc.integer() },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 3 }),
    ),
    timeoutMs: fc.oneof(fc.integer({ min: -5, max: 5_000 }), fc.constant(1e12), anyText(3)),
    calls: fc.array(
      fc.record({ tool: fc.constantFrom(...NAME_POOL), arguments: fc.jsonValue({ maxDepth: 2 }) }),
      {
        maxLength: 4,
      },
    ),
    steps: fc.array(fc.record({ tool: fc.constantFrom(...NAME_POOL), args: fc.jsonValue({ maxDepth: 2 }) }), {
      maxLength: 4,
    }),
    concurrency: fc.oneof(fc.integer({ min: -1, max: 300 }), anyText(2)),
    uri: fc.constantFrom('fixture://new', 'fixture://greeting', 'not a uri', ''),
    name: fc.constantFrom(...NAME_POOL),
    text: anyText(20),
    messages: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.array(
        fc.record(
          {
            role: fc.constantFrom('user', 'assistant', 'system', 'tool'),
            content: fc.jsonValue({ maxDepth: 2 }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
    ),
    // declarative tools (POST /tools), completions and integrations; never a public URL
    kind: fc.constantFrom('http', 'chain', 'shell', ''),
    url: fc.constantFrom('http://127.0.0.1:9/x', 'http://[::1]:9/', 'ftp://127.0.0.1/x', 'not a url', ''),
    method: fc.constantFrom('GET', 'POST', 'TRACE', 'get', ''),
    inputSchema: fc.oneof(
      fc.constant({ type: 'object', properties: { q: { type: 'string' } } }),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    input: fc.jsonValue({ maxDepth: 2 }),
    model: fc.jsonValue({ maxDepth: 1 }),
    tools: fc.array(fc.constantFrom(...NAME_POOL), { maxLength: 3 }),
    maxSteps: fc.oneof(fc.integer({ min: -1, max: 5 }), anyText(2)),
    id: fc.constantFrom(...NAME_POOL),
  },
  { requiredKeys: [] },
);

const restBody = fc.oneof(
  { weight: 4, arbitrary: restBodyObject.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: invalidJson },
  { weight: 1, arbitrary: pollutingJson },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: hugeishJson },
);

const restHeaders = fc
  .record(
    {
      'content-type': fc.oneof(
        { weight: 4, arbitrary: fc.constant('application/json') },
        fc.constantFrom(...CONTENT_TYPES),
      ),
      accept: fc.constantFrom(...ACCEPTS),
      'x-request-id': requestId,
      'mcp-session-id': fc.oneof(fc.uuid(), printable(40)),
      'mcp-protocol-version': protocolVersion,
      'if-match': fc.oneof(fc.constant('*'), printable(20)),
      authorization: printable(40),
      host,
      origin,
    },
    { requiredKeys: [] },
  )
  .map(headersOf);

const restRequest = fc.record({
  target: fc.oneof({ weight: 5, arbitrary: routePath }, { weight: 1, arbitrary: garbagePath }),
  query,
  headers: restHeaders,
  body: fc.option(restBody, { nil: undefined, freq: 4 }),
  withKnownHeaders: fc.boolean(),
});

// ---------------------------------------------------------------------------------------------
// MCP requests

const KNOWN_METHODS = [
  'initialize',
  'notifications/initialized',
  'notifications/cancelled',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'server/discover',
  'tasks/get',
  'tasks/cancel',
];

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'fuzz', version: '1' },
};

const meta = fc.oneof(
  fc.constant(MODERN_META),
  fc.constant({ ...MODERN_META, 'io.modelcontextprotocol/protocolVersion': '2025-11-25' }),
  fc.constant({ 'io.modelcontextprotocol/protocolVersion': '2026-07-28' }),
  fc.record({ progressToken: fc.oneof(fc.integer(), anyText(5)) }),
  fc.jsonValue({ maxDepth: 2 }),
);

const params = fc.oneof(
  fc.record(
    {
      name: fc.oneof(fc.constantFrom(...NAME_POOL), anyText(10)),
      arguments: fc.oneof(
        fc.record({ text: anyText(10) }),
        fc.record({ a: fc.integer(), b: fc.integer() }),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      _meta: meta,
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      uri: fc.constantFrom(
        'fixture://greeting',
        'fixture://items/1',
        'fixture://missing',
        'fixture:///etc/passwd',
        '',
      ),
      _meta: meta,
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      protocolVersion,
      capabilities: fc.jsonValue({ maxDepth: 2 }),
      clientInfo: fc.oneof(fc.constant({ name: 'fuzz', version: '1' }), fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      ref: fc.oneof(
        fc.constant({ type: 'ref/prompt', name: 'greet' }),
        fc.constant({ type: 'ref/resource', uri: 'fixture://items/{id}' }),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      argument: fc.record({ name: anyText(5), value: anyText(5) }),
      _meta: meta,
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 3 }),
);

const rpcMessage = fc.record(
  {
    jsonrpc: fc.oneof({ weight: 6, arbitrary: fc.constant('2.0') }, fc.constantFrom('1.0', 2, null, '')),
    id: fc.oneof(fc.integer(), anyText(8), fc.constant(null), fc.double(), fc.constant({}), fc.constant([1])),
    method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...KNOWN_METHODS) }, anyText(20)),
    params,
    result: fc.jsonValue({ maxDepth: 2 }),
    error: fc.record({ code: fc.integer(), message: anyText(10) }, { requiredKeys: [] }),
  },
  { requiredKeys: ['jsonrpc', 'method'] },
);

const mcpBody = fc.oneof(
  { weight: 8, arbitrary: rpcMessage.map((m) => JSON.stringify(m)) },
  { weight: 2, arbitrary: fc.array(rpcMessage, { maxLength: 5 }).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: invalidJson },
  { weight: 1, arbitrary: pollutingJson },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: hugeishJson },
);

const wildMcpRequest = fc.record({
  method: fc.oneof({ weight: 8, arbitrary: fc.constant('POST') }, fc.constantFrom(...METHODS)),
  path: fc.constantFrom('/mcp', '/mcp/', '/mcp?x=1'),
  headers: fc
    .record(
      {
        'content-type': fc.oneof(
          { weight: 6, arbitrary: fc.constant('application/json') },
          fc.constantFrom(...CONTENT_TYPES),
        ),
        accept: fc.oneof(
          { weight: 6, arbitrary: fc.constant('application/json, text/event-stream') },
          fc.constantFrom(...ACCEPTS),
        ),
        'mcp-protocol-version': protocolVersion,
        'mcp-method': fc.oneof(fc.constantFrom(...KNOWN_METHODS), printable(20)),
        'mcp-name': fc.oneof(fc.constantFrom(...NAME_POOL), printable(20)),
        'last-event-id': printable(20),
        'x-request-id': requestId,
        host,
        origin,
      },
      { requiredKeys: [] },
    )
    .map(headersOf),
  /** none, one of the open sessions, a random UUID, or garbage */
  session: fc.oneof(fc.constant('none'), fc.constant('real'), fc.uuid(), printable(40)),
  sessionIndex: fc.nat(),
  body: fc.option(mcpBody, { nil: undefined, freq: 8 }),
  withKnownHeaders: fc.boolean(),
});

/** A well-formed call of one of the server's methods, with plausible (not always valid) params. */
const validCall = fc.oneof(
  fc.record({
    method: fc.constant('tools/call'),
    params: fc.record({
      name: fc.constantFrom('echo', 'add', 'anything', 'nope'),
      arguments: fc.oneof(
        fc.record({ text: anyText(10) }),
        fc.record({ a: fc.integer(), b: fc.integer() }),
        fc.jsonValue({ maxDepth: 2 }),
      ),
    }),
  }),
  fc.record({
    method: fc.constant('resources/read'),
    params: fc.record({
      uri: fc.constantFrom('fixture://greeting', 'fixture://items/3', 'fixture://none', 'x'),
    }),
  }),
  fc.record({
    method: fc.constant('prompts/get'),
    params: fc.record(
      {
        name: fc.constantFrom('greet', 'nope'),
        arguments: fc.oneof(fc.record({ name: anyText(8) }), fc.jsonValue({ maxDepth: 1 })),
      },
      { requiredKeys: ['name'] },
    ),
  }),
  fc.record({
    method: fc.constant('completion/complete'),
    params: fc.record({
      ref: fc.constantFrom(
        { type: 'ref/prompt', name: 'greet' },
        { type: 'ref/resource', uri: 'fixture://items/{id}' },
      ),
      argument: fc.record({ name: fc.constantFrom('name', 'id', 'x'), value: anyText(3) }),
    }),
  }),
  fc.record({
    method: fc.constant('logging/setLevel'),
    params: fc.record({ level: fc.constantFrom('debug', 'info', 'bogus') }),
  }),
  fc.constantFrom(
    { method: 'tools/list', params: {} },
    { method: 'resources/list', params: {} },
    { method: 'resources/templates/list', params: {} },
    { method: 'prompts/list', params: {} },
    { method: 'ping', params: {} },
  ),
);

/** What a real client would send (2025-era session, or 2026-07-28 with its envelope), then mutated. */
const coherentMcpRequest = fc
  .record({
    call: validCall,
    id: fc.integer({ min: 0, max: 1_000_000 }),
    era: fc.constantFrom('legacy', 'modern'),
    sessionIndex: fc.nat(),
    mutation: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      fc.record({
        header: fc.constantFrom('accept', 'content-type', 'mcp-protocol-version', 'mcp-method', 'mcp-name'),
        value: fc.option(printable(30), { nil: undefined }),
      }),
    ),
    batch: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, fc.constant(true)),
  })
  .map(({ call, id, era, sessionIndex, mutation, batch }) => {
    const params = call.params as Record<string, unknown>;
    const message = {
      jsonrpc: '2.0',
      id,
      method: call.method,
      params: era === 'modern' ? { ...params, _meta: MODERN_META } : params,
    };
    const name = params.name ?? params.uri;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': era === 'modern' ? '2026-07-28' : '2025-11-25',
      ...(era === 'modern' && { 'mcp-method': call.method }),
      ...(era === 'modern' && typeof name === 'string' && { 'mcp-name': name }),
    };
    if (mutation) {
      if (mutation.value === undefined) delete headers[mutation.header];
      else headers[mutation.header] = mutation.value;
    }
    return {
      method: 'POST',
      path: '/mcp',
      headers,
      session: era === 'legacy' ? 'real' : 'none',
      sessionIndex,
      body: JSON.stringify(batch ? [message, { ...message, id: id + 1 }] : message),
      withKnownHeaders: true,
    };
  });

const mcpRequest = fc.oneof(
  { weight: 3, arbitrary: coherentMcpRequest },
  { weight: 2, arbitrary: wildMcpRequest },
);

// ---------------------------------------------------------------------------------------------
// Sending and checking

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** Reads a response body; an event stream is read for a moment and then cancelled (it may never end). */
async function readBody(response: Response): Promise<string> {
  if (!response.body) return '';
  const stream = response.headers.get('content-type')?.includes('text/event-stream') ?? false;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      reader.cancel().catch(() => {});
    },
    stream ? 50 : 5_000,
  );
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // cancelled
  } finally {
    clearTimeout(timer);
  }
  if (timedOut && !stream) throw new Error('a non-stream response body did not end within 5 s');
  return text;
}

/** What one fuzz run has seen: statuses, and leak markers its requests carried (random text can spell one). */
interface Tally {
  statuses: Map<number, number>;
  sentMarkers: Set<string>;
}

async function send(server: McpKitServer, sent: Sent, tally: Tally): Promise<void> {
  const { statuses, sentMarkers } = tally;
  const controller = new AbortController();
  const headers = new Headers(sent.headers);
  if (!headers.has('host')) headers.set('host', 'localhost');
  const hasBody = sent.body !== undefined && sent.method !== 'GET' && sent.method !== 'HEAD';
  const request = new Request(sent.url, {
    method: sent.method,
    headers,
    signal: controller.signal,
    ...(hasBody && { body: sent.body }),
  });
  const response = await server.fetch(request);
  const text = await readBody(response);
  controller.abort();
  statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  const context = () => `${sent.method} ${sent.url} -> ${response.status} ${text.slice(0, 300)}`;
  expect(ALLOWED_STATUSES.has(response.status), context()).toBe(true);
  // A marker the fuzz itself sent (now or earlier: registered tools keep what they were given) may
  // come back; any other is a leak.
  const input = `${sent.url}\n${JSON.stringify(sent.headers)}\n${sent.body ?? ''}`;
  for (const marker of LEAK_MARKERS) if (input.includes(marker)) sentMarkers.add(marker);
  for (const marker of LEAK_MARKERS) {
    if (!sentMarkers.has(marker)) expect(text.includes(marker), `${marker} in ${context()}`).toBe(false);
  }
  const type = response.headers.get('content-type') ?? '';
  if (response.status >= 400 && text !== '' && sent.method !== 'HEAD') {
    expect(type, context()).toMatch(/json/);
    expect(() => JSON.parse(text), context()).not.toThrow();
  }
  expect(({} as { polluted?: unknown }).polluted, context()).toBeUndefined();
}

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
};

async function openSession(server: McpKitServer, extra: Record<string, string>): Promise<string> {
  const response = await request(server, '/mcp', jsonRpcPost(INIT, extra));

  await response.text();
  const sessionId = response.headers.get('mcp-session-id');
  if (response.status !== 200 || !sessionId) throw new Error(`initialize failed with ${response.status}`);
  const initialized = await sessionPost(
    server,
    sessionId,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    extra,
  );
  await initialized.text();
  return sessionId;
}

/** A JSON-RPC POST to `/mcp` on a 2025-11-25 session. */
function sessionPost(
  server: McpKitServer,
  sessionId: string,
  message: unknown,
  extra: Record<string, string>,
): Promise<Response> {
  return request(
    server,
    '/mcp',
    jsonRpcPost(message, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', ...extra }),
  );
}

/** The server still serves: health, a REST execute, and an MCP `tools/call` on a new session. */
async function expectStillServing(server: McpKitServer, extra: Record<string, string>): Promise<void> {
  const health = await request(server, '/health', { headers: extra });
  expect(health.status).toBe(200);
  const rest = await request(server, '/tools/sentinel/execute', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...extra },
    body: '{"arguments":{}}',
  });
  expect(rest.status).toBe(200);
  expect((await rest.json()).content).toEqual([{ type: 'text', text: 'pong' }]);
  const sessionId = await openSession(server, extra);
  const call = await sessionPost(
    server,
    sessionId,
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'sentinel', arguments: {} } },
    extra,
  );
  expect(call.status).toBe(200);
  const message = await readJsonRpc(call);
  expect(message.result.content).toEqual([{ type: 'text', text: 'pong' }]);
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe.each(OPTION_SETS)('fuzz ($label)', ({ options, headers: knownHeaders }) => {
  const runOptions = { numRuns: RUNS, ...(SEED !== undefined && { seed: SEED }) };

  it(`REST: ${RUNS} random requests, none answered 500 or with a leak`, { timeout: 120_000 }, async () => {
    const server = makeServer(options);
    const statuses = new Map<number, number>();
    const tally: Tally = { statuses, sentMarkers: new Set() };
    try {
      await fc.assert(
        fc.asyncProperty(restRequest, async (r) => {
          await send(
            server,
            {
              method: r.target.method,
              url: `http://localhost${r.target.path}${r.query}`,
              headers: r.withKnownHeaders ? { ...r.headers, ...knownHeaders } : r.headers,
              body: r.body,
            },
            tally,
          );
        }),
        runOptions,
      );
      // the fuzz reached past the front door
      for (const status of [200, 400, 404, 415])
        expect(statuses.get(status) ?? 0, String(status)).toBeGreaterThan(0);
      await expectStillServing(server, knownHeaders);
      expect(unhandled).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it(`MCP: ${RUNS} random requests at /mcp, none answered 500 or with a leak`, {
    timeout: 120_000,
  }, async () => {
    const server = makeServer(options);
    const statuses = new Map<number, number>();
    const tally: Tally = { statuses, sentMarkers: new Set() };
    const sessions: string[] = [];
    try {
      for (let i = 0; i < 4; i++) sessions.push(await openSession(server, knownHeaders));
      await fc.assert(
        fc.asyncProperty(mcpRequest, async (r) => {
          const sessionId =
            r.session === 'none'
              ? undefined
              : r.session === 'real'
                ? sessions[r.sessionIndex % sessions.length]
                : r.session;
          const headers = {
            ...r.headers,
            ...(sessionId !== undefined && { 'mcp-session-id': sessionId }),
            ...(r.withKnownHeaders && knownHeaders),
          };
          await send(
            server,
            { method: r.method, url: `http://localhost${r.path}`, headers, body: r.body },
            tally,
          );
        }),
        runOptions,
      );
      for (const status of [200, 400]) expect(statuses.get(status) ?? 0, String(status)).toBeGreaterThan(0);
      await expectStillServing(server, knownHeaders);
      expect(unhandled).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
