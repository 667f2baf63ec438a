import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  type AuthInfo,
  acceptedContent,
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  inputRequired,
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
} from '@modelcontextprotocol/server';
import {
  createMcpServer,
  type McpKitServer,
  runAsTask,
  TASKS_EXTENSION_ID,
  type TaskForgetReason,
  type TaskOptions,
  type TaskSnapshot,
  type TaskStatus,
} from 'mcpkit';
import { listen } from 'mcpkit/node';
import { jsonRpcPost, readJsonRpc } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const MODERN = '2026-07-28';
const WITH_TASKS = { extensions: { [TASKS_EXTENSION_ID]: {} } };

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

let nextId = 1;

/** One 2026-07-28 request, with the envelope and routing headers the spec asks for. */
async function call(
  server: McpKitServer,
  method: string,
  params: Record<string, unknown> = {},
  options: { capabilities?: object; headers?: Record<string, string>; authInfo?: AuthInfo } = {},
): Promise<any> {
  const name = params.name ?? params.uri ?? params.taskId;
  const body = {
    jsonrpc: '2.0',
    id: nextId++,
    method,
    params: {
      ...params,
      _meta: {
        [PROTOCOL_VERSION_META_KEY]: MODERN,
        [CLIENT_INFO_META_KEY]: { name: 'tasks-test', version: '1' },
        [CLIENT_CAPABILITIES_META_KEY]: options.capabilities ?? WITH_TASKS,
      },
    },
  };
  const init = jsonRpcPost(body, {
    'mcp-protocol-version': MODERN,
    'mcp-method': method,
    ...(typeof name === 'string' && { 'mcp-name': name }),
    ...options.headers,
  });
  const request = new Request('http://localhost/mcp', {
    ...init,
    headers: { ...init.headers, host: 'localhost' },
  });
  return readJsonRpc(await server.fetch(request, options.authInfo ? { authInfo: options.authInfo } : {}));
}

/** Resolves once the task reaches `status` (from the task runtime's own events: no polling). */
function reach(server: McpKitServer, taskId: string, status: TaskStatus): Promise<TaskSnapshot> {
  const now = server.tasks!.get(taskId);
  if (now?.status === status) return Promise.resolve(now);
  return new Promise((resolve) => {
    const listener = (task: TaskSnapshot) => {
      if (task.taskId !== taskId || task.status !== status) return;
      server.tasks!.off('status', listener);
      resolve(task);
    };
    server.tasks!.on('status', listener);
  });
}

