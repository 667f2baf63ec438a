/**
 * Declarative and integration HTTP tools that read their upstream's answers in isolation
 * (`declarativeTools.isolation`): a hostile answer (huge, deep, slow) is contained while the server
 * keeps answering, and a level the operator did not allow is refused wherever a definition names it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMcpServer, type DeclarativeToolOptions, type McpKitServer } from 'mcpkit';
import { createIsolation, type Isolation } from 'mcpkit/node';
import { request } from 'mcpkit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

let upstream: Server;
let port = 0;
/** A million small objects: its parse takes several times its size in heap. */
const HUGE = `{"items":[${'{"a":[0]},'.repeat(1_000_000)}{}]}`;
const DEEP = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/huge')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(HUGE);
    } else if (path.startsWith('/deep')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(DEEP);
    } else if (path.startsWith('/slow')) {
      // Headers at once, then a trickle that never ends.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"a":');
      const timer = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(timer));
    } else if (path.startsWith('/fail')) {
      res
        .writeHead(503, { 'content-type': 'application/json' })
        .end('{"error":{"message":"down for repairs"}}');
    } else {
      const q = new URL(path, 'http://x').searchParams.get('q');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(`{"q":${JSON.stringify(q)},"__proto__":{"admin":true},"ok":true}`);
    }
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  port = (upstream.address() as AddressInfo).port;
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

const open: Array<{ server: McpKitServer; isolation: Isolation }> = [];
afterEach(async () => {
  for (const { server, isolation } of open.splice(0)) {
    await server.close();
    await isolation.close();
  }
});

const json = { 'content-type': 'application/json' };

function serverWith(
  isolation: Isolation,
  options: Omit<DeclarativeToolOptions, 'isolation'> & {
    allow?: Array<'none' | 'worker' | 'process'>;
    default?: 'none' | 'worker' | 'process';
    maxMemoryMb?: number;
    readTimeoutMs?: number;
  } = {},
) {
  const { allow, default: level, maxMemoryMb, readTimeoutMs, ...rest } = options;
  const server = createMcpServer({
    logLevel: 'silent',
    outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
    declarativeTools: {
      ...rest,
      isolation: {
        pools: isolation,
        ...(allow && { allow }),
        ...(level && { default: level }),
        ...(maxMemoryMb && { maxMemoryMb }),
        ...(readTimeoutMs && { timeoutMs: readTimeoutMs }),
      },
    },
  });
  open.push({ server, isolation });
  return server;
}

function httpTool(name: string, path: string, isolation?: string) {
  return {
    name,
    kind: 'http',
    inputSchema: { type: 'object', properties: { q: { type: 'string' } } },
    http: { url: `http://127.0.0.1:${port}${path}` },
    ...(isolation && { isolation }),
  };
}

async function post(server: McpKitServer, path: string, body: unknown) {
  return request(server, path, { method: 'POST', headers: json, body: JSON.stringify(body) });
}

