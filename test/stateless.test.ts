import { request as httpRequest } from 'node:http';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { deferred, messagesOf, postMcp } from './fixtures.js';

/** `http.stateless` in the 2025 era: plain requests are served by one shared server. */
describe('http.stateless, one shared server', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function start(options: Parameters<typeof createMcpServer>[0] = {}) {
    const server = createMcpServer({
      logLevel: 'silent',
      ...options,
      http: { stateless: true, ...options.http },
    });
    const listening = await listen(server, { port: 0 });
    closers.push(async () => {
      await listening.close();
      await server.close();
    });
    const url = `${listening.url}/mcp`;
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      postMcp(url, body, { 'mcp-protocol-version': '2025-06-18', ...headers });
    return { server, listening, url, post };
  }

  const call = (id: number | string, name: string, args: Record<string, unknown> = {}) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args },
  });

  /** POSTs `message` over a raw socket, so the test can make the client leave by destroying it. */
  function sendRaw(base: string, message: unknown) {
    const body = JSON.stringify(message);
    const req = httpRequest(`${base}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'content-length': Buffer.byteLength(body),
      },
    });
    req.on('error', () => {});
    req.end(body);
    return req;
  }

  /**
   * Another client's call with id 1 (tool `quiet`), served while an earlier handler with that id
   * still runs and then, on `release`, logs: its answer is its own result alone.
   */
  async function expectOnlyItsOwnAnswer(
    server: Awaited<ReturnType<typeof start>>['server'],
    post: Awaited<ReturnType<typeof start>>['post'],
    release: { resolve: () => void },
  ): Promise<void> {
    const gate = deferred();
    server.tools.register({
      name: 'quiet',
      handler: async () => {
        await gate.promise;
        return 'mine';
      },
    });
    const answer = post(call(1, 'quiet'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    release.resolve();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gate.resolve();
    expect(await messagesOf(await answer)).toEqual([
      { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'mine' }] } },
    ]);
  }

  it('answers two clients that send the same id at once, each under its own id, with its own result', async () => {
    const gate = deferred();
    const { server, post } = await start();
    server.tools.register({
      name: 'wait',
      inputSchema: { tag: z.string() },
      handler: async ({ tag }, ctx) => {
        await gate.promise;
        return `tag ${tag} for request ${JSON.stringify(ctx.requestId)}`;
      },
    });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
    const first = post(call(1, 'wait', { tag: 'a' }));
    await settle();
    // A client id spelled like the private id a repeat would get: the repeat gets another one.
    const fourth = post(call('mcpkit-stateless-1', 'wait', { tag: 'd' }));
    await settle();
    const second = post(call(1, 'wait', { tag: 'b' }));
    const third = post(call('1', 'wait', { tag: 'c' }));
    await settle();
    gate.resolve();
    const answers = await Promise.all([first, second, third, fourth]);
    for (const answer of answers) expect(answer.headers.get('content-type')).toBe('application/json');
    const [a, b, c, d] = await Promise.all(answers.map((r) => r.json()));
    // Each handler saw the id its client sent, not the private one it was served under.
    expect(a).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: { content: [{ type: 'text', text: 'tag a for request 1' }] },
    });
    expect(b).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: { content: [{ type: 'text', text: 'tag b for request 1' }] },
    });
    expect(c).toEqual({
      jsonrpc: '2.0',
      id: '1',
      result: { content: [{ type: 'text', text: 'tag c for request "1"' }] },
    });
    expect(d).toEqual({
      jsonrpc: '2.0',
      id: 'mcpkit-stateless-1',
      result: { content: [{ type: 'text', text: 'tag d for request "mcpkit-stateless-1"' }] },
    });
  });

  it('streams what precedes a result as SSE: log messages, and progress for a call that asks', async () => {
    const { server, post } = await start();
    server.tools.register({
      name: 'chatty',
      handler: async (_args, ctx) => {
        await ctx.log.info('working');
        await ctx.progress(1, 2);
        return 'done';
      },
    });
    const plain = await post(call(7, 'chatty'));
    expect(plain.headers.get('content-type')).toBe('text/event-stream');
    const messages = await messagesOf(plain);
    expect(messages.map((m) => m.method ?? 'result')).toEqual(['notifications/message', 'result']);
    expect(messages[1]).toMatchObject({ id: 7, result: { content: [{ type: 'text', text: 'done' }] } });

    const withProgress = await post({
      jsonrpc: '2.0',
      id: 8,
      method: 'tools/call',
      params: { name: 'chatty', arguments: {}, _meta: { progressToken: 'p' } },
    });
    const streamed = await messagesOf(withProgress);
    expect(streamed.map((m) => m.method ?? 'result')).toEqual([
      'notifications/message',
      'notifications/progress',
      'result',
    ]);
    expect(streamed[1].params).toMatchObject({ progressToken: 'p', progress: 1, total: 2 });
  });

  it('cancels the handler when its client leaves before the answer', async () => {
    const entered = deferred();
    const aborted = deferred<string>();
    const { server, listening } = await start();
    server.tools.register({
      name: 'forever',
      handler: (_args, ctx) => {
        entered.resolve();
        ctx.signal.addEventListener('abort', () => aborted.resolve('aborted'));
        return new Promise(() => {});
      },
    });
    const req = sendRaw(listening.url, call(1, 'forever'));
    await entered.promise;
    req.destroy();
    expect(await aborted.promise).toBe('aborted');
  });

  it("keeps a left client's handler, still running, from writing into a later request with the same id", async () => {
    const entered = deferred();
    const aborted = deferred();
    const release = deferred();
    const { server, listening, post } = await start();
    server.tools.register({
      name: 'stubborn',
      handler: async (_args, ctx) => {
        entered.resolve();
        ctx.signal.addEventListener('abort', () => aborted.resolve());
        await release.promise; // ignores its cancellation
        await ctx.log.info('private to the client that left');
        return 'late';
      },
    });
    const req = sendRaw(listening.url, call(1, 'stubborn'));
    await entered.promise;
    req.destroy();
    await aborted.promise;
    // Another client, the same id, while the first handler still runs.
    await expectOnlyItsOwnAnswer(server, post, release);
  });

  it('keeps a timed-out handler, still running, from writing into a later request with the same id', async () => {
    const release = deferred();
    const { server, post } = await start();
    server.tools.register({
      name: 'overdue',
      timeoutMs: 30,
      handler: async (_args, ctx) => {
        await release.promise; // ignores its cancellation
        await ctx.log.info('private to the first client');
        return 'late';
      },
    });
    const first = await messagesOf(await post(call(1, 'overdue')));
    expect(first[0]).toMatchObject({ id: 1, result: { isError: true } });
    await expectOnlyItsOwnAnswer(server, post, release);
  });

  it("keeps one client's initialize and log level from reaching another client's calls", async () => {
    const { server, post } = await start();
    server.tools.register({
      name: 'ask',
      handler: async (_args, ctx) => {
        try {
          await ctx.sample({ messages: [], maxTokens: 1 });
          return 'sampled';
        } catch (error) {
          return `no sampling: ${(error as { code?: string }).code}`;
        }
      },
    });
    server.tools.register({
      name: 'logs',
      handler: async (_args, ctx) => {
        await ctx.log.info('hello');
        return 'ok';
      },
    });
    const init = await post({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: { sampling: {} },
        clientInfo: { name: 'a', version: '0' },
      },
    });
    expect((await messagesOf(init))[0].result.protocolVersion).toBe('2025-06-18');
    const quiet = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'logging/setLevel',
      params: { level: 'emergency' },
    });
    expect((await messagesOf(quiet))[0]).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    // Another client's call: no sampling capability declared, and the default log level.
    const asked = await post(call(2, 'ask'));
    expect((await messagesOf(asked)).at(-1).result.content[0].text).toBe('no sampling: UNAVAILABLE');
    const logged = await messagesOf(await post(call(3, 'logs')));
    expect(logged.map((m) => m.method ?? 'result')).toEqual(['notifications/message', 'result']);
  });

  it("shows each caller its own tools and applies the caller's rights on the shared server", async () => {
    const keys = { admin: 'k-admin-0123456789abcdef', user: 'k-user-0123456789abcdef' };
    const { post } = await start({
      auth: {
        apiKeys: [
          { id: 'admin', roles: ['admin'], key: keys.admin },
          { id: 'user', roles: ['user'], key: keys.user },
        ],
      },
      rules: [{ tools: 'secret.*', roles: ['admin'] }],
      tools: [
        { name: 'public.echo', handler: () => 'echo' },
        { name: 'secret.op', handler: () => 'secret' },
      ],
    });
    const list = async (key: string) => {
      const response = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'x-api-key': key });
      return (await messagesOf(response))[0].result.tools.map((t: { name: string }) => t.name);
    };
    for (let round = 0; round < 2; round++) {
      expect(await list(keys.admin)).toEqual(['public.echo', 'secret.op']);
      expect(await list(keys.user)).toEqual(['public.echo']);
    }
    const denied = await post(call(5, 'secret.op'), { 'x-api-key': keys.user });
    expect((await messagesOf(denied))[0].error).toBeDefined();
    const allowed = await post(call(6, 'secret.op'), { 'x-api-key': keys.admin });
    expect((await messagesOf(allowed))[0].result.content[0].text).toBe('secret');
    const anonymous = await post(call(7, 'public.echo'));
    expect(anonymous.status).toBe(401);
  });

  it('refuses what the transport refuses, and answers pending calls when the server closes', async () => {
    const entered = deferred();
    const { server, post } = await start();
    server.tools.register({
      name: 'forever',
      handler: () => {
        entered.resolve();
        return new Promise(() => {});
      },
    });
    const wrongAccept = await post(call(1, 'forever'), { accept: 'application/json' });
    expect(wrongAccept.status).toBe(406);
    const badVersion = await post(call(2, 'forever'), { 'mcp-protocol-version': '1999-01-01' });
    expect(badVersion.status).toBe(400);
    expect((await badVersion.json()).error.message).toMatch(/Unsupported protocol version/);
    const pending = post(call(3, 'forever'));
    await entered.promise;
    await server.close();
    const closed = await pending;
    expect(closed.status).toBe(503);
    expect(await closed.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
  });

  it('runs nothing for a request whose client left before it was dispatched', async () => {
    const server = createMcpServer({ logLevel: 'silent', http: { stateless: true } });
    closers.push(() => server.close());
    let ran = 0;
    server.tools.register({ name: 'charge', handler: () => `charged ${++ran}` });
    const seen: unknown[] = [];
    for (const kind of ['start', 'success', 'error', 'timeout', 'cancel'] as const) {
      server.executor.on(kind, (event) => seen.push(event.requestId));
    }
    const gone = new Request('http://localhost/mcp', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify(call(7, 'charge')),
      signal: AbortSignal.abort(),
    });
    await (await server.fetch(gone)).text();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect({ ran, seen }).toEqual({ ran: 0, seen: [] });
    // The next one runs, and its events carry the id its client sent.
    const next = new Request('http://localhost/mcp', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify(call(8, 'charge')),
    });
    expect(await (await server.fetch(next)).json()).toMatchObject({
      id: 8,
      result: { content: [{ text: 'charged 1' }] },
    });
    expect(seen).toEqual([8, 8]);
  });
});