const servers: McpKitServer[] = [];
function taskServer(options: Parameters<typeof createMcpServer>[0] = {}): McpKitServer {
  const server = createMcpServer({ logLevel: 'silent', ...options });
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('tasks: negotiation', () => {
  it('advertises the extension on the 2026-07-28 wire only', async () => {
    const server = taskServer();
    const discover = await call(server, 'server/discover');
    expect(discover.result.capabilities.extensions).toEqual({ [TASKS_EXTENSION_ID]: {} });
    expect(discover.result.capabilities.tasks).toBeUndefined();

    const init = await readJsonRpc(
      await server.fetch(
        new Request('http://localhost/mcp', {
          ...jsonRpcPost({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-11-25',
              capabilities: {},
              clientInfo: { name: 't', version: '1' },
            },
          }),
        }),
      ),
    );
    expect(init.result.capabilities.extensions).toBeUndefined();
  });

  it('is off with tasks: false, and then required task tools refuse every client', async () => {
    const server = taskServer({ tasks: false });
    server.tools.register({ name: 'job', task: 'required', handler: () => 'done' });
    const discover = await call(server, 'server/discover');
    expect(discover.result.capabilities.extensions).toBeUndefined();
    expect(server.tasks).toBeUndefined();
    const refused = await call(server, 'tools/call', { name: 'job', arguments: {} });
    expect(refused.error.code).toBe(-32021);
    expect((await call(server, 'tasks/get', { taskId: 'x' })).error.code).toBe(-32601);
  });

  it('gates tasks/* and required task tools on the extension, with requiredCapabilities', async () => {
    const server = taskServer();
    server.tools.register({ name: 'job', task: 'required', handler: () => 'done' });
    server.tools.register({ name: 'maybe', task: 'optional', handler: () => 'inline' });
    const plain = { capabilities: {} };

    const refused = await call(server, 'tools/call', { name: 'job', arguments: {} }, plain);
    expect(refused.error.code).toBe(-32021);
    expect(refused.error.data.requiredCapabilities).toEqual(WITH_TASKS);

    for (const method of ['tasks/get', 'tasks/update', 'tasks/cancel']) {
      const response = await call(server, method, { taskId: 'gate', inputResponses: {} }, plain);
      expect(response.error.code, method).toBe(-32021);
    }

    // An optional task tool answers synchronously when the client cannot poll.
    const inline = await call(server, 'tools/call', { name: 'maybe', arguments: {} }, plain);
    expect(inline.result).toMatchObject({
      resultType: 'complete',
      content: [{ type: 'text', text: 'inline' }],
    });
    expect(inline.result.taskId).toBeUndefined();
  });

  it('answers the removed tasks/result and tasks/list with -32601', async () => {
    const server = taskServer();
    expect((await call(server, 'tasks/result', { taskId: 'x' })).error.code).toBe(-32601);
    expect((await call(server, 'tasks/list')).error.code).toBe(-32601);
  });

  it('rejects an Mcp-Name header that disagrees with params.taskId (-32020)', async () => {
    const server = taskServer();
    const response = await call(server, 'tasks/get', { taskId: 'a' }, { headers: { 'mcp-name': 'b' } });
    expect(response.error.code).toBe(-32020);
  });
});

