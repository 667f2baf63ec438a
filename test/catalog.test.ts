/**
 * The shared catalog: registration, validation, list caching, enable/disable, and list_changed
 * reaching every connected session.
 */
import { createMcpServer, McpKitError } from 'mcpkit';
import { connectClient, jsonRpcPost, readJsonRpc, request } from 'mcpkit/testing';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { deferred, fixtureServer } from './fixtures.js';

describe('tools', () => {
  it('computes each JSON Schema once and reuses the list until the catalog changes', () => {
    const server = fixtureServer();
    const first = server.tools.list();
    expect(server.tools.list()).toBe(first);
    server.tools.register({ name: 'later', handler: () => 'x' });
    const second = server.tools.list();
    expect(second).not.toBe(first);
    expect(second.map((t) => t.name)).toEqual(['add', 'echo', 'boom', 'later']);
    // the descriptor objects themselves are shared, not rebuilt
    expect(second[0]).toBe(first[0]);
  });

  it('describes zod and JSON Schema inputs and an output schema', () => {
    const server = fixtureServer();
    const [add, echo] = server.tools.list();
    expect(add).toMatchObject({
      name: 'add',
      inputSchema: {
        type: 'object',
        properties: { a: { type: 'number' }, b: { type: 'number' } },
        required: ['a', 'b'],
      },
      outputSchema: { type: 'object', properties: { sum: { type: 'number' } } },
    });
    expect(echo!.inputSchema).toEqual({
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
    });
  });

  it('refuses bad definitions with a TypeError naming the problem', () => {
    const server = createMcpServer({ logLevel: 'silent' });
    expect(() => server.tools.register({ name: 'bad name!', handler: () => '' })).toThrow(/tool name/);
    expect(() => server.tools.register({ name: 'x', handler: 'nope' as never })).toThrow(/handler/);
    expect(() =>
      server.tools.register({ name: 'y', inputSchema: { type: 'string' }, handler: () => '' }),
    ).toThrow(/must describe an object/);
    server.tools.register({ name: 'dup', handler: () => '' });
    expect(() => server.tools.register({ name: 'dup', handler: () => '' })).toThrow(McpKitError);
  });

  it('registers a zod object without converting it, and converts it in the background or at first listing', async () => {
    // A getter in the shape runs whenever zod (or its JSON Schema conversion) reads the field.
    let reads = 0;
    const shape = () => ({
      get city() {
        reads++;
        return z.string().describe('City name');
      },
    });
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register({ name: 'weather', inputSchema: z.object(shape()), handler: () => 'sunny' });
    expect(reads).toBe(0);
    // Nobody lists: a later turn of the event loop converts it anyway.
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(reads).toBeGreaterThan(0);
    expect(server.tools.list()[0]!.inputSchema).toEqual({
      type: 'object',
      properties: { city: { type: 'string', description: 'City name' } },
      required: ['city'],
    });

    // A listing before the background gets there converts on the spot.
    const listedFirst = createMcpServer({ logLevel: 'silent' });
    reads = 0;
    listedFirst.tools.register({ name: 'weather', inputSchema: z.object(shape()), handler: () => 'sunny' });
    expect(reads).toBe(0);
    expect(listedFirst.tools.list()[0]!.inputSchema).toMatchObject({ required: ['city'] });
    expect(reads).toBeGreaterThan(0);

    // A closed server stops converting.
    const closed = createMcpServer({ logLevel: 'silent' });
    reads = 0;
    closed.tools.register({ name: 'weather', inputSchema: z.object(shape()), handler: () => 'sunny' });
    await closed.close();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(reads).toBe(0);
    await server.close();
    await listedFirst.close();
  });

  it('still refuses a zod input schema that is not an object, at registration', () => {
    const server = createMcpServer({ logLevel: 'silent' });
    expect(() => server.tools.register({ name: 's', inputSchema: z.string(), handler: () => '' })).toThrow(
      /must describe an object/,
    );
    expect(() =>
      server.tools.register({
        name: 'u',
        inputSchema: z.union([z.object({ a: z.string() }), z.object({ b: z.string() })]),
        handler: () => '',
      }),
    ).toThrow(/must describe an object/);
    // An object with refinements or a pipe into an object is still known to be one.
    server.tools.register({
      name: 'refined',
      inputSchema: z.object({ a: z.number() }).refine((v) => v.a > 0),
      handler: () => '',
    });
    expect(server.tools.list()[0]!.inputSchema).toMatchObject({ type: 'object', required: ['a'] });
  });

  it('registers a tool without arguments declared as inputSchema: {}, lists and calls it like any zod shape', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    const seen: unknown[] = [];
    server.tools.register({
      name: 'now',
      description: 'The time, taking no arguments',
      inputSchema: {},
      handler: (args) => {
        seen.push(args);
        return 'noon';
      },
    });
    const { client, close } = await connectClient(server);
    const { tools } = await client.listTools();
    expect(tools[0]).toMatchObject({ name: 'now', inputSchema: { type: 'object', properties: {} } });
    for (const args of [{}, undefined, { surprise: 1 }]) {
      const result = await client.callTool({ name: 'now', ...(args && { arguments: args }) });
      expect(result.isError, JSON.stringify(args)).toBeFalsy();
      expect(result.content).toEqual([{ type: 'text', text: 'noon' }]);
    }
    // Like every zod shape: arguments it does not declare are dropped, not refused.
    expect(seen).toEqual([{}, {}, {}]);
    await close();

    const listed = await request(server, '/tools/now');
    expect(listed.status).toBe(200);
    expect((await listed.json()).inputSchema).toEqual({ type: 'object', properties: {} });
    for (const body of [{}, { arguments: {} }]) {
      const executed = await request(server, '/tools/now/execute', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(executed.status, JSON.stringify(body)).toBe(200);
      expect((await executed.json()).content).toEqual([{ type: 'text', text: 'noon' }]);
    }
    // Not an object: refused like any zod shape would.
    const array = await server.executor.execute('now', []);
    expect(array.isError).toBe(true);
    expect(seen).toHaveLength(5);
    await server.close();
  });

  it('keeps tools/list and the other tools working when one schema cannot be converted', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register({ name: 'good', inputSchema: { n: z.number() }, handler: ({ n }) => String(n) });
    server.tools.register({
      name: 'broken',
      inputSchema: z.object({
        get n(): z.ZodNumber {
          throw new Error('/secret/path/schema.ts exploded');
        },
      }),
      handler: () => 'never',
    });
    const { client, close } = await connectClient(server);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['good', 'broken']);
    // Listed as the least it promises: an object.
    expect(tools[1]!.inputSchema).toEqual({ type: 'object' });
    expect((await client.callTool({ name: 'good', arguments: { n: 2 } })).content).toEqual([
      { type: 'text', text: '2' },
    ]);
    const broken = await client.callTool({ name: 'broken', arguments: { n: 2 } });
    expect(broken.isError).toBe(true);
    expect(JSON.stringify(broken.content)).toMatch(/Tool broken cannot run: its input schema failed/);
    expect(JSON.stringify(broken)).not.toContain('/secret/path');
    await close();
  });

  it('lists an object schema zod cannot convert as an object, keeps its results unwrapped, and says why in the log', async () => {
    const warned: Array<{ tool?: string }> = [];
    const logger = {
      trace() {},
      debug() {},
      info() {},
      warn: (fields: { tool?: string }) => warned.push(fields),
      error() {},
      fatal() {},
      child: () => logger,
    };
    const server = createMcpServer({ logger: logger as never });
    // Two fields sharing a registry id: zod's conversion throws "Duplicate schema id".
    const clash = () => z.object({ a: z.string().meta({ id: 'Name' }), b: z.number().meta({ id: 'Name' }) });
    server.tools.register({ name: 'in_clash', inputSchema: clash(), handler: ({ a }) => String(a) });
    server.tools.register({ name: 'out_clash', outputSchema: clash(), handler: () => ({ a: 'x', b: 1 }) });
    const { client, close } = await connectClient(server);
    const { tools } = await client.listTools();
    expect(tools.map((t) => [t.name, t.inputSchema, t.outputSchema])).toEqual([
      ['in_clash', { type: 'object' }, undefined],
      ['out_clash', { type: 'object', properties: {} }, { type: 'object' }],
    ]);
    expect(warned.map((w) => w.tool).sort()).toEqual(['in_clash', 'out_clash']);
    // The output stays the object it is (a non-object schema would have the SDK wrap it in `result`).
    const out = await client.callTool({ name: 'out_clash', arguments: {} });
    expect(out.structuredContent).toEqual({ a: 'x', b: 1 });
    // zod still checks the input.
    const bad = await client.callTool({ name: 'in_clash', arguments: { a: 1, b: 'no' } });
    expect(bad.isError).toBe(true);
    await close();
    await server.close();
  });

  it('hides disabled tools from lists and calls, and brings them back', async () => {
    const server = fixtureServer();
    const { client, close } = await connectClient(server);
    server.tools.disable('add');
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('add');
    await expect(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/disabled/);
    server.tools.enable('add');
    expect((await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).structuredContent).toEqual({
      sum: 3,
    });
    await close();
  });

  it('returns a JSON-RPC error for an unknown tool', async () => {
    const { client, close } = await connectClient(fixtureServer());
    await expect(client.callTool({ name: 'missing', arguments: {} })).rejects.toThrow(/not found/);
    await close();
  });

  it('lists 10,000 tools correctly', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.registerMany(
      Array.from({ length: 10_000 }, (_, i) => ({
        name: `tool_${i}`,
        inputSchema: { n: z.number() },
        handler: () => String(i),
      })),
    );
    const { client, close } = await connectClient(server);
    const { tools } = await client.listTools();
    expect(tools).toHaveLength(10_000);
    expect(tools[9_999]!.name).toBe('tool_9999');
    await close();
  });

  it('paginates lists when a page size is set', async () => {
    const server = createMcpServer({ logLevel: 'silent', pageSize: 2, http: { stateless: true } });
    for (const name of ['a', 'b', 'c']) server.tools.register({ name, handler: () => name });
    const list = async (cursor?: string) => {
      const res = await request(
        server,
        '/mcp',
        jsonRpcPost(
          { jsonrpc: '2.0', id: 1, method: 'tools/list', params: cursor === undefined ? {} : { cursor } },
          { 'mcp-protocol-version': '2025-11-25' },
        ),
      );
      return readJsonRpc(res);
    };
    const page1 = await list();
    expect(page1.result.tools.map((t: { name: string }) => t.name)).toEqual(['a', 'b']);
    expect(page1.result.nextCursor).toBe('2');
    const page2 = await list(page1.result.nextCursor);
    expect(page2.result.tools.map((t: { name: string }) => t.name)).toEqual(['c']);
    expect(page2.result.nextCursor).toBeUndefined();
    expect((await list('garbage')).error.message).toMatch(/cursor/);
    // the SDK client follows cursors itself and still sees everything
    const { client, close } = await connectClient(server);
    expect((await client.listTools()).tools).toHaveLength(3);
    await close();
  });
});

