/**
 * The door matrix: every invariant of the one admission pipeline, written once and run on every
 * door: four mounts (`listen()`, Express 5, Fastify 5, Hono 4 on `@hono/node-server`) × four wires
 * (REST, `/mcp` in a 2025-era session, stateless `/mcp` in the 2026-07-28 era, MCP over WebSocket
 * attached to the mount's own node:http server). One server per mount, built once, on a real port;
 * the rate limiter's clock moves a whole window on before every test, so each test starts with full
 * buckets and no test waits for one to refill. Fixtures and per-wire clients are in `doors.ts`.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectCompletions, type WebSocketConstructor } from 'mcpkit/client';
import { WebSocketClientTransport } from 'mcpkit/node';
import { createModelServer } from 'mcpkit/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket as WsSocket } from 'ws';
import { ERROR_CODES, type McpKitErrorCode } from '../src/core/errors.js';
import {
  type Answer,
  answerOfHttp,
  type CallerName,
  CONNECTIONS_PER_CALLER,
  connect,
  DOORS,
  type Door,
  type DoorClient,
  type FirstContact,
  firstContact,
  KEYS,
  LEGACY_VERSION,
  LIMITS,
  MAX_IN_FLIGHT,
  MOUNTS,
  ModernClient,
  type Mount,
  type MountName,
  mcpHeaders,
  messagesOf,
  OAUTH_TOKEN,
  openMount,
  PUBLIC_HOST,
  rawRequest,
  SESSIONS_PER_CALLER,
  SessionClient,
  STREAMS_PER_CALLER,
  type WsClient,
} from './doors.js';

const mounts = {} as Record<MountName, Mount>;
let cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  for (const mount of await Promise.all(MOUNTS.map(openMount))) mounts[mount.name] = mount;
  // Declarative chains, registered over REST by the admin on every mount.
  const chains = [
    // over a tool reserved for admin: whoever runs it must be able to run secret.wipe
    { kind: 'chain', name: 'public.wipe-all', steps: [{ tool: 'secret.wipe' }] },
    // 1 (the call) + 2 (its steps) execute tokens
    { kind: 'chain', name: 'public.echo-twice', steps: [{ tool: 'public.echo' }, { tool: 'public.echo' }] },
    // 1 + echo 1 + echo-twice (1 + 2) = 5 execute tokens: one more than the limit
    {
      kind: 'chain',
      name: 'public.echo-nested',
      steps: [{ tool: 'public.echo' }, { tool: 'public.echo-twice' }],
    },
  ];
  for (const mount of Object.values(mounts)) {
    for (const chain of chains) {
      const created = await fetch(`${mount.base}/tools`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify(chain),
      });
      if (created.status !== 201) throw new Error(`${mount.name}: ${chain.name}: ${await created.text()}`);
    }
  }
});

afterAll(async () => {
  await Promise.all(Object.values(mounts).map((mount) => mount.close()));
});

beforeEach(() => {
  for (const mount of Object.values(mounts)) mount.world.reset();
});

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const cleanup of pending) await cleanup().catch(() => {});
});

/** A client of `door` for `caller`, closed after the test. */
async function open(door: Door, caller: CallerName): Promise<DoorClient> {
  const client = await connect(mounts[door.mount], door.wire, KEYS[caller]);
  cleanups.push(() => client.close());
  return client;
}

const MCP_DOORS = DOORS.filter((d) => d.wire !== 'rest');
const REST_DOORS = DOORS.filter((d) => d.wire === 'rest');
const isHttp = (door: Door) => door.wire !== 'ws';

/**
 * `answer` is the pipeline's refusal `code`, in the door's own form: a problem with the code's
 * status on REST; on MCP the code's JSON-RPC error, answered in band (HTTP 200) on `/mcp`.
 */
function expectRefused(door: Door, answer: Answer, code: McpKitErrorCode): void {
  const seen = `${answer.status ?? ''} ${answer.text.slice(0, 300)}`;
  expect(answer.ok, seen).toBe(false);
  if (door.wire === 'rest') {
    expect(answer.via, seen).toBe('problem');
    expect(answer.status, seen).toBe(ERROR_CODES[code].status);
    expect(answer.headers?.['content-type'], seen).toContain('application/problem+json');
    expect(answer.code, seen).toBe(code);
    return;
  }
  expect(answer.via, seen).toBe('rpc');
  expect(answer.rpc, seen).toBe(ERROR_CODES[code].jsonRpc);
  if (isHttp(door)) expect(answer.status, seen).toBe(200);
}

/**
 * A tool call refused inside its handler (a delegated step): a problem on REST (the execute route
 * maps the tool's error code to its status), an error result with the code on MCP.
 */
function expectToolRefused(door: Door, answer: Answer, code: McpKitErrorCode): void {
  const seen = answer.text.slice(0, 500);
  expect(answer.ok, seen).toBe(false);
  expect(answer.code, seen).toBe(code);
  if (door.wire === 'rest') {
    expect(answer.via, seen).toBe('problem');
    expect(answer.status, seen).toBe(ERROR_CODES[code].status);
  } else expect(answer.via, seen).toBe('result');
}

/** A first contact refused before anything else: the status, and a JSON body in the door's form. */
function expectContactRefused(door: Door, contact: FirstContact, code: McpKitErrorCode): any {
  const seen = `${contact.status} ${contact.text.slice(0, 300)}`;
  expect(contact.status, seen).toBe(ERROR_CODES[code].status);
  const body = JSON.parse(contact.text);
  if (door.wire === 'rest') {
    expect(contact.headers['content-type'], seen).toContain('application/problem+json');
    expect(body.code, seen).toBe(code);
  } else {
    expect(body, seen).toMatchObject({ jsonrpc: '2.0', error: { code: ERROR_CODES[code].jsonRpc } });
  }
  return body;
}

/** The status a first contact is admitted with: 200 on HTTP, 101 for an upgrade. */
const admittedStatus = (door: Door) => (door.wire === 'ws' ? 101 : 200);