describe('tasks: lifecycle', () => {
  it('creates a task, reports it working, then inlines the result', async () => {
    const server = taskServer({ tasks: { pollIntervalMs: 250, ttlMs: 60_000 } });
    const release = deferred<string>();
    server.tools.register({
      name: 'slow',
      inputSchema: { label: z.string() },
      task: 'optional',
      handler: async ({ label }) => `${label}: ${await release.promise}`,
    });

    const created = await call(server, 'tools/call', { name: 'slow', arguments: { label: 'x' } });
    const task = created.result;
    expect(task).toMatchObject({ resultType: 'task', status: 'working', ttlMs: 60_000, pollIntervalMs: 250 });
    expect(task.taskId).toEqual(expect.any(String));
    expect(Date.parse(task.createdAt)).not.toBeNaN();
    expect(Date.parse(task.lastUpdatedAt)).not.toBeNaN();
    for (const key of ['task', 'result', 'error', 'inputRequests', 'requestState', 'ttl', 'pollInterval'])
      expect(task).not.toHaveProperty(key);

    const working = await call(server, 'tasks/get', { taskId: task.taskId });
    expect(working.result).toMatchObject({ resultType: 'complete', taskId: task.taskId, status: 'working' });
    expect(working.result.result).toBeUndefined();

    const done = reach(server, task.taskId, 'completed');
    release.resolve('ready');
    await done;
    const completed = await call(server, 'tasks/get', { taskId: task.taskId });
    expect(completed.result).toMatchObject({
      status: 'completed',
      result: { content: [{ type: 'text', text: 'x: ready' }] },
    });
    expect(completed.result.error).toBeUndefined();
  });

  it('keeps tool errors as completed + isError, and protocol errors as failed + error', async () => {
    const server = taskServer();
    server.tools.register({
      name: 'tool_error',
      task: 'optional',
      handler: () => {
        throw new Error('nope at /srv/app/secret.ts:1');
      },
    });
    server.tools.register({
      name: 'protocol_error',
      task: 'optional',
      handler: () => {
        throw new ProtocolError(ProtocolErrorCode.InternalError, 'exploded');
      },
    });

    const a = (await call(server, 'tools/call', { name: 'tool_error', arguments: {} })).result.taskId;
    await reach(server, a, 'completed');
    const toolError = (await call(server, 'tasks/get', { taskId: a })).result;
    expect(toolError.result.isError).toBe(true);
    expect(JSON.stringify(toolError)).not.toContain('/srv/app');

    const b = (await call(server, 'tools/call', { name: 'protocol_error', arguments: {} })).result.taskId;
    await reach(server, b, 'failed');
    const failed = (await call(server, 'tasks/get', { taskId: b })).result;
    expect(failed).toMatchObject({ status: 'failed', error: { code: -32603, message: 'exploded' } });
    expect(failed.result).toBeUndefined();
  });

  it('tasks/cancel aborts the handler, settles as cancelled, and is idempotent', async () => {
    const server = taskServer();
    const aborted = deferred<unknown>();
    server.tools.register({
      name: 'forever',
      task: 'optional',
      handler: (_args, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.resolve(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
        }),
    });
    const { taskId } = (await call(server, 'tools/call', { name: 'forever', arguments: {} })).result;

    const ack = await call(server, 'tasks/cancel', { taskId });
    expect(ack.result).toEqual(expect.objectContaining({ resultType: 'complete' }));
    for (const key of ['taskId', 'status', 'result', 'error', 'inputRequests'])
      expect(ack.result).not.toHaveProperty(key);
    await aborted.promise;
    expect((await call(server, 'tasks/get', { taskId })).result.status).toBe('cancelled');

    const again = await call(server, 'tasks/cancel', { taskId });
    expect(again.result.resultType).toBe('complete');
    expect((await call(server, 'tasks/get', { taskId })).result.status).toBe('cancelled');
  });

  it("answers -32602 for an unknown task, and for another caller's task", async () => {
    const server = taskServer();
    const hold = deferred();
    server.tools.register({ name: 'mine', task: 'optional', handler: () => hold.promise });
    expect((await call(server, 'tasks/get', { taskId: 'nope' })).error.code).toBe(-32602);
    expect((await call(server, 'tasks/cancel', { taskId: 'nope' })).error.code).toBe(-32602);
    expect((await call(server, 'tasks/update', { taskId: 'nope', inputResponses: {} })).error.code).toBe(
      -32602,
    );

    const alice: AuthInfo = { token: 'a', clientId: 'alice', scopes: [] };
    const bob: AuthInfo = { token: 'b', clientId: 'bob', scopes: [] };
    const { taskId } = (
      await call(server, 'tools/call', { name: 'mine', arguments: {} }, { authInfo: alice })
    ).result;
    expect(server.tasks!.get(taskId)?.owner).toBe('alice');
    expect((await call(server, 'tasks/get', { taskId }, { authInfo: alice })).result.status).toBe('working');
    expect((await call(server, 'tasks/get', { taskId }, { authInfo: bob })).error.code).toBe(-32602);
    expect((await call(server, 'tasks/cancel', { taskId }, { authInfo: bob })).error.code).toBe(-32602);
    expect((await call(server, 'tasks/get', { taskId })).error.code).toBe(-32602);
    hold.resolve();
  });
});

