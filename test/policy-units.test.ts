/**
 * The policy layer piece by piece: configuration errors, roles and rules, resources and prompts,
 * REST route permissions, OAuth resource-server mode, the verify hook, anonymous callers, rate-limit
 * arithmetic, audit sinks and summaries, and real SDK clients (v2 modern era, 1.x 2025 era) with keys.
 */

import { readFileSync } from 'node:fs';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type AuthInfo, InMemoryTransport, OAuthError, OAuthErrorCode } from '@modelcontextprotocol/server';
import {
  type AuditEvent,
  createMcpServer,
  createMemoryRateLimitStore,
  hashApiKey,
  jsonLinesAuditSink,
  type McpKitServer,
  MemoryAuditSink,
  PERMISSIONS,
} from 'mcpkit';
import { listen } from 'mcpkit/node';
import { connectClient, createModelServer, jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { AccessControl, RateLimiter, summarise } from 'mcpkit/unstable';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ROUTES } from '../src/http/rest.js';
import { fixtureServer } from './fixtures.js';
import { openRaw } from './websocketHelpers.js';

const ADMIN = 'admin-key-for-unit-tests-0001';
const OPERATOR = 'operator-key-for-unit-tests-01';
const USER = 'user-key-for-unit-tests-000001';
const VIEWER = 'viewer-key-for-unit-tests-0001';
const READER = 'reader-key-for-unit-tests-0001';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let servers: McpKitServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

function secured(extra: Parameters<typeof fixtureServer>[0] = {}) {
  const audit = new MemoryAuditSink();
  const server = fixtureServer({
    auth: {
      apiKeys: [
        { id: 'admin', roles: ['admin'], key: ADMIN },
        { id: 'operator', roles: ['operator'], hash: hashApiKey(OPERATOR) },
        { id: 'user', roles: ['user'], key: USER },
        { id: 'viewer', roles: ['viewer'], key: VIEWER },
        { id: 'reader', roles: ['reader'], key: READER },
      ],
    },
    roles: {
      reader: {
        permissions: ['resources:read', 'prompts:read'],
        resources: ['fixture://items/*'],
        prompts: ['nothing-matches'],
      },
    },
    rules: [{ prompts: 'greet', roles: ['admin', 'operator', 'user'] }],
    audit: { sinks: [audit] },
    ...extra,
  });
  servers.push(server);
  return { server, audit };
}

describe('configuration', () => {
  it('refuses unknown roles, short keys, duplicate ids, bad hashes and unknown permissions', () => {
    const make = (options: Parameters<typeof createMcpServer>[0]) => () =>
      createMcpServer({ logLevel: 'silent', ...options });
    expect(make({ auth: { apiKeys: [{ id: 'a', roles: ['root'], key: ADMIN }] } })).toThrow(
      /auth\.apiKeys\[0\]\.roles: unknown role "root"/,
    );
    expect(make({ auth: { apiKeys: [{ id: 'a', key: 'short' }] } })).toThrow(/at least 16 characters/);
    expect(
      make({
        auth: {
          apiKeys: [
            { id: 'a', key: ADMIN },
            { id: 'a', key: USER },
          ],
        },
      }),
    ).toThrow(/used twice/);
    expect(make({ auth: { apiKeys: [{ id: 'a', hash: 'md5:abc' }] } })).toThrow(/sha256:<64 hex digits>/);
    expect(make({ auth: { apiKeys: [{ id: 'a', key: ADMIN, hash: hashApiKey(ADMIN) }] } })).toThrow(
      /exactly one of key or hash/,
    );
    expect(make({ auth: { apiKeys: [{ id: 'has space', key: ADMIN }] } })).toThrow(/\.id must be/);
    expect(make({ roles: { x: { permissions: ['tools:fly' as never] } } })).toThrow(
      /unknown permission "tools:fly"/,
    );
    expect(make({ rules: [{ tools: 'x', roles: ['nobody'] }] })).toThrow(/rules\[0\]\.roles: unknown role/);
    expect(make({ rateLimit: { execute: 0 } })).toThrow(/rateLimit\.execute/);
    expect(make({ auth: { anonymous: ['ghost'] } })).toThrow(/auth\.anonymous: unknown role "ghost"/);
    expect(make({ auth: { apiKeys: [{ id: 'anonymous', key: ADMIN }] } })).toThrow(/"anonymous" is reserved/);
    expect(
      make({
        auth: {
          apiKeys: [
            { id: 'a', key: ADMIN },
            { id: 'b', hash: hashApiKey(ADMIN) },
          ],
        },
      }),
    ).toThrow(/auth\.apiKeys\[1\] has the same key as auth\.apiKeys\[0\]/);
  });

  it('keeps only digests: hashApiKey is SHA-256 and a hashed key authenticates', async () => {
    expect(hashApiKey('abc')).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const { server } = secured();
    expect((await request(server, '/summary', { headers: bearer(OPERATOR) })).status).toBe(200);
    expect((await request(server, '/summary', { headers: bearer(hashApiKey(OPERATOR)) })).status).toBe(401);
  });
});