describe('1. credentials, Host and Origin are checked first, on every door', () => {
  it.each(DOORS)('$label', async (door) => {
    const m = mounts[door.mount];
    // No credential: 401 with a Bearer challenge naming the OAuth metadata.
    const anonymous = await firstContact(m, door.wire);
    expectContactRefused(door, anonymous, 'UNAUTHORIZED');
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm="mcpkit"/);
    expect(anonymous.headers['www-authenticate']).toContain(
      `resource_metadata="http://127.0.0.1:${m.port}/.well-known/oauth-protected-resource/mcp"`,
    );
    // A credential that matches nothing (neither a key nor a token the verifier knows).
    const wrong = await firstContact(m, door.wire, { key: 'not-a-key-of-this-server-0000' });
    expectContactRefused(door, wrong, 'UNAUTHORIZED');
    expect(wrong.headers['www-authenticate']).toContain('error="invalid_token"');
    // A valid key in the query string is refused, alone or beside a valid header.
    expectContactRefused(
      door,
      await firstContact(m, door.wire, { query: `?api_key=${KEYS.admin}` }),
      'UNAUTHORIZED',
    );
    expectContactRefused(
      door,
      await firstContact(m, door.wire, { key: KEYS.admin, query: `?access_token=${KEYS.admin}` }),
      'UNAUTHORIZED',
    );
    // A foreign Host (DNS rebinding), even with a valid key: 403 before the key is looked at.
    for (const host of [`evil.example:${m.port}`, `127.0.0.1.evil.example:${m.port}`]) {
      const foreign = await firstContact(m, door.wire, { key: KEYS.admin, headers: { host } });
      expectContactRefused(door, foreign, 'FORBIDDEN');
      expect(foreign.text.length).toBeLessThan(600);
    }
    // A foreign Origin (another site's page), even with a valid key.
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1.evil.example:${m.port}`]) {
      expectContactRefused(
        door,
        await firstContact(m, door.wire, { key: KEYS.admin, headers: { origin } }),
        'FORBIDDEN',
      );
    }
    // The same request with a loopback Origin and the key in a header is admitted.
    const admitted = await firstContact(m, door.wire, {
      key: KEYS.admin,
      headers: { origin: `http://127.0.0.1:${m.port}` },
    });
    expect(admitted.status, admitted.text.slice(0, 300)).toBe(admittedStatus(door));
    // So is a token the OAuth verifier accepts.
    const oauth = await firstContact(m, door.wire, { key: OAUTH_TOKEN });
    expect(oauth.status, oauth.text.slice(0, 300)).toBe(admittedStatus(door));
  });
});

/** Initialize parameters of the 2025 era. */
const INIT_PARAMS = {
  protocolVersion: LEGACY_VERSION,
  capabilities: {},
  clientInfo: { name: 'doors', version: '1' },
};

/** The SDK's built-in methods of each MCP wire's era: each must take a `read` token. */
const BUILTINS: Record<'mcp2025' | 'mcp2026' | 'ws', Array<[string, Record<string, unknown>]>> = {
  mcp2025: [
    ['ping', {}],
    ['logging/setLevel', { level: 'error' }],
    ['initialize', INIT_PARAMS],
  ],
  ws: [
    ['ping', {}],
    ['logging/setLevel', { level: 'error' }],
    ['initialize', INIT_PARAMS],
  ],
  mcp2026: [
    ['server/discover', {}],
    // not methods of this era (-32601), and still paid for
    ['ping', {}],
    ['logging/setLevel', { level: 'error' }],
    ['initialize', INIT_PARAMS],
    ['subscriptions/listen', { notifications: { toolsListChanged: true } }],
  ],
};

/**
 * Sends the built-in `method` as a real client of the wire would: `initialize` opens a new session
 * on `/mcp` (no session id), `subscriptions/listen` opens a stream (closed at once once admitted).
 */
async function builtin(
  mount: Mount,
  client: DoorClient,
  method: string,
  params: Record<string, unknown>,
): Promise<Answer> {
  if (client instanceof SessionClient && method === 'initialize') {
    const response = await fetch(`${mount.base}/mcp`, {
      method: 'POST',
      headers: mcpHeaders(client.key, { 'mcp-protocol-version': LEGACY_VERSION }),
      body: JSON.stringify({ jsonrpc: '2.0', id: 'init', method, params }),
    });
    const session = response.headers.get('mcp-session-id');
    const text = await response.text();
    const answer = messagesOf(text, response.headers.get('content-type')).at(-1);
    if (session !== null) {
      cleanups.push(() =>
        fetch(`${mount.base}/mcp`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${client.key}`, 'mcp-session-id': session },
        }),
      );
    }
    return {
      ok: !answer?.error,
      status: response.status,
      rpc: answer?.error?.code,
      text,
      data: answer?.error?.data,
    };
  }
  if (client.wire === 'mcp2026' && method === 'subscriptions/listen') {
    const modern = client as ModernClient;
    const response = await fetch(modern.url, modern.init({ jsonrpc: '2.0', id: 'listen', method, params }));
    if (response.headers.get('content-type')?.includes('text/event-stream')) {
      await response.body?.cancel();
      return { ok: true, status: response.status, text: '(stream)' };
    }
    const text = await response.text();
    const answer = JSON.parse(text);
    return {
      ok: !answer.error,
      status: response.status,
      rpc: answer.error?.code,
      text,
      data: answer.error?.data,
    };
  }
  return client.request(method, params);
}

describe('2. the SDK built-in methods each pay a read token, and are refused in band past the limit', () => {
  it.each(MCP_DOORS)('$label', async (door) => {
    const m = mounts[door.mount];
    const client = await open(door, 'pinger');
    const era = door.wire as 'mcp2025' | 'mcp2026' | 'ws';
    for (const [method, params] of BUILTINS[era]) {
      m.world.refill();
      // All but one token.
      for (let i = 0; i < LIMITS.read - 1; i++) {
        const ping = await client.ping();
        if (door.wire === 'mcp2026') expect(ping.rpc, ping.text).toBe(-32601);
        else expect(ping.ok, ping.text).toBe(true);
      }
      // The built-in is admitted and takes the last token...
      const last = await builtin(m, client, method, params);
      expect(last.rpc, `${method}: ${last.text.slice(0, 200)}`).not.toBe(-32029);
      // ...so the next request is refused,
      const after = await client.ping();
      expectRefused(door, after, 'RATE_LIMITED');
      expect(after.data).toMatchObject({ limit: LIMITS.read, windowSeconds: 60 });
      expect(after.data.retryAfterSeconds).toBeGreaterThan(0);
      // and so is the built-in itself, in band (HTTP 200) with the retry time.
      const again = await builtin(m, client, method, params);
      expect(again.rpc, `${method}: ${again.text.slice(0, 200)}`).toBe(-32029);
      if (isHttp(door)) expect(again.status, method).toBe(200);
      expect(again.data?.retryAfterSeconds, method).toBeGreaterThan(0);
    }
    if (door.wire === 'mcp2025') {
      // A POST of notifications only pays a read token too; past the limit it is refused (429), and
      // so is a DELETE.
      const session = client as SessionClient;
      m.world.refill();
      for (let i = 0; i < LIMITS.read - 1; i++) expect((await client.ping()).ok).toBe(true);
      const note = await session.post(
        JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      );
      await note.text();
      expect(note.status).toBe(202);
      expectRefused(door, await client.ping(), 'RATE_LIMITED');
      const refusedNote = await session.post(
        JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      );
      expect(refusedNote.status).toBe(429);
      expect(JSON.parse(await refusedNote.text()).error.code).toBe(-32029);
      const refusedDelete = await fetch(session.url, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${KEYS.pinger}`, 'mcp-session-id': session.sessionId! },
      });
      expect(refusedDelete.status).toBe(429);
      await refusedDelete.text();
    }
  });
});