describe('tasks: input requests', () => {
  const ask = (message: string) =>
    inputRequired.elicit({
      message,
      requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    });

  it('parks in input_required, takes partial answers, and resumes once all are in', async () => {
    const server = taskServer();
    let runs = 0;
    server.tools.register({
      name: 'two_questions',
      task: 'optional',
      handler: (_args, ctx) => {
        runs++;
        const responses = ctx.mcp?.mcpReq.inputResponses;
        const first = acceptedContent(responses, 'first');
        const second = acceptedContent(responses, 'second');
        if (!first || !second)
          return inputRequired({ inputRequests: { first: ask('1?'), second: ask('2?') } });
        return `Got ${String(first.name)} and ${String(second.name)}`;
      },
    });
    const { taskId } = (await call(server, 'tools/call', { name: 'two_questions', arguments: {} })).result;
    await reach(server, taskId, 'input_required');
    const parked = (await call(server, 'tasks/get', { taskId })).result;
    expect(Object.keys(parked.inputRequests)).toEqual(['first', 'second']);
    expect(parked.inputRequests.first.method).toBe('elicitation/create');

    const accept = (name: string) => ({ action: 'accept', content: { name } });
    const partial = await call(server, 'tasks/update', {
      taskId,
      inputResponses: { first: accept('A'), stray: {} },
    });
    expect(partial.result).toEqual(expect.objectContaining({ resultType: 'complete' }));
    expect(partial.result.status).toBeUndefined();
    const still = (await call(server, 'tasks/get', { taskId })).result;
    expect(still.status).toBe('input_required');
    expect(Object.keys(still.inputRequests)).toEqual(['second']);

    const done = reach(server, taskId, 'completed');
    await call(server, 'tasks/update', { taskId, inputResponses: { second: accept('B') } });
    await done;
    const completed = (await call(server, 'tasks/get', { taskId })).result;
    expect(completed.result.content[0].text).toBe('Got A and B');
    expect(completed.inputRequests).toBeUndefined();
    expect(runs).toBe(2);
  });

  it('runAsTask: multi-round-trip input in the request, then a task for the rest', async () => {
    const server = taskServer();
    server.tools.register({
      name: 'ask_then_work',
      task: { support: 'optional', start: 'handler' },
      handler: (_args, ctx) => {
        const answer = acceptedContent(ctx.mcp?.mcpReq.inputResponses, 'user_name');
        if (typeof answer?.name !== 'string')
          return inputRequired({ inputRequests: { user_name: ask('Name?') } });
        const name = answer.name;
        return runAsTask(async () => `Hello, ${name}!`);
      },
    });
    // Asking for elicitation needs the client to declare it, beside the tasks extension.
    const caps = { capabilities: { elicitation: {}, ...WITH_TASKS } };
    const round1 = (await call(server, 'tools/call', { name: 'ask_then_work', arguments: {} }, caps)).result;
    expect(round1.resultType).toBe('input_required');
    expect(round1.taskId).toBeUndefined();

    const inputResponses = { user_name: { action: 'accept', content: { name: 'Alice' } } };
    const round2 = (
      await call(server, 'tools/call', { name: 'ask_then_work', arguments: {}, inputResponses }, caps)
    ).result;
    expect(round2.resultType).toBe('task');
    expect(round2).not.toHaveProperty('requestState');
    await reach(server, round2.taskId, 'completed');
    expect((await call(server, 'tasks/get', { taskId: round2.taskId })).result.result.content[0].text).toBe(
      'Hello, Alice!',
    );

    // Without the extension, the same work runs inline and answers synchronously.
    const inline = await call(
      server,
      'tools/call',
      { name: 'ask_then_work', arguments: {}, inputResponses },
      { capabilities: { elicitation: {} } },
    );
    expect(inline.result).toMatchObject({ resultType: 'complete', content: [{ text: 'Hello, Alice!' }] });
  });

  it('runAsTask work runs inline for code that calls the executor', async () => {
    const server = taskServer();
    server.tools.register({
      name: 'deferring',
      task: { support: 'optional', start: 'handler' },
      handler: () => runAsTask((_args, ctx) => `ran ${ctx.toolName} inline`),
    });
    const result = await server.executor.execute('deferring', {});
    expect(result.content).toEqual([{ type: 'text', text: 'ran deferring inline' }]);
  });
});

