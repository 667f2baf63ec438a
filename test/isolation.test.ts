/**
 * Isolated tools (mcpkit/node's createIsolation): handlers in worker threads and child processes,
 * reached through every door like any tool, with hard limits that hold. Each fault is met at both
 * levels while other calls are in flight; the pool recovers and counts what it contained.
 * Size: over 400 lines, one describe per promise of docs/isolation.md (the doors' cancels are in
 * isolation-doors.test.ts).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { createIsolation, type Isolation, type IsolationLevel } from 'mcpkit/node';
import { connectClient, request } from 'mcpkit/testing';
import { errorCodeOf } from 'mcpkit/unstable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { keepingLogger } from './fixtures.js';

const TOOLS = new URL('./fixtures/isolated/tools.mjs', import.meta.url);
const LEVELS: IsolationLevel[] = ['worker', 'process'];

function text(result: { content?: unknown }): string {
  const content = result.content as { type: string; text?: string }[];
  return content.map((c) => c.text ?? '').join('');
}

describe('an isolated tool is a tool like any other', () => {
  let server: McpKitServer;
  let isolation: Isolation;
  const logged: unknown[] = [];

  beforeAll(() => {
    server = createMcpServer({ logger: keepingLogger(logged) });
    isolation = createIsolation({ maxWorkers: 2, metrics: server.metrics });
    for (const level of LEVELS) {
      server.tools.register(
        isolation.tool(TOOLS, {
          name: `echo_${level}`,
          description: 'Echoes text from isolation',
          inputSchema: { text: z.string().max(100) },
          outputSchema: { echoed: z.string(), tool: z.string(), origin: z.string() },
          isolate: { level },
        }),
      );
      server.tools.register(
        isolation.tool(TOOLS, { name: `chatty_${level}`, isolate: { level, export: 'chatty' } }),
      );
      server.tools.register(
        isolation.tool(TOOLS, {
          name: `nested_${level}`,
          inputSchema: { name: z.string(), args: z.record(z.string(), z.unknown()) },
          isolate: { level, export: 'nested' },
        }),
      );
      server.tools.register(
        isolation.tool(TOOLS, {
          name: `fails_${level}`,
          isolate: { level, export: 'notFound' },
        }),
      );
      server.tools.register(
        isolation.tool(TOOLS, { name: `plain_${level}`, isolate: { level, export: 'plainFailure' } }),
      );
    }
    server.tools.register(
      isolation.tool(TOOLS, { name: 'polite', isolate: { export: 'polite', graceMs: 5_000 } }),
    );
    server.tools.register({
      name: 'double',
      inputSchema: { n: z.number() },
      handler: ({ n }) => ({ n: n * 2 }),
    });
  });
  afterAll(async () => {
    await server.close();
    await isolation.close();
  });

  it('is listed with its schemas, like a tool written in place', async () => {
    const { client, close } = await connectClient(server);
    const { tools } = await client.listTools();
    const echo = tools.find((t) => t.name === 'echo_worker')!;
    expect(echo.description).toBe('Echoes text from isolation');
    expect(echo.inputSchema).toMatchObject({ type: 'object', properties: { text: { type: 'string' } } });
    expect(echo.outputSchema).toMatchObject({ properties: { echoed: { type: 'string' } } });
    await close();
  });

  for (const level of LEVELS) {
    it(`answers over MCP and REST with structured content (${level})`, async () => {
      const { client, close } = await connectClient(server);
      const viaMcp = await client.callTool({ name: `echo_${level}`, arguments: { text: 'hi' } });
      expect(viaMcp.structuredContent).toEqual({ echoed: 'hi', tool: `echo_${level}`, origin: 'memory' });
      await close();
      const viaRest = await request(server, `/tools/echo_${level}/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ arguments: { text: 'rest' } }),
      });
      expect(viaRest.status).toBe(200);
      expect(await viaRest.json()).toMatchObject({ structuredContent: { echoed: 'rest', origin: 'rest' } });
    });

    it(`validates arguments in the main thread, before any worker starts (${level})`, async () => {
      const fresh = createIsolation();
      const s = createMcpServer({ logLevel: 'silent' });
      s.tools.register(
        fresh.tool(TOOLS, { name: 'echo', inputSchema: { text: z.string() }, isolate: { level } }),
      );
      const result = await s.executor.execute('echo', { text: 42 });
      expect(errorCodeOf(result)).toBe('INVALID_ARGUMENT');
      expect(fresh.stats().pools).toBe(0);
      const rest = await request(s, '/tools/echo/execute', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ arguments: { text: 'x'.repeat(10), extra: { deep: [[[[1]]]] } } }),
      });
      expect(rest.status).toBe(200);
      expect(fresh.stats().pools).toBe(1);
      await s.close();
      await fresh.close();
    });

    it(`sends progress, client logs and server logs from the worker (${level})`, async () => {
      const { client, close } = await connectClient(server);
      await client.setLoggingLevel('debug');
      const logged: unknown[] = [];
      client.setNotificationHandler('notifications/message', (n: { params: unknown }) => {
        logged.push(n.params);
      });
      const progress: unknown[] = [];
      const result = await client.callTool(
        { name: `chatty_${level}`, arguments: {} },
        { onprogress: (p) => progress.push(p) },
      );
      expect(text(result)).toBe('chatted');
      expect(progress).toEqual([
        { progress: 1, total: 2, message: 'half' },
        { progress: 2, total: 2, message: 'done' },
      ]);
      expect(logged).toContainEqual(
        expect.objectContaining({ level: 'info', data: { step: 'one' }, logger: 'chatty' }),
      );
      await close();
    });

    it(`calls other tools through the main thread (${level})`, async () => {
      const result = await server.executor.execute(`nested_${level}`, { name: 'double', args: { n: 21 } });
      expect(result.structuredContent).toMatchObject({ inner: { structuredContent: { n: 42 } } });
      const unknown = await server.executor.execute(`nested_${level}`, { name: 'no.such.tool', args: {} });
      expect(result.isError).toBeUndefined();
      expect(errorCodeOf(unknown)).toBe('NOT_FOUND');
    });

    it(`maps a handler's error to the same code, with no stack or path (${level})`, async () => {
      const failed = await server.executor.execute(`fails_${level}`, {});
      expect(errorCodeOf(failed)).toBe('NOT_FOUND');
      expect(text(failed)).toContain('No such thing');
      expect(text(failed)).not.toContain('secret.js');
      const plain = await server.executor.execute(`plain_${level}`, {});
      expect(errorCodeOf(plain)).toBe('INTERNAL');
      expect(text(plain)).not.toContain('/home/app');
    });
  }

  it('cancels the work in the worker when the MCP client cancels (notifications/cancelled)', async () => {
    const { client, close } = await connectClient(server);
    const controller = new AbortController();
    const call = client.callTool({ name: 'polite', arguments: {} }, { signal: controller.signal });
    await expect.poll(() => logged).toContainEqual({ step: 'started' });
    controller.abort('stop');
    await expect(call).rejects.toThrow();
    // The handler in the worker saw its signal abort (and said so before its worker answered).
    await expect.poll(() => logged).toContainEqual({ step: 'aborted in worker' });
    await close();
  });
});

describe('the caller in a worker', () => {
  it.each(LEVELS)('is who it is, never its token (%s)', async (level) => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register(isolation.tool(TOOLS, { name: 'whoami', isolate: { level, export: 'whoami' } }));
    const caller = {
      id: 'ada',
      roles: ['user'],
      authInfo: { token: 'secret-bearer-token', clientId: 'app', scopes: ['tools:execute'] },
    };
    const result = await server.executor.execute('whoami', {}, { caller });
    expect(result.structuredContent).toEqual({ caller: { id: 'ada', roles: ['user'] } });
    expect(JSON.stringify(result)).not.toContain('secret-bearer-token');
    await server.close();
    await isolation.close();
  });
});

describe('objects from a worker', () => {
  it.each(LEVELS)('lose their own __proto__ keys, in results and nested calls (%s)', async (level) => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'pollute',
        inputSchema: { name: z.string().optional() },
        isolate: { level, export: 'pollute' },
      }),
    );
    const seen: unknown[] = [];
    server.tools.register({
      name: 'raw',
      inputSchema: { type: 'object' },
      handler: (args) => {
        seen.push(Object.hasOwn(args, '__proto__'));
        return 'seen';
      },
    });
    const result = await server.executor.execute('pollute', { name: 'raw' });
    const content = result.structuredContent as Record<string, unknown>;
    expect(content.ok).toBe(1);
    expect(Object.hasOwn(content, '__proto__')).toBe(false);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(seen).toEqual([false]);
    await server.close();
    await isolation.close();
  });
});

describe('a handler that floods the client', () => {
  it('sends at most its message budget (1 MiB) and still answers', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'flood',
        inputSchema: { count: z.number(), size: z.number() },
        isolate: { export: 'flood' },
      }),
    );
    let bytes = 0;
    const log = async (data: unknown) => {
      bytes += String(data).length;
    };
    const result = await server.executor.execute(
      'flood',
      { count: 400, size: 10_000 },
      { log: { debug: log, info: log, warning: log, error: log } },
    );
    expect(result.content).toEqual([{ type: 'text', text: 'flooded' }]);
    // 4 MB were sent; about 1 MiB got through.
    expect(bytes).toBeGreaterThan(900_000);
    expect(bytes).toBeLessThanOrEqual(1024 * 1024);
    await server.close();
    await isolation.close();
  });
});

describe('nested calls act as the caller', () => {
  it('refuses a nested call the caller may not make', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = createMcpServer({
      logLevel: 'silent',
      auth: { apiKeys: [{ id: 'support', roles: ['support'], key: 'k'.repeat(32) }] },
      roles: { support: { permissions: ['tools:read', 'tools:execute'], tools: ['public.*'] } },
    });
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'public.nested',
        inputSchema: { name: z.string(), args: z.record(z.string(), z.unknown()) },
        isolate: { export: 'nested' },
      }),
    );
    server.tools.register({ name: 'public.echo', handler: () => 'public' });
    server.tools.register({ name: 'secret.delete', handler: () => 'deleted' });
    const call = (name: string) =>
      request(server, '/tools/public.nested/execute', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'k'.repeat(32) },
        body: JSON.stringify({ arguments: { name, args: {} } }),
      }).then((r) => r.json());
    expect(await call('public.echo')).toMatchObject({
      structuredContent: { inner: { content: [{ text: 'public' }] } },
    });
    const refused = await call('secret.delete');
    expect(refused.structuredContent.inner.isError).toBe(true);
    expect(refused.structuredContent.inner._meta['io.mcpkit/error'].code).toBe('FORBIDDEN');
    await server.close();
    await isolation.close();
  });
});

describe.each(LEVELS)('faults at the %s level', (level) => {
  let server: McpKitServer;
  let isolation: Isolation;

  beforeAll(() => {
    server = createMcpServer({ logLevel: 'silent' });
    isolation = createIsolation({ maxWorkers: 2, metrics: server.metrics });
    const fault = (name: string, isolate: Record<string, unknown> = {}) =>
      server.tools.register(
        isolation.tool(TOOLS, {
          name,
          inputSchema: { bytes: z.number().optional() },
          isolate: { level, export: name, timeoutMs: 1_500, graceMs: 50, maxMemoryMb: 32, ...isolate },
        }),
      );
    fault('spin');
    fault('hog', { timeoutMs: 20_000 });
    fault('exit');
    fault('timerThrow');
    fault('uncloneable');
    fault('sized', { maxResultBytes: 1_000 });
    server.tools.register(
      isolation.tool(TOOLS, { name: 'echo', inputSchema: { text: z.string() }, isolate: { level } }),
    );
    server.tools.register({ name: 'local', handler: () => 'local' });
  });
  afterAll(async () => {
    await server.close();
    await isolation.close();
  });

  const cases: [tool: string, code: string, names: RegExp, kind: string][] = [
    ['spin', 'TIMEOUT', /1500 ms/, 'timeout'],
    ['hog', 'INTERNAL', /heap limit of 32 MB/, 'memory'],
    ['exit', 'INTERNAL', /process\.exit\(3\)/, 'exit'],
    ['timerThrow', 'INTERNAL', /boom from a timer/, 'uncaught'],
    ['uncloneable', 'INTERNAL', /cannot be copied out/, 'uncloneable'],
  ];

  for (const [tool, code, names, kind] of cases) {
    it(`${tool}: a clear error naming the limit; other calls unaffected; the pool recovers`, async () => {
      const before = isolation.stats().faults[kind as 'timeout'];
      const faulty = server.executor.execute(tool, {});
      // Calls in flight beside it, isolated and not, answer.
      const beside = await Promise.all([
        server.executor.execute('echo', { text: 'beside' }),
        server.executor.execute('local', {}),
      ]);
      expect(beside.map((r) => r.isError)).toEqual([undefined, undefined]);
      const result = await faulty;
      expect(errorCodeOf(result)).toBe(code);
      expect(text(result)).toMatch(names);
      // A worker took the fault; later calls still run.
      await expect
        .poll(() => isolation.stats().faults[kind as 'timeout'], { timeout: 5_000 })
        .toBe(before + 1);
      const after = await server.executor.execute('echo', { text: 'after' });
      expect(after.structuredContent).toMatchObject({ echoed: 'after' });
    }, 30_000);
  }

  it('refuses a result over its byte limit before it comes back', async () => {
    const small = await server.executor.execute('sized', { bytes: 10 });
    expect(small.isError).toBeUndefined();
    const big = await server.executor.execute('sized', { bytes: 5_000 });
    expect(errorCodeOf(big)).toBe('PAYLOAD_TOO_LARGE');
    expect(text(big)).toMatch(/over its limit of 1000 bytes/);
  });

  it('counts each kind of fault in /metrics', async () => {
    const metrics = await (await request(server, '/metrics')).text();
    for (const kind of ['timeout', 'memory', 'exit', 'uncaught', 'uncloneable', 'result-too-large']) {
      expect(metrics).toMatch(
        new RegExp(`mcpkit_isolation_faults_total\\{tool="[a-zA-Z]+",kind="${kind}"\\} [1-9]`),
      );
    }
  });

  it('a fault survives many calls: every worker slot is given back', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => server.executor.execute('exit', {})));
    expect(results.map(errorCodeOf)).toEqual(['INTERNAL', 'INTERNAL', 'INTERNAL', 'INTERNAL']);
    const after = await server.executor.execute('echo', { text: 'still here' });
    expect(after.structuredContent).toMatchObject({ echoed: 'still here' });
  }, 30_000);
});

describe('the process level', () => {
  let isolation: Isolation;
  let server: McpKitServer;
  beforeAll(() => {
    isolation = createIsolation({ maxWorkers: 1 });
    server = createMcpServer({ logLevel: 'silent' });
    const hostFile = '/etc/hostname';
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'read',
        inputSchema: { path: z.string() },
        isolate: { level: 'process', export: 'read' },
      }),
    );
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'readAllowed',
        inputSchema: { path: z.string() },
        isolate: { level: 'process', export: 'read', permissions: { fsRead: [hostFile] } },
      }),
    );
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'env',
        inputSchema: { name: z.string() },
        isolate: { level: 'process', export: 'env', env: { GIVEN: 'yes' } },
      }),
    );
  });
  afterAll(async () => {
    await server.close();
    await isolation.close();
  });

  it('reads only what the tool declares', async () => {
    const denied = await server.executor.execute('read', { path: '/etc/hostname' });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toMatch(/restricted|denied/i);
    const allowed = await server.executor.execute('readAllowed', { path: '/etc/hostname' });
    expect(allowed.structuredContent).toEqual({ text: readFileSync('/etc/hostname', 'utf8') });
    expect(hostname()).toBeTruthy();
  });

  it("inherits none of the server's environment", async () => {
    process.env.MCPKIT_TEST_SECRET = 'hunter2';
    const secret = await server.executor.execute('env', { name: 'MCPKIT_TEST_SECRET' });
    expect(secret.structuredContent).toEqual({ value: null });
    const given = await server.executor.execute('env', { name: 'GIVEN' });
    expect(given.structuredContent).toEqual({ value: 'yes' });
  });
});

describe('a full pool', () => {
  it('answers BUSY past its queue, counts it, and serves again once a worker is free', async () => {
    const isolation = createIsolation({ maxWorkers: 1, maxQueue: 0 });
    const server = createMcpServer({ logLevel: 'silent' });
    const isolate = { timeoutMs: 60_000, graceMs: 10 };
    server.tools.register(isolation.tool(TOOLS, { name: 'spin', isolate: { ...isolate, export: 'spin' } }));
    server.tools.register(
      isolation.tool(TOOLS, { name: 'echo', inputSchema: { text: z.string() }, isolate }),
    );
    const controller = new AbortController();
    const spinning = server.executor.execute('spin', {}, { signal: controller.signal });
    await expect.poll(() => isolation.stats().workers).toBe(1);
    const refused = await server.executor.execute('echo', { text: 'no room' });
    expect(errorCodeOf(refused)).toBe('BUSY');
    expect(isolation.stats().faults.busy).toBe(1);
    controller.abort();
    expect(errorCodeOf(await spinning)).toBe('CANCELLED');
    // The slot is the spinning worker's until that worker is terminated, `graceMs` after the cancel.
    await expect
      .poll(async () => (await server.executor.execute('echo', { text: 'room again' })).structuredContent)
      .toMatchObject({ echoed: 'room again' });
    await server.close();
    await isolation.close();
  }, 30_000);
});

describe('closing an isolation', () => {
  it('answers calls still running with UNAVAILABLE and refuses new ones', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register(
      isolation.tool(TOOLS, { name: 'spin', isolate: { export: 'spin', timeoutMs: 60_000 } }),
    );
    const spinning = server.executor.execute('spin', {});
    await expect.poll(() => isolation.stats().workers).toBe(1);
    await isolation.close();
    const stopped = await spinning;
    expect(errorCodeOf(stopped)).toBe('UNAVAILABLE');
    expect(text(stopped)).toMatch(/isolation is closing/);
    expect(isolation.stats().faults.uncaught).toBe(0);
    const refused = await server.executor.execute('spin', {});
    expect(errorCodeOf(refused)).toBe('UNAVAILABLE');
    await server.close();
  });
});

describe('declaring an isolated tool', () => {
  it('acts as its caller and is not retried, unless the definition says otherwise', () => {
    const isolation = createIsolation();
    const plain = isolation.tool(TOOLS, { name: 'x', annotations: { idempotentHint: true } });
    expect(plain).toMatchObject({ callToolAs: 'caller', retries: 0, timeoutMs: 30_000 });
    const chosen = isolation.tool(TOOLS, { name: 'y', callToolAs: 'tool', retries: 2, timeoutMs: 5 });
    expect(chosen).toMatchObject({ callToolAs: 'tool', retries: 2, timeoutMs: 5 });
  });

  it('refuses bad options with a TypeError naming the option', () => {
    const isolation = createIsolation();
    expect(() => isolation.tool('relative/tool.js', { name: 'x' })).toThrow(/file: URL/);
    expect(() => isolation.tool(TOOLS, { name: 'x', isolate: { timeoutMs: -1 } })).toThrow(
      /isolate.timeoutMs/,
    );
    expect(() => isolation.tool(TOOLS, { name: 'x', isolate: { level: 'vm' as never } })).toThrow(
      /isolate.level/,
    );
    expect(() => isolation.tool(TOOLS, { name: 'x', isolate: { permissions: { fsRead: ['/'] } } })).toThrow(
      /need level 'process'/,
    );
    expect(() => createIsolation({ maxWorkers: 0 })).toThrow(/maxWorkers/);
  });
});
