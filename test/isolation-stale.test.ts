/**
 * A call's context is its own: what a handler left behind (a timer, a kept `ctx`) cannot act in a
 * later call that the same worker or child process serves, for another caller (regression).
 */
import { createMcpServer } from 'mcpkit';
import { createIsolation, type IsolationLevel } from 'mcpkit/node';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const TOOLS = new URL('./fixtures/isolated/tools.mjs', import.meta.url);

describe("a finished call's context", () => {
  for (const level of ['worker', 'process'] as IsolationLevel[]) {
    it(`cannot call tools as the next call's caller (${level})`, async () => {
      const server = createMcpServer({ logLevel: 'silent' });
      const isolation = createIsolation({ maxWorkers: 1 });
      const callers: unknown[] = [];
      server.tools.register({
        name: 'who',
        handler: (_args, ctx) => {
          callers.push(ctx.caller?.id);
          return 'ok';
        },
      });
      server.tools.register(isolation.tool(TOOLS, { name: 'keep', isolate: { level, export: 'keep' } }));
      server.tools.register(
        isolation.tool(TOOLS, {
          name: 'replay',
          inputSchema: { name: z.string() },
          isolate: { level, export: 'replay' },
        }),
      );
      try {
        const kept = await server.executor.execute('keep', {}, { caller: { id: 'alice' } });
        expect(kept.isError).toBeUndefined();
        const replayed = await server.executor.execute('replay', { name: 'who' }, { caller: { id: 'bob' } });
        expect(replayed.isError).toBeUndefined();
        // Only bob's own nested call ran; the one made through alice's finished call was refused.
        expect(callers).toEqual(['bob']);
        expect(replayed.structuredContent).toEqual({ stale: expect.stringMatching(/^refused: .*ended/) });
      } finally {
        await server.close();
        await isolation.close();
      }
    });
  }
});
