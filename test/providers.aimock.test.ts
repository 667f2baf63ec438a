/** Contract tests: our providers against @copilotkit/aimock, a third-party mock of both wire formats. */
import { LLMock } from '@copilotkit/aimock';
import { createAnthropicProvider, createOpenAIProvider, type ModelClient } from 'mcpkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let mock: LLMock;
beforeAll(async () => {
  mock = new LLMock({ port: 0 });
  mock.onMessage('hello', { content: 'Hi there!' });
  mock.onMessage('weather', { toolCalls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }] });
  await mock.start();
});
afterAll(async () => {
  await mock.stop();
});

const clients: Array<[string, () => ModelClient]> = [
  ['openai', () => createOpenAIProvider({ baseUrl: `${mock.url}/v1`, apiKey: 'mock' })],
  ['anthropic', () => createAnthropicProvider({ baseUrl: mock.url, apiKey: 'mock' })],
];
const tools = [
  {
    name: 'get_weather',
    description: 'Weather',
    inputSchema: { type: 'object', properties: { city: { type: 'string' } } },
  },
];

describe.each(clients)('%s against aimock', (_name, make) => {
  it('reads a text answer, whole and streamed', async () => {
    const provider = make();
    const whole = await provider.complete({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
    expect(whole.text).toBe('Hi there!');
    let streamed = '';
    let done = false;
    for await (const e of provider.stream({ model: 'm', messages: [{ role: 'user', content: 'hello' }] })) {
      if (e.type === 'text') streamed += e.delta;
      if (e.type === 'done') done = e.response.text === 'Hi there!';
    }
    expect(streamed).toBe('Hi there!');
    expect(done).toBe(true);
  });

  it('reads a tool call, whole and streamed', async () => {
    const provider = make();
    const req = { model: 'm', messages: [{ role: 'user' as const, content: 'weather?' }], tools };
    const whole = await provider.complete(req);
    expect(whole.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
      ['get_weather', { city: 'Paris' }],
    ]);
    const calls: unknown[] = [];
    for await (const e of provider.stream(req))
      if (e.type === 'done')
        calls.push(...e.response.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]));
    expect(calls).toEqual([['get_weather', { city: 'Paris' }]]);
  });
});
