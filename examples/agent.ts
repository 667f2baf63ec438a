/**
 * A model that uses the server's own tools. Runs against the loopback model from mcpkit/testing by
 * default; against the real API when OPENAI_API_KEY or ANTHROPIC_API_KEY is set.
 *
 *   npx tsx examples/agent.ts
 *   OPENAI_API_KEY=sk-... npx tsx examples/agent.ts
 */
import { type CompletionModelConfig, createMcpServer } from 'mcpkit';
import { createModelServer } from 'mcpkit/testing';
import { z } from 'zod';

// Model requests go through the outbound policy: a provider's own API is always allowed; the
// loopback model listens on 127.0.0.1, a private address, which has to be allowed by name.
const server = createMcpServer({
  name: 'agent-demo',
  logLevel: 'warn',
  outbound: { allowedHosts: ['127.0.0.1'], allowPrivateNetworks: true },
});
server.tools.register({
  name: 'add',
  description: 'Add two numbers',
  inputSchema: { a: z.number(), b: z.number() },
  handler: ({ a, b }) => ({ sum: a + b }),
});
server.tools.register({
  name: 'weather',
  description: 'Current weather for a city',
  inputSchema: { city: z.string() },
  handler: ({ city }) => ({ city, tempC: 21, sky: 'clear' }),
});

let loopback: Awaited<ReturnType<typeof createModelServer>> | undefined;
let model: CompletionModelConfig;
if (process.env.OPENAI_API_KEY) {
  model = {
    provider: 'openai',
    model: process.env.OPENAI_MODEL ?? 'gpt-4o-mini',
    apiKey: process.env.OPENAI_API_KEY,
  };
} else if (process.env.ANTHROPIC_API_KEY) {
  model = {
    provider: 'anthropic',
    model: process.env.ANTHROPIC_MODEL ?? 'claude-sonnet-4-5',
    apiKey: process.env.ANTHROPIC_API_KEY,
  };
} else {
  loopback = await createModelServer({
    turns: [
      {
        toolCalls: [
          { name: 'add', arguments: { a: 2, b: 3 } },
          { name: 'weather', arguments: { city: 'Paris' } },
        ],
      },
      { text: '2 + 3 = 5, and it is 21 °C and clear in Paris.' },
    ],
  });
  model = { provider: 'openai', model: 'loopback', baseUrl: `${loopback.url}/v1` };
  console.error('No API key set: using the loopback model.');
}

const job = await server.completions.run(
  {
    model,
    messages: [{ role: 'user', content: 'What is 2 + 3? And what is the weather in Paris? Use the tools.' }],
  },
  {
    stream: true,
    onEvent: (event) => {
      if (event.type === 'text') process.stdout.write(event.delta);
      if (event.type === 'tool_call') console.error(`\n→ ${event.name}(${JSON.stringify(event.arguments)})`);
      if (event.type === 'tool_result') console.error(`← ${event.name}: ${event.result}`);
    },
  },
);
console.log(
  `\n\n${job.status} in ${job.steps.length} steps, ${job.usage.inputTokens}+${job.usage.outputTokens} tokens`,
);
await server.close();
await loopback?.close();