describe('2b. a 2025-03-26 batch pays per request; refusals are merged into its answer', () => {
  it.each(DOORS.filter((d) => d.wire === 'mcp2025'))('$label', async (door) => {
    const m = mounts[door.mount];
    const session = await SessionClient.open(m.base, KEYS.batcher, '2025-03-26');
    cleanups.push(() => session.close());
    m.world.refill();
    const pings = Array.from({ length: LIMITS.read + 1 }, (_, i) => ({
      jsonrpc: '2.0',
      id: i + 1,
      method: 'ping',
    }));
    const response = await session.post(JSON.stringify(pings));
    expect(response.status).toBe(200);
    const messages = messagesOf(await response.text(), response.headers.get('content-type'));
    expect(messages).toHaveLength(LIMITS.read + 1);
    const refused = messages.filter((msg) => msg.error);
    expect(refused).toHaveLength(1);
    expect(refused[0].error.code).toBe(-32029);
    expect(refused[0].id).toBe(LIMITS.read + 1);
    // A reserved tool in a batch is refused alone; the rest is served.
    m.world.refill();
    const mixed = await session.post(
      JSON.stringify([
        { jsonrpc: '2.0', id: 'a', method: 'tools/call', params: { name: 'secret.wipe', arguments: {} } },
        { jsonrpc: '2.0', id: 'b', method: 'tools/list', params: {} },
        {
          jsonrpc: '2.0',
          id: 'c',
          method: 'tools/call',
          params: { name: 'public.echo', arguments: { text: 'c' } },
        },
      ]),
    );
    const byId = new Map(
      messagesOf(await mixed.text(), mixed.headers.get('content-type')).map((msg) => [msg.id, msg]),
    );
    expect(byId.get('a')?.error?.code).toBe(-32003);
    expect(byId.get('b')?.result.tools.map((t: { name: string }) => t.name)).not.toContain('secret.wipe');
    expect(byId.get('c')?.result.content[0].text).toBe('c');
    expect(m.world.secretRuns).toBe(0);
  });
});