async function execute(server: McpKitServer, tool: string, args: Record<string, unknown> = {}) {
  const res = await post(server, `/tools/${tool}/execute`, { arguments: args });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** `/health` and an in-thread echo answer while `work` runs; returns `work`'s answer. */
async function answersThroughout<T>(server: McpKitServer, work: Promise<T>): Promise<T> {
  let settled = false;
  void work.finally(() => {
    settled = true;
  });
  let answered = 0;
  while (!settled) {
    const health = await request(server, '/health');
    expect(health.status).toBe(200);
    await health.arrayBuffer();
    const echo = await execute(server, 'echo', { text: 'hi' });
    expect(echo.status).toBe(200);
    answered++;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(answered).toBeGreaterThan(0);
  return work;
}

function withEcho(server: McpKitServer): McpKitServer {
  server.tools.register({
    name: 'echo',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
    handler: (args: unknown) => (args as { text: string }).text,
  });
  return server;
}

describe('declarative HTTP tools read their answers in isolation', () => {
  it('an http tool that asks for a worker reads its JSON there: same answer, pollution keys dropped', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = serverWith(isolation);
    expect((await post(server, '/tools', httpTool('lookup', '/lookup?q={q}', 'worker'))).status).toBe(201);
    const { status, body } = await execute(server, 'lookup', { q: 'acme' });
    expect(status).toBe(200);
    expect(body.structuredContent).toEqual({ q: 'acme', ok: true });
    expect(Object.hasOwn(body.structuredContent, '__proto__')).toBe(false);
    // It ran in the pool: a worker was started for it.
    expect(isolation.stats().pools).toBe(1);
    expect(isolation.stats().workers).toBe(1);
    // A failed answer gives only its own message, read in the worker.
    expect((await post(server, '/tools', httpTool('broken', '/fail', 'worker'))).status).toBe(201);
    const failed = await execute(server, 'broken');
    expect(failed.body.isError).toBe(true);
    expect(failed.body.content[0].text).toContain('HTTP 503');
    expect(failed.body.content[0].text).toContain('down for repairs');
  });

  it('a huge JSON answer blows the worker heap, not the server: a memory fault while others answer', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = withEcho(
      serverWith(isolation, {
        maxResponseBytes: 32 * 1024 * 1024,
        maxMemoryMb: 32,
        readTimeoutMs: 40_000,
      }),
    );
    expect((await post(server, '/tools', httpTool('huge', '/huge', 'worker'))).status).toBe(201);
    const { status, body } = await answersThroughout(server, execute(server, 'huge'));
    expect(status).toBe(200);
    expect(body.isError).toBe(true);
    expect(body.content[0].text).toContain('ran out of memory');
    expect(body.content[0].text).toContain('declarativeTools.isolation.maxMemoryMb');
    expect(isolation.stats().faults.memory).toBe(1);
    // The pool recovers: the next read gets a fresh worker.
    expect((await post(server, '/tools', httpTool('lookup', '/lookup?q={q}', 'worker'))).status).toBe(201);
    expect((await execute(server, 'lookup', { q: 'b' })).body.structuredContent).toEqual({
      q: 'b',
      ok: true,
    });
  }, 60_000);

  it('a JSON answer nested 100,000 deep comes back as text, the server unharmed', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = withEcho(serverWith(isolation, { default: 'worker' }));
    // No level named: the operator's default puts it in a worker.
    expect((await post(server, '/tools', httpTool('deep', '/deep'))).status).toBe(201);
    const { status, body } = await answersThroughout(server, execute(server, 'deep'));
    expect(status).toBe(200);
    expect(body.isError).toBeFalsy();
    expect(body.structuredContent).toBeUndefined();
    expect(body.content[0].text).toBe(DEEP);
    expect(isolation.stats().workers).toBe(1);
  });

  it('a slow upstream is cut at the tool timeout while others answer', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = withEcho(serverWith(isolation, { timeoutMs: 500 }));
    expect((await post(server, '/tools', httpTool('slow', '/slow', 'worker'))).status).toBe(201);
    const { status, body } = await answersThroughout(server, execute(server, 'slow'));
    expect(status).toBe(504);
    expect(body.detail).toContain('within 500 ms');
  });
});

describe('isolation levels an operator allows', () => {
  it('refuses a level the operator did not allow, and any level without pools', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = serverWith(isolation); // allows 'worker' only
    const refused = await post(server, '/tools', httpTool('p', '/lookup', 'process'));
    expect(refused.status).toBe(400);
    expect((await refused.json()).detail).toContain('isolation "process" is not allowed');
    const unknown = await post(server, '/tools', httpTool('u', '/lookup', 'sandbox'));
    expect(unknown.status).toBe(400);
    const chain = await post(server, '/tools', {
      name: 'c',
      kind: 'chain',
      isolation: 'worker',
      steps: [{ tool: 'p' }],
    });
    expect(chain.status).toBe(400);

    const plain = createMcpServer({
      logLevel: 'silent',
      outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
    });
    open.push({ server: plain, isolation: createIsolation() });
    expect((await post(plain, '/tools', httpTool('w', '/lookup', 'worker'))).status).toBe(400);
    expect((await post(plain, '/tools', httpTool('n', '/lookup', 'none'))).status).toBe(201);
    expect(() =>
      createMcpServer({
        logLevel: 'silent',
        declarativeTools: { isolation: { pools: isolation, allow: ['sandbox' as 'worker'] } },
      }),
    ).toThrow(/not a level/);
  });

  it('with the operator default at worker, a definition cannot opt out to none unless allowed', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = serverWith(isolation, { default: 'worker' });
    expect((await post(server, '/tools', httpTool('none', '/lookup', 'none'))).status).toBe(400);
  });

  it('an integration created over REST with a forbidden level answers 400; an allowed one runs isolated', async () => {
    const isolation = createIsolation({ maxWorkers: 1 });
    const server = serverWith(isolation, { allow: ['worker', 'process'] });
    await server.integrations.ready;
    const crm = {
      id: 'crm',
      name: 'CRM',
      tools: [httpTool('lookup', '/lookup?q={q}')],
    };
    // The integration's level: 'sandbox' is no level at all; validation names the field.
    const unknown = await post(server, '/integrations', { ...crm, isolation: 'sandbox' });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(await unknown.json())).toContain('isolation');
    // A per-tool level on a chain is refused.
    const chained = await post(server, '/integrations', {
      ...crm,
      tools: [{ name: 'c', kind: 'chain', isolation: 'worker', steps: [{ tool: 'x' }] }],
    });
    expect(chained.status).toBe(400);

    // An integration-level 'process' on a server that allows it: its http tool reads in a child process.
    const created = await post(server, '/integrations', { ...crm, isolation: 'process' });
    expect(created.status).toBe(201);
    expect((await created.json()).isolation).toBe('process');
    const { body } = await execute(server, 'crm__lookup', { q: 'z' });
    expect(body.structuredContent).toEqual({ q: 'z', ok: true });
    expect(isolation.stats().workers).toBe(1);

    // A server that allows worker only refuses the same integration, and the per-tool override too.
    const strict = serverWith(createIsolation({ maxWorkers: 1 }));
    await strict.integrations.ready;
    const forbidden = await post(strict, '/integrations', { ...crm, isolation: 'process' });
    expect(forbidden.status).toBe(400);
    expect((await forbidden.json()).detail).toBe(
      'tools[0]: isolation "process" is not allowed on this server for declarative tools',
    );
    const perTool = await post(strict, '/integrations', {
      ...crm,
      isolation: 'worker',
      tools: [httpTool('lookup', '/lookup?q={q}', 'process')],
    });
    expect(perTool.status).toBe(400);
    expect((await request(strict, '/integrations/crm')).status).toBe(404);
    const allowed = await post(strict, '/integrations', { ...crm, isolation: 'worker' });
    expect(allowed.status).toBe(201);
  });
});