describe('roles and permissions', () => {
  it('expands area wildcards and unions roles; rules reserve entries', () => {
    const access = new AccessControl(
      { support: { permissions: ['tools:*'], tools: ['tickets.*', '!tickets.delete'] } },
      [
        { tools: 'tickets.audit', roles: ['admin'] },
        { tools: 'payroll.*', roles: ['support'] },
      ],
    );
    const support = access.grant({ id: 's', roles: ['support'] });
    expect(support.has('tools:manage')).toBe(true);
    expect(support.has('resources:read')).toBe(false);
    expect(support.canSee('tools', 'tickets.open')).toBe(true);
    expect(support.canSee('tools', 'tickets.delete')).toBe(false);
    expect(support.canSee('tools', 'tickets.audit')).toBe(false);
    expect(support.canSee('tools', 'billing.refund')).toBe(false);
    // A second role without target lists reaches everything not reserved by a rule.
    const both = access.grant({ id: 'b', roles: ['support', 'viewer'] });
    expect(both.canSee('tools', 'billing.refund')).toBe(true);
    expect(both.canSee('tools', 'tickets.audit')).toBe(false);
    expect(access.grant({ id: 'a', roles: ['admin'] }).canSee('tools', 'tickets.audit')).toBe(true);
    // Scopes that are not permission names (OAuth `openid`, a role's name) grant nothing themselves:
    // the role's patterns still apply.
    const scoped = access.grant({ id: 'o', roles: ['support'], permissions: ['openid', 'support'] });
    expect(scoped.canSee('tools', 'tickets.open')).toBe(true);
    expect(scoped.canSee('tools', 'billing.refund')).toBe(false);
    expect(scoped.has('tools:execute')).toBe(true);
    // A rule never hides anything from admin, even one that does not name it.
    expect(access.grant({ id: 'a', roles: ['admin'] }).canSee('tools', 'payroll.run')).toBe(true);
    expect(support.canSee('tools', 'payroll.run')).toBe(false);
    // No roles: nothing.
    const none = access.grant({ id: 'n' });
    expect(none.has('tools:read')).toBe(false);
    expect(none.canSee('tools', 'anything')).toBe(false);
    // The same roles share one compiled grant.
    expect(access.grant({ id: 'x', roles: ['viewer', 'support'] })).toBe(both);
  });

  it('an area wildcard leaves out sensitive permissions; a name, a direct permission or * grants them', () => {
    const access = new AccessControl({
      integrator: { permissions: ['integrations:*'] },
      backup: { permissions: ['integrations:backup'] },
      everything: { permissions: ['*'] },
      areas: {
        permissions: ['tools:*', 'resources:*', 'prompts:*', 'completions:*', 'admin:*', 'integrations:*'],
      },
    });
    const integrator = access.grant({ id: 'i', roles: ['integrator'] });
    expect(integrator.has('integrations:read')).toBe(true);
    expect(integrator.has('integrations:manage')).toBe(true);
    expect(integrator.has('integrations:backup')).toBe(false);
    // Every area wildcard together: every permission but the backup one.
    const areas = access.grant({ id: 'a', roles: ['areas'] });
    expect(PERMISSIONS.filter((p) => !areas.has(p))).toEqual(['integrations:backup']);
    expect(access.grant({ id: 'b', roles: ['backup'] }).has('integrations:backup')).toBe(true);
    expect(access.grant({ id: 'e', roles: ['everything'] }).has('integrations:backup')).toBe(true);
    expect(access.grant({ id: 'a', roles: ['admin'] }).has('integrations:backup')).toBe(true);
    // An OAuth scope naming it grants it; a scope with a wildcard names no permission.
    expect(access.grant({ id: 'o', permissions: ['integrations:backup'] }).has('integrations:backup')).toBe(
      true,
    );
    expect(access.grant({ id: 'w', permissions: ['integrations:*'] }).has('integrations:backup')).toBe(false);
    expect(access.grant({ id: 'w', permissions: ['*'] }).has('integrations:backup')).toBe(false);
  });

  it('filters resources, templates and prompts by pattern and rule, in REST and MCP alike', async () => {
    const { server } = secured();
    const restResources = await (await request(server, '/resources', { headers: bearer(READER) })).json();
    expect(restResources.items).toEqual([]);
    expect(
      (await request(server, '/resources/fixture%3A%2F%2Fgreeting', { headers: bearer(READER) })).status,
    ).toBe(403);
    const item = await request(server, '/resources/fixture%3A%2F%2Fitems%2F7', { headers: bearer(READER) });
    expect(item.status).toBe(200);
    expect(
      (await request(server, '/prompts', { headers: bearer(READER) }).then((r) => r.json())).items,
    ).toEqual([]);
    expect(
      (await request(server, '/prompts', { headers: bearer(VIEWER) }).then((r) => r.json())).items,
    ).toEqual([]);
    expect(
      (await request(server, '/prompts', { headers: bearer(USER) }).then((r) => r.json())).items.map(
        (p: { name: string }) => p.name,
      ),
    ).toEqual(['greet']);
    const generate = await request(server, '/prompts/greet/generate', {
      method: 'POST',
      headers: { ...bearer(VIEWER), 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { name: 'Ada' } }),
    });
    expect(generate.status).toBe(403);
    expect((await generate.json()).detail).toBe('Forbidden: greet is not available to this caller');

    const listening = await listen(server, { port: 0, websocket: false });
    try {
      const client = new Client({ name: 'reader', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`), {
          requestInit: { headers: bearer(READER) },
        }),
      );
      expect((await client.listResources()).resources).toEqual([]);
      expect((await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual([
        'fixture://items/{id}',
      ]);
      await expect(client.readResource({ uri: 'fixture://greeting' })).rejects.toThrow(/Forbidden/);
      expect((await client.readResource({ uri: 'fixture://items/3' })).contents[0]).toMatchObject({
        text: '{"id":"3"}',
      });
      // No tools:read at all: the method itself is refused.
      await expect(client.listTools()).rejects.toThrow(/tools\/list needs the tools:read permission/);
      await expect(client.getPrompt({ name: 'greet', arguments: { name: 'x' } })).rejects.toThrow(
        /Forbidden/,
      );
      await expect(
        client.complete({
          ref: { type: 'ref/prompt', name: 'greet' },
          argument: { name: 'name', value: 'A' },
        }),
      ).rejects.toThrow(/Forbidden/);
      await client.close();
    } finally {
      await listening.close();
    }
  });

  it('documents every REST route as it is declared (docs/security.md)', () => {
    const doc = readFileSync(new URL('../docs/security.md', import.meta.url), 'utf8');
    const section = doc.slice(
      doc.indexOf('### Permission per REST route'),
      doc.indexOf('### Permission per MCP method'),
    );
    const documented = new Map(
      [...section.matchAll(/^\| `([A-Z]+ \/[^`]*)` \| ([^|]+) \| ([^|]+) \|$/gm)].map((m) => [
        m[1]!,
        [m[2]!.trim(), m[3]!.trim()],
      ]),
    );
    const declared = new Map(
      ROUTES.map((r) => [
        `${r.method} ${r.path}`,
        'public' in r ? ['none (public, never limited)', '—'] : [`\`${r.permission}\``, r.rate],
      ]),
    );
    expect(documented).toEqual(declared);
  });

  it('guards every REST route: each declares its access, and each route needs its permission', async () => {
    for (const route of ROUTES) {
      // Public: the liveness probe and the docs page's files, which hold nothing of the server's.
      if ('public' in route)
        expect(['GET /health', 'GET /docs', 'GET /docs/:file']).toContain(`${route.method} ${route.path}`);
      else expect(PERMISSIONS, route.path).toContain(route.permission);
    }
    const { server } = secured();
    const status = async (key: string, method: string, path: string, body?: unknown) =>
      (
        await request(server, path, {
          method,
          headers: { ...bearer(key), ...(body !== undefined && { 'content-type': 'application/json' }) },
          ...(body !== undefined && { body: JSON.stringify(body) }),
        })
      ).status;
    // Operations data: admin:read.
    expect(await status(USER, 'GET', '/metrics')).toBe(403);
    expect(await status(OPERATOR, 'GET', '/metrics')).toBe(200);
    expect(await status(USER, 'GET', '/logs')).toBe(403);
    expect(await status(ADMIN, 'GET', '/audit')).toBe(200);
    expect(await status(USER, 'GET', '/audit')).toBe(403);
    // Managing the catalog: *:manage.
    const prompt = { name: 'p2', messages: [{ role: 'user', content: 'hi' }] };
    expect(await status(USER, 'POST', '/prompts', prompt)).toBe(403);
    expect(await status(OPERATOR, 'POST', '/prompts', prompt)).toBe(201);
    expect(await status(USER, 'DELETE', '/tools/echo')).toBe(403);
    // Integrations: read for operators, manage for admins.
    const integration = {
      id: 'crm',
      name: 'CRM',
      prompts: [{ name: 'summary', messages: [{ role: 'user', content: 'Hi' }] }],
    };
    expect(await status(OPERATOR, 'GET', '/integrations')).toBe(200);
    expect(await status(OPERATOR, 'POST', '/integrations', integration)).toBe(403);
    expect(await status(USER, 'GET', '/integrations')).toBe(403);
    expect(await status(ADMIN, 'POST', '/integrations', integration)).toBe(201);
    // Completions: completions:create.
    expect(await status(VIEWER, 'POST', '/completions', { model: { provider: 'openai', model: 'x' } })).toBe(
      403,
    );
    // Liveness stays anonymous; everything else needs a key.
    expect((await request(server, '/health')).status).toBe(200);
    expect((await request(server, '/openapi.json')).status).toBe(401);
    // The index names the server: what the document it leads to needs (tools:read).
    expect((await request(server, '/')).status).toBe(401);
    expect(await status(VIEWER, 'GET', '/')).toBe(200);
    expect(await status(READER, 'GET', '/')).toBe(403);
  });

  it('leaves in-process connections (stdio, memory) unrestricted as the local user', async () => {
    const { server } = secured({ rateLimit: { execute: 1 } });
    const { client, close } = await connectClient(server);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['add', 'echo', 'boom']);
    for (let i = 0; i < 3; i++) {
      expect((await client.callTool({ name: 'add', arguments: { a: i, b: 1 } })).structuredContent).toEqual({
        sum: i + 1,
      });
    }
    await close();
  });
});