describe('list_changed', () => {
  it('notifies every connected session of tool, resource and prompt changes', async () => {
    const server = fixtureServer();
    const sessions = await Promise.all([connectClient(server), connectClient(server)]);
    const seen = sessions.map(({ client }) => {
      const got = { tools: deferred(), resources: deferred(), prompts: deferred() };
      client.setNotificationHandler('notifications/tools/list_changed', () => got.tools.resolve());
      client.setNotificationHandler('notifications/resources/list_changed', () => got.resources.resolve());
      client.setNotificationHandler('notifications/prompts/list_changed', () => got.prompts.resolve());
      return got;
    });
    server.tools.register({ name: 'new_tool', handler: () => 'ok' });
    server.resources.register({ uri: 'fixture://new', name: 'new', read: () => 'x' });
    server.prompts.register({ name: 'new_prompt', messages: [{ role: 'user', content: 'hi' }] });
    for (const got of seen)
      await Promise.all([got.tools.promise, got.resources.promise, got.prompts.promise]);
    const names = (await sessions[1]!.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('new_tool');
    await Promise.all(sessions.map((s) => s.close()));
  });

  it('stops notifying a session once it is closed', async () => {
    const server = fixtureServer();
    const { close } = await connectClient(server);
    await close();
    expect(server.connectionCounts().connections.memory ?? 0).toBe(0);
  });
});

describe('resources', () => {
  it('lists, reads static resources and templates, and reports unknown URIs', async () => {
    const { client, close } = await connectClient(fixtureServer());
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['fixture://greeting']);
    expect((await client.listResourceTemplates()).resourceTemplates[0]).toMatchObject({
      uriTemplate: 'fixture://items/{id}',
      name: 'item',
    });
    expect((await client.readResource({ uri: 'fixture://greeting' })).contents).toEqual([
      { uri: 'fixture://greeting', mimeType: 'text/plain', text: 'hello' },
    ]);
    expect((await client.readResource({ uri: 'fixture://items/7' })).contents[0]).toMatchObject({
      uri: 'fixture://items/7',
      text: '{"id":"7"}',
    });
    await expect(client.readResource({ uri: 'fixture://nothing' })).rejects.toThrow(/not found/i);
    await close();
  });

  it('completes template variables, capped with hasMore', async () => {
    const server = fixtureServer({ maxCompletions: 2 });
    const { client, close } = await connectClient(server);
    const result = await client.complete({
      ref: { type: 'ref/resource', uri: 'fixture://items/{id}' },
      argument: { name: 'id', value: '1' },
    });
    expect(result.completion).toEqual({ values: ['1', '10'], total: 3, hasMore: true });
    await close();
  });
});

