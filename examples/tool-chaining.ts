/**
 * Chains and parallel batches through the ToolExecutor, in code and in the declarative form that
 * can arrive as JSON.
 *
 *   npx tsx examples/tool-chaining.ts
 */
import { createMcpServer, McpKitError } from 'mcpkit';
import { z } from 'zod';

const server = createMcpServer({ name: 'chaining', logLevel: 'silent', toolConcurrency: 16 });

const users = new Map([
  ['ada@example.com', { id: 'u1', name: 'Ada' }],
  ['grace@example.com', { id: 'u2', name: 'Grace' }],
]);
const orders: Record<string, number[]> = { u1: [120, 80], u2: [42] };

server.tools.register({
  name: 'find_user',
  description: 'Look a user up by e-mail',
  inputSchema: { email: z.string().email() },
  annotations: { readOnlyHint: true, idempotentHint: true },
  handler: ({ email }) => {
    const user = users.get(email);
    // NOT_FOUND says the request itself is wrong, so even this idempotent tool is not retried.
    if (!user) throw new McpKitError('NOT_FOUND', `No user with e-mail ${email}`);
    return user;
  },
});

server.tools.register({
  name: 'order_total',
  description: 'Sum of a user’s orders',
  inputSchema: { userId: z.string() },
  outputSchema: { userId: z.string(), total: z.number() },
  handler: ({ userId }) => ({ userId, total: (orders[userId] ?? []).reduce((a, b) => a + b, 0) }),
});

// A declarative chain: plain JSON, as a REST client could send it.
const declarative = await server.executor.chain(
  [
    { name: 'user', tool: 'find_user', args: { email: { $ref: 'input.email' } } },
    { tool: 'order_total', args: { userId: { $ref: 'steps.user.structuredContent.id' } } },
  ],
  { email: 'ada@example.com' },
);
console.log('chain ok:', declarative.ok, '→', declarative.result?.structuredContent);

// The same in code, with functions building each step's arguments.
const coded = await server.executor.chain(
  [
    { tool: 'find_user', args: (input) => ({ email: (input as { email: string }).email }) },
    {
      tool: 'order_total',
      args: (_input, steps) => ({ userId: (steps[0]!.result.structuredContent as { id: string }).id }),
    },
  ],
  { email: 'grace@example.com' },
);
console.log('coded chain →', coded.result?.structuredContent);

// A chain that fails stops at the failing step.
const failed = await server.executor.chain([
  { tool: 'find_user', args: { email: 'nobody@example.com' } },
  { tool: 'order_total', args: { userId: 'u1' } },
]);
console.log(
  'failed chain ran',
  failed.steps.length,
  'step(s):',
  (failed.steps[0]!.result.content[0] as { text: string }).text,
);

// A parallel batch: results come back in input order.
const batch = await server.executor.parallel(
  ['ada@example.com', 'grace@example.com', 'nobody@example.com'].map((email) => ({
    tool: 'find_user',
    args: { email },
  })),
  { concurrency: 2 },
);
console.log(
  'batch:',
  batch.map((r) => (r.isError ? 'error' : (r.structuredContent as { name: string }).name)),
);
await server.close();
