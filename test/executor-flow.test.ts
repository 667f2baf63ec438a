/**
 * Retries, concurrency limits with a bounded queue, chains and parallel batches.
 */
import { createMcpServer, McpKitError } from 'mcpkit';
import { ATTEMPTS_META_KEY, ERROR_META_KEY, errorCodeOf, resolveRefs } from 'mcpkit/unstable';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { deferred } from './fixtures.js';

const fastRetry = { retries: 3, minTimeoutMs: 1, maxTimeoutMs: 2 };

function server(options: Parameters<typeof createMcpServer>[0] = {}) {
  return createMcpServer({ logLevel: 'silent', toolRetry: fastRetry, ...options });
}

describe('retries', () => {
  it('retries an idempotent tool and reports the attempts', async () => {
    const s = server();
    let calls = 0;
    s.tools.register({
      name: 'flaky',
      idempotent: true,
      handler: () => {
        calls++;
        if (calls < 3) throw new Error('temporary');
        return 'ok';
      },
    });
    const retries: number[] = [];
    s.executor.on('retry', (e) => retries.push(e.attempt));
    const result = await s.executor.execute('flaky', {});
    expect(result.content).toEqual([{ type: 'text', text: 'ok' }]);
    expect(result._meta?.[ATTEMPTS_META_KEY]).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it('takes idempotentHint as permission to retry, and gives up after the limit', async () => {
    const s = server();
    const handler = vi.fn(() => {
      throw new Error('down');
    });
    s.tools.register({ name: 'hinted', annotations: { idempotentHint: true }, handler });
    const result = await s.executor.execute('hinted', {});
    expect(result.isError).toBe(true);
    expect(handler).toHaveBeenCalledTimes(4);
    expect(result._meta?.[ATTEMPTS_META_KEY]).toBe(4);
  });

  it('never retries non-idempotent tools, invalid arguments, or errors that say the request is wrong', async () => {
    const s = server();
    const plain = vi.fn(() => {
      throw new Error('once');
    });
    const typed = vi.fn(() => 'never');
    const refused = vi.fn(() => {
      throw new McpKitError('FORBIDDEN', 'no');
    });
    s.tools.register({ name: 'plain', handler: plain });
    s.tools.register({ name: 'typed', idempotent: true, inputSchema: { n: z.number() }, handler: typed });
    s.tools.register({ name: 'refused', idempotent: true, handler: refused });
    await s.executor.execute('plain', {});
    await s.executor.execute('typed', { n: 'x' });
    const r = await s.executor.execute('refused', {});
    expect(plain).toHaveBeenCalledTimes(1);
    expect(typed).not.toHaveBeenCalled();
    expect(refused).toHaveBeenCalledTimes(1);
    expect(errorCodeOf(r)).toBe('FORBIDDEN');
  });

  it("never retries a failure the caller's input caused: each handler runs exactly once", async () => {
    const s = server();
    const retries: string[] = [];
    s.executor.on('retry', (e) => retries.push(e.tool));
    const handlers = {
      // An McpKitError whose code says the request is wrong.
      invalid: vi.fn(() => {
        throw new McpKitError('INVALID_ARGUMENT', 'Invalid expression: unexpected end of expression');
      }),
      // A validation failure thrown from the handler's own parsing (zod, or any Standard Schema issues).
      zod: vi.fn(({ raw }: { raw: string }) => z.object({ n: z.number() }).parse(JSON.parse(raw))),
      // Joi, Yup, Mongoose and others name theirs ValidationError.
      named: vi.fn(() => {
        throw Object.assign(new Error('"email" is required'), { name: 'ValidationError' });
      }),
      // An abort the handler met is a cancellation, not a transient failure.
      aborted: vi.fn(() => {
        throw new DOMException('The operation was aborted', 'AbortError');
      }),
    };
    s.tools.register({ name: 'invalid', idempotent: true, handler: handlers.invalid });
    s.tools.register({
      name: 'zod',
      idempotent: true,
      inputSchema: { raw: z.string() },
      handler: handlers.zod,
    });
    s.tools.register({ name: 'named', idempotent: true, handler: handlers.named });
    s.tools.register({ name: 'aborted', idempotent: true, handler: handlers.aborted });

    const invalid = await s.executor.execute('invalid', {});
    expect(errorCodeOf(invalid)).toBe('INVALID_ARGUMENT');
    expect(invalid.content[0]).toMatchObject({
      text: expect.stringMatching(/^Invalid expression: unexpected end/),
    });

    const zod = await s.executor.execute('zod', { raw: '{"n":"seven"}' });
    expect(errorCodeOf(zod)).toBe('INVALID_ARGUMENT');
    expect(zod.content[0]).toMatchObject({ text: expect.stringMatching(/^Invalid input for tool zod: n: /) });
    expect(zod._meta?.[ERROR_META_KEY]).toMatchObject({
      code: 'INVALID_ARGUMENT',
      issues: [{ path: 'n', message: expect.any(String) }],
    });

    const named = await s.executor.execute('named', {});
    expect(errorCodeOf(named)).toBe('INVALID_ARGUMENT');
    expect(named.content[0]).toMatchObject({
      text: expect.stringMatching(/^"email" is required \(error id/),
    });

    await s.executor.execute('aborted', {});

    for (const [name, handler] of Object.entries(handlers)) {
      expect(handler, name).toHaveBeenCalledTimes(1);
    }
    for (const result of [invalid, zod, named]) expect(result._meta?.[ATTEMPTS_META_KEY]).toBeUndefined();
    expect(retries).toEqual([]);
  });

  it('retries transient failures: an unavailable resource, an upstream time-out, an unknown error', async () => {
    const s = server();
    const retried: Array<[string, string | undefined]> = [];
    s.executor.on('retry', (e) => retried.push([e.tool, e.code]));
    const failing = (error: () => Error) =>
      vi.fn(() => {
        throw error();
      });
    const handlers = {
      unavailable: failing(() => new McpKitError('UNAVAILABLE', 'database down')),
      upstream: failing(() => new McpKitError('TIMEOUT', 'No answer from api.example.com within 50 ms')),
      unknown: failing(() => new Error('socket hang up')),
    };
    for (const [name, handler] of Object.entries(handlers)) {
      s.tools.register({ name, idempotent: true, retries: 2, handler });
    }
    for (const name of Object.keys(handlers)) {
      const result = await s.executor.execute(name, {});
      expect(result._meta?.[ATTEMPTS_META_KEY], name).toBe(3);
    }
    for (const [name, handler] of Object.entries(handlers)) expect(handler, name).toHaveBeenCalledTimes(3);
    expect(retried).toEqual([
      ['unavailable', 'UNAVAILABLE'],
      ['unavailable', 'UNAVAILABLE'],
      ['upstream', 'TIMEOUT'],
      ['upstream', 'TIMEOUT'],
      ['unknown', 'INTERNAL'],
      ['unknown', 'INTERNAL'],
    ]);
  });

  it('reports no retry for a TypeError that is not a network failure, which is never retried', async () => {
    const s = server();
    const retries: number[] = [];
    s.executor.on('retry', (e) => retries.push(e.attempt));
    const handler = vi.fn(() => {
      throw new TypeError('Cannot read properties of undefined');
    });
    s.tools.register({ name: 'buggy', idempotent: true, handler });
    await s.executor.execute('buggy', {});
    expect(handler).toHaveBeenCalledTimes(1);
    expect(retries).toEqual([]);
  });

  it('does not retry a timed-out call', async () => {
    vi.useFakeTimers();
    try {
      const s = server();
      const handler = vi.fn(() => new Promise(() => {}));
      s.tools.register({ name: 'stuck', idempotent: true, timeoutMs: 50, handler });
      const pending = s.executor.execute('stuck', {});
      await vi.advanceTimersByTimeAsync(1000);
      expect(errorCodeOf(await pending)).toBe('TIMEOUT');
      expect(handler).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('concurrency limits', () => {
  it('never runs more than the global limit under 200 concurrent calls, and finishes them all', async () => {
    const s = server({ toolConcurrency: 4 });
    let running = 0;
    let peak = 0;
    s.tools.register({
      name: 'work',
      handler: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setImmediate(r));
        running--;
        return 'done';
      },
    });
    const results = await Promise.all(Array.from({ length: 200 }, () => s.executor.execute('work', {})));
    expect(results.every((r) => !r.isError)).toBe(true);
    expect(peak).toBe(4);
  });

  it('does not deadlock when tools call tools under a limit of 1', async () => {
    const s = server({ toolConcurrency: 1 });
    s.tools.register({ name: 'leaf', concurrency: 1, handler: () => 'leaf' });
    s.tools.register({
      name: 'outer',
      concurrency: 1,
      handler: async (_a, ctx) => {
        const inner = await ctx.callTool('leaf');
        const again = await ctx.callTool('outer_child');
        return `${(inner.content[0] as { text: string }).text}+${(again.content[0] as { text: string }).text}`;
      },
    });
    s.tools.register({ name: 'outer_child', handler: (_a, ctx) => ctx.callTool('leaf') });
    const results = await Promise.all(Array.from({ length: 200 }, () => s.executor.execute('outer', {})));
    expect(results.every((r) => (r.content[0] as { text: string }).text === 'leaf+leaf')).toBe(true);
  });

  it('limits one tool without slowing the others, and fails fast with BUSY past the queue bound', async () => {
    const s = server({ toolQueueLimit: 2 });
    const gate = deferred();
    let running = 0;
    s.tools.register({
      name: 'narrow',
      concurrency: 1,
      handler: async () => {
        running++;
        await gate.promise;
        running--;
        return 'n';
      },
    });
    s.tools.register({ name: 'free', handler: () => 'f' });
    const queued = [1, 2, 3].map(() => s.executor.execute('narrow', {}));
    await new Promise((r) => setImmediate(r));
    expect(running).toBe(1);
    const busy = await s.executor.execute('narrow', {});
    expect(errorCodeOf(busy)).toBe('BUSY');
    expect((await s.executor.execute('free', {})).content).toEqual([{ type: 'text', text: 'f' }]);
    gate.resolve();
    expect((await Promise.all(queued)).every((r) => !r.isError)).toBe(true);
  });
});

describe('chains', () => {
  function chainServer() {
    const s = server();
    s.tools.register({
      name: 'find_user',
      inputSchema: { email: z.string() },
      handler: ({ email }) => ({ id: `u-${email.split('@')[0]}`, email }),
    });
    s.tools.register({
      name: 'orders',
      inputSchema: { userId: z.string() },
      handler: ({ userId }) => ({ userId, orders: [1, 2] }),
    });
    s.tools.register({ name: 'fail', handler: () => Promise.reject(new Error('nope')) });
    return s;
  }

  it('feeds earlier results into later steps by $ref, by index and by name', async () => {
    const s = chainServer();
    const out = await s.executor.chain(
      [
        { name: 'user', tool: 'find_user', args: { email: { $ref: 'input.email' } } },
        { tool: 'orders', args: { userId: { $ref: 'steps.user.structuredContent.id' } } },
        { tool: 'orders', args: { userId: { $ref: 'steps.1.structuredContent.userId' } } },
      ],
      { email: 'ada@example.com' },
    );
    expect(out.ok).toBe(true);
    expect(out.steps.map((st) => st.ok)).toEqual([true, true, true]);
    expect(out.result?.structuredContent).toEqual({ userId: 'u-ada', orders: [1, 2] });
    expect(out.steps.every((st) => st.durationMs >= 0)).toBe(true);
  });

  it('builds arguments with functions in code', async () => {
    const s = chainServer();
    const out = await s.executor.chain(
      [
        { tool: 'find_user', args: (input) => ({ email: (input as { e: string }).e }) },
        {
          tool: 'orders',
          args: (_i, steps) => ({ userId: (steps[0]!.result.structuredContent as { id: string }).id }),
        },
      ],
      { e: 'grace@example.com' },
    );
    expect(out.result?.structuredContent).toMatchObject({ userId: 'u-grace' });
  });

  it('stops at the first error unless told to continue', async () => {
    const s = chainServer();
    const steps = [
      { tool: 'fail' },
      { tool: 'find_user', args: { email: 'x@y' } },
      { tool: 'missing_tool' },
      { tool: 'find_user', args: { email: 'z@y' } },
    ];
    const stopped = await s.executor.chain(steps);
    expect(stopped.ok).toBe(false);
    expect(stopped.steps).toHaveLength(1);
    const continued = await s.executor.chain(steps, {}, { continueOnError: true });
    expect(continued.steps.map((st) => st.ok)).toEqual([false, true, false, true]);
    expect(errorCodeOf(continued.steps[2]!.result)).toBe('NOT_FOUND');
  });

  it('resolves references without reaching prototypes', () => {
    const context = { input: { a: { b: 1 } } };
    expect(resolveRefs({ x: { $ref: 'input.a.b' }, y: [{ $ref: 'input.a' }] }, context)).toEqual({
      x: 1,
      y: [{ b: 1 }],
    });
    expect(resolveRefs({ x: { $ref: 'input.__proto__.polluted' } }, context)).toEqual({ x: undefined });
    expect(resolveRefs({ x: { $ref: 'input.constructor' } }, context)).toEqual({ x: undefined });
  });
});

describe('parallel batches', () => {
  it('returns results in input order under the concurrency cap, settling every call', async () => {
    const s = server();
    let running = 0;
    let peak = 0;
    s.tools.register({
      name: 'square',
      inputSchema: { n: z.number() },
      handler: async ({ n }) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, (n * 7) % 5));
        running--;
        if (n === 13) throw new Error('unlucky');
        return { n: n * n };
      },
    });
    const results = await s.executor.parallel(
      Array.from({ length: 40 }, (_, n) => ({ tool: 'square', args: { n } })),
      { concurrency: 5 },
    );
    expect(peak).toBeLessThanOrEqual(5);
    expect(results).toHaveLength(40);
    results.forEach((r, n) => {
      if (n === 13) expect(r.isError).toBe(true);
      else expect(r.structuredContent).toEqual({ n: n * n });
    });
  });

  it('with failFast cancels what is still running or waiting', async () => {
    const s = server();
    s.tools.register({ name: 'fail', handler: () => Promise.reject(new Error('x')) });
    s.tools.register({
      name: 'wait',
      handler: (_a, ctx) =>
        new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('a')))),
    });
    const results = await s.executor.parallel(
      [{ tool: 'wait' }, { tool: 'fail' }, { tool: 'wait' }, { tool: 'wait' }],
      { concurrency: 2, failFast: true },
    );
    expect(results.map((r) => errorCodeOf(r))).toEqual(['CANCELLED', 'INTERNAL', 'CANCELLED', 'CANCELLED']);
  });
});