describe('tasks: bounds', () => {
  it('forgets tasks ttlMs after creation, and cancels one still running', async () => {
    let now = 1_000_000;
    const server = taskServer({ tasks: { ttlMs: 5_000, now: () => now } });
    const aborted = deferred();
    server.tools.register({
      name: 'long',
      task: 'optional',
      handler: (_args, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.resolve();
            reject(ctx.signal.reason);
          });
        }),
    });
    const { taskId } = (await call(server, 'tools/call', { name: 'long', arguments: {} })).result;
    now += 4_999;
    expect((await call(server, 'tasks/get', { taskId })).result.status).toBe('working');
    now += 1;
    expect((await call(server, 'tasks/get', { taskId })).error.code).toBe(-32602);
    await aborted.promise;
    expect(server.tasks!.size).toBe(0);
  });

  it('refuses new tasks while maxTasks are running instead of growing memory', async () => {
    const server = taskServer({ tasks: { maxTasks: 2 } });
    const hold = deferred();
    server.tools.register({ name: 'held', task: 'optional', handler: () => hold.promise });
    await call(server, 'tools/call', { name: 'held', arguments: {} });
    await call(server, 'tools/call', { name: 'held', arguments: {} });
    const third = await call(server, 'tools/call', { name: 'held', arguments: {} });
    expect(third.error.code).toBe(-32005);
    expect(third.error.message).toMatch(/Too many tasks/);
    hold.resolve();
  });

  it('validates its options', () => {
    expect(() => createMcpServer({ logLevel: 'silent', tasks: { maxTasks: 0 } })).toThrow(/maxTasks/);
    expect(() => createMcpServer({ logLevel: 'silent', tasks: { maxRunningPerOwner: 0 } })).toThrow(
      /tasks\.maxRunningPerOwner must be a positive integer/,
    );
    expect(() => createMcpServer({ logLevel: 'silent', tasks: { maxResultBytes: 1.5 } })).toThrow(
      /tasks\.maxResultBytes must be a positive integer/,
    );
    const server = taskServer();
    expect(() => server.tools.register({ name: 'x', task: 'sometimes' as never, handler: () => '' })).toThrow(
      /task must be/,
    );
  });
});

/** Whatever `fn` throws (the test fails if it throws nothing). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Resolves once the task is in a terminal status. */
function settled(server: McpKitServer, taskId: string): Promise<TaskSnapshot> {
  return Promise.race([
    reach(server, taskId, 'completed'),
    reach(server, taskId, 'failed'),
    reach(server, taskId, 'cancelled'),
  ]);
}

/**
 * A task table driven directly (no wire), on an injected clock. `held` runs until `release()` (or
 * its task is cancelled), `quick` finishes at once, `sized` answers `chars` characters of text, and
 * `ask` waits for input.
 */
function taskTable(options: TaskOptions = {}) {
  let now = 1_000_000;
  const server = taskServer({ tasks: { now: () => now, ...options } });
  const gate = deferred();
  server.tools.register({
    name: 'held',
    task: 'optional',
    handler: (_args, ctx) =>
      new Promise((resolve, reject) => {
        void gate.promise.then(() => resolve('released'));
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
      }),
  });
  server.tools.register({ name: 'quick', task: 'optional', handler: () => 'done' });
  server.tools.register({
    name: 'sized',
    task: 'optional',
    inputSchema: { chars: z.number().int().min(0) },
    handler: ({ chars }) => 'x'.repeat(chars),
  });
  server.tools.register({
    name: 'ask',
    task: 'optional',
    handler: () =>
      inputRequired({
        inputRequests: { name: inputRequired.elicit({ message: '?', requestedSchema: {} as never }) },
      }),
  });
  const tasks = server.tasks!;
  const start = (tool: string, owner?: string, args: Record<string, unknown> = {}) =>
    tasks.start({ tool: server.tools.get(tool)!, args, execute: {}, ...(owner !== undefined && { owner }) });
  const forgotten: Array<[string, TaskForgetReason]> = [];
  tasks.on('expired', (taskId, reason) => forgotten.push([taskId, reason]));
  return {
    server,
    tasks,
    start,
    /** Starts a task and waits until it settles. */
    finish: async (tool: string, owner?: string, args?: Record<string, unknown>) =>
      settled(server, start(tool, owner, args).taskId),
    release: () => gate.resolve(),
    advance: (ms: number) => {
      now += ms;
    },
    forgotten,
  };
}