describe('prompts', () => {
  it("gives render the schema's output, typed from the schema", async () => {
    const server = createMcpServer({ name: 'typed-prompts', logLevel: 'silent' });
    server.prompts.register({
      name: 'review',
      arguments: { language: z.enum(['ts', 'py']), lines: z.coerce.number().int() },
      render: ({ language, lines }) => {
        expectTypeOf(language).toEqualTypeOf<'ts' | 'py'>();
        expectTypeOf(lines).toEqualTypeOf<number>();
        return `Review ${lines + 1} lines of ${language}`;
      },
    });
    server.prompts.register({
      name: 'specs',
      arguments: [{ name: 'text', required: true }],
      render: (args) => {
        expectTypeOf(args).toEqualTypeOf<Record<string, string>>();
        return `Summarise ${args.text}`;
      },
    });
    const { client, close } = await connectClient(server);
    const got = await client.getPrompt({ name: 'review', arguments: { language: 'py', lines: '41' } });
    expect(got.messages[0]?.content).toEqual({ type: 'text', text: 'Review 42 lines of py' });
    await close();
    await server.close();
  });

  it('renders templates with arguments and names a missing argument', async () => {
    const { client, close } = await connectClient(fixtureServer());
    const got = await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
    expect(got.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Say hello to Ada.' } }]);
    await expect(client.getPrompt({ name: 'greet', arguments: {} })).rejects.toThrow(/name: Required/);
    const completion = await client.complete({
      ref: { type: 'ref/prompt', name: 'greet' },
      argument: { name: 'name', value: 'A' },
    });
    expect(completion.completion.values).toEqual(['Ada', 'Alan']);
    await close();
  });

  it('validates zod argument schemas', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    server.prompts.register({
      name: 'code_review',
      arguments: { language: z.enum(['ts', 'py']), code: z.string() },
      render: ({ language, code }) => `Review this ${language}:\n${code}`,
    });
    const { client, close } = await connectClient(server);
    expect((await client.listPrompts()).prompts[0]!.arguments).toEqual([
      { name: 'language', required: true },
      { name: 'code', required: true },
    ]);
    await expect(
      client.getPrompt({ name: 'code_review', arguments: { language: 'go', code: 'x' } }),
    ).rejects.toThrow(/language/);
    await close();
  });
});

describe('plain JSON Schema tools', () => {
  it('register thousands quickly (validators compile on first use) and still validate', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    const schema = { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] };
    server.tools.registerMany(
      Array.from({ length: 2000 }, (_, i) => ({ name: `t${i}`, inputSchema: schema, handler: () => 'ok' })),
    );
    expect((await server.executor.execute('t7', { q: 'x' })).isError).toBeUndefined();
    const bad = await server.executor.execute('t7', { q: 1 });
    expect(bad.isError).toBe(true);
    expect(JSON.stringify(bad.content)).toContain('q: must be string');
  });

  it('refuse malformed schemas at registration, and report an uncompilable one on use', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    expect(() =>
      server.tools.register({ name: 'a', inputSchema: { type: 'object', required: 'q' }, handler: () => '' }),
    ).toThrow(/required must be an array/);
    server.tools.register({
      name: 'b',
      inputSchema: { type: 'object', properties: { q: { type: 'string', pattern: '(' } } },
      handler: () => 'never',
    });
    const result = await server.executor.execute('b', { q: 'x' });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toMatch(/cannot run: .*not a valid JSON Schema/);
  });
});
