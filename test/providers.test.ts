import { createAnthropicProvider, createOpenAIProvider, McpKitError } from 'mcpkit';
import { createModelServer, type ModelServer } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';

let model: ModelServer | undefined;
afterEach(async () => {
  await model?.close();
  model = undefined;
});

const KEY = 'sk-test-secret-key-123456';
const user = [{ role: 'user' as const, content: 'hi' }];

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe('openai provider', () => {
  it('assembles streamed tool-call fragments by index and reads the usage chunk', async () => {
    model = await createModelServer({
      chunkSize: 3,
      turns: [
        {
          text: 'Let me check.',
          toolCalls: [
            { name: 'add', arguments: { a: 1, b: 2 } },
            { name: 'echo', arguments: { text: 'x' } },
          ],
          usage: { inputTokens: 7, outputTokens: 9 },
        },
      ],
    });
    const openai = createOpenAIProvider({ baseUrl: `${model.url}/v1`, apiKey: KEY });
    const events = await collect(openai.stream({ model: 'gpt-test', messages: user, maxTokens: 50 }));
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    if (done.type !== 'done') return;
    expect(done.response.text).toBe('Let me check.');
    expect(done.response.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
      ['add', { a: 1, b: 2 }],
      ['echo', { text: 'x' }],
    ]);
    expect(done.response.usage).toEqual({ inputTokens: 7, outputTokens: 9 });
    expect(done.response.finishReason).toBe('tool_calls');
    const req = model.requests[0]!;
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.body.stream_options).toEqual({ include_usage: true });
    expect(req.body.max_completion_tokens).toBe(50);
  });

  it('honours retry-after-ms on 429 and retries 500', async () => {
    model = await createModelServer({
      turns: [
        { error: { status: 429, headers: { 'retry-after-ms': '250' } } },
        { error: { status: 500 } },
        { text: 'done' },
      ],
    });
    const openai = createOpenAIProvider({ baseUrl: `${model.url}/v1`, retry: { minDelayMs: 10 } });
    const started = performance.now();
    const res = await openai.complete({ model: 'm', messages: user });
    expect(res.text).toBe('done');
    expect(model.requests).toHaveLength(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
  });

  it('does not retry a 401 and never echoes the key', async () => {
    model = await createModelServer({
      turns: [{ error: { status: 401, message: `Incorrect API key provided: ${KEY}` } }, { text: 'no' }],
    });
    const openai = createOpenAIProvider({ baseUrl: `${model.url}/v1`, apiKey: KEY });
    const error = await openai.complete({ model: 'm', messages: user }).catch((e) => e);
    expect(error).toBeInstanceOf(McpKitError);
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toContain('Incorrect API key provided');
    expect(error.message).not.toContain(KEY);
    expect(model.requests).toHaveLength(1);
  });

  it('does not retry a 400', async () => {
    model = await createModelServer({ turns: [{ error: { status: 400, message: 'bad tools' } }] });
    const openai = createOpenAIProvider({ baseUrl: `${model.url}/v1` });
    await expect(openai.complete({ model: 'm', messages: user })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(model.requests).toHaveLength(1);
  });
});

describe('anthropic provider', () => {
  it('streams named events, assembles input_json_delta, sends max_tokens and the version', async () => {
    model = await createModelServer({
      turns: [{ text: 'Sure.', toolCalls: [{ name: 'add', arguments: { a: 2, b: 3 } }] }],
    });
    const claude = createAnthropicProvider({ baseUrl: model.url, apiKey: KEY, apiVersion: '2099-01-01' });
    const events = await collect(claude.stream({ model: 'claude-test', messages: user }));
    const done = events.at(-1)!;
    if (done.type !== 'done') throw new Error('no done');
    expect(done.response.text).toBe('Sure.');
    expect(done.response.toolCalls).toEqual([
      expect.objectContaining({ name: 'add', arguments: JSON.stringify({ a: 2, b: 3 }) }),
    ]);
    expect(done.response.finishReason).toBe('tool_calls');
    const req = model.requests[0]!;
    expect(req.headers['anthropic-version']).toBe('2099-01-01');
    expect(req.headers['x-api-key']).toBe(KEY);
    expect(req.body.max_tokens).toBe(4096);
  });

  it('puts all tool results of a turn in one user message with is_error', async () => {
    model = await createModelServer({ turns: [{ text: 'ok' }] });
    const claude = createAnthropicProvider({ baseUrl: model.url });
    await claude.complete({
      model: 'c',
      maxTokens: 100,
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'go' },
        {
          role: 'assistant',
          content: '',
          toolCalls: [
            { id: 't1', name: 'add', arguments: '{"a":1}' },
            { id: 't2', name: 'boom', arguments: '{}' },
          ],
        },
        { role: 'tool', toolCallId: 't1', name: 'add', content: '3' },
        { role: 'tool', toolCallId: 't2', name: 'boom', content: 'failed', isError: true },
      ],
    });
    const body = model.requests[0]!.body;
    expect(body.system).toBe('be brief');
    expect(body.max_tokens).toBe(100);
    expect(body.messages).toHaveLength(3);
    expect(body.messages[2]).toEqual({
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 't1', content: '3' },
        { type: 'tool_result', tool_use_id: 't2', content: 'failed', is_error: true },
      ],
    });
  });

  it('retries 529 honouring retry-after up to the cap', async () => {
    model = await createModelServer({
      turns: [{ error: { status: 529, type: 'overloaded_error', headers: { 'retry-after': '30' } } }, {}],
    });
    const claude = createAnthropicProvider({ baseUrl: model.url, retry: { maxDelayMs: 200 } });
    const started = performance.now();
    const res = await claude.complete({ model: 'c', messages: user });
    const elapsed = performance.now() - started;
    expect(res.text).toBe('ok');
    expect(model.requests).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2000);
  });

  it('reports a 529 that outlasts the retries as UNAVAILABLE', async () => {
    model = await createModelServer({
      fallback: { error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } },
    });
    const claude = createAnthropicProvider({ baseUrl: model.url, retry: { retries: 1, minDelayMs: 1 } });
    await expect(claude.complete({ model: 'c', messages: user })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(model.requests).toHaveLength(2);
  });
});

describe('limits', () => {
  it('caps requests in flight per provider', async () => {
    model = await createModelServer({ fallback: { text: 'ok', delayMs: 60 } });
    const openai = createOpenAIProvider({ baseUrl: `${model.url}/v1`, concurrency: 1 });
    const started = performance.now();
    await Promise.all([1, 2, 3].map(() => openai.complete({ model: 'm', messages: user })));
    expect(performance.now() - started).toBeGreaterThanOrEqual(170);
  });
});