describe('3. permission and visibility answer the same everywhere', () => {
  it.each(DOORS)('$label', async (door) => {
    const { world } = mounts[door.mount];
    const viewer = await open(door, 'viewer');
    expectRefused(door, await viewer.callTool('public.echo', { text: 'hi' }), 'FORBIDDEN');
    // The viewer still reads the catalog.
    expect((await viewer.listTools()).value).toContain('public.echo');

    const user = await open(door, 'user');
    const tools = await user.listTools();
    expect(tools.value).toContain('public.echo');
    expect(tools.value).not.toContain('secret.wipe');
    const refusedTool = await user.callTool('secret.wipe');
    expectRefused(door, refusedTool, 'FORBIDDEN');
    expect(refusedTool.message).toBe('Forbidden: secret.wipe is not available to this caller');

    const prompts = await user.listPrompts();
    expect(prompts.value).toContain('greet');
    expect(prompts.value).not.toContain('secret-prompt');
    expectRefused(door, await user.getPrompt('secret-prompt'), 'FORBIDDEN');

    const resources = await user.listResources();
    expect(resources.value).toContain('files://readme');
    expect(resources.value).not.toContain('files://secret');
    expectRefused(door, await user.readResource('files://secret'), 'FORBIDDEN');
    if (door.wire === 'rest') {
      // A tool name in the path is decoded once, then checked: an escaped letter changes nothing.
      const escaped = await rawRequest(mounts[door.mount].port, {
        method: 'POST',
        path: '/tools/%73ecret%2Ewipe/execute',
        headers: { authorization: `Bearer ${KEYS.user}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(escaped.status, escaped.text.slice(0, 200)).toBe(403);
    }
    expect(world.secretRuns).toBe(0);
    expect(world.staticSecretReads).toBe(0);

    // Hidden only from those without the role: the admin sees and uses them.
    const admin = await open(door, 'admin');
    expect((await admin.listTools()).value).toContain('secret.wipe');
    expect((await admin.listPrompts()).value).toContain('secret-prompt');
    expect((await admin.readResource('files://secret')).ok).toBe(true);
    expect(world.staticSecretReads).toBe(1);
  });
});

describe('3b. the SDK clients meet the same refusals, in band, on every MCP wire', () => {
  it.each(MCP_DOORS)('$label', async (door) => {
    const m = mounts[door.mount];
    const auth = { authorization: `Bearer ${KEYS.user}` };
    let client: {
      listTools(): Promise<{ tools: Array<{ name: string }> }>;
      listPrompts(): Promise<{ prompts: Array<{ name: string }> }>;
      callTool(p: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
      readResource(p: { uri: string }): Promise<unknown>;
      close(): Promise<void>;
    };
    if (door.wire === 'mcp2025') {
      // SDK 1.x, the key in X-API-Key.
      const v1 = new V1Client({ name: 'doors-v1', version: '1' });
      await v1.connect(
        new V1Transport(new URL(`${m.base}/mcp`), { requestInit: { headers: { 'x-api-key': KEYS.user } } }),
      );
      client = v1;
    } else {
      const v2 = new Client(
        { name: 'doors-v2', version: '1' },
        door.wire === 'mcp2026' ? { versionNegotiation: { mode: 'auto' } } : undefined,
      );
      const sessionsBefore = m.world.server.connectionCounts().httpSessions;
      await v2.connect(
        door.wire === 'mcp2026'
          ? new StreamableHTTPClientTransport(new URL(`${m.base}/mcp`), { requestInit: { headers: auth } })
          : new WebSocketClientTransport(m.wsUrl, { headers: auth }),
      );
      // The modern era opens no session.
      if (door.wire === 'mcp2026')
        expect(m.world.server.connectionCounts().httpSessions).toBe(sessionsBefore);
      client = v2;
    }
    cleanups.push(() => client.close());
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('public.echo');
    expect(tools).not.toContain('secret.wipe');
    expect((await client.listPrompts()).prompts.map((p) => p.name)).not.toContain('secret-prompt');
    await expect(client.callTool({ name: 'secret.wipe', arguments: {} })).rejects.toMatchObject({
      code: -32003,
      message: expect.stringContaining('secret.wipe is not available'),
    });
    await expect(client.readResource({ uri: 'files://sec%72et' })).rejects.toMatchObject({ code: -32003 });
    expect(m.world.secretRuns).toBe(0);
    expect(m.world.reads).toEqual([]);
    // Past the read limit the client gets -32029 as an error of the request, not a transport failure,
    // and carries on once the bucket has refilled.
    let limited: any;
    for (let i = 0; i <= LIMITS.read && limited === undefined; i++) {
      await client.listTools().catch((error: unknown) => {
        limited = error;
      });
    }
    expect(limited).toMatchObject({ code: -32029 });
    m.world.refill();
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  });
});

describe('4. delegated calls run as the caller', () => {
  it.each(DOORS)('$label: a chain over a reserved tool is FORBIDDEN to a user', async (door) => {
    const { world } = mounts[door.mount];
    const user = await open(door, 'user');
    const refused = await user.callTool('public.wipe-all');
    expectToolRefused(door, refused, 'FORBIDDEN');
    expect(refused.message).toContain('secret.wipe');
    expect(world.secretRuns).toBe(0);
    // The chain itself works: the admin runs it.
    const admin = await open(door, 'admin');
    const ran = await admin.callTool('public.wipe-all');
    expect(ran.ok, ran.text.slice(0, 300)).toBe(true);
    expect(world.secretRuns).toBe(1);
  });

  it.each(DOORS)('$label: a declarative tool pays for its steps at any depth', async (door) => {
    const { world } = mounts[door.mount];
    const chainer = await open(door, 'chainer');
    // 1 + 2 tokens: within the limit.
    const twice = await chainer.callTool('public.echo-twice', { text: 'x' });
    expect(twice.ok, twice.text.slice(0, 300)).toBe(true);
    world.refill();
    // 1 + 1 + (1 + 2) tokens: the inner chain's last step is the one past the limit.
    const nested = await chainer.callTool('public.echo-nested', { text: 'x' });
    expectToolRefused(door, nested, 'RATE_LIMITED');
  });

  it.each(REST_DOORS)('$label: a batch of N calls spends N execute tokens', async (door) => {
    const { world } = mounts[door.mount];
    const rest = (await open(door, 'batcher')) as DoorClient & {
      post(p: string, b: unknown): Promise<Answer>;
    };
    const calls = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ tool: 'public.echo', arguments: { text: String(i) } }));
    const over = await rest.post('/tools/batch', { calls: calls(LIMITS.execute + 1), concurrency: 1 });
    expect(over.status).toBe(200);
    const codes = over.value.results.map((r: any) => (r.isError ? r._meta['io.mcpkit/error'].code : 'ok'));
    expect(codes).toEqual([...Array(LIMITS.execute).fill('ok'), 'RATE_LIMITED']);
    world.refill();
    // Exactly N: the request's own token pays the first call, so nothing is left after N calls.
    const exact = await rest.post('/tools/batch', { calls: calls(LIMITS.execute) });
    expect(exact.value.results.every((r: any) => !r.isError)).toBe(true);
    expectRefused(door, await rest.callTool('public.echo'), 'RATE_LIMITED');
    world.refill();
    // Each call is checked as the caller: the reserved one is refused alone.
    const mixed = await rest.post('/tools/batch', {
      calls: [{ tool: 'public.echo' }, { tool: 'secret.wipe' }, { tool: 'public.echo' }],
    });
    expect(mixed.value.results.map((r: any) => r._meta?.['io.mcpkit/error']?.code ?? 'ok')).toEqual([
      'ok',
      'FORBIDDEN',
      'ok',
    ]);
    const chain = await rest.post('/tools/chain', {
      steps: [{ tool: 'public.echo' }, { tool: 'secret.wipe' }],
    });
    expect(chain.value.ok).toBe(false);
    expect(chain.value.steps[1].result._meta['io.mcpkit/error'].code).toBe('FORBIDDEN');
    expect(world.secretRuns).toBe(0);
  });

  it.each(REST_DOORS)('$label: no one registers a chain with a step it cannot run', async (door) => {
    const m = mounts[door.mount];
    const operator = (await open(door, 'operator')) as DoorClient & {
      post(p: string, b: unknown): Promise<Answer>;
    };
    const admin = (await open(door, 'admin')) as DoorClient & {
      fetch(p: string, i?: RequestInit): Promise<Answer>;
    };
    const chain = (name: string, tool: string) => ({ kind: 'chain', name, steps: [{ tool }] });
    expectRefused(door, await operator.post('/tools', chain('op-wipe', 'secret.wipe')), 'FORBIDDEN');
    expect((await admin.fetch('/tools/op-wipe')).status).toBe(404);
    // The operator may register a chain it can run.
    expect((await operator.post('/tools', chain('op-echo', 'public.echo'))).status).toBe(201);
    expect((await admin.fetch('/tools/op-echo', { method: 'DELETE' })).status).toBe(204);
    // Integrations: the operator may not manage them at all.
    const integration = (id: string, tool: string) => ({ id, name: id, tools: [chain('c', tool)] });
    expectRefused(
      door,
      await operator.post('/integrations', integration('op-integ', 'public.echo')),
      'FORBIDDEN',
    );
    // A role that manages integrations but runs only public.* cannot slip a reserved step (or one
    // outside its patterns) into an integration's chain tool.
    const integrator = (await open(door, 'integrator')) as DoorClient & {
      post(p: string, b: unknown): Promise<Answer>;
    };
    for (const step of ['secret.wipe', 'slow']) {
      const refused = await integrator.post('/integrations', integration('integ-bad', step));
      expectRefused(door, refused, 'FORBIDDEN');
      expect((await admin.fetch('/integrations/integ-bad')).status).toBe(404);
    }
    expectRefused(door, await integrator.post('/tools', chain('public.sneaky', 'secret.wipe')), 'FORBIDDEN');
    m.world.refill();
    const allowed = await integrator.post('/integrations', integration('integ-ok', 'public.echo'));
    expect(allowed.status, allowed.text.slice(0, 300)).toBe(201);
    expect((await admin.fetch('/integrations/integ-ok', { method: 'DELETE' })).status).toBe(204);
    expect(m.world.secretRuns).toBe(0);
  });
});

describe("4b. a model's tool calls run as the caller (REST completions)", () => {
  it.each(REST_DOORS)('$label', async (door) => {
    const { world } = mounts[door.mount];
    const model = await createModelServer({
      turns: [
        {
          toolCalls: [
            { name: 'secret.wipe', arguments: {} },
            { name: 'public.wipe-all', arguments: {} },
            { name: 'public.echo', arguments: { text: 'from the model' } },
          ],
        },
        { text: 'done' },
      ],
    });
    cleanups.push(() => model.close());
    const rest = (await open(door, 'user')) as DoorClient & { post(p: string, b: unknown): Promise<Answer> };
    const modelConfig = { provider: 'custom', model: 'm', apiKey: 'k', baseUrl: `${model.url}/v1` };
    const run = await rest.post('/completions', {
      model: modelConfig,
      messages: [{ role: 'user', content: 'go' }],
    });
    expect(run.status, run.text.slice(0, 300)).toBe(200);
    // The model is offered only what the caller may run...
    const offered = model.requests[0]!.body.tools.map((t: { function: { name: string } }) => t.function.name);
    expect(offered).toContain('public.echo');
    expect(offered).not.toContain('secret.wipe');
    // ...and what it asks for anyway is checked as the caller's own call, at any depth.
    const calls = run.value.steps[0].toolCalls;
    expect(calls.map((c: { name: string; isError?: boolean }) => [c.name, c.isError === true])).toEqual([
      ['secret.wipe', true],
      ['public.wipe-all', true],
      ['public.echo', false],
    ]);
    expect(world.secretRuns).toBe(0);
    // A prompt the caller may not read is not rendered for it either.
    const prompt = await rest.post('/completions', { model: modelConfig, prompt: { name: 'secret-prompt' } });
    expectRefused(door, prompt, 'FORBIDDEN');
    expect(model.requests).toHaveLength(2);
  });
});

describe("4c. completions over WebSocket: admitted like POST /completions, the model's calls as the caller's", () => {
  it.each(MOUNTS)('%s', async (mountName) => {
    const mount = mounts[mountName];
    const model = await createModelServer({
      turns: [
        {
          toolCalls: [
            { name: 'secret.wipe', arguments: {} },
            { name: 'public.echo', arguments: { text: 'from the model' } },
          ],
        },
        { text: 'done' },
      ],
    });
    cleanups.push(() => model.close());
    const WebSocket = WsSocket as unknown as WebSocketConstructor;
    await expect(connectCompletions(mount.wsUrl, { WebSocket })).rejects.toThrow(/refused/);
    const request = {
      model: { provider: 'custom', model: 'm', apiKey: 'k', baseUrl: `${model.url}/v1` },
      messages: [{ role: 'user' as const, content: 'go' }],
    };
    const viewer = await connectCompletions(mount.wsUrl, { WebSocket, apiKey: KEYS.viewer });
    cleanups.push(async () => viewer.close());
    await expect(viewer.stream(request).result).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const user = await connectCompletions(mount.wsUrl, { WebSocket, apiKey: KEYS.user });
    cleanups.push(async () => user.close());
    const job = await user.stream(request).result;
    expect(job.status).toBe('succeeded');
    const offered = model.requests[0]!.body.tools.map((t: { function: { name: string } }) => t.function.name);
    expect(offered).toContain('public.echo');
    expect(offered).not.toContain('secret.wipe');
    expect(job.steps[0]!.toolCalls.map((c) => [c.name, c.isError === true])).toEqual([
      ['secret.wipe', true],
      ['public.echo', false],
    ]);
    expect(mount.world.secretRuns).toBe(0);
  });
});

describe('5. a reserved URI is refused in every spelling, and its reader never runs', () => {
  const SPELLINGS = [
    'files://sec%72et',
    'files://%73%65%63%72%65%74',
    'files://secret%2Fkeys',
    'files://secret%2fkeys',
    'files://%73ecret%2Fkeys',
  ];
  it.each(DOORS)('$label', async (door) => {
    const m = mounts[door.mount];
    const { world } = m;
    const user = await open(door, 'user');
    for (const uri of SPELLINGS) {
      // On REST the client percent-encodes the URI into the path: `sec%2572et`, encoded twice.
      expectRefused(door, await user.readResource(uri), 'FORBIDDEN');
    }
    if (door.wire === 'rest') {
      const raw = (path: string) =>
        rawRequest(m.port, { path, headers: { authorization: `Bearer ${KEYS.user}` } });
      for (const path of [
        '/resources/files:%2F%2Fsecret',
        '/resources/files%3A%2F%2Fsec%72et',
        '/resources/files%3A%2F%2Fsecret%252Fkeys',
        '/resources/files%3A%2F%2Fsec%2572et%252Fkeys',
      ]) {
        const refused = await raw(path);
        expect(refused.status, `${path}: ${refused.text.slice(0, 200)}`).toBe(403);
      }
      // A path that is not valid percent-encoding at all.
      // (Fastify's router refuses it before mcpkit sees it, with its own JSON error.)
      const invalidPath = await raw('/resources/files%3A%2F%2F%E0%A4%A');
      expect(invalidPath.status).toBe(400);
      const invalidBody = JSON.parse(invalidPath.text);
      if (door.mount !== 'fastify') expect(invalidBody.code).toBe('INVALID_REQUEST');
    }
    // Invalid percent-encoding in the URI itself: refused as an invalid argument.
    for (const uri of ['files://%E0%A4%A', 'files://%zz', 'files://100%']) {
      expectRefused(door, await user.readResource(uri), 'INVALID_ARGUMENT');
    }
    expect(world.reads).toEqual([]);
    expect(world.staticSecretReads).toBe(0);
    // The template's reader is reachable, and receives the decoded value.
    const allowed = await user.readResource('files://public%2Fdoc');
    expect(allowed.ok, allowed.text.slice(0, 300)).toBe(true);
    expect(world.reads).toEqual(['public/doc']);
  });
});

/** Filler the bounded-name invariants use: control characters, markup, then a long run. */
const JUNK = '\r\n\u0000<script>';

/** `message` is short and names at most a short prefix of `filler`, without raw control characters. */
function expectShortMessage(answer: Answer, filler: string, what = ''): void {
  const check = expect.soft;
  const message = answer.message ?? '';
  const seen = `${what}: ${JSON.stringify(message.slice(0, 120))}`;
  check(message.length, `${seen} (length)`).toBeLessThan(300);
  check(message.includes(filler.repeat(65)), `${seen} (echoes more than 64 characters)`).toBe(false);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  check(/[\u0000-\u001f]/.test(message), `${seen} (raw control characters)`).toBe(false);
}

describe('6. an oversized name gets a short INVALID_ARGUMENT, never an echo', () => {
  it.each(DOORS)('$label', async (door) => {
    const { world } = mounts[door.mount];
    const user = await open(door, 'user');
    // A URL is bounded by node:http's 16 KiB header limit: REST names go in the path at 10,000
    // characters; on MCP they go in the body at 1 MiB.
    const size = door.wire === 'rest' ? 10_000 : 1 << 20;
    const huge = JUNK + 'x'.repeat(size);
    for (const [what, answer] of [
      ['tool', await user.callTool(huge)],
      ['prompt', await user.getPrompt(huge)],
      ['resource', await user.readResource(`files://${huge}`)],
    ] as const) {
      expectRefused(door, answer, 'INVALID_ARGUMENT');
      expectShortMessage(answer, 'x');
      expect(answer.text.length, what).toBeLessThan(1000);
    }
    if (door.wire === 'rest') {
      // 1 MiB names in REST bodies: a batch call, a chain step, a chain's own name.
      const rest = user as DoorClient & { post(p: string, b: unknown): Promise<Answer> };
      const mebibyte = JUNK + 'x'.repeat(1 << 20);
      const admin = (await open(door, 'admin')) as DoorClient & {
        post(p: string, b: unknown): Promise<Answer>;
      };
      const register = await admin.post('/tools', {
        kind: 'chain',
        name: mebibyte,
        steps: [{ tool: 'public.echo' }],
      });
      expectRefused(door, register, 'INVALID_ARGUMENT');
      expectShortMessage(register, 'x');
      // A call or step no catalog could hold makes the whole request invalid, before anything runs.
      const batch = await rest.post('/tools/batch', { calls: [{ tool: mebibyte }] });
      expectRefused(door, batch, 'INVALID_ARGUMENT');
      expectShortMessage(batch, 'x');
      const chain = await rest.post('/tools/chain', { steps: [{ tool: mebibyte }] });
      expectRefused(door, chain, 'INVALID_ARGUMENT');
      expectShortMessage(chain, 'x');
    }
    expect(world.reads).toEqual([]);
  });
});

describe('6b. an unknown name at the length limit is answered with a short message', () => {
  it.each(DOORS)('$label', async (door) => {
    const user = await open(door, 'user');
    // 128 characters: the longest tool or prompt name there can be.
    const name = JUNK + 'y'.repeat(128 - JUNK.length);
    // (Soft assertions: each of the three is reported.) On the 2026 wire the client sends the
    // Mcp-Name header a real client sends.
    const tool = await user.callTool(name);
    expect(tool.ok).toBe(false);
    expectShortMessage(tool, 'y', 'tool');
    const prompt = await user.getPrompt(name);
    expect(prompt.ok).toBe(false);
    expectShortMessage(prompt, 'y', 'prompt');
    // Under 8192 characters: a URI the policy admits and no resource serves.
    const resource = await user.readResource(`nope://${'z'.repeat(8000)}`);
    expect(resource.ok).toBe(false);
    expectShortMessage(resource, 'z', 'resource');
    if (door.wire === 'mcp2026') {
      // The same read without its Mcp-Name header: the header check's error is bounded too.
      const modern = user as ModernClient;
      const init = modern.init({
        jsonrpc: '2.0',
        id: 9,
        method: 'resources/read',
        params: { uri: `nope://${'z'.repeat(8000)}` },
      });
      const headers = { ...(init.headers as Record<string, string>) };
      delete headers['mcp-name'];
      const mismatch = await answerOfHttp(await fetch(modern.url, { ...init, headers }));
      expect(mismatch.ok).toBe(false);
      expectShortMessage(mismatch, 'z', 'header mismatch');
    }
  });
});

describe('7. per-caller shares: sessions, and requests in flight on a WebSocket', () => {
  it.each(DOORS.filter((d) => d.wire === 'mcp2025'))('$label: 2025-era sessions per caller', async (door) => {
    const m = mounts[door.mount];
    const opened: SessionClient[] = [];
    const openAs = async (caller: CallerName) => {
      const session = await SessionClient.open(m.base, KEYS[caller]);
      opened.push(session);
      cleanups.push(() => session.close());
      return session;
    };
    const a = [];
    for (let i = 0; i < SESSIONS_PER_CALLER; i++) a.push(await openAs('shareA'));
    // One key at its share does not lock another out.
    const b = await openAs('shareB');
    // Use the first, so the second is the least recently used.
    expect((await a[0]!.ping()).ok).toBe(true);
    const a4 = await openAs('shareA');
    const recycled = await a[1]!.ping();
    expect(recycled.status, recycled.text).toBe(404);
    for (const kept of [a[0]!, a[2]!, a4, b]) expect((await kept.ping()).ok).toBe(true);
    m.world.refill();
    // With a stream open on every one of its sessions, a caller at its share gets 429.
    const streams = new AbortController();
    cleanups.push(async () => streams.abort());
    for (const session of [a[0]!, a[2]!, a4]) {
      const stream = await fetch(session.url, {
        headers: {
          authorization: `Bearer ${KEYS.shareA}`,
          accept: 'text/event-stream',
          'mcp-session-id': session.sessionId!,
          'mcp-protocol-version': LEGACY_VERSION,
        },
        signal: streams.signal,
      });
      expect(stream.status).toBe(200);
    }
    const busy = await fetch(`${m.base}/mcp`, {
      method: 'POST',
      headers: mcpHeaders(KEYS.shareA, { 'mcp-protocol-version': LEGACY_VERSION }),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT_PARAMS }),
    });
    expect(busy.status).toBe(429);
    const body = JSON.parse(await busy.text());
    expect(body.error.code).toBe(-32029);
    expect(body.error.data.retryAfterSeconds).toBeGreaterThan(0);
    // The other key is not affected.
    await openAs('shareB');
  });

  const slowCall = (id: string | number) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'slow', arguments: {} },
  });

  it.each(DOORS.filter((d) => d.wire === 'ws'))(
    '$label: a repeated id in flight is refused',
    async (door) => {
      const { slow } = mounts[door.mount].world;
      const client = (await open(door, 'inflight')) as WsClient;
      const finished = client.next((msg) => msg.id === 'dup' && 'result' in msg);
      client.send(slowCall('dup'));
      await slow.until(() => slow.started === 1);
      const refused = client.next((msg) => msg.id === 'dup' && 'error' in msg);
      client.send({ jsonrpc: '2.0', id: 'dup', method: 'ping' });
      expect((await refused).error).toMatchObject({
        code: -32600,
        message: expect.stringMatching(/in flight/),
      });
      // The first request runs on and is answered; then its id may be used again.
      slow.release();
      expect((await finished).result.content[0].text).toBe('slow done');
      expect((await client.request('ping', {}, 'dup')).ok).toBe(true);
    },
  );

  it.each(DOORS.filter((d) => d.wire === 'ws'))(
    '$label: cancelled requests keep their slots until their handlers end',
    async (door) => {
      const { slow } = mounts[door.mount].world;
      const client = (await open(door, 'inflight')) as WsClient;
      const ids = Array.from({ length: MAX_IN_FLIGHT }, (_, i) => `slow-${i}`);
      for (const id of ids) client.send(slowCall(id));
      await slow.until(() => slow.started === MAX_IN_FLIGHT);
      for (const id of ids) {
        client.send({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { requestId: id, reason: 'test' },
        });
      }
      // The handlers still run: every slot is still taken.
      expectRefused(door, await client.ping(), 'BUSY');
      expectRefused(door, await client.callTool('public.echo'), 'BUSY');
      // A cancelled id is still in flight: it cannot be reused yet.
      const reused = await client.request('ping', {}, ids[0]);
      expect(reused.rpc, reused.text).toBe(-32600);
      expect(slow.finished).toBe(0);
      // Once the handlers end, the slots are free again.
      slow.release();
      await slow.until(() => slow.finished === MAX_IN_FLIGHT);
      await expect.poll(async () => (await client.ping()).ok, { interval: 5, timeout: 2000 }).toBe(true);
      expect((await client.callTool('public.echo', { text: 'after' })).ok).toBe(true);
      // A cancelled request is never answered.
      expect(client.received.filter((msg) => ids.includes(msg.id) && 'result' in msg)).toEqual([]);
    },
  );
});

