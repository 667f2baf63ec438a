/**
 * MCP tasks and completion jobs shared through a real redis-server by several mcpkit nodes, each
 * listening on its own port and driven over real HTTP (SDK v2 clients for the tasks): a task or a
 * job started on one node is polled, fetched and cancelled on another (the cancel aborts the work
 * where it runs); another caller sees none of it on any node; work whose node closed or was killed
 * reads as failed; and while Redis is down the requests that need it get a retryable refusal,
 * nothing acknowledged is lost, and everything recovers by itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { acceptedContent, inputRequired } from '@modelcontextprotocol/server';
import { build } from 'esbuild';
import { Redis } from 'ioredis';
import { createMcpServer, type McpKitServer, TASKS_EXTENSION_ID } from 'mcpkit';
import { type Listening, listen } from 'mcpkit/node';
import { redisState } from 'mcpkit/redis';
import { createModelServer, type ModelServer } from 'mcpkit/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { type RedisServer, startRedis } from './support/redisServer.js';

const MODERN = '2026-07-28';
const WITH_TASKS = { extensions: { [TASKS_EXTENSION_ID]: {} } };
const KEYS = { alice: 'alice-key-0123456789abcdef', bob: 'bob-key-0123456789abcdefgh' };
/** Short, so a dead node's work is reported failed within a second. */
const LEASE_MS = 900;
/** The loopback model listens on a private address: the outbound policy has to allow it. */
const LOOPBACK = { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true };

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = path.join(
  root,
  'node_modules',
  '.cache',
  'mcpkit-redis-tasks-test',
  `node-${process.pid}.mjs`,
);

let redis: RedisServer;
let prefixes = 0;
const freshPrefix = () => `rt${process.pid}-${++prefixes}:`;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  await build({
    entryPoints: [path.join(root, 'test/fixtures/redisTaskNode.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    logLevel: 'silent',
    // Optional peers stay outside the bundle and resolve from node_modules, as in an app.
    external: ['ioredis', 'ws', 'express', 'fastify', 'hono', '@modelcontextprotocol/client'],
  });
});
afterAll(async () => {
  await redis.stop();
  await fs.rm(bundle, { force: true });
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
  // A test that stopped Redis leaves it running for the next.
  if (redisStopped) await redis.start();
  redisStopped = false;
});
let redisStopped = false;
async function stopRedis(): Promise<void> {
  redisStopped = true;
  await redis.stop();
}
async function startRedisAgain(): Promise<void> {
  await redis.start();
  redisStopped = false;
}

