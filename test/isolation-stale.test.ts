/**
 * A call's context is its own: what a handler left behind (a timer, a kept `ctx`) cannot act in a
 * later call that the same worker or child process serves, for another caller (regression).
 */
import { createMcpServer } from 'mcpkit';
import { createIsolation, type IsolationLevel } from 'mcpkit/node';
import { errorCodeOf } from 'mcpkit/unstable';
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

  for (const level of ['worker', 'process'] as IsolationLevel[]) {
    it(`never hands the next call the answer of a nested call it left running (${level})`, async () => {
      const server = createMcpServer({ logLevel: 'silent' });
      const isolation = createIsolation({ maxWorkers: 1 });
      const gates = new Map<string, () => void>();
      const started = new Map<string, Promise<void>>();
      const arrived = new Map<string, () => void>();
      for (const id of ['alice', 'bob']) started.set(id, new Promise((resolve) => arrived.set(id, resolve)));
      server.tools.register({
        name: 'gated',
        handler: async (_args, ctx) => {
          const id = String(ctx.caller?.id);
          await new Promise<void>((resolve) => {
            gates.set(id, resolve);
            arrived.get(id)!();
          });
          return `secret of ${id}`;
        },
      });
      server.tools.register(
        isolation.tool(TOOLS, {
          name: 'leave',
          inputSchema: { name: z.string() },
          isolate: { level, export: 'leave' },
        }),
      );
      server.tools.register(
        isolation.tool(TOOLS, {
          name: 'nested',
          inputSchema: { name: z.string(), args: z.record(z.string(), z.unknown()) },
          isolate: { level, export: 'nested' },
        }),
      );
      try {
        const left = await server.executor.execute('leave', { name: 'gated' }, { caller: { id: 'alice' } });
        expect(left.isError).toBeUndefined();
        await started.get('alice');
        const bobs = server.executor.execute(
          'nested',
          { name: 'gated', args: {} },
          { caller: { id: 'bob' } },
        );
        await started.get('bob');
        gates.get('alice')!();
        // Alice's nested call has answered; let its answer travel before bob's is released.
        await new Promise((resolve) => setImmediate(resolve));
        gates.get('bob')!();
        const result = await bobs;
        expect(JSON.stringify(result)).not.toContain('secret of alice');
        expect(result.structuredContent).toMatchObject({
          inner: { content: [{ type: 'text', text: 'secret of bob' }] },
        });
      } finally {
        await server.close();
        await isolation.close();
      }
    });
  }

  for (const level of ['worker', 'process'] as IsolationLevel[]) {
    it(`counts binary data against maxResultBytes, not only the result's JSON (${level})`, async () => {
      const server = createMcpServer({ logLevel: 'silent' });
      const isolation = createIsolation({ maxWorkers: 1 });
      server.tools.register(
        isolation.tool(TOOLS, {
          name: 'binary',
          inputSchema: { bytes: z.number(), as: z.string().optional() },
          isolate: { level, export: 'binary', maxResultBytes: 64 * 1024 },
        }),
      );
      try {
        const small = await server.executor.execute('binary', { bytes: 1024 });
        expect(small.isError).toBeUndefined();
        for (const as of ['buffer', 'map']) {
          const big = await server.executor.execute('binary', { bytes: 8 * 1024 * 1024, as });
          expect(errorCodeOf(big)).toBe('PAYLOAD_TOO_LARGE');
        }
      } finally {
        await server.close();
        await isolation.close();
      }
    });
  }

  for (const level of ['worker', 'process'] as IsolationLevel[]) {
    it(`counts binary data in logs against the call's message budget (${level})`, async () => {
      const server = createMcpServer({ logLevel: 'silent' });
      const isolation = createIsolation({ maxWorkers: 1 });
      server.tools.register(
        isolation.tool(TOOLS, {
          name: 'binaryLogs',
          inputSchema: { count: z.number(), bytes: z.number() },
          isolate: { level, export: 'binaryLogs' },
        }),
      );
      let received = 0;
      const keep = async (data: unknown) => {
        received += data instanceof ArrayBuffer ? data.byteLength : 0;
      };
      const log = { debug: keep, info: keep, warning: keep, error: keep };
      try {
        const result = await server.executor.execute(
          'binaryLogs',
          { count: 16, bytes: 512 * 1024 },
          { log: log as never },
        );
        expect(result.isError).toBeUndefined();
        // The budget is 1 MiB of messages per call: 8 MiB were sent, at most 1 MiB crossed.
        expect(received).toBeGreaterThan(0);
        expect(received).toBeLessThanOrEqual(1024 * 1024);
      } finally {
        await server.close();
        await isolation.close();
      }
    });
  }
});