describe('audit', () => {
  it('names the caller of a catalog change over REST, and `local` for code', async () => {
    const { server, audit } = secured();
    // The fixture's own registrations, made by code after creation, are the local user's.
    const before = audit.events({ action: 'catalog.change' });
    expect(before.map((e) => e.callerId)).toEqual(Array(before.length).fill('local'));
    expect(before.map((e) => e.target)).toEqual([
      'add',
      'echo',
      'boom',
      'fixture://greeting',
      'fixture://items/{id}',
      'greet',
    ]);
    const created = await request(server, '/prompts', {
      method: 'POST',
      headers: { ...bearer(OPERATOR), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'brief', messages: [{ role: 'user', content: 'Be brief.' }] }),
    });
    expect(created.status).toBe(201);
    server.tools.disable('echo');
    const changes = audit.events({ action: 'catalog.change' }).slice(before.length);
    expect(changes.map((e) => [e.callerId, e.target, e.details])).toEqual([
      ['operator', 'brief', { kind: 'prompt', op: 'add' }],
      ['local', 'echo', { kind: 'tool', op: 'disable' }],
    ]);
    expect(changes[0]!.requestId).toBe(created.headers.get('x-request-id'));
    const served = await (
      await request(server, '/audit?action=catalog.change', { headers: bearer(ADMIN) })
    ).json();
    expect(served.items.slice(-2)).toEqual(changes);
  });

  it('records integration changes with their caller', async () => {
    const { server, audit } = secured();
    await server.integrations.ready;
    const response = await request(server, '/integrations', {
      method: 'POST',
      headers: { ...bearer(ADMIN), 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'crm',
        name: 'CRM',
        prompts: [{ name: 'summary', messages: [{ role: 'user', content: 'Hi' }] }],
      }),
    });
    expect(response.status).toBe(201);
    expect(audit.events({ action: 'integration.change' })).toEqual([
      expect.objectContaining({ callerId: 'admin', target: '(new)', outcome: 'success' }),
    ]);
  });

  it('summarises huge, deep and cyclic arguments to a bounded size and redacts secrets', () => {
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let i = 0; i < 1000; i++) {
      cursor.next = {};
      cursor = cursor.next as Record<string, unknown>;
    }
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const huge = {
      list: Array.from({ length: 100_000 }, (_, i) => i),
      text: 'x'.repeat(1_000_000),
      wide: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 'v'.repeat(100)])),
      deep,
      cyclic,
      password: 'hunter2',
      nested: { Authorization: 'Bearer abc', token: 'xyz', apiKey: 'k', note: 'fine' },
    };
    const out = summarise(huge) as Record<string, any>;
    const size = JSON.stringify(out).length;
    expect(size).toBeLessThan(6000);
    expect(out.password).toBe('[redacted]');
    expect(out.list).toHaveLength(21);
    expect(out.text).toMatch(/…\(1000000 chars\)$/);
    expect(JSON.stringify(out)).not.toMatch(/hunter2|Bearer abc|xyz/);
    expect(summarise({ nested: { Authorization: 'Bearer abc', token: 'xyz', note: 'fine' } })).toEqual({
      nested: { Authorization: '[redacted]', token: '[redacted]', note: 'fine' },
    });
    expect(summarise(cyclic)).toEqual({ name: 'loop', self: '[cycle]' });
  });

  it('writes JSON lines, and a failing sink never fails the request', async () => {
    const lines: string[] = [];
    const failing = {
      write(): void {
        throw new Error('disk full');
      },
    };
    const rejecting = { write: () => Promise.reject(new Error('network down')) };
    const { server } = secured({
      audit: {
        sinks: [failing, rejecting, jsonLinesAuditSink({ write: (line: string) => lines.push(line) })],
      },
    });
    const response = await request(server, '/tools/add/execute', {
      method: 'POST',
      headers: { ...bearer(USER), 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { a: 1, b: 2 } }),
    });
    expect(response.status).toBe(200);
    const events = lines.map((l) => JSON.parse(l) as AuditEvent);
    expect(lines.every((l) => l.endsWith('\n'))).toBe(true);
    expect(events.filter((e) => e.action === 'tool.execute')).toEqual([
      expect.objectContaining({
        action: 'tool.execute',
        callerId: 'user',
        target: 'add',
        outcome: 'success',
        origin: 'rest',
        details: { arguments: { a: 1, b: 2 } },
      }),
    ]);
  });

  it('refuses an unknown capacity for the memory sink and keeps only the newest events', () => {
    expect(() => new MemoryAuditSink(0)).toThrow(/positive integer/);
    const sink = new MemoryAuditSink(3);
    for (let i = 0; i < 5; i++) {
      sink.write({ time: '', action: 'tool.execute', outcome: 'success', callerId: String(i) });
    }
    expect(sink.events().map((e) => e.callerId)).toEqual(['2', '3', '4']);
    expect(sink.events({ limit: 1 }).map((e) => e.callerId)).toEqual(['4']);
  });
});