async function until<T>(
  probe: () => Promise<T> | T,
  done: (value: T) => boolean,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** One node: a server sharing `prefix` in Redis, listening on a free port, with test tools. */
interface TestNode {
  readonly name: string;
  readonly server: McpKitServer;
  readonly listening: Listening;
  readonly url: string;
  /** The signals of the `held` and `gated` handlers this node ran, in start order. */
  readonly signals: AbortSignal[];
  /** Lets the `gated` handlers finish. */
  release(): void;
  close(): Promise<void>;
}

async function node(
  name: string,
  prefix: string,
  options: { model?: ModelServer; leaseMs?: number } = {},
): Promise<TestNode> {
  const { model, leaseMs = LEASE_MS } = options;
  const server = createMcpServer({
    logLevel: 'silent',
    state: redisState({ url: redis.url, prefix, leaseMs }),
    auth: {
      apiKeys: [
        { id: 'alice', roles: ['user'], key: KEYS.alice },
        { id: 'bob', roles: ['user'], key: KEYS.bob },
      ],
    },
    ...(model && { outbound: LOOPBACK, completions: { allowInlineBaseUrl: true } }),
  });
  const signals: AbortSignal[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  server.tools.register({
    name: 'held',
    task: 'optional',
    handler: (_args, ctx) =>
      new Promise((_resolve, reject) => {
        signals.push(ctx.signal);
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
      }),
  });
  server.tools.register({
    name: 'gated',
    task: 'optional',
    handler: async (_args, ctx) => {
      signals.push(ctx.signal);
      await gate;
      return `gated on ${name}`;
    },
  });
  server.tools.register({
    name: 'ask',
    task: 'optional',
    handler: (_args, ctx) => {
      const answer = acceptedContent(ctx.mcp?.mcpReq.inputResponses, 'who');
      if (typeof answer?.name === 'string') return `Hello ${answer.name}, from ${name}`;
      return inputRequired({
        inputRequests: {
          who: inputRequired.elicit({
            message: 'Who?',
            requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
          }),
        },
      });
    },
  });
  const listening = await listen(server, { port: 0, host: '127.0.0.1' });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await listening.close();
    await server.close();
  };
  cleanups.push(close);
  return { name, server, listening, url: listening.url, signals, release: () => open(), close };
}

/** An SDK client of `who` on a node's /mcp, with the task methods (the SDK has no tasks support yet). */
async function as(who: keyof typeof KEYS, url: string) {
  const client = new Client(
    { name: `redis-tasks-${who}`, version: '1' },
    { versionNegotiation: { mode: { pin: MODERN } }, capabilities: WITH_TASKS },
  );
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: { 'x-api-key': KEYS[who] } },
  });
  await client.connect(transport);
  cleanups.push(() => client.close());
  // The SDK client rejects a `tools/call` answered with `resultType: "task"`: the CreateTaskResult
  // is read off the wire, under the client.
  const created: Array<Record<string, any>> = [];
  const deliver = transport.onmessage!;
  transport.onmessage = (message) => {
    const result = (message as { result?: Record<string, any> }).result;
    if (result?.resultType === 'task') created.push(result);
    deliver.call(transport, message);
  };
  const anyResult = z.looseObject({});
  return {
    startTask: async (name: string) => {
      await client
        .request({ method: 'tools/call', params: { name, arguments: {} } }, anyResult)
        .catch((error) => {
          if (error?.code !== 'UNSUPPORTED_RESULT_TYPE') throw error;
        });
      const task = created.pop();
      if (!task) throw new Error('no task was created');
      return task.taskId as string;
    },
    get: (taskId: string) => client.request({ method: 'tasks/get', params: { taskId } }, anyResult),
    cancel: (taskId: string) => client.request({ method: 'tasks/cancel', params: { taskId } }, anyResult),
    update: (taskId: string, inputResponses: Record<string, unknown>) =>
      client.request({ method: 'tasks/update', params: { taskId, inputResponses } }, anyResult),
  };
}

// Several nodes, a child process and a Redis restart per test, on a machine that may be busy.
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

const UNKNOWN = (taskId: string) => ({ code: -32602, message: `Unknown task: ${taskId}` });

