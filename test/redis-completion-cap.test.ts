/**
 * The running count of completion jobs with a shared store, against a real redis-server: a job whose
 * first Redis write (its record) is held up by the server, is cancelled or closed meanwhile, and then
 * fails, gives its place back once. `CLIENT PAUSE … WRITE` holds the write; the client's command
 * timeout, or the close of its connection, fails it.
 */
import { Redis } from 'ioredis';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { redisState } from 'mcpkit/redis';
import { createModelServer, type ModelServer } from 'mcpkit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from './support/redisServer.js';

const LOOPBACK = { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true };
const COMMAND_TIMEOUT_MS = 300;

let redis: RedisServer;
let admin: Redis;
let model: ModelServer;
let prefixes = 0;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
  model = await createModelServer({ fallback: { text: 'hello', chunkDelayMs: 50 } });
});
afterAll(async () => {
  await model.close();
  await admin.quit();
  await redis.stop();
});
afterEach(async () => {
  await admin.call('CLIENT', 'UNPAUSE');
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

function server(): McpKitServer {
  const created = createMcpServer({
    tasks: { maxTasks: 1 },
    logLevel: 'silent',
    state: redisState({
      url: redis.url,
      prefix: `cap${process.pid}-${++prefixes}:`,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    }),
    outbound: LOOPBACK,
    completions: { allowInlineBaseUrl: true, maxRunning: 1 },
  });
  created.tools.register({
    name: 'wait',
    description: 'Waits until cancelled',
    handler: (_args, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', reject)),
  });
  cleanups.push(() => created.close());
  return created;
}

const request = () => ({
  model: { provider: 'openai' as const, model: 'm', baseUrl: `${model.url}/v1` },
  messages: [{ role: 'user' as const, content: 'hi' }],
});

/** Starts a job while Redis holds every write, and waits until the job is in the table. */
async function startHeld(s: McpKitServer): Promise<{ id: string; starting: Promise<unknown> }> {
  await admin.call('CLIENT', 'PAUSE', '5000', 'WRITE');
  const starting = s.completions.start(request());
  starting.catch(() => {});
  const deadline = Date.now() + 2000;
  for (;;) {
    const job = s.completions.list()[0];
    if (job) return { id: job.id, starting };
    if (Date.now() > deadline) throw new Error('the job never reached the table');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('a job cancelled during its first Redis write, which then fails', () => {
  it('gives its place back once: the cap of one admits exactly one new job', async () => {
    const s = server();
    const { id, starting } = await startHeld(s);
    expect(s.completions.running).toBe(1);
    expect(s.completions.cancel(id)?.status).toBe('cancelled');
    expect(s.completions.running).toBe(0);
    // The write times out while Redis still holds it.
    await expect(starting).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(s.completions.running).toBe(0);

    await admin.call('CLIENT', 'UNPAUSE');
    const first = await s.completions.start(request());
    expect(s.completions.running).toBe(1);
    await expect(s.completions.start(request())).rejects.toMatchObject({ code: 'BUSY' });
    first.cancel();
    expect(s.completions.running).toBe(0);
  });

  it('closing the server meanwhile (the write fails as the connection closes) leaves the count at 0', async () => {
    const s = server();
    const { starting } = await startHeld(s);
    expect(s.completions.running).toBe(1);
    await s.close();
    await expect(starting).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(s.completions.running).toBe(0);
  });
});

describe('a task cancelled during its first Redis write, which then fails', () => {
  it('gives its place back once: the cap of one admits exactly one new task', async () => {
    const s = server();
    const tasks = s.tasks!;
    const start = () => tasks.begin({ tool: s.tools.require('wait'), args: {}, execute: {} });
    await admin.call('CLIENT', 'PAUSE', '5000', 'WRITE');
    const starting = start();
    starting.catch(() => {});
    const [held] = tasks.list();
    expect(tasks.running).toBe(1);
    expect(tasks.cancel(held!.taskId)).toBe(true);
    expect(tasks.running).toBe(0);
    await expect(starting).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(tasks.running).toBe(0);

    await admin.call('CLIENT', 'UNPAUSE');
    const first = await start();
    expect(tasks.running).toBe(1);
    await expect(start()).rejects.toMatchObject({ code: 'BUSY' });
    tasks.cancel(first.taskId);
    expect(tasks.running).toBe(0);
  });
});