describe('rate limits', () => {
  it('refills continuously, bursts to the limit and reports reset and retry times', () => {
    let now = 0;
    const limiter = new RateLimiter({ execute: { limit: 4, windowMs: 1000 }, now: () => now }, undefined);
    const take = () =>
      limiter.take('execute', { id: 'k' }, undefined) as ReturnType<
        typeof createMemoryRateLimitStore
      >['take'] extends (...a: never[]) => infer R
        ? Exclude<R, Promise<unknown>>
        : never;
    expect([take(), take(), take(), take()].map((d) => d.remaining)).toEqual([3, 2, 1, 0]);
    const refused = take();
    expect(refused).toEqual({ allowed: false, remaining: 0, resetMs: 1000, retryAfterMs: 250 });
    now += 250;
    expect(take()).toMatchObject({ allowed: true, remaining: 0 });
    // Other classes are not limited unless configured.
    expect(limiter.take('read', { id: 'k' }, undefined)).toBeUndefined();
  });

  it('defaults every class to MCP_RATE_LIMIT per minute, and false turns it off', () => {
    const limiter = new RateLimiter({}, 120);
    expect(limiter.rule('execute')).toEqual({ limit: 120, windowMs: 60_000 });
    expect(limiter.rule('completions')).toEqual({ limit: 120, windowMs: 60_000 });
    const partial = new RateLimiter({ read: false, manage: 5 }, 120);
    expect(partial.rule('read')).toBeUndefined();
    expect(partial.rule('manage')).toEqual({ limit: 5, windowMs: 60_000 });
    expect(new RateLimiter({}, undefined).active).toBe(false);
  });

  it('limits anonymous callers per client address', async () => {
    const server = fixtureServer({ rateLimit: { read: 2 } });
    servers.push(server);
    const from = (address: string) =>
      server.fetch(new Request('http://localhost/tools', { headers: { host: 'localhost' } }), {
        clientAddress: address,
      });
    expect((await from('10.0.0.1')).status).toBe(200);
    expect((await from('10.0.0.1')).status).toBe(200);
    const refused = await from('10.0.0.1');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await refused.json()).retryAfterSeconds).toBe(30);
    expect((await from('10.0.0.2')).status).toBe(200);
    // Liveness is never limited.
    for (let i = 0; i < 5; i++)
      expect((await server.fetch(new Request('http://localhost/health'))).status).toBe(200);
  });

  it('spends tokens on failed authentication per address, so key guessing is throttled', async () => {
    const { server } = secured({ rateLimit: { read: 2 } });
    const attempt = (headers: Record<string, string>, address: string) =>
      server.fetch(new Request('http://localhost/tools', { headers: { host: 'localhost', ...headers } }), {
        clientAddress: address,
      });
    const guess = { authorization: 'Bearer guess-guess-guess-guess' };
    expect((await attempt(guess, '10.1.1.1')).status).toBe(401);
    expect((await attempt(guess, '10.1.1.1')).status).toBe(401);
    const throttled = await attempt(guess, '10.1.1.1');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('30');
    // Another address, and a valid key from the same address, are unaffected.
    expect((await attempt(guess, '10.1.1.2')).status).toBe(401);
    expect((await attempt(bearer(USER), '10.1.1.1')).status).toBe(200);
  });

  it('names each class in its headers, also when classes share the default rule', async () => {
    const server = fixtureServer({ rateLimit: { default: 5 } });
    servers.push(server);
    const listed = await request(server, '/tools');
    expect(listed.headers.get('ratelimit-policy')).toBe('"read";q=5;w=60');
    expect(listed.headers.get('ratelimit')).toBe('"read";r=4;t=12');
    const executed = await request(server, '/tools/add/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { a: 1, b: 2 } }),
    });
    expect(executed.headers.get('ratelimit-policy')).toBe('"execute";q=5;w=60');
    expect((await request(server, '/tools')).headers.get('ratelimit-policy')).toBe('"read";q=5;w=60');
  });

  it('evicts the oldest buckets past maxKeys', () => {
    const store = createMemoryRateLimitStore({ maxKeys: 2 });
    const rule = { limit: 1, windowMs: 60_000 };
    expect(store.take('a', rule, 0)).toMatchObject({ allowed: true });
    expect(store.take('a', rule, 0)).toMatchObject({ allowed: false });
    store.take('b', rule, 0);
    store.take('c', rule, 0);
    // `a` was dropped, so it starts full again.
    expect(store.take('a', rule, 0)).toMatchObject({ allowed: true });
  });
});