describe('MCP tasks across nodes', () => {
  it('a task started on A is polled and its result fetched on B; bob sees and cancels nothing', async () => {
    const prefix = freshPrefix();
    const a = await node('A', prefix);
    const b = await node('B', prefix);
    const aliceA = await as('alice', a.url);
    const aliceB = await as('alice', b.url);
    const bobB = await as('bob', b.url);
    const bobA = await as('bob', a.url);

    const taskId = await aliceA.startTask('gated');
    // Found on B as soon as A handed out its id.
    expect(await aliceB.get(taskId)).toMatchObject({ taskId, status: 'working' });
    await until(
      () => a.signals.length,
      (n) => n === 1,
    );

    // Another caller: as unknown as a task that never existed, on either node, and not cancellable.
    await expect(bobB.get(taskId)).rejects.toMatchObject(UNKNOWN(taskId));
    await expect(bobA.get(taskId)).rejects.toMatchObject(UNKNOWN(taskId));
    await expect(bobB.cancel(taskId)).rejects.toMatchObject(UNKNOWN(taskId));
    await expect(aliceB.get('never-was')).rejects.toMatchObject(UNKNOWN('never-was'));
    await expect(aliceB.get('x'.repeat(300))).rejects.toMatchObject({ code: -32602 });

    a.release();
    const done = await until(
      () => aliceB.get(taskId),
      (t) => t.status === 'completed',
    );
    expect(done.result).toMatchObject({
      resultType: 'complete',
      content: [{ type: 'text', text: 'gated on A' }],
    });
    expect(a.signals[0]!.aborted).toBe(false);
  });

  it('a cancel on B aborts the handler running on A', async () => {
    const prefix = freshPrefix();
    // Heartbeats 20 s apart: only the message on A's channel can stop the handler in time.
    const a = await node('A', prefix, { leaseMs: 60_000 });
    const b = await node('B', prefix, { leaseMs: 60_000 });
    const aliceA = await as('alice', a.url);
    const aliceB = await as('alice', b.url);
    const taskId = await aliceA.startTask('held');
    await until(
      () => a.signals.length,
      (n) => n === 1,
    );
    await aliceB.cancel(taskId);
    expect((await aliceB.get(taskId)).status).toBe('cancelled');
    await until(
      () => a.signals[0]!.aborted,
      (aborted) => aborted,
      3000,
    );
    expect((await aliceA.get(taskId)).status).toBe('cancelled');
    expect(a.server.tasks!.running).toBe(0);
  });

  it('input asked for by a task on A is answered on B, and the task resumes on A', async () => {
    const prefix = freshPrefix();
    const a = await node('A', prefix);
    const b = await node('B', prefix);
    const aliceA = await as('alice', a.url);
    const aliceB = await as('alice', b.url);
    const bobB = await as('bob', b.url);
    const taskId = await aliceA.startTask('ask');
    const parked = await until(
      () => aliceB.get(taskId),
      (t) => t.status === 'input_required',
    );
    expect(Object.keys(parked.inputRequests as object)).toEqual(['who']);
    const answer = { who: { action: 'accept', content: { name: 'Ada' } } };
    await expect(bobB.update(taskId, answer)).rejects.toMatchObject(UNKNOWN(taskId));
    expect((await aliceA.get(taskId)).status).toBe('input_required');
    await aliceB.update(taskId, answer);
    const done = await until(
      () => aliceB.get(taskId),
      (t) => t.status === 'completed',
    );
    expect(done.result).toMatchObject({ content: [{ text: 'Hello Ada, from A' }] });
  });

  it('a cancel whose message the owner missed is caught from the flag on its next heartbeat', async () => {
    const prefix = freshPrefix();
    const a = await node('A', prefix);
    const aliceA = await as('alice', a.url);
    const taskId = await aliceA.startTask('held');
    await until(
      () => a.signals.length,
      (n) => n === 1,
    );
    // The flag a cancelling node sets, with no message on the channel (as if sent during a reconnect).
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    expect(await raw.hset(`${prefix}task:${taskId}`, 'cancel', '1')).toBe(1);
    await until(
      () => a.signals[0]!.aborted,
      (aborted) => aborted,
      LEASE_MS * 2,
    );
    expect((await aliceA.get(taskId)).status).toBe('cancelled');
  });

  it('a cancel that reached the store while the task finished on A: A answers cancelled too, as B does', async () => {
    const prefix = freshPrefix();
    // Heartbeats 20 s apart: the flag is not read before the task finishes.
    const a = await node('A', prefix, { leaseMs: 60_000 });
    const b = await node('B', prefix, { leaseMs: 60_000 });
    const aliceA = await as('alice', a.url);
    const aliceB = await as('alice', b.url);
    const taskId = await aliceA.startTask('gated');
    await until(
      () => a.signals.length,
      (n) => n === 1,
    );
    // What B's tasks/cancel writes, its message to A still on the way (or lost): the store holds the
    // task as cancelled; then the handler on A returns.
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    const override = JSON.stringify({ status: 'cancelled', lastUpdatedAt: Date.now() });
    await raw.hset(`${prefix}task:${taskId}`, 'status', 'cancelled', 'override', override, 'cancel', '1');
    a.release();
    expect((await aliceB.get(taskId)).status).toBe('cancelled');
    // A's write of the completion is refused by the store; A adopts the cancellation it reports.
    const onA = await until(
      () => aliceA.get(taskId),
      (t) => t.status !== 'working',
    );
    await until(
      () => aliceA.get(taskId),
      (t) => t.status === 'cancelled',
      3000,
    );
    expect(['completed', 'cancelled']).toContain(onA.status);
    const final = await aliceA.get(taskId);
    expect(final.result).toBeUndefined();
    expect(await raw.hget(`${prefix}task:${taskId}`, 'status')).toBe('cancelled');
  });

  it('the record holds the owner, the node and a TTL, and a result too large to share fails the task', async () => {
    const prefix = freshPrefix();
    const server = createMcpServer({
      logLevel: 'silent',
      state: redisState({ url: redis.url, prefix, leaseMs: LEASE_MS, maxRecordBytes: 4096 }),
      tasks: { ttlMs: 60_000 },
    });
    cleanups.push(() => server.close());
    server.tools.register({ name: 'big', task: 'optional', handler: () => 'x'.repeat(10_000) });
    server.tools.register({ name: 'small', task: 'optional', handler: () => 'ok' });
    const big = await server.tasks!.begin({ tool: server.tools.get('big')!, args: {}, execute: {} });
    const small = await server.tasks!.begin({ tool: server.tools.get('small')!, args: {}, execute: {} });
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    const failed = await until(
      () => raw.hgetall(`${prefix}task:${big.taskId}`),
      (h) => h.status === 'failed',
    );
    expect(JSON.parse(failed.doc!).error).toMatchObject({ code: -32016, data: { maxResultBytes: 4096 } });
    expect(JSON.parse(failed.owner!)).toBe(null);
    expect(failed.node).toMatch(/^[0-9a-f-]{36}$/);
    const ttl = await raw.pttl(`${prefix}task:${big.taskId}`);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await until(
      () => raw.hget(`${prefix}task:${small.taskId}`, 'status'),
      (s) => s === 'completed',
    );
    expect(await raw.pttl(`${prefix}lease:${failed.node}`)).toBeGreaterThan(0);
  });
});