describe('tasks: the task table', () => {
  it('defaults: 1000 tasks, a tenth of them running per owner, 64 MiB of results', () => {
    const { tasks } = taskTable();
    expect(tasks.maxTasks).toBe(1000);
    expect(tasks.maxRunningPerOwner).toBe(100);
    expect(tasks.maxResultBytes).toBe(64 * 1024 * 1024);
    expect(taskTable({ maxTasks: 25 }).tasks.maxRunningPerOwner).toBe(3);
  });

  it('an owner at its share gets BUSY while other owners still start tasks', async () => {
    const { server, tasks, start, release } = taskTable({ maxTasks: 10, maxRunningPerOwner: 2 });
    const started = [start('held', 'alice'), start('held', 'alice')];
    expect(thrownBy(() => start('held', 'alice'))).toMatchObject({
      code: 'BUSY',
      message: expect.stringMatching(/one caller runs at most 2 at once/),
    });
    started.push(start('held', 'bob'), start('held', 'bob'));
    // Tasks started without an owner (local code) share one owner, `local`.
    started.push(start('held'), start('held'));
    expect(thrownBy(() => start('quick'))).toMatchObject({ code: 'BUSY' });
    expect(tasks.running).toBe(6);
    // A task waiting for input is still running: it keeps its place in the share.
    const asking = [start('ask', 'carol'), start('ask', 'carol')];
    await Promise.all(asking.map((t) => reach(server, t.taskId, 'input_required')));
    expect(thrownBy(() => start('quick', 'carol'))).toMatchObject({ code: 'BUSY' });

    // Finished tasks use no share.
    release();
    await Promise.all(started.map((t) => reach(server, t.taskId, 'completed')));
    expect(tasks.running).toBe(2);
    expect(start('held', 'alice').status).toBe('working');
    expect(start('held', 'alice').status).toBe('working');
  });

  it('refuses a new task only while maxTasks are running, and never forgets a running one', async () => {
    const { server, tasks, start, finish, release, forgotten } = taskTable({
      maxTasks: 3,
      maxRunningPerOwner: 3,
    });
    const h1 = start('held', 'a');
    const q1 = await finish('quick', 'b');
    const q2 = await finish('quick', 'b');
    expect(tasks.size).toBe(3);
    const h2 = start('held', 'c');
    const h3 = start('held', 'c');
    expect(forgotten).toEqual([
      [q1.taskId, 'evicted'],
      [q2.taskId, 'evicted'],
    ]);
    expect(thrownBy(() => start('quick', 'd'))).toMatchObject({
      code: 'BUSY',
      message: expect.stringMatching(/the server runs at most 3 at once/),
    });
    expect(tasks.list().map((t) => [t.taskId, t.status])).toEqual([
      [h1.taskId, 'working'],
      [h2.taskId, 'working'],
      [h3.taskId, 'working'],
    ]);
    release();
    await Promise.all([h1, h2, h3].map((t) => reach(server, t.taskId, 'completed')));
    expect(start('quick', 'd').status).toBe('working');
    expect(tasks.size).toBe(3);
  });

  it('1000 finished tasks do not block the 1001st; the first to finish is forgotten', async () => {
    const { tasks, start, finish, forgotten } = taskTable();
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) ids.push((await finish('quick', 'alice')).taskId);
    expect(tasks.size).toBe(1000);
    expect(tasks.running).toBe(0);
    const next = start('held', 'alice');
    expect(next.status).toBe('working');
    expect(tasks.size).toBe(1000);
    expect(forgotten).toEqual([[ids[0], 'evicted']]);
    expect(tasks.get(ids[0]!)).toBeUndefined();
    expect(tasks.get(ids[1]!)?.status).toBe('completed');
    expect(start('quick', 'bob').status).toBe('working');
    expect(tasks.get(ids[1]!)).toBeUndefined();
  });

  it('forgets the task that finished first, not the one created first', async () => {
    const { server, tasks, start, finish, release, forgotten } = taskTable({
      maxTasks: 3,
      maxRunningPerOwner: 3,
    });
    const early = start('held', 'a');
    const q1 = await finish('quick', 'a');
    release();
    await reach(server, early.taskId, 'completed');
    await finish('quick', 'a');
    start('quick', 'a');
    expect(forgotten).toEqual([[q1.taskId, 'evicted']]);
    expect(tasks.get(early.taskId)?.status).toBe('completed');
  });

  it('holds finished results within maxResultBytes, measured as JSON length, first finished first out', async () => {
    // What a result of n characters measures: the length of its JSON text.
    const probe = taskTable();
    const measure = async (chars: number) => {
      const task = await probe.finish('sized', undefined, { chars });
      return JSON.stringify(task.result).length;
    };
    const unit = await measure(1000);
    expect(await measure(1100)).toBe(unit + 100);
    expect(probe.tasks.resultBytes).toBe(2 * unit + 100);

    const budget = 3 * unit;
    const { tasks, finish, forgotten } = taskTable({ maxResultBytes: budget });
    const [a, b, c] = [
      await finish('sized', 'x', { chars: 1000 }),
      await finish('sized', 'x', { chars: 1000 }),
      await finish('sized', 'x', { chars: 1000 }),
    ];
    expect(tasks.resultBytes).toBe(budget); // exactly at the budget: all kept
    expect(forgotten).toEqual([]);
    const d = await finish('sized', 'x', { chars: 1000 });
    expect(forgotten).toEqual([[a!.taskId, 'evicted']]);
    expect(tasks.resultBytes).toBe(budget);
    expect(tasks.get(a!.taskId)).toBeUndefined();
    // One 100 characters longer pushes out two.
    const e = await finish('sized', 'x', { chars: 1100 });
    expect(forgotten.slice(1)).toEqual([
      [b!.taskId, 'evicted'],
      [c!.taskId, 'evicted'],
    ]);
    expect(tasks.list().map((t) => t.taskId)).toEqual([d.taskId, e.taskId]);
    expect(tasks.resultBytes).toBe(2 * unit + 100);

    // A result larger than the whole budget is not kept: the task fails with an error saying so,
    // which is all it holds (and is small enough here that nothing else goes).
    const big = await finish('sized', 'x', { chars: budget });
    const bigSize = budget + (unit - 1000);
    expect(big.status).toBe('failed');
    expect(big.result).toBeUndefined();
    expect(big.error).toEqual({
      code: -32016,
      message: `The task's result is too large to keep: about ${bigSize} bytes, over the server's limit of ${budget} bytes for task results`,
      data: { resultBytes: bigSize, maxResultBytes: budget },
    });
    expect(tasks.get(big.taskId)?.status).toBe('failed');
    expect(forgotten).toHaveLength(3);
    expect(tasks.resultBytes).toBe(2 * unit + 100 + JSON.stringify(big.error).length);
  });

  it('cancel and expiry free the owner share and the result bytes', async () => {
    const { tasks, start, finish, advance, forgotten } = taskTable({
      maxRunningPerOwner: 1,
      ttlMs: 5_000,
    });
    const a = start('held', 'alice');
    expect(thrownBy(() => start('held', 'alice'))).toMatchObject({ code: 'BUSY' });
    expect(tasks.cancel(a.taskId)).toBe(true);
    expect(tasks.get(a.taskId)?.status).toBe('cancelled');
    expect(tasks.running).toBe(0);
    const b = start('held', 'alice');
    const c = await finish('sized', 'bob', { chars: 50 });
    expect(tasks.resultBytes).toBe(JSON.stringify(c.result).length);

    advance(4_999);
    expect(tasks.get(b.taskId)?.status).toBe('working');
    advance(1);
    expect(tasks.get(b.taskId)).toBeUndefined();
    expect(forgotten).toEqual([
      [a.taskId, 'expired'],
      [b.taskId, 'expired'],
      [c.taskId, 'expired'],
    ]);
    expect(tasks.size).toBe(0);
    expect(tasks.running).toBe(0);
    expect(tasks.resultBytes).toBe(0);
    expect(start('held', 'alice').status).toBe('working');
  });
});

