/**
 * The policy layer, one table of cases run identically on the three remote doors: REST, MCP over
 * Streamable HTTP (2025-06-18 sessions) and MCP over WebSocket, each over a real socket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { createMcpServer, type McpKitServer, MemoryAuditSink } from '../src/index.js';
import { listen } from '../src/node/index.js';
import { readJsonRpc } from '../src/testing/index.js';
import { openRaw, RefusedUpgrade } from './websocketHelpers.js';

const KEYS = {
  admin: 'admin-key-0123456789abcdef',
  user: 'user-key-0123456789abcdefgh',
  viewer: 'viewer-key-0123456789abcdef',
  support: 'support-key-0123456789abcd',
  // A second user, to show one caller's burst leaves another alone.
  other: 'other-key-0123456789abcdefg',
};
const SECRET_ARG = 'sk-live-do-not-log-me-1234567890';
const WINDOW_MS = 60_000;
const EXECUTE_LIMIT = 3;

/** How a credential is presented. */
type Credential = { via: 'none' } | { via: 'bearer' | 'x-api-key' | 'query'; key: string };

/** What an operation ended as, in door-neutral terms. */
type Outcome =
  | { kind: 'ok'; value: unknown }
  | { kind: 'unauthorized'; challenge?: string | null }
  | { kind: 'forbidden'; message: string }
  | { kind: 'rate_limited'; retryAfterSeconds: number; headers?: Headers }
  | { kind: 'not_found' };

interface Connection {
  listTools(): Promise<Outcome>;
  call(name: string, args: Record<string, unknown>): Promise<Outcome>;
  close(): Promise<void>;
}

interface Door {
  name: 'rest' | 'mcp-http' | 'websocket';
  /** Connects (or, for REST, probes) with a credential; `unauthorized` when refused. */
  connect(base: string, credential: Credential): Promise<Connection | Outcome>;
}

function headersFor(credential: Credential): Record<string, string> {
  if (credential.via === 'bearer') return { authorization: `Bearer ${credential.key}` };
  if (credential.via === 'x-api-key') return { 'x-api-key': credential.key };
  return {};
}

function withQuery(url: string, credential: Credential): string {
  return credential.via === 'query' ? `${url}?api_key=${encodeURIComponent(credential.key)}` : url;
}

function restOutcome(response: Response, body: any): Outcome {
  if (response.status === 401)
    return { kind: 'unauthorized', challenge: response.headers.get('www-authenticate') };
  if (response.status === 403) return { kind: 'forbidden', message: body.detail };
  if (response.status === 404) return { kind: 'not_found' };
  if (response.status === 429) {
    return {
      kind: 'rate_limited',
      retryAfterSeconds: Number(response.headers.get('retry-after')),
      headers: response.headers,
    };
  }
  expect(response.status).toBe(200);
  return { kind: 'ok', value: body };
}

function rpcOutcome(message: any): Outcome {
  if (message.error) {
    if (message.error.code === -32003) return { kind: 'forbidden', message: message.error.message };
    if (message.error.code === -32029) {
      return { kind: 'rate_limited', retryAfterSeconds: message.error.data.retryAfterSeconds };
    }
    throw new Error(`unexpected JSON-RPC error ${JSON.stringify(message.error)}`);
  }
  if (message.result?.isError) {
    const meta = message.result._meta?.['io.mcpkit/error'];
    if (meta?.code === 'FORBIDDEN') return { kind: 'forbidden', message: message.result.content[0].text };
  }
  return { kind: 'ok', value: message.result };
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'policy-test', version: '1' },
  },
};

const rest: Door = {
  name: 'rest',
  async connect(base, credential) {
    const headers = headersFor(credential);
    const probe = await fetch(withQuery(`${base}/tools`, credential), { headers });
    if (probe.status === 401) return restOutcome(probe, await probe.json());
    await probe.body?.cancel();
    return {
      async listTools() {
        const response = await fetch(`${base}/tools`, { headers });
        const body = await response.json();
        const outcome = restOutcome(response, body);
        return outcome.kind === 'ok'
          ? { kind: 'ok', value: body.items.map((t: { name: string }) => t.name) }
          : outcome;
      },
      async call(name, args) {
        const response = await fetch(`${base}/tools/${encodeURIComponent(name)}/execute`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ arguments: args }),
        });
        return restOutcome(response, await response.json());
      },
      close: async () => {},
    };
  },
};