describe('completion jobs across nodes', () => {
  let model: ModelServer;
  beforeAll(async () => {
    model = await createModelServer();
  });
  afterAll(async () => {
    await model.close();
  });

  const rest = (url: string, who: keyof typeof KEYS, init: RequestInit = {}) =>
    fetch(url, { ...init, headers: { 'x-api-key': KEYS[who], ...(init.headers as Record<string, string>) } });
  const body = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      model: { provider: 'openai', model: 'm', baseUrl: `${model.url}/v1` },
      messages: [{ role: 'user', content: 'hi' }],
      ...extra,
    });

  it('a job started on A is polled and cancelled on B, which aborts the model request on A', async () => {
    const prefix = freshPrefix();
    const a = await node('A', prefix, { model });
    const b = await node('B', prefix, { model });
    // A slow stream: about 10 s of text, one character every 50 ms.
    model.enqueue({ text: 'x'.repeat(200), chunkDelayMs: 50 });
    const seen = model.requests.length;
    const started = await rest(`${a.url}/completions/stream`, 'alice', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: body(),
    });
    expect(started.status).toBe(200);
    const id = started.headers.get('x-completion-id')!;
    const reading = started.text().catch(() => '');

    const polled = await rest(`${b.url}/completions/${id}`, 'alice');
    expect(polled.status).toBe(200);
    expect(await polled.json()).toMatchObject({ id, status: 'running', model: { provider: 'openai' } });
    // Another caller, on either node: not found, and not cancellable.
    expect((await rest(`${b.url}/completions/${id}`, 'bob')).status).toBe(404);
    expect((await rest(`${a.url}/completions/${id}`, 'bob')).status).toBe(404);
    expect((await rest(`${b.url}/completions/${id}`, 'bob', { method: 'DELETE' })).status).toBe(404);

    const cancelled = await rest(`${b.url}/completions/${id}`, 'alice', { method: 'DELETE' });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ id, status: 'cancelled', stopReason: 'cancelled' });
    // The model request running on A is aborted, and A reports the job cancelled.
    await until(
      () => model.requests[seen]?.aborted,
      (aborted) => aborted === true,
      LEASE_MS,
    );
    expect(a.server.completions.get(id)?.status).toBe('cancelled');
    await reading;
  });

  it('a cancel that reached the store while the job finished on A: A answers cancelled too', async () => {
    const prefix = freshPrefix();
    // Heartbeats 20 s apart: the flag is not read before the job finishes.
    const a = await node('A', prefix, { model, leaseMs: 60_000 });
    const b = await node('B', prefix, { model, leaseMs: 60_000 });
    model.enqueue({ text: 'x'.repeat(10), chunkDelayMs: 30 });
    const started = await rest(`${a.url}/completions/stream`, 'alice', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: body(),
    });
    const id = started.headers.get('x-completion-id')!;
    // What B's DELETE writes, its message to A still on the way (or lost).
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    const override = JSON.stringify({
      status: 'cancelled',
      stopReason: 'cancelled',
      finishedAt: new Date().toISOString(),
      error: { code: 'CANCELLED', message: 'The completion was cancelled' },
    });
    await raw.hset(`${prefix}job:${id}`, 'status', 'cancelled', 'override', override, 'cancel', '1');
    await started.text();
    expect(await (await rest(`${b.url}/completions/${id}`, 'alice')).json()).toMatchObject({
      status: 'cancelled',
    });
    await until(
      () => a.server.completions.get(id)?.status,
      (status) => status === 'cancelled',
      3000,
    );
    expect(await (await rest(`${a.url}/completions/${id}`, 'alice')).json()).toMatchObject({
      status: 'cancelled',
      stopReason: 'cancelled',
    });
  });

  it('a job that finished on A is read whole on B', async () => {
    const prefix = freshPrefix();
    const a = await node('A', prefix, { model });
    const b = await node('B', prefix, { model });
    model.enqueue({ text: 'hello from the model' });
    const ran = await rest(`${a.url}/completions`, 'alice', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(),
    });
    const job = await ran.json();
    expect(job.status).toBe('succeeded');
    const read = await until(
      async () => (await rest(`${b.url}/completions/${job.id}`, 'alice')).json(),
      (j) => j.status === 'succeeded',
    );
    expect(read).toMatchObject({ id: job.id, output: 'hello from the model', usage: job.usage });
    expect(read.steps).toHaveLength(1);
  });
});