describe('completions under a policy', () => {
  it('offers the model only the tools the caller may run, and refuses a hidden one it asks for', async () => {
    const model = await createModelServer({
      turns: [{ toolCalls: [{ name: 'boom', arguments: {} }] }, { text: 'done' }],
    });
    try {
      const { server } = secured({
        rules: [{ tools: 'boom', roles: ['admin'] }],
        completions: { allowInlineBaseUrl: true },
        outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
      });
      const job = await server.completions.run(
        {
          model: { provider: 'custom', model: 'm', apiKey: 'k', baseUrl: `${model.url}/v1` },
          messages: [{ role: 'user', content: 'go' }],
        },
        { caller: { id: 'user', roles: ['user'] }, origin: 'rest' },
      );
      expect(job.status).toBe('succeeded');
      const offered = model.requests[0]!.body.tools.map((t: any) => t.function.name);
      expect(offered).toEqual(['add', 'echo']);
      // A model that names the hidden tool anyway is refused: it was never offered.
      expect(job.steps[0]!.toolCalls[0]).toMatchObject({ name: 'boom', isError: true });
      expect(job.steps[0]!.toolCalls[0]!.result).toContain('Tool boom is not available');
    } finally {
      await model.close();
    }
  });
});

describe('subscriptions/listen (2026-07-28) under a policy', () => {
  const MODERN_META = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientCapabilities': {},
    'io.modelcontextprotocol/clientInfo': { name: 'listen', version: '1' },
  };
  const listen = (notifications: object, id = 1) => ({
    jsonrpc: '2.0',
    id,
    method: 'subscriptions/listen',
    params: { notifications, _meta: MODERN_META },
  });

  it('over HTTP: refuses kinds without their permission and resources the caller may not see', async () => {
    const { server } = secured();
    const post = (key: string, body: unknown) =>
      request(
        server,
        '/mcp',
        jsonRpcPost(body, {
          ...bearer(key),
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'subscriptions/listen',
        }),
      );
    // Refused in band, as every JSON-RPC request the policy refuses: the MCP client sees -32003.
    const hidden = await post(READER, listen({ resourceSubscriptions: ['fixture://greeting'] }));
    expect(hidden.status).toBe(200);
    expect(await hidden.json()).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32003, message: 'Forbidden: fixture://greeting is not available to this caller' },
    });
    const tools = await post(READER, listen({ toolsListChanged: true }, 2));
    expect((await tools.json()).error.message).toBe(
      'Forbidden: subscriptions/listen needs the tools:read permission',
    );
    // Visible resources pass on to the SDK, which opens the stream.
    const allowed = await post(READER, listen({ resourceSubscriptions: ['fixture://items/1'] }, 3));
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('content-type')).toContain('text/event-stream');
    await allowed.body?.cancel();
  });

  it('over HTTP: each listen takes a read token; past the limit, -32029 with Retry-After', async () => {
    const { server } = secured({ rateLimit: { read: 2 } });
    const post = (id: number) =>
      request(
        server,
        '/mcp',
        jsonRpcPost(listen({ resourceSubscriptions: ['fixture://items/1'] }, id), {
          ...bearer(READER),
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'subscriptions/listen',
        }),
      );
    for (const id of [1, 2]) {
      const opened = await post(id);
      expect(opened.status).toBe(200);
      await opened.body?.cancel();
    }
    const refused = await post(3);
    expect(refused.status).toBe(200);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = await refused.json();
    expect(body.id).toBe(3);
    expect(body.error).toMatchObject({ code: -32029, data: { limit: 2, windowSeconds: 60 } });
    expect(body.error.data.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('on a remote connection: listens are rate limited, and an asynchronous store keeps message order', async () => {
    const decisions: Array<(allowed: boolean) => void> = [];
    const store = {
      take: () =>
        new Promise<{ allowed: boolean; remaining: number; resetMs: number; retryAfterMs: number }>(
          (resolve) =>
            decisions.push((allowed) =>
              resolve({ allowed, remaining: 0, resetMs: 60_000, retryAfterMs: allowed ? 0 : 30_000 }),
            ),
        ),
    };
    const { server } = secured({ rateLimit: { read: 5, store } });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const connection = await server.connect(serverSide, {
      caller: { id: 'reader', roles: ['reader'] },
      origin: 'websocket',
      clientAddress: '203.0.113.9',
    });
    const replies: any[] = [];
    clientSide.onmessage = (message) => replies.push(message);
    await clientSide.start();
    await clientSide.send(listen({ resourceSubscriptions: ['fixture://items/1'] }, 11) as never);
    // Sent while the store decides on the first: it waits its turn instead of overtaking.
    await clientSide.send(listen({ resourceSubscriptions: ['fixture://items/2'] }, 12) as never);
    await expect.poll(() => decisions.length).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(decisions).toHaveLength(1);
    decisions[0]!(false);
    await expect.poll(() => decisions.length).toBe(2);
    decisions[1]!(false);
    await expect.poll(() => replies.length).toBe(2);
    expect(replies.map((r) => r.id)).toEqual([11, 12]);
    expect(replies[0].error).toMatchObject({ code: -32029, data: { retryAfterSeconds: 30 } });
    await connection.close();
  });

  it('on a connection with a caller: the refusal is answered before the SDK sees the request', async () => {
    const { server } = secured();
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const connection = await server.connect(serverSide, { caller: { id: 'reader', roles: ['reader'] } });
    const replies: any[] = [];
    clientSide.onmessage = (message) => replies.push(message);
    await clientSide.start();
    await clientSide.send(listen({ resourceSubscriptions: ['fixture://greeting'] }, 7) as never);
    await expect.poll(() => replies.find((r) => r.id === 7)).toBeDefined();
    expect(replies.find((r) => r.id === 7).error).toEqual({
      code: -32003,
      message: 'Forbidden: fixture://greeting is not available to this caller',
    });
    await connection.close();
  });
});

describe('completion jobs under a policy', () => {
  it('are visible and cancellable only by the caller who started them (and admins)', async () => {
    const model = await createModelServer({ turns: [{ text: 'done' }] });
    try {
      const USER2 = 'second-user-key-for-unit-tests';
      const keys = secured({
        auth: {
          apiKeys: [
            { id: 'admin', roles: ['admin'], key: ADMIN },
            { id: 'user', roles: ['user'], key: USER },
            { id: 'user2', roles: ['user'], key: USER2 },
          ],
        },
        completions: { allowInlineBaseUrl: true },
        outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
      }).server;
      const started = await request(keys, '/completions', {
        method: 'POST',
        headers: { ...bearer(USER), 'content-type': 'application/json' },
        body: JSON.stringify({
          model: { provider: 'custom', model: 'm', apiKey: 'k', baseUrl: `${model.url}/v1` },
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
      expect(started.status).toBe(200);
      const { id } = await started.json();
      const get = (key: string) => request(keys, `/completions/${id}`, { headers: bearer(key) });
      expect((await get(USER)).status).toBe(200);
      expect((await get(USER2)).status).toBe(404);
      expect((await get(ADMIN)).status).toBe(200);
      const cancel = await request(keys, `/completions/${id}`, { method: 'DELETE', headers: bearer(USER2) });
      expect(cancel.status).toBe(404);
    } finally {
      await model.close();
    }
  });
});

describe('other ways in', () => {
  it('a verify hook decides for credentials mcpkit does not know; false and throws refuse', async () => {
    const server = fixtureServer({
      auth: {
        verify: (req) => {
          const user = req.headers.get('x-forwarded-user');
          if (user === 'mallory') return false;
          if (user === 'crash') throw new Error('directory at /etc/secret unreachable');
          return user ? { id: user, roles: ['viewer'] } : undefined;
        },
      },
    });
    servers.push(server);
    const tools = (headers: Record<string, string>) => request(server, '/tools', { headers });
    expect((await tools({ 'x-forwarded-user': 'alice' })).status).toBe(200);
    expect((await tools({ 'x-forwarded-user': 'mallory' })).status).toBe(401);
    const crashed = await tools({ 'x-forwarded-user': 'crash' });
    expect(crashed.status).toBe(401);
    expect(await crashed.text()).not.toContain('/etc/secret');
    expect((await tools({})).status).toBe(401);
  });

  it("takes the caller from an adapter's authInfo when mcpkit does no authentication itself", async () => {
    const server = fixtureServer({ rules: [{ tools: 'boom', roles: ['admin'] }] });
    servers.push(server);
    const as = (scopes: string[], path: string, init: RequestInit = {}) =>
      server.fetch(
        new Request(`http://localhost${path}`, { ...init, headers: { host: 'localhost', ...init.headers } }),
        {
          authInfo: { token: 't', clientId: 'app', scopes },
        },
      );
    const listed = await (await as(['viewer'], '/tools')).json();
    expect(listed.items.map((t: { name: string }) => t.name)).toEqual(['add', 'echo']);
    const call = await as(['viewer'], '/tools/add/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { a: 1, b: 1 } }),
    });
    expect(call.status).toBe(403);
    expect((await as(['admin'], '/tools').then((r) => r.json())).items).toHaveLength(3);
  });

  it('anonymous roles let callers without a key in, limited to those roles', async () => {
    const server = fixtureServer({
      auth: { apiKeys: [{ id: 'admin', roles: ['admin'], key: ADMIN }], anonymous: ['viewer'] },
    });
    servers.push(server);
    expect((await request(server, '/tools')).status).toBe(200);
    const call = await request(server, '/tools/add/execute', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { a: 1, b: 1 } }),
    });
    expect(call.status).toBe(403);
    // A wrong key is still refused, not downgraded to anonymous.
    expect((await request(server, '/tools', { headers: bearer('not-a-real-key-at-all') })).status).toBe(401);
  });

  it('OAuth resource-server mode: RFC 9728 metadata, challenges, scopes as permissions and roles', async () => {
    const tokens = new Map<string, AuthInfo>([
      ['good', { token: 'good', clientId: 'app', scopes: ['tools:read', 'tools:execute'], expiresAt: 4e9 }],
      [
        'adm',
        { token: 'adm', clientId: 'ops', scopes: ['admin'], expiresAt: 4e9, extra: { sub: 'ops-user' } },
      ],
      ['old', { token: 'old', clientId: 'app', scopes: ['tools:read'], expiresAt: 1 }],
    ]);
    const server = fixtureServer({
      auth: {
        oauth: {
          verifier: {
            verifyAccessToken: async (token) => {
              if (token === 'down') throw new Error('introspection endpoint at 10.0.0.5 unreachable');
              const info = tokens.get(token);
              if (!info) throw new OAuthError(OAuthErrorCode.InvalidToken, 'unknown token');
              return info;
            },
          },
          authorizationServers: ['https://auth.example.com'],
          resourceName: 'Fixture',
        },
      },
    });
    servers.push(server);
    const metadata = await request(server, '/.well-known/oauth-protected-resource/mcp');
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({
      resource: 'http://localhost/mcp',
      authorization_servers: ['https://auth.example.com'],
      bearer_methods_supported: ['header'],
      resource_name: 'Fixture',
    });
    const anonymous = await request(
      server,
      '/mcp',
      jsonRpcPost({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    );
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(
      'Bearer realm="mcpkit", resource_metadata="http://localhost/.well-known/oauth-protected-resource/mcp"',
    );
    for (const token of ['old', 'forged']) {
      const refused = await request(server, '/tools', { headers: bearer(token) });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    }
    expect((await request(server, '/tools', { headers: bearer('good') })).status).toBe(200);
    expect((await request(server, '/metrics', { headers: bearer('good') })).status).toBe(403);
    // A scope naming a role grants the role; the subject claim names the caller.
    expect((await request(server, '/metrics', { headers: bearer('adm') })).status).toBe(200);
    // The verifier failing is not the caller's fault: 503, and nothing of the failure leaks.
    const down = await request(server, '/tools', { headers: bearer('down') });
    expect(down.status).toBe(503);
    expect(await down.text()).not.toContain('introspection');
    const listening = await listen(server, { port: 0, websocket: false });
    try {
      const client = new Client({ name: 'oauth', version: '1' }, { versionNegotiation: { mode: 'auto' } });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`), {
          requestInit: { headers: bearer('good') },
        }),
      );
      expect((await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })).structuredContent).toEqual({
        sum: 5,
      });
      await client.close();
    } finally {
      await listening.close();
    }
  });
});

describe('OAuth details', () => {
  const verifier = (tokens: Map<string, AuthInfo>) => ({
    verifyAccessToken: async (token: string) => {
      const info = tokens.get(token);
      if (!info) throw new OAuthError(OAuthErrorCode.InvalidToken, 'unknown token');
      return info;
    },
  });

  it('answers 403 insufficient_scope for a valid token without a required scope', async () => {
    const tokens = new Map<string, AuthInfo>([
      [
        'narrow',
        {
          token: 'narrow',
          clientId: 'app',
          scopes: ['tools:read'],
          expiresAt: 4e9,
          resource: new URL('https://api.example.com/mcp'),
        },
      ],
      ['wide', { token: 'wide', clientId: 'app', scopes: ['mcp', 'tools:read'], expiresAt: 4e9 }],
    ]);
    const server = fixtureServer({
      auth: {
        oauth: {
          verifier: verifier(tokens),
          authorizationServers: ['https://auth.example.com'],
          requiredScopes: ['mcp'],
          resource: 'https://api.example.com/mcp',
        },
      },
      http: { allowedHosts: 'any' },
    });
    servers.push(server);
    const narrow = await request(server, '/tools', { headers: bearer('narrow') });
    expect(narrow.status).toBe(403);
    expect(narrow.headers.get('www-authenticate')).toBe(
      'Bearer realm="mcpkit", error="insufficient_scope", scope="mcp", ' +
        'resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp"',
    );
    // The token was issued for another resource (its `resource` is unset): refused.
    expect((await request(server, '/tools', { headers: bearer('wide') })).status).toBe(401);
    tokens.get('wide')!.resource = new URL('https://api.example.com/mcp');
    expect((await request(server, '/tools', { headers: bearer('wide') })).status).toBe(200);
    // The metadata names the configured resource.
    const metadata = await request(server, '/.well-known/oauth-protected-resource/mcp');
    expect((await metadata.json()).resource).toBe('https://api.example.com/mcp');
  });

  it('stops a WebSocket connection from using a token once it has expired', async () => {
    const info: AuthInfo = {
      token: 'ws',
      clientId: 'app',
      scopes: ['tools:read', 'tools:execute'],
      expiresAt: 4e9,
    };
    const server = fixtureServer({
      auth: {
        oauth: { verifier: verifier(new Map([['ws', info]])), authorizationServers: ['https://a.example'] },
      },
    });
    servers.push(server);
    const listening = await listen(server, { port: 0 });
    try {
      const socket = await openRaw(`${listening.url.replace('http', 'ws')}/mcp`, { headers: bearer('ws') });
      const replies: any[] = [];
      socket.on('message', (data) => replies.push(JSON.parse(String(data))));
      const rpc = async (id: number, method: string, params: unknown) => {
        socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
        await expect.poll(() => replies.find((r) => r.id === id)).toBeDefined();
        return replies.find((r) => r.id === id);
      };
      await rpc(1, 'initialize', {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'ws', version: '1' },
      });
      expect((await rpc(2, 'tools/list', {})).result.tools).toHaveLength(3);
      // Move the clock past the token's expiry (only Date: sockets and timers run as usual).
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime((info.expiresAt! + 1) * 1000);
      try {
        expect((await rpc(3, 'tools/list', {})).error).toEqual({
          code: -32011,
          message: 'Unauthorized: the access token has expired',
        });
      } finally {
        vi.useRealTimers();
      }
      socket.close();
    } finally {
      await listening.close();
    }
  });
});

describe('real clients with keys', () => {
  it('an SDK v2 client in the modern (2026-07-28) era sees the filtered catalog and is refused the rest', async () => {
    const { server } = secured({ rules: [{ tools: 'boom', roles: ['admin'] }] });
    const listening = await listen(server, { port: 0, websocket: false });
    try {
      const client = new Client({ name: 'modern', version: '1' }, { versionNegotiation: { mode: 'auto' } });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`), {
          requestInit: { headers: bearer(USER) },
        }),
      );
      expect(server.connectionCounts().httpSessions).toBe(0);
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['add', 'echo']);
      await expect(client.callTool({ name: 'boom', arguments: {} })).rejects.toThrow(/Forbidden: boom/);
      await client.close();
    } finally {
      await listening.close();
    }
  });

  it('an SDK 1.x client (2025 era) authenticates with a header and is bound to its session', async () => {
    const { server } = secured();
    const listening = await listen(server, { port: 0, websocket: false });
    try {
      const client = new V1Client({ name: 'v1', version: '1' });
      await client.connect(
        new V1Transport(new URL(`${listening.url}/mcp`), {
          requestInit: { headers: { 'x-api-key': VIEWER } },
        }),
      );
      expect(server.connectionCounts().httpSessions).toBe(1);
      expect((await client.listTools()).tools).toHaveLength(3);
      await expect(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).rejects.toThrow(
        /tools\/call needs the tools:execute permission/,
      );
      await client.close();
      // Without a key the same client is refused at connect.
      const anonymous = new V1Client({ name: 'v1', version: '1' });
      await expect(anonymous.connect(new V1Transport(new URL(`${listening.url}/mcp`)))).rejects.toThrow();
    } finally {
      await listening.close();
    }
  });

  it('answers an anonymous MCP request with 401 and a JSON-RPC body, never HTML', async () => {
    const { server } = secured();
    const response = await request(
      server,
      '/mcp',
      jsonRpcPost({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await readJsonRpc(response)).toMatchObject({ error: { code: -32011 } });
  });
});