const mcpHttp: Door = {
  name: 'mcp-http',
  async connect(base, credential) {
    const url = withQuery(`${base}/mcp`, credential);
    const post = (body: unknown, extra: Record<string, string> = {}) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
          ...headersFor(credential),
          ...extra,
        },
        body: JSON.stringify(body),
      });
    const init = await post(INITIALIZE);
    if (init.status === 401) {
      const body = await init.json();
      expect(body.error.code).toBe(-32011);
      return { kind: 'unauthorized', challenge: init.headers.get('www-authenticate') };
    }
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.body?.cancel();
    const session = { 'mcp-session-id': sessionId };
    expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session)).status).toBe(202);
    let id = 1;
    const rpc = async (method: string, params: unknown) => {
      const response = await post({ jsonrpc: '2.0', id: id++, method, params }, session);
      if (response.status === 404) return { kind: 'not_found' } as Outcome;
      return rpcOutcome(await readJsonRpc(response));
    };
    return Object.assign(
      {
        async listTools(): Promise<Outcome> {
          const outcome = await rpc('tools/list', {});
          return outcome.kind === 'ok'
            ? { kind: 'ok', value: (outcome.value as any).tools.map((t: { name: string }) => t.name) }
            : outcome;
        },
        call: (name: string, args: Record<string, unknown>) => rpc('tools/call', { name, arguments: args }),
        close: async () => {
          await fetch(url, { method: 'DELETE', headers: { ...headersFor(credential), ...session } });
        },
      },
      { sessionId },
    );
  },
};

const websocket: Door = {
  name: 'websocket',
  async connect(base, credential) {
    const url = withQuery(`${base.replace(/^http/, 'ws')}/mcp`, credential);
    let socket: WebSocket;
    try {
      socket = await openRaw(url, { headers: headersFor(credential) });
    } catch (error) {
      if (error instanceof RefusedUpgrade && error.status === 401) {
        return { kind: 'unauthorized', challenge: (error.headers['www-authenticate'] as string) ?? null };
      }
      throw error;
    }
    const waiting = new Map<number, (message: any) => void>();
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.id !== undefined) waiting.get(message.id)?.(message);
    });
    let id = 0;
    const rpc = (method: string, params: unknown) =>
      new Promise<any>((resolve) => {
        const mine = id++;
        waiting.set(mine, resolve);
        socket.send(JSON.stringify({ jsonrpc: '2.0', id: mine, method, params }));
      });
    await rpc('initialize', INITIALIZE.params);
    socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    return {
      async listTools() {
        const outcome = rpcOutcome(await rpc('tools/list', {}));
        return outcome.kind === 'ok'
          ? { kind: 'ok', value: (outcome.value as any).tools.map((t: { name: string }) => t.name) }
          : outcome;
      },
      call: async (name, args) => rpcOutcome(await rpc('tools/call', { name, arguments: args })),
      close: async () => {
        socket.close();
      },
    };
  },
};

interface Setup {
  server: McpKitServer;
  base: string;
  audit: MemoryAuditSink;
  advance(ms: number): void;
  connect(credential: Credential): Promise<Connection>;
  refused(credential: Credential): Promise<Outcome>;
}

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function setup(door: Door): Promise<Setup> {
  let now = 1_000_000;
  const audit = new MemoryAuditSink(1000);
  const server = createMcpServer({
    logLevel: 'silent',
    auth: {
      apiKeys: [
        { id: 'admin', roles: ['admin'], key: KEYS.admin },
        { id: 'user', roles: ['user'], key: KEYS.user },
        { id: 'other', roles: ['user'], key: KEYS.other },
        { id: 'viewer', roles: ['viewer'], key: KEYS.viewer },
        { id: 'support', roles: ['support'], key: KEYS.support },
      ],
    },
    roles: { support: { permissions: ['tools:read', 'tools:execute'], tools: ['public.*'] } },
    rules: [{ tools: 'secret.*', roles: ['admin'] }],
    rateLimit: { execute: { limit: EXECUTE_LIMIT, windowMs: WINDOW_MS }, now: () => now },
    audit: { sinks: [audit] },
    tools: [
      {
        name: 'public.echo',
        inputSchema: { text: z.string(), apiKey: z.string().optional() },
        handler: ({ text }) => ({ text }),
      },
      { name: 'secret.delete', handler: () => 'deleted' },
      { name: 'internal.stats', handler: () => 'stats' },
    ],
  });
  const listening = await listen(server, { port: 0 });
  cleanups.push(async () => {
    await listening.close();
    await server.close();
  });
  const setupValue: Setup = {
    server,
    base: listening.url,
    audit,
    advance: (ms) => {
      now += ms;
    },
    async connect(credential) {
      const connected = await door.connect(listening.url, credential);
      if ('kind' in connected) throw new Error(`expected a connection, got ${JSON.stringify(connected)}`);
      cleanups.push(() => connected.close());
      return connected;
    },
    async refused(credential) {
      const outcome = await door.connect(listening.url, credential);
      if (!('kind' in outcome)) {
        await outcome.close();
        throw new Error('the connection was accepted');
      }
      return outcome;
    },
  };
  return setupValue;
}