describe('work whose node is gone', () => {
  it('reads as failed on another node once the owner closed', async () => {
    const prefix = freshPrefix();
    const model = await createModelServer();
    cleanups.push(() => model.close());
    const a = await node('A', prefix, { model });
    const b = await node('B', prefix);
    const aliceA = await as('alice', a.url);
    const aliceB = await as('alice', b.url);
    const taskId = await aliceA.startTask('held');
    model.enqueue({ text: 'x'.repeat(200), chunkDelayMs: 50 });
    const started = await fetch(`${a.url}/completions/stream`, {
      method: 'POST',
      headers: { 'x-api-key': KEYS.alice, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        model: { provider: 'openai', model: 'm', baseUrl: `${model.url}/v1` },
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    const jobId = started.headers.get('x-completion-id')!;
    void started.text().catch(() => '');
    expect((await aliceB.get(taskId)).status).toBe('working');

    await a.close();
    const failed = await aliceB.get(taskId);
    expect(failed).toMatchObject({
      status: 'failed',
      error: { code: -32019, message: expect.stringMatching(/stopped before it finished/) },
    });
    const job = await (
      await fetch(`${b.url}/completions/${jobId}`, { headers: { 'x-api-key': KEYS.alice } })
    ).json();
    expect(job).toMatchObject({
      status: 'failed',
      error: { code: 'UNAVAILABLE', message: expect.stringMatching(/stopped before it finished/) },
    });
  });

  it('reads as failed on another node within the lease once the owner is killed with SIGKILL', async () => {
    const prefix = freshPrefix();
    const child: ChildProcess = spawn(
      process.execPath,
      [bundle, redis.url, prefix, String(LEASE_MS), KEYS.alice],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const lines: string[] = [];
    child.stdout!.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
    const listening = await until(
      () => lines.find((line) => line.startsWith('listening ')),
      (line) => line !== undefined,
      15_000,
    );
    const b = await node('B', prefix);
    const aliceChild = await as('alice', listening!.slice('listening '.length));
    const aliceB = await as('alice', b.url);
    const taskId = await aliceChild.startTask('held');
    await until(
      () => lines.includes('started'),
      (yes) => yes,
    );
    expect((await aliceB.get(taskId)).status).toBe('working');

    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    const failed = await until(
      () => aliceB.get(taskId),
      (t) => t.status === 'failed',
      LEASE_MS * 3,
    );
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS * 2);
    expect(failed.error).toMatchObject({ code: -32019, message: expect.stringMatching(/no heartbeat/) });
    // It stays failed: the record was ended, not just read as failed.
    expect((await aliceB.get(taskId)).status).toBe('failed');
  });
});

describe('while Redis is down', () => {
  it('refuses what needs it with a retryable error, loses nothing acknowledged, and recovers by itself', async () => {
    const prefix = freshPrefix();
    const a = await node('A', prefix);
    const b = await node('B', prefix);
    const aliceA = await as('alice', a.url);
    const aliceB = await as('alice', b.url);
    const gated = await aliceA.startTask('gated');
    const held = await aliceA.startTask('held');
    await until(
      () => a.signals.length,
      (n) => n === 2,
    );

    await stopRedis();
    // B cannot reach A's task: -32019 with a retry hint, and the REST door says 503 with Retry-After.
    await expect(aliceB.get(gated)).rejects.toMatchObject({ code: -32019, data: { retryAfterSeconds: 1 } });
    const job = await fetch(`${b.url}/completions/some-job`, { headers: { 'x-api-key': KEYS.alice } });
    expect(job.status).toBe(503);
    expect(job.headers.get('retry-after')).toBe('1');
    const problem = await job.text();
    expect(problem).toMatch(/unavailable; try again later/);
    expect(problem).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|at /);
    // A new task is refused rather than acknowledged unshared.
    await expect(aliceA.startTask('gated')).rejects.toMatchObject({ code: -32019 });
    // The node that runs the task still answers for it, and it finishes while Redis is down.
    expect((await aliceA.get(gated)).status).toBe('working');
    a.release();
    await until(
      async () => (await aliceA.get(gated)).status,
      (s) => s === 'completed',
    );

    // Redis comes back empty (no persistence): the owner writes what it holds again.
    await startRedisAgain();
    const done = await until(
      () => aliceB.get(gated).catch((error): Record<string, any> => ({ status: `error ${error.code}` })),
      (t) => t.status === 'completed',
      10_000,
    );
    expect(done.result.content[0].text).toBe('gated on A');
    // The task that was running is still found and cancellable from B, which stops it on A.
    await until(
      () => aliceB.get(held).catch((error) => ({ status: `error ${error.code}` })),
      (t) => t.status === 'working',
    );
    await aliceB.cancel(held);
    await until(
      () => a.signals[1]!.aborted,
      (aborted) => aborted,
      LEASE_MS * 2,
    );
    // New tasks start again.
    const again = await aliceA.startTask('held');
    expect((await aliceB.get(again)).status).toBe('working');
  });
});
