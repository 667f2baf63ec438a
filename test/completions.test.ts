import { createMcpServer, type McpKitServer } from 'mcpkit';
import { createModelServer, type ModelServer, request } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

/** The loopback model listens on a private address: the outbound policy has to allow it. */
const LOOPBACK = { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true };

let model: ModelServer | undefined;
let server: McpKitServer | undefined;
afterEach(async () => {
  await server?.close();
  await model?.close();
  model = undefined;
  server = undefined;
});

function makeServer(extra: { slowSignal?: (s: AbortSignal) => void } = {}): McpKitServer {
  const s = createMcpServer({
    logLevel: 'silent',
    outbound: LOOPBACK,
    completions: { providerOptions: { retry: { minDelayMs: 1 } } },
  });
  s.tools.register({
    name: 'add',
    description: 'Add two numbers',
    inputSchema: { a: z.number(), b: z.number() },
    handler: ({ a, b }) => ({ sum: a + b }),
  });
  s.tools.register({
    name: 'boom',
    description: 'Always fails',
    handler: () => {
      throw new Error('the boom tool broke');
    },
  });
  s.tools.register({
    name: 'slow',
    handler: (_args, ctx) =>
      new Promise((resolve, reject) => {
        extra.slowSignal?.(ctx.signal);
        const timer = setTimeout(() => resolve('late'), 10_000);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(ctx.signal.reason);
        });
      }),
  });
  return s;
}

const providers = [
  { provider: 'openai', base: (url: string) => `${url}/v1` },
  { provider: 'anthropic', base: (url: string) => url },
  { provider: 'custom', base: (url: string) => `${url}/v1` },
] as const;

describe.each(providers)('the tool loop with $provider', ({ provider, base }) => {
  it.each([false, true])(
    'runs two tools in parallel, one fails, the model answers (stream: %s)',
    async (stream) => {
      model = await createModelServer({
        turns: [
          {
            toolCalls: [
              { name: 'add', arguments: { a: 2, b: 3 } },
              { name: 'boom', arguments: {} },
            ],
          },
          { text: 'The sum is 5; boom failed.' },
        ],
      });
      server = makeServer();
      const events: string[] = [];
      const job = await server.completions.run(
        {
          model: { provider, model: 'test-model', apiKey: 'k', baseUrl: base(model.url) },
          messages: [{ role: 'user', content: 'add 2 and 3, then boom' }],
          tools: ['add', 'boom'],
        },
        { stream, onEvent: (e) => events.push(e.type) },
      );
      expect(job.status).toBe('succeeded');
      expect(job.output).toBe('The sum is 5; boom failed.');
      expect(job.steps).toHaveLength(2);
      const calls = job.steps[0]!.toolCalls;
      expect(calls.map((c) => [c.name, c.isError])).toEqual([
        ['add', false],
        ['boom', true],
      ]);
      expect(calls[1]!.result).toContain('the boom tool broke');
      expect(job.usage).toEqual({ inputTokens: 20, outputTokens: 10 });
      expect(events[0]).toBe('start');
      expect(events.at(-1)).toBe('done');
      expect(events).toContain('tool_result');
      if (stream) expect(events).toContain('text');
      // The tools were offered with their JSON Schemas, and only the selected ones.
      const first = model.requests[0]!.body;
      const names = first.tools.map((t: any) => t.name ?? t.function.name);
      expect(names).toEqual(['add', 'boom']);
      const second = model.requests[1]!.body;
      if (provider === 'anthropic') {
        const results = second.messages.at(-1);
        expect(results.role).toBe('user');
        expect(results.content).toHaveLength(2);
        expect(results.content[1]).toMatchObject({ type: 'tool_result', is_error: true });
      } else {
        const tools = second.messages.filter((m: any) => m.role === 'tool');
        expect(tools).toHaveLength(2);
        expect(JSON.parse(tools[0].content)).toEqual({ sum: 5 });
      }
    },
  );
});