describe('worker priority', () => {
  /** Whether this machine can put a thread under SCHED_IDLE (Linux with `chrt`). */
  const canIdle = (() => {
    try {
      execFileSync('chrt', ['--version'], { stdio: 'ignore' });
      return existsSync('/proc/thread-self/sched');
    } catch {
      return false;
    }
  })();

  it("workers run 10 nice levels down by default, under SCHED_IDLE with 'idle' (else 19 levels down), at the server's level with 0", async () => {
    const module = new URL('./fixtures/isolated/priority.mjs', import.meta.url);
    const server = createMcpServer({ logLevel: 'silent' });
    const idle = createIsolation({ maxWorkers: 1, workerPriority: 'idle' });
    const nice = createIsolation({ maxWorkers: 1 });
    const level = createIsolation({ maxWorkers: 1, workerPriority: 0 });
    open.push(
      { server, isolation: idle },
      { server: createMcpServer({ logLevel: 'silent' }), isolation: nice },
      { server: createMcpServer({ logLevel: 'silent' }), isolation: level },
    );
    server.tools.register(idle.tool(module, { name: 'idle' }));
    server.tools.register(idle.tool(module, { name: 'idleProcess', isolate: { level: 'process' } }));
    server.tools.register(nice.tool(module, { name: 'nice' }));
    server.tools.register(level.tool(module, { name: 'level', isolate: { level: 'process' } }));
    const own = getPriority(0);
    const reported = async (name: string) =>
      (await server.executor.execute(name, {})).structuredContent as { nice: number; policy: number | null };
    const onIdle = await reported('idle');
    if (canIdle) expect(onIdle).toEqual({ nice: own, policy: 5 });
    else expect(onIdle.nice).toBe(Math.min(19, own + 19));
    // A child process may not spawn `chrt` under its permission model: 19 nice levels instead.
    expect((await reported('idleProcess')).nice).toBe(Math.min(19, own + 19));
    expect(await reported('nice')).toMatchObject({ nice: Math.min(19, own + 10) });
    expect(await reported('level')).toMatchObject({ nice: own });
    // The server's own thread keeps its priority and its policy.
    expect(getPriority(0)).toBe(own);
    if (canIdle) expect(readFileSync('/proc/thread-self/sched', 'utf8')).toMatch(/^policy\s*:\s*0$/m);
    expect(() => createIsolation({ workerPriority: 20 })).toThrow(/'idle' or an integer from 0 to 19/);
    expect(() => createIsolation({ workerPriority: 'low' as never })).toThrow(/'idle' or an integer/);
  });

  it("'idle' runs chrt from /usr/bin or /bin, not one placed earlier on PATH", async () => {
    const installed = ['/usr/bin/chrt', '/bin/chrt'].some((path) => existsSync(path));
    const dir = mkdtempSync(join(tmpdir(), 'mcpkit-chrt-'));
    const marker = join(dir, 'ran');
    writeFileSync(join(dir, 'chrt'), `#!/bin/sh\necho ran > '${marker}'\nexit 1\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    try {
      const server = createMcpServer({ logLevel: 'silent' });
      const idle = createIsolation({ maxWorkers: 1, workerPriority: 'idle' });
      open.push({ server, isolation: idle });
      server.tools.register(
        idle.tool(new URL('./fixtures/isolated/priority.mjs', import.meta.url), { name: 'idle' }),
      );
      const reported = (await server.executor.execute('idle', {})).structuredContent as {
        policy: number | null;
      };
      // Only where util-linux's own places have none is the one on PATH run.
      expect(existsSync(marker)).toBe(!installed);
      if (installed && canIdle) expect(reported.policy).toBe(5);
    } finally {
      process.env.PATH = path;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
