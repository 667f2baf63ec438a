/**
 * The worker level's links (src/node/isolation/links.ts): every worker thread has one port to the
 * main thread, kept from call to call, and each message on it names its call. Calls running at
 * once on one pool's workers hear only their own progress, logs, nested answers and aborts, whether
 * or not their worker has spoken for them yet; a call's answer still comes after its messages.
 */
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { createIsolation, type Isolation } from 'mcpkit/node';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { keepingLogger } from './fixtures.js';

const TOOLS = new URL('./fixtures/isolated/links.mjs', import.meta.url);

interface Progress {
  progress: number;
  message?: string;
}

/** Runs `tool` through the executor, keeping the progress it sends. */
function withProgress(
  server: McpKitServer,
  tool: string,
  args: Record<string, unknown>,
  signal?: AbortSignal,
) {
  const progress: Progress[] = [];
  const result = server.executor.execute(tool, args, {
    ...(signal && { signal }),
    onProgress: async (value, _total, message) => {
      progress.push({ progress: value, ...(message !== undefined && { message }) });
    },
  });
  return { progress, result };
}

let server: McpKitServer | undefined;
let isolation: Isolation | undefined;

afterEach(async () => {
  await server?.close();
  await isolation?.close();
  server = undefined;
  isolation = undefined;
});

/**
 * A server with the `quiet` tool on an isolation of `maxWorkers` workers (10 s of grace, and
 * `timeoutMs` when given), and `heard(tag)`: whether the handler of the call tagged `tag` heard its
 * abort.
 */
function startQuiet(maxWorkers: number, timeoutMs?: number) {
  const logged: unknown[] = [];
  const kit = createMcpServer({ logger: keepingLogger(logged) });
  const pool = createIsolation({ maxWorkers });
  server = kit;
  isolation = pool;
  kit.tools.register(
    pool.tool(TOOLS, {
      name: 'quiet',
      inputSchema: { tag: z.string() },
      isolate: { export: 'quiet', graceMs: 10_000, ...(timeoutMs !== undefined && { timeoutMs }) },
    }),
  );
  const heard = (tag: string) => logged.some((line) => (line as { tag?: unknown }).tag === tag);
  return { kit, pool, heard };
}