describe('completion jobs', () => {
  it('ends a runaway loop at the step limit with a clear status', async () => {
    model = await createModelServer({
      fallback: { toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] },
    });
    server = makeServer();
    const job = await server.completions.run({
      model: { provider: 'openai', model: 'm', baseUrl: `${model.url}/v1` },
      messages: [{ role: 'user', content: 'loop' }],
      maxSteps: 3,
    });
    expect(job.status).toBe('failed');
    expect(job.stopReason).toBe('max_steps');
    expect(job.error?.code).toBe('MAX_STEPS');
    expect(job.steps).toHaveLength(3);
  });

  it('a 401 fails the job without a retry', async () => {
    model = await createModelServer({ turns: [{ error: { status: 401, message: 'bad key' } }] });
    server = makeServer();
    const job = await server.completions.run({
      model: { provider: 'anthropic', model: 'c', apiKey: 'sk-ant-secret-000000', baseUrl: model.url },
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('UNAUTHORIZED');
    expect(JSON.stringify(job)).not.toContain('sk-ant-secret');
    expect(model.requests).toHaveLength(1);
  });

  it('cancel mid-stream aborts the provider request and the job is cancelled', async () => {
    model = await createModelServer({ turns: [{ text: 'x'.repeat(400), chunkDelayMs: 20 }], chunkSize: 1 });
    server = makeServer();
    let id = '';
    let texts = 0;
    const handle = await server.completions.start(
      {
        model: { provider: 'openai', model: 'm', baseUrl: `${model.url}/v1` },
        messages: [{ role: 'user', content: 'talk' }],
      },
      {
        stream: true,
        onEvent: (e) => {
          if (e.type === 'start') id = e.id;
          if (e.type === 'text' && ++texts === 3) server!.completions.cancel(id);
        },
      },
    );
    const job = await handle.done;
    expect(job.status).toBe('cancelled');
    expect(texts).toBeLessThan(20);
    await new Promise((r) => setTimeout(r, 50));
    expect(model.requests[0]!.aborted).toBe(true);
    expect(server.completions.get(id)?.status).toBe('cancelled');
  });

  it('cancel aborts a running tool call', async () => {
    model = await createModelServer({
      turns: [{ toolCalls: [{ name: 'slow', arguments: {} }] }, { text: 'never' }],
    });
    let toolSignal: AbortSignal | undefined;
    let started!: () => void;
    const toolStarted = new Promise<void>((r) => {
      started = r;
    });
    server = makeServer({
      slowSignal: (s) => {
        toolSignal = s;
        started();
      },
    });
    const handle = await server.completions.start(
      {
        model: { provider: 'anthropic', model: 'c', baseUrl: model.url },
        messages: [{ role: 'user', content: 'slow' }],
      },
      { stream: true },
    );
    await toolStarted;
    handle.cancel();
    const job = await handle.done;
    expect(job.status).toBe('cancelled');
    expect(toolSignal?.aborted).toBe(true);
    expect(model.requests).toHaveLength(1);
  });

  it('an aborted stream that ends quietly is cancelled, not succeeded', async () => {
    // A custom provider whose stream stops without error once aborted.
    server = createMcpServer({
      logLevel: 'silent',
      completions: {
        providers: {
          quiet: {
            name: 'quiet',
            complete: async () => {
              throw new Error('unused');
            },
            async *stream(req) {
              yield { type: 'text', delta: 'a' };
              await new Promise((r) => setTimeout(r, 30));
              if (req.signal?.aborted) return; // ends quietly
              yield {
                type: 'done',
                response: {
                  text: 'a',
                  toolCalls: [],
                  finishReason: 'stop',
                  usage: { inputTokens: 0, outputTokens: 0 },
                },
              };
            },
          },
        },
      },
    });
    const handle = await server.completions.start(
      { model: { provider: 'quiet', model: 'q' }, messages: [{ role: 'user', content: 'x' }] },
      { stream: true, onEvent: (e) => e.type === 'text' && server!.completions.cancel(handle.id) },
    );
    expect((await handle.done).status).toBe('cancelled');
  });

  it('keeps finished jobs for a bounded count', async () => {
    model = await createModelServer();
    server = createMcpServer({ logLevel: 'silent', outbound: LOOPBACK, completions: { maxFinished: 2 } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await server.completions.run({
        model: { provider: 'openai', model: 'm', baseUrl: `${model.url}/v1` },
        messages: [{ role: 'user', content: 'hi' }],
      });
      ids.push(job.id);
    }
    expect(server.completions.get(ids[0]!)).toBeUndefined();
    expect(server.completions.get(ids[2]!)?.status).toBe('succeeded');
  });
});

describe('REST', () => {
  const post = (body: unknown, accept = 'application/json') => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', accept },
    body: JSON.stringify(body),
  });

  it('streams a full run over SSE and GET/DELETE find the job', async () => {
    model = await createModelServer({
      turns: [{ toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] }, { text: 'three' }],
    });
    server = createMcpServer({
      logLevel: 'silent',
      outbound: LOOPBACK,
      completions: { allowInlineBaseUrl: true },
    });
    server.tools.register({
      name: 'add',
      inputSchema: { a: z.number(), b: z.number() },
      handler: ({ a, b }) => String(a + b),
    });
    const res = await request(
      server,
      '/completions/stream',
      post(
        {
          model: { provider: 'openai', model: 'm', baseUrl: `${model.url}/v1` },
          messages: [{ role: 'user', content: 'add' }],
        },
        'text/event-stream, application/problem+json',
      ),
    );
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n/g)].map((m) => [m[1], JSON.parse(m[2]!)]);
    expect(events[0]![0]).toBe('start');
    const id = events[0]![1].id;
    expect(id).toBe(res.headers.get('x-completion-id'));
    const kinds = events.map((e) => e[0]);
    expect(kinds).toEqual(expect.arrayContaining(['tool_call', 'tool_result', 'usage', 'text', 'done']));
    expect(kinds.at(-1)).toBe('done');
    expect(events.at(-1)![1].job.output).toBe('three');

    const got = await request(server, `/completions/${id}`);
    expect((await got.json()).status).toBe('succeeded');
    const del = await request(server, `/completions/${id}`, { method: 'DELETE' });
    expect((await del.json()).status).toBe('succeeded');
    expect((await request(server, '/completions/nope')).status).toBe(404);
  });

  it('POST /completions answers the finished job; inline baseUrl is refused by default', async () => {
    model = await createModelServer({ turns: [{ text: 'hello' }] });
    server = makeServer();
    const refused = await request(
      server,
      '/completions',
      post({
        model: { provider: 'custom', model: 'm', baseUrl: `${model.url}/v1` },
        messages: [{ role: 'user', content: 'hi' }],
      }),
    );
    expect(refused.status).toBe(403);
    const bad = await request(server, '/completions', post({ model: { provider: 'openai', model: 'm' } }));
    expect(bad.status).toBe(400);
  });
});