const key = (name: keyof typeof KEYS, via: 'bearer' | 'x-api-key' = 'bearer'): Credential => ({
  via,
  key: KEYS[name],
});

describe.each([rest, mcpHttp, websocket])('policy on $name', (door) => {
  it('refuses a missing key with 401 and a Bearer challenge', async () => {
    const s = await setup(door);
    const outcome = await s.refused({ via: 'none' });
    expect(outcome.kind).toBe('unauthorized');
    if (outcome.kind === 'unauthorized' && door.name !== 'websocket') {
      expect(outcome.challenge).toMatch(/^Bearer realm="mcpkit"/);
    }
  });

  it('refuses a wrong key of the right length and of another length alike', async () => {
    const s = await setup(door);
    const sameLength = KEYS.user.slice(0, -1) + (KEYS.user.endsWith('h') ? 'x' : 'h');
    expect(sameLength).toHaveLength(KEYS.user.length);
    for (const wrong of [sameLength, 'short', `${KEYS.user}-and-more`]) {
      expect((await s.refused({ via: 'bearer', key: wrong })).kind).toBe('unauthorized');
      expect((await s.refused({ via: 'x-api-key', key: wrong })).kind).toBe('unauthorized');
    }
  });

  it('refuses a valid key sent in the query string', async () => {
    const s = await setup(door);
    expect((await s.refused({ via: 'query', key: KEYS.admin })).kind).toBe('unauthorized');
  });

  it('accepts a key from Authorization: Bearer and from X-API-Key', async () => {
    const s = await setup(door);
    for (const via of ['bearer', 'x-api-key'] as const) {
      const conn = await s.connect(key('user', via));
      expect(await conn.call('public.echo', { text: 'hi' })).toMatchObject({ kind: 'ok' });
    }
  });

  it('refuses a valid key without the permission', async () => {
    const s = await setup(door);
    const viewer = await s.connect(key('viewer'));
    expect(await viewer.listTools()).toMatchObject({ kind: 'ok' });
    expect(await viewer.call('public.echo', { text: 'hi' })).toMatchObject({ kind: 'forbidden' });
  });

  it('shows each caller only the tools it may use, and refuses the hidden ones', async () => {
    const s = await setup(door);
    const admin = await s.connect(key('admin'));
    const user = await s.connect(key('user'));
    const support = await s.connect(key('support'));
    expect(await admin.listTools()).toEqual({
      kind: 'ok',
      value: ['public.echo', 'secret.delete', 'internal.stats'],
    });
    expect(await user.listTools()).toEqual({ kind: 'ok', value: ['public.echo', 'internal.stats'] });
    expect(await support.listTools()).toEqual({ kind: 'ok', value: ['public.echo'] });
    // Again, once each caller's answer has been serialised and kept: still each its own.
    for (let round = 0; round < 2; round++) {
      expect(await support.listTools()).toEqual({ kind: 'ok', value: ['public.echo'] });
      expect(await user.listTools()).toEqual({ kind: 'ok', value: ['public.echo', 'internal.stats'] });
      expect(await admin.listTools()).toEqual({
        kind: 'ok',
        value: ['public.echo', 'secret.delete', 'internal.stats'],
      });
    }
    expect(await user.call('secret.delete', {})).toMatchObject({ kind: 'forbidden' });
    expect(await support.call('internal.stats', {})).toMatchObject({ kind: 'forbidden' });
    expect(await admin.call('secret.delete', {})).toMatchObject({ kind: 'ok' });
  });

  it('limits a burst per key, says when to retry, leaves other keys alone and recovers', async () => {
    const s = await setup(door);
    const user = await s.connect(key('user'));
    const other = await s.connect(key('other'));
    for (let i = 0; i < EXECUTE_LIMIT; i++) {
      expect(await user.call('public.echo', { text: String(i) })).toMatchObject({ kind: 'ok' });
    }
    const limited = await user.call('public.echo', { text: 'one too many' });
    expect(limited.kind).toBe('rate_limited');
    if (limited.kind !== 'rate_limited') return;
    // One token comes back every WINDOW_MS / LIMIT.
    expect(limited.retryAfterSeconds).toBe(Math.ceil(WINDOW_MS / EXECUTE_LIMIT / 1000));
    if (limited.headers) {
      expect(limited.headers.get('ratelimit-policy')).toBe(`"execute";q=${EXECUTE_LIMIT};w=60`);
      expect(limited.headers.get('ratelimit')).toMatch(/^"execute";r=0;t=\d+$/);
    }
    expect(await other.call('public.echo', { text: 'unaffected' })).toMatchObject({ kind: 'ok' });
    // Reads are a separate class: listing still works.
    expect(await user.listTools()).toMatchObject({ kind: 'ok' });
    s.advance(WINDOW_MS);
    expect(await user.call('public.echo', { text: 'recovered' })).toMatchObject({ kind: 'ok' });
  });

  it('writes each audit event, with secrets and credentials redacted', async () => {
    const s = await setup(door);
    await s.refused({ via: 'bearer', key: 'wrong-key-of-some-length' });
    const viewer = await s.connect(key('viewer'));
    await viewer.call('public.echo', { text: 'x' });
    const user = await s.connect(key('user'));
    await user.call('secret.delete', {});
    s.advance(WINDOW_MS);
    for (let i = 0; i <= EXECUTE_LIMIT; i++)
      await user.call('public.echo', { text: 'x', apiKey: SECRET_ARG });

    const events = s.audit.events();
    const byAction = (action: string) => events.filter((e) => e.action === action);
    expect(byAction('auth.failure')).toEqual([
      expect.objectContaining({ outcome: 'denied', callerId: 'anonymous', code: 'UNAUTHORIZED' }),
    ]);
    expect(byAction('permission.denied').map((e) => [e.callerId, e.target])).toEqual(
      expect.arrayContaining([
        // Both refuse before any handler runs: REST names the route, MCP the method.
        ['viewer', door.name === 'rest' ? 'POST /tools/:name/execute' : 'tools/call'],
        ['user', 'secret.delete'],
      ]),
    );
    expect(byAction('rate_limit.exceeded')).toEqual([
      expect.objectContaining({ callerId: 'user', outcome: 'denied', code: 'RATE_LIMITED' }),
    ]);
    const executions = byAction('tool.execute').filter((e) => e.outcome === 'success');
    expect(executions).toHaveLength(EXECUTE_LIMIT);
    for (const e of executions) {
      expect(e).toMatchObject({ callerId: 'user', target: 'public.echo' });
      expect(e.details).toEqual({ arguments: { text: 'x', apiKey: '[redacted]' } });
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      expect(e.time).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      // Over HTTP the HTTP request's id (a UUID here), so the call lines up with that request's
      // other events; over WebSocket the JSON-RPC id.
      if (door.name === 'websocket') expect(e.requestId).toMatch(/^\d+$/);
      else expect(e.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(e.address).toMatch(/127\.0\.0\.1$/);
    }
    // The same refusals, counted in the metrics.
    const metrics = await (
      await fetch(`${s.base}/metrics`, { headers: { authorization: `Bearer ${KEYS.admin}` } })
    ).text();
    expect(metrics).toContain('mcpkit_auth_failures_total{reason="invalid"} 1\n');
    expect(metrics).toContain('mcpkit_rate_limited_total{class="execute"} 1\n');
    expect(metrics).toContain('mcpkit_permission_denials_total{permission="tools:execute"} 1\n');
    expect(metrics).toContain('mcpkit_permission_denials_total{permission="tools rule"} 1\n');
    const serialised = JSON.stringify(events);
    expect(serialised).not.toContain(SECRET_ARG);
    for (const secret of Object.values(KEYS)) expect(serialised).not.toContain(secret);
  });
});

describe('session binding (MCP over HTTP, 2025 era)', () => {
  it('answers a session only to the key that opened it', async () => {
    const s = await setup(mcpHttp);
    const owner = (await s.connect(key('user'))) as Connection & { sessionId: string };
    expect(await owner.listTools()).toMatchObject({ kind: 'ok' });
    const hijack = (headers: Record<string, string>) =>
      fetch(`${s.base}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
          'mcp-session-id': owner.sessionId,
          ...headers,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }),
      });
    // Another valid key: the session does not exist for it.
    expect((await hijack({ authorization: `Bearer ${KEYS.admin}` })).status).toBe(404);
    expect((await hijack({ 'x-api-key': KEYS.other })).status).toBe(404);
    // No key at all: not even authenticated.
    expect((await hijack({})).status).toBe(401);
    // The owner still can.
    expect(await owner.listTools()).toMatchObject({ kind: 'ok' });
  });
});