describe('7b. WebSocket connections and open streams per caller', () => {
  it.each(DOORS.filter((d) => d.wire === 'ws'))('$label: connections per caller', async (door) => {
    const m = mounts[door.mount];
    for (let i = 0; i < CONNECTIONS_PER_CALLER; i++) await open(door, 'connector');
    const refused = await firstContact(m, 'ws', { key: KEYS.connector });
    expect(refused.status, refused.text).toBe(429);
    expect(JSON.parse(refused.text).error).toMatchObject({
      code: -32029,
      data: { limit: CONNECTIONS_PER_CALLER },
    });
    // Another key is not affected.
    expect((await firstContact(m, 'ws', { key: KEYS.user })).status).toBe(101);
  });

  it.each(DOORS.filter((d) => d.wire === 'mcp2026' || d.wire === 'rest'))(
    '$label: streams per caller',
    async (door) => {
      const m = mounts[door.mount];
      const aborts: AbortController[] = [];
      cleanups.push(async () => {
        for (const a of aborts) a.abort();
      });
      /** Opens one stream: a 2026 `subscriptions/listen`, or a REST resource subscription. */
      const openStream = async (key: string) => {
        const abort = new AbortController();
        aborts.push(abort);
        if (door.wire === 'rest') {
          return fetch(`${m.base}/resources/${encodeURIComponent('files://readme')}/subscribe`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}` },
            signal: abort.signal,
          });
        }
        const modern = new ModernClient(m.base, key);
        const init = modern.init({
          jsonrpc: '2.0',
          id: 1,
          method: 'subscriptions/listen',
          params: { notifications: { toolsListChanged: true } },
        });
        return fetch(modern.url, { ...init, signal: abort.signal });
      };
      // One key per wire: streams a test aborts are given back as the server notices, not at once.
      const streamer = door.wire === 'rest' ? KEYS.restStreamer : KEYS.streamer;
      for (let i = 0; i < STREAMS_PER_CALLER; i++) {
        const stream = await openStream(streamer);
        expect(stream.status).toBe(200);
        expect(stream.headers.get('content-type')).toContain('text/event-stream');
      }
      const refused = await openStream(streamer);
      // (Checked before the body is read: an admitted stream's body never ends.)
      expect(
        refused.headers.get('content-type'),
        `stream ${STREAMS_PER_CALLER + 1} was opened`,
      ).not.toContain('text/event-stream');
      const text = await refused.text();
      if (door.wire === 'rest') {
        expect(refused.status, text.slice(0, 200)).toBe(429);
      } else {
        // In band, like every refusal of a JSON-RPC request.
        expect(refused.status).toBe(200);
        expect(JSON.parse(text).error).toMatchObject({ code: -32029, data: { limit: STREAMS_PER_CALLER } });
      }
      // Another key is not affected; and once a stream ends, its share is free again.
      const other = await openStream(KEYS.user);
      expect(other.headers.get('content-type')).toContain('text/event-stream');
      aborts[0]!.abort();
      await expect
        .poll(
          async () => {
            const again = await openStream(streamer);
            return again.headers.get('content-type') ?? '';
          },
          { interval: 5, timeout: 2000 },
        )
        .toContain('text/event-stream');
    },
  );
});

/** JSON nested `depth` arrays deep. */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** A value nested `depth` objects deep. */
function deepValue(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

describe('8. deep JSON is refused; a deep declarative spec is refused whole and lists keep working', () => {
  it.each(DOORS)('$label', async (door) => {
    const user = await open(door, 'user');
    const deep = nested(10_000);
    if (door.wire === 'rest') {
      const refused = await user.sendText(`{"arguments":{"text":"x","deep":${deep}}}`);
      expect(refused.status).toBe(400);
      expect(refused.code).toBe('INVALID_REQUEST');
    } else {
      const refused = await user.sendText(
        `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"public.echo","arguments":{"deep":${deep}}}}`,
      );
      expect(refused.rpc, refused.text.slice(0, 200)).toBe(-32600);
      if (isHttp(door)) expect(refused.status).toBe(400);
      expect(refused.text.length).toBeLessThan(500);
    }
    // A declarative spec nesting past 32 (well within the body's 64) is refused whole.
    const admin = (await open({ ...door, wire: 'rest' }, 'admin')) as DoorClient & {
      post(p: string, b: unknown): Promise<Answer>;
    };
    const spec = {
      kind: 'chain',
      name: 'public.too-deep',
      steps: [{ tool: 'public.echo', args: { text: deepValue(40) } }],
    };
    const tool = await admin.post('/tools', spec);
    expect(tool.status, tool.text.slice(0, 300)).toBe(400);
    expect(tool.message).toMatch(/deeper than 32/);
    const integration = await admin.post('/integrations', {
      id: 'too-deep',
      name: 'Too deep',
      tools: [spec],
    });
    expect(integration.status, integration.text.slice(0, 300)).toBe(400);
    // Nothing was registered, and both lists still answer.
    const listed = await admin.listTools();
    expect(listed.ok).toBe(true);
    expect(listed.value).not.toContain('public.too-deep');
    const mine = await user.listTools();
    expect(mine.ok, mine.text.slice(0, 300)).toBe(true);
    expect(mine.value).toContain('public.echo');
    if (door.wire === 'ws') expect((await user.ping()).ok).toBe(true);
  });
});

describe('9. completion values leave out what the caller may not read', () => {
  const items = { type: 'ref/resource', uri: 'fixture://items/{id}' };
  const files = { type: 'ref/resource', uri: 'files://{+path}' };
  it.each(MCP_DOORS)('$label', async (door) => {
    const user = await open(door, 'user');
    expect((await user.complete(items, { name: 'id', value: '' })).value).toEqual(['1', '2', '10']);
    // Every spelling of a reserved file is left out, percent-encoded ones included.
    expect((await user.complete(files, { name: 'path', value: '' })).value).toEqual(['public/doc']);
    // A custom role with resource patterns: the rules still apply.
    const librarian = await open(door, 'librarian');
    expect((await librarian.complete(items, { name: 'id', value: '' })).value).toEqual(['1', '2', '10']);
    // A hidden prompt's completer is not reached at all; a visible one's is.
    expectRefused(
      door,
      await user.complete({ type: 'ref/prompt', name: 'secret-prompt' }, { name: 'topic', value: '' }),
      'FORBIDDEN',
    );
    expect(
      (await user.complete({ type: 'ref/prompt', name: 'greet' }, { name: 'name', value: 'A' })).value,
    ).toEqual(['Ada', 'Alan']);
    // The admin is offered everything.
    const admin = await open(door, 'admin');
    expect((await admin.complete(items, { name: 'id', value: '' })).value).toEqual(['1', '2', '7', '10']);
  });
});

describe('10. the Node bridge on every mount', () => {
  const MALFORMED = [
    '//x%2F',
    '//x%2F/..',
    '//',
    '///mcp',
    '//evil.example/tools',
    '/%',
    '/%E0%A4%A',
    '/tools/%',
    '/tools/%2e%2e%2f%2e%2e%2fmetrics',
    '/..%2f..%2fetc%2fpasswd',
    '/mcp%00',
    '/%0d%0aSet-Cookie:%20x=1',
    '/tools?%',
    '/resources/%ff%fe',
  ];

  it.each(MOUNTS)('%s: malformed paths are answered with JSON, never HTML', async (name) => {
    const m = mounts[name];
    for (const path of MALFORMED) {
      for (const headers of [{}, { authorization: `Bearer ${KEYS.admin}` }] as Array<
        Record<string, string>
      >) {
        const response = await rawRequest(m.port, { path, headers });
        const seen = `${path}: ${response.status} ${response.text.slice(0, 200)}`;
        expect(response.status, seen).toBeLessThan(500);
        expect(response.headers['content-type'], seen).toMatch(/json/);
        expect(() => JSON.parse(response.text), seen).not.toThrow();
        expect(response.text, seen).not.toMatch(/<html|<!doctype|<pre>|<body/i);
        expect(response.headers['set-cookie'], seen).toBeUndefined();
      }
    }
  });

  it.each(MOUNTS)(
    '%s: the OAuth metadata and challenges name the host the client addressed',
    async (name) => {
      const m = mounts[name];
      for (const host of [`127.0.0.1:${m.port}`, `localhost:${m.port}`, `${PUBLIC_HOST}:${m.port}`]) {
        const metadataUrl = `http://${host}/.well-known/oauth-protected-resource/mcp`;
        for (const path of [
          '/.well-known/oauth-protected-resource/mcp',
          '/.well-known/oauth-protected-resource',
        ]) {
          const metadata = await rawRequest(m.port, { path, headers: { host } });
          expect(metadata.status, `${host}${path}`).toBe(200);
          expect(JSON.parse(metadata.text)).toMatchObject({
            resource: `http://${host}/mcp`,
            authorization_servers: ['https://auth.example.test'],
          });
        }
        const rest = await rawRequest(m.port, { path: '/tools', headers: { host } });
        expect(rest.status).toBe(401);
        expect(rest.headers['www-authenticate']).toContain(`resource_metadata="${metadataUrl}"`);
        const mcp = await firstContact(m, 'mcp2025', { headers: { host } });
        expect(mcp.status).toBe(401);
        expect(mcp.headers['www-authenticate']).toContain(`resource_metadata="${metadataUrl}"`);
        const upgrade = await firstContact(m, 'ws', { headers: { host } });
        expect(upgrade.status).toBe(401);
        expect(upgrade.headers['www-authenticate']).toContain(`resource_metadata="${metadataUrl}"`);
      }
      // Only a trusted proxy (here 127.0.0.1) is believed about the host and scheme.
      const forwarded = { 'x-forwarded-host': PUBLIC_HOST, 'x-forwarded-proto': 'https' };
      const viaProxy = await rawRequest(m.port, {
        path: '/.well-known/oauth-protected-resource/mcp',
        headers: forwarded,
      });
      expect(JSON.parse(viaProxy.text).resource).toBe(`https://${PUBLIC_HOST}/mcp`);
      const untrusted = await rawRequest(m.port, {
        path: '/.well-known/oauth-protected-resource/mcp',
        headers: forwarded,
        localAddress: '127.0.0.2',
      });
      expect(JSON.parse(untrusted.text).resource).toBe(`http://127.0.0.1:${m.port}/mcp`);
      // A foreign host is refused even for the public metadata.
      const foreign = await rawRequest(m.port, {
        path: '/.well-known/oauth-protected-resource/mcp',
        headers: { host: 'evil.example' },
      });
      expect(foreign.status).toBe(403);
    },
  );

  it.each(MOUNTS)('%s: X-Forwarded-For names the client only behind a trusted proxy', async (name) => {
    const m = mounts[name];
    const anonymous = (xff: string, localAddress?: string) =>
      rawRequest(m.port, {
        path: '/tools',
        headers: { 'x-forwarded-for': xff },
        ...(localAddress !== undefined && { localAddress }),
      });
    // From the trusted proxy, each forwarded client has its own bucket: none runs out.
    for (let i = 0; i <= LIMITS.read; i++) {
      expect((await anonymous(`203.0.113.${i + 1}`)).status).toBe(401);
    }
    // One forwarded client, repeatedly, does run out.
    for (let i = 0; i < LIMITS.read; i++) expect((await anonymous('198.51.100.7')).status).toBe(401);
    const limited = await anonymous('198.51.100.7');
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.text).retryAfterSeconds).toBeGreaterThan(0);
    // From an untrusted peer the header is ignored: every request is the peer's.
    for (let i = 0; i < LIMITS.read; i++) {
      expect((await anonymous(`203.0.113.${i + 100}`, '127.0.0.2')).status).toBe(401);
    }
    expect((await anonymous('203.0.113.250', '127.0.0.2')).status).toBe(429);
    // The audit trail names the same addresses.
    const failures = m.world.audit.events({ action: 'auth.failure', limit: 1000 }).map((e) => e.address);
    expect(failures).toContain('198.51.100.7');
    expect(failures).toContain('127.0.0.2');
    expect(failures).not.toContain('203.0.113.250');
  });
});

