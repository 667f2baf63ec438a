/**
 * The ToolExecutor: validation, result normalisation, sanitized failures, output schemas, timeouts,
 * cancellation, progress and nested calls. No sleeps that race: deferreds, signals and fake timers.
 */
import { createMcpServer, type ToolCallEvent } from 'mcpkit';
import { connectClient } from 'mcpkit/testing';
import { ERROR_META_KEY, errorCodeOf } from 'mcpkit/unstable';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { deferred } from './fixtures.js';

function server() {
  return createMcpServer({ logLevel: 'silent' });
}

describe('results', () => {
  it('normalises strings, objects, content blocks and full results', async () => {
    const s = server();
    s.tools.register({ name: 'str', handler: () => 'hi' });
    s.tools.register({ name: 'obj', handler: () => ({ a: 1 }) });
    s.tools.register({
      name: 'block',
      handler: () => ({ type: 'image', data: 'AAAA', mimeType: 'image/png' }),
    });
    s.tools.register({
      name: 'blocks',
      handler: () => [
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ],
    });
    s.tools.register({
      name: 'full',
      handler: () => ({ content: [{ type: 'text', text: 'x' }], isError: true }),
    });
    s.tools.register({ name: 'none', handler: () => undefined });
    expect(await s.executor.execute('str', {})).toEqual({ content: [{ type: 'text', text: 'hi' }] });
    expect(await s.executor.execute('obj', {})).toEqual({
      content: [{ type: 'text', text: '{"a":1}' }],
      structuredContent: { a: 1 },
    });
    expect((await s.executor.execute('block', {})).content).toEqual([
      { type: 'image', data: 'AAAA', mimeType: 'image/png' },
    ]);
    expect((await s.executor.execute('blocks', {})).content).toHaveLength(2);
    expect(await s.executor.execute('full', {})).toEqual({
      content: [{ type: 'text', text: 'x' }],
      isError: true,
    });
    expect(await s.executor.execute('none', {})).toEqual({ content: [] });
  });

  it('rejects invalid arguments with a message per field and never calls the handler', async () => {
    const s = server();
    const handler = vi.fn(() => 'ran');
    s.tools.register({
      name: 'typed',
      inputSchema: { city: z.string(), days: z.number().int().min(1) },
      handler,
    });
    const result = await s.executor.execute('typed', { city: 3, days: 0 });
    expect(result.isError).toBe(true);
    expect(errorCodeOf(result)).toBe('INVALID_ARGUMENT');
    const text = (result.content[0] as { text: string }).text;
    expect(text).toContain('city:');
    expect(text).toContain('days:');
    expect(handler).not.toHaveBeenCalled();
  });

  it('turns a throwing handler into a sanitized error with an id, logging the stack', async () => {
    const lines: string[] = [];
    const { createLogger } = await import('mcpkit');
    const s = createMcpServer({ logger: createLogger({ write: (l) => lines.push(l) }) });
    s.tools.register({
      name: 'crash',
      handler: () => {
        throw new Error(
          'cannot open /var/lib/app/secrets.json\n    at Object.<anonymous> (/srv/app/x.js:1:1)',
        );
      },
    });
    const result = await s.executor.execute('crash', {});
    const text = (result.content[0] as { text: string }).text;
    expect(result.isError).toBe(true);
    expect(text).toMatch(/^cannot open <path> \(error id [0-9a-f]{8}\)$/);
    const meta = result._meta?.[ERROR_META_KEY] as { errorId: string };
    expect(text).toContain(meta.errorId);
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.errorId === meta.errorId);
    expect(logged.err.stack).toContain('secrets.json');
  });

  it('validates output against the output schema', async () => {
    const s = server();
    s.tools.register({ name: 'good', outputSchema: { n: z.number() }, handler: () => ({ n: 1 }) });
    s.tools.register({ name: 'bad', outputSchema: { n: z.number() }, handler: () => ({ n: 'one' }) });
    s.tools.register({ name: 'missing', outputSchema: { n: z.number() }, handler: () => 'text only' });
    expect((await s.executor.execute('good', {})).isError).toBeUndefined();
    expect((await s.executor.execute('bad', {})).content[0]).toMatchObject({
      text: expect.stringMatching(/n:/),
    });
    expect((await s.executor.execute('missing', {})).isError).toBe(true);
  });
});