describe('integrations as model configuration', () => {
  it('runs a completion with an integration’s model, its key never leaving the server', async () => {
    model = await createModelServer({ turns: [{ text: 'hello from the integration model' }] });
    server = makeServer();
    await server.integrations.ready;
    await server.integrations.create({
      id: 'crm',
      name: 'CRM',
      model: {
        provider: 'openai',
        model: 'gpt-test',
        apiKey: 'sk-integration-secret-1234',
        baseUrl: `${model.url}/v1`,
      },
    });
    const job = await server.completions.run({
      integrationId: 'crm',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(job.status).toBe('succeeded');
    expect(JSON.stringify(job)).not.toContain('sk-integration-secret-1234');
    expect(model.requests[0]?.headers.authorization).toBe('Bearer sk-integration-secret-1234');
    await expect(
      server.completions.run({ integrationId: 'nope', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toThrow(/not found/);
  });
});

describe('maxRunning', () => {
  const talk = (url: string) => ({
    model: { provider: 'openai' as const, model: 'm', baseUrl: `${url}/v1` },
    messages: [{ role: 'user' as const, content: 'talk' }],
  });

  it('holds when starts arrive together, while each still awaits its model (regression)', async () => {
    model = await createModelServer({ turns: [{ text: 'x'.repeat(40), chunkDelayMs: 20 }], chunkSize: 1 });
    server = createMcpServer({ logLevel: 'silent', outbound: LOOPBACK, completions: { maxRunning: 1 } });
    const settled = await Promise.allSettled(
      [1, 2, 3].map(() => server!.completions.start(talk(model!.url))),
    );
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    for (const s of settled.slice(1)) expect((s as PromiseRejectedResult).reason.code).toBe('BUSY');
    expect(server.completions.list().filter((job) => job.status === 'running')).toHaveLength(1);
    const first = (settled[0] as PromiseFulfilledResult<{ cancel(): void; done: Promise<unknown> }>).value;
    first.cancel();
    await first.done;
  });

  it('gives back the place of a start refused before its job began', async () => {
    model = await createModelServer({ turns: [{ text: 'ok' }] });
    server = createMcpServer({ logLevel: 'silent', outbound: LOOPBACK, completions: { maxRunning: 1 } });
    for (let i = 0; i < 3; i++) {
      await expect(
        server.completions.start({ ...talk(model.url), model: { provider: 'nope', model: 'm' } } as never),
      ).rejects.toThrow();
    }
    const job = await server.completions.run(talk(model.url));
    expect(job.status).toBe('succeeded');
  });
});