const VAULT_TOKEN = 'vault-token-5e4d3c2b1a09f8e7d6c5';

describe("11. what a tool sends on a caller's behalf meets the outbound policy; its secret stays home", () => {
  let upstream: Server;
  const hits: string[] = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      hits.push(req.url ?? '');
      if (req.url === '/redirect')
        // A mapped-IPv6 spelling of the cloud metadata address: not on the allow-list, in any form.
        res.writeHead(302, { location: 'http://[::ffff:a9fe:a9fe]/latest/meta-data' }).end();
      else
        res
          .writeHead(500, { 'content-type': 'text/html' })
          .end(`<pre>db password=hunter2, you sent ${req.headers.authorization}</pre>`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const headers = { authorization: 'Bearer {{secrets.token}}', 'x-who': '{who}' };
    for (const mount of Object.values(mounts)) {
      await mount.world.server.integrations.create({
        id: 'vault',
        name: 'Vault',
        secrets: { token: VAULT_TOKEN },
        tools: ['redirect', 'fail', 'find'].map((name) => ({
          name,
          kind: 'http' as const,
          inputSchema: { type: 'object', properties: { who: { type: 'string' } } },
          http: { url: `${base}/${name}`, headers },
        })),
      });
    }
  });

  afterAll(async () => {
    for (const mount of Object.values(mounts)) await mount.world.server.integrations.delete('vault');
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it.each(DOORS)('$label', async (door) => {
    hits.length = 0;
    const admin = await open(door, 'admin');
    const redirected = await admin.callTool('vault__redirect');
    expectToolRefused(door, redirected, 'FORBIDDEN');
    expect(redirected.message).toMatch(/not on the outbound allow-list/);
    expect(hits).toEqual(['/redirect']);

    // The upstream's error body (which reflects the secret) is summarised, never passed on.
    const failed = await admin.callTool('vault__fail');
    expect(failed.ok).toBe(false);
    expect(failed.text).toMatch(/HTTP 500 from 127\.0\.0\.1: a text\/html body of \d+ bytes/);
    expect(failed.text).not.toContain('hunter2');
    expect(failed.text).not.toContain(VAULT_TOKEN);

    // A control character in a header placeholder is refused before the header (and its secret) is built.
    for (const who of ['a\u0000b', 'a\r\nx-evil: 1']) {
      const refused = await admin.callTool('vault__find', { who });
      expectToolRefused(door, refused, 'INVALID_ARGUMENT');
      expect(refused.text).not.toContain(VAULT_TOKEN);
    }
    expect(hits).toEqual(['/redirect', '/fail']);
  });
});