describe('tasks: the task table over HTTP, with an SDK client', () => {
  const KEYS = { alice: 'alice-key-0123456789abcdef', bob: 'bob-key-0123456789abcdefgh' };

  it("an owner's share, finished tasks making room, and a forgotten task answering as unknown", async () => {
    const server = taskServer({
      auth: {
        apiKeys: [
          { id: 'alice', roles: ['user'], key: KEYS.alice },
          { id: 'bob', roles: ['user'], key: KEYS.bob },
        ],
      },
      tasks: { maxTasks: 3, maxRunningPerOwner: 1 },
    });
    server.tools.register({
      name: 'held',
      task: 'optional',
      handler: (_args, ctx) =>
        new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        ),
    });
    server.tools.register({ name: 'quick', task: 'optional', handler: () => 'done' });
    const listening = await listen(server, { port: 0 });
    const clients: Client[] = [];
    try {
      const as = async (who: keyof typeof KEYS) => {
        const client = new Client(
          { name: `tasks-${who}`, version: '1' },
          { versionNegotiation: { mode: { pin: MODERN } }, capabilities: WITH_TASKS },
        );
        const transport = new StreamableHTTPClientTransport(new URL(`${listening.url}/mcp`), {
          requestInit: { headers: { 'x-api-key': KEYS[who] } },
        });
        await client.connect(transport);
        clients.push(client);
        // The SDK client (2.4.0) has no tasks support: it rejects a `tools/call` answered with
        // `resultType: "task"`. The CreateTaskResult is read off the wire, under the client.
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
            return created.pop()!.taskId as string;
          },
          get: (taskId: string) => client.request({ method: 'tasks/get', params: { taskId } }, anyResult),
          cancel: (taskId: string) =>
            client.request({ method: 'tasks/cancel', params: { taskId } }, anyResult),
        };
      };
      const alice = await as('alice');
      const bob = await as('bob');

      const aliceHeld = await alice.startTask('held');
      await expect(alice.startTask('held')).rejects.toMatchObject({
        code: -32005,
        message: expect.stringMatching(/one caller runs at most 1 at once/),
      });
      const q1 = await bob.startTask('quick');
      await reach(server, q1, 'completed');
      const q2 = await bob.startTask('quick');
      await reach(server, q2, 'completed');
      // The table is full (3), but only one task runs: the first to finish makes room.
      const q3 = await bob.startTask('quick');
      await reach(server, q3, 'completed');
      expect(server.tasks!.size).toBe(3);
      expect(await bob.get(q3)).toMatchObject({
        status: 'completed',
        result: { content: [{ text: 'done' }] },
      });

      const forgotten = await bob.get(q1).catch((error) => error);
      const unknown = await bob.get('never-was').catch((error) => error);
      expect(forgotten).toMatchObject({ code: -32602, message: `Unknown task: ${q1}` });
      expect(unknown).toMatchObject({ code: -32602, message: 'Unknown task: never-was' });
      expect(forgotten.constructor).toBe(unknown.constructor);
      expect(forgotten.data).toEqual(unknown.data);

      // Cancelling gives alice her share back.
      expect((await alice.get(aliceHeld)).status).toBe('working');
      await alice.cancel(aliceHeld);
      expect((await alice.get(aliceHeld)).status).toBe('cancelled');
      const again = await alice.startTask('held');
      expect((await alice.get(again)).status).toBe('working');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await listening.close();
    }
  });
});