describe("calls on one pool's workers", () => {
  it('running at once on two workers, each gets only its own progress, logs and nested answer', async () => {
    const logged: unknown[] = [];
    server = createMcpServer({ logger: keepingLogger(logged) });
    isolation = createIsolation({ maxWorkers: 2 });
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'crossing',
        inputSchema: { tag: z.string(), count: z.number() },
        isolate: { export: 'crossing' },
      }),
    );
    // Answers once both calls wait on it: both run at once, so on two workers.
    let arrived = 0;
    let open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    server.tools.register({
      name: 'gate',
      inputSchema: { tag: z.string() },
      handler: async ({ tag }) => {
        if (++arrived === 2) open();
        await opened;
        return { tag };
      },
    });
    const a = withProgress(server, 'crossing', { tag: 'a', count: 20 });
    const b = withProgress(server, 'crossing', { tag: 'b', count: 20 });
    const [ra, rb] = await Promise.all([a.result, b.result]);
    expect(ra.structuredContent).toMatchObject({ tag: 'a', gate: 'a' });
    expect(rb.structuredContent).toMatchObject({ tag: 'b', gate: 'b' });
    expect((ra.structuredContent as { thread: number }).thread).not.toBe(
      (rb.structuredContent as { thread: number }).thread,
    );
    // Every message before the answer, in order, and none of the other call's.
    expect(a.progress).toEqual(Array.from({ length: 40 }, (_, i) => ({ progress: i + 1, message: 'a' })));
    expect(b.progress).toEqual(Array.from({ length: 40 }, (_, i) => ({ progress: i + 1, message: 'b' })));
    const lines = logged.filter((line) => (line as { i?: unknown }).i !== undefined);
    expect(lines).toHaveLength(40);
  }, 20_000);

  it('a cancel reaches a call that has sent nothing yet, and no other call', async () => {
    const { kit, pool, heard } = startQuiet(2);
    const stopA = new AbortController();
    const stopB = new AbortController();
    const a = kit.executor.execute('quiet', { tag: 'a' }, { signal: stopA.signal });
    const b = kit.executor.execute('quiet', { tag: 'b' }, { signal: stopB.signal });
    await expect.poll(() => pool.stats().workers, { timeout: 10_000 }).toBe(2);
    stopA.abort();
    expect((await a).isError).toBe(true);
    // The handler heard its own abort (well before its 10 s of grace), and only it did.
    await expect.poll(() => heard('a'), { timeout: 5_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard('b')).toBe(false);
    stopB.abort();
    expect((await b).isError).toBe(true);
    await expect.poll(() => heard('b'), { timeout: 5_000 }).toBe(true);
    expect(pool.stats().faults.timeout).toBe(0);
  }, 20_000);

  it('a call that reaches its time limit counts as a timeout when it answers, even if its handler then stops by itself', async () => {
    const { kit, pool, heard } = startQuiet(1, 300);
    const stop = new AbortController();
    const cancelled = kit.executor.execute('quiet', { tag: 'cancelled' }, { signal: stop.signal });
    await expect.poll(() => pool.stats().workers, { timeout: 10_000 }).toBe(1);
    stop.abort();
    expect((await cancelled).isError).toBe(true);
    expect(pool.stats().faults.timeout).toBe(0);
    const late = await kit.executor.execute('quiet', { tag: 'late' });
    expect(late.isError).toBe(true);
    expect(late.content).toEqual([expect.objectContaining({ text: expect.stringMatching(/timed out/) })]);
    // Counted by the time the caller has its answer, not only once a worker is terminated.
    expect(pool.stats().faults.timeout).toBe(1);
    // The handler stopped by itself, long before its 10 s of grace.
    await expect.poll(() => heard('late'), { timeout: 5_000 }).toBe(true);
  }, 20_000);

  it('a cancel that comes while the worker starts is heard by the handler once it runs', async () => {
    const { kit, pool, heard } = startQuiet(1);
    const stop = new AbortController();
    const call = kit.executor.execute('quiet', { tag: 'early' }, { signal: stop.signal });
    // The call has reached its pool, whose first worker is starting (or has just started).
    await expect.poll(() => pool.stats().pools, { timeout: 5_000 }).toBe(1);
    stop.abort();
    expect((await call).isError).toBe(true);
    // Heard well before its 10 s of grace, so the worker was not terminated.
    await expect.poll(() => heard('early'), { timeout: 5_000 }).toBe(true);
    expect(pool.stats().faults.timeout).toBe(0);
  }, 20_000);

  it('one worker serves many calls over its link: answers after their own messages, with or without any', async () => {
    server = createMcpServer({ logLevel: 'silent' });
    isolation = createIsolation({ maxWorkers: 1 });
    const input = { n: z.number(), count: z.number().optional() };
    server.tools.register(
      isolation.tool(TOOLS, { name: 'numbered', inputSchema: input, isolate: { export: 'numbered' } }),
    );
    server.tools.register(
      isolation.tool(TOOLS, { name: 'silent', inputSchema: input, isolate: { export: 'silent' } }),
    );
    const threads = new Set<number>();
    for (let n = 0; n < 60; n++) {
      if (n % 2 === 0) {
        const { progress, result } = withProgress(server, 'numbered', { n, count: 3 });
        const done = await result;
        expect(done.structuredContent).toMatchObject({ n });
        expect(progress).toEqual([1, 2, 3].map((i) => ({ progress: i, message: String(n) })));
        threads.add((done.structuredContent as { thread: number }).thread);
      } else {
        const done = await server.executor.execute('silent', { n });
        expect(done.structuredContent).toMatchObject({ n });
        threads.add((done.structuredContent as { thread: number }).thread);
      }
    }
    expect(threads.size).toBe(1);
    expect(isolation.stats().workers).toBe(1);
  }, 20_000);
});