describe('failures around the call', () => {
  it('turns a listener that throws into a rejected call, never a synchronous throw', async () => {
    const s = server();
    s.tools.register({ name: 'ok', handler: () => 'ok' });
    s.executor.on('start', () => {
      throw new Error('listener broke');
    });
    let pending: Promise<unknown> | undefined;
    expect(() => {
      pending = s.executor.executeTool(s.tools.get('ok')!, {});
    }).not.toThrow();
    await expect(pending).rejects.toThrow('listener broke');
  });
});

describe('timeouts and cancellation', () => {
  it('aborts the handler on timeout and reports TIMEOUT', async () => {
    vi.useFakeTimers();
    try {
      const s = server();
      let seen: AbortSignal | undefined;
      s.tools.register({
        name: 'slow',
        timeoutMs: 1000,
        handler: (_args, ctx) => {
          seen = ctx.signal;
          return new Promise(() => {});
        },
      });
      const pending = s.executor.execute('slow', {});
      await vi.advanceTimersByTimeAsync(1000);
      const result = await pending;
      expect(errorCodeOf(result)).toBe('TIMEOUT');
      expect(seen?.aborted).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('arms the timeout only once a handler goes async, for the time it has left', async () => {
    vi.useFakeTimers();
    try {
      const s = server();
      // A synchronous answer is complete before any timer could fire: none is armed (counted from
      // after registration, which schedules the catalog's background schema conversion).
      let before = 0;
      s.tools.register({
        name: 'sync',
        timeoutMs: 1000,
        handler: () => `timers: ${vi.getTimerCount() - before}`,
      });
      before = vi.getTimerCount();
      expect((await s.executor.execute('sync', {})).content).toEqual([{ type: 'text', text: 'timers: 0' }]);
      // 400 ms of synchronous work before going async leaves 600 ms of the 1000 ms timeout.
      const entered = deferred();
      s.tools.register({
        name: 'late',
        timeoutMs: 1000,
        handler: () => {
          vi.advanceTimersByTime(400);
          entered.resolve();
          return new Promise<never>(() => {});
        },
      });
      let settled = false;
      const pending = s.executor.execute('late', {}).finally(() => {
        settled = true;
      });
      await entered.promise;
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(599);
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(errorCodeOf(await pending)).toBe('TIMEOUT');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a per-call timeout overrides the tool default; 0 disables it', async () => {
    vi.useFakeTimers();
    try {
      const s = server();
      const gate = deferred<string>();
      s.tools.register({ name: 'wait', timeoutMs: 10, handler: () => gate.promise });
      const pending = s.executor.execute('wait', {}, { timeoutMs: 0 });
      await vi.advanceTimersByTimeAsync(60_000);
      gate.resolve('done');
      expect(await pending).toEqual({ content: [{ type: 'text', text: 'done' }] });
    } finally {
      vi.useRealTimers();
    }
  });

  it('propagates an AbortSignal to the handler and reports CANCELLED', async () => {
    const s = server();
    const started = deferred();
    const events: ToolCallEvent[] = [];
    s.executor.on('cancel', (e) => events.push(e));
    s.tools.register({
      name: 'hang',
      handler: (_a, ctx) =>
        new Promise((_, reject) => {
          started.resolve();
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    });
    const controller = new AbortController();
    const pending = s.executor.execute('hang', {}, { signal: controller.signal });
    await started.promise;
    controller.abort();
    expect(errorCodeOf(await pending)).toBe('CANCELLED');
    expect(events).toHaveLength(1);
  });

  it('delivers a client-side cancel (AbortSignal on callTool) to the handler', async () => {
    const s = server();
    const started = deferred();
    const aborted = deferred();
    s.tools.register({
      name: 'hang',
      handler: (_a, ctx) => {
        ctx.signal.addEventListener('abort', () => aborted.resolve());
        started.resolve();
        return new Promise(() => {});
      },
    });
    const { client, close } = await connectClient(s);
    const controller = new AbortController();
    const call = client.callTool({ name: 'hang', arguments: {} }, { signal: controller.signal });
    await started.promise;
    controller.abort('user pressed stop');
    await expect(call).rejects.toThrow();
    await aborted.promise;
    await close();
  });
});

describe('progress and nesting', () => {
  it('delivers progress to a client that asked for it', async () => {
    const s = server();
    s.tools.register({
      name: 'steps',
      handler: async (_a, ctx) => {
        for (let i = 1; i <= 3; i++) await ctx.progress(i, 3, `step ${i}`);
        return 'done';
      },
    });
    const { client, close } = await connectClient(s);
    const seen: unknown[] = [];
    await client.callTool({ name: 'steps', arguments: {} }, { onprogress: (p) => seen.push(p) });
    expect(seen).toEqual([
      { progress: 1, total: 3, message: 'step 1' },
      { progress: 2, total: 3, message: 'step 2' },
      { progress: 3, total: 3, message: 'step 3' },
    ]);
    await close();
  });

  it('lets a tool call another tool through the executor, and stops runaway recursion', async () => {
    const s = server();
    s.tools.register({ name: 'double', inputSchema: { n: z.number() }, handler: ({ n }) => ({ n: n * 2 }) });
    s.tools.register({
      name: 'quadruple',
      inputSchema: { n: z.number() },
      handler: async ({ n }, ctx) => {
        const once = await ctx.callTool('double', { n });
        return ctx.callTool('double', once.structuredContent as { n: number });
      },
    });
    s.tools.register({ name: 'loop', handler: (_a, ctx) => ctx.callTool('loop') });
    expect((await s.executor.execute('quadruple', { n: 3 })).structuredContent).toEqual({ n: 12 });
    const looped = await s.executor.execute('loop', {});
    expect(JSON.stringify(looped)).toContain('nested deeper');
  });

  it('emits start and success events with duration and origin', async () => {
    const s = server();
    s.tools.register({ name: 'ok', handler: () => 'ok' });
    const events: Array<[string, ToolCallEvent]> = [];
    s.executor.on('start', (e) => events.push(['start', e]));
    s.executor.on('success', (e) => events.push(['success', e]));
    const { client, close } = await connectClient(s);
    await client.callTool({ name: 'ok', arguments: {} });
    expect(events.map(([k]) => k)).toEqual(['start', 'success']);
    expect(events[1]![1]).toMatchObject({ tool: 'ok', origin: 'memory' });
    expect(events[1]![1].durationMs).toBeGreaterThanOrEqual(0);
    await close();
  });
});

describe('sampling', () => {
  function samplingServer() {
    const s = server();
    s.tools.register({
      name: 'ask_model',
      inputSchema: { question: z.string() },
      handler: async ({ question }, ctx) => {
        const answer = await ctx.sample({
          messages: [{ role: 'user', content: { type: 'text', text: question } }],
          maxTokens: 50,
        });
        return `model said: ${(answer.content as { text: string }).text}`;
      },
    });
    return s;
  }

  it('asks the calling client’s model when the client offers sampling', async () => {
    const { client, close } = await connectClient(samplingServer(), {
      clientOptions: { capabilities: { sampling: {} } },
    });
    client.setRequestHandler('sampling/createMessage', async (request) => ({
      role: 'assistant',
      model: 'test-model',
      content: {
        type: 'text',
        text: `echo ${(request.params.messages[0]!.content as { text: string }).text}`,
      },
    }));
    const result = await client.callTool({ name: 'ask_model', arguments: { question: 'ping' } });
    expect(result.content).toEqual([{ type: 'text', text: 'model said: echo ping' }]);
    await close();
  });

  it('fails clearly when the client does not offer sampling, or the call is not over MCP', async () => {
    const s = samplingServer();
    const { client, close } = await connectClient(s);
    const result = await client.callTool({ name: 'ask_model', arguments: { question: 'ping' } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain('does not offer sampling');
    await close();
    const direct = await s.executor.execute('ask_model', { question: 'x' });
    expect(errorCodeOf(direct)).toBe('UNAVAILABLE');
  });
});
