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
  type TaskSnapshot,
  type TaskStatus,
} from 'mcpkit';
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

  it('refuses new tasks past maxTasks instead of growing memory', async () => {
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
    const server = taskServer();
    expect(() => server.tools.register({ name: 'x', task: 'sometimes' as never, handler: () => '' })).toThrow(
      /task must be/,
    );
  });
});
