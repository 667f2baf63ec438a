/**
 * The gateway's shortcuts around the SDK's per-message work, against the SDK itself: the shape
 * checks (`quickMessage`, `isPlainResult`) never recognise what the SDK's schemas would reject or
 * change; the stdio reader reads what the SDK's `ReadBuffer` reads; the client's result dispatch
 * (`answerDirectly`) is in place on the pinned SDK and answers, fails, reports progress and cancels
 * as the plain client does. Then what a forwarded call costs less: progress asked upstream only when
 * taken, the executor's `cancellation`, `hasMcp` and `takesProgress`, and plain results recognised
 * without zod.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Client,
  InMemoryTransport,
  isJSONRPCResultResponse,
  parseJSONRPCMessage,
  ReadBuffer,
} from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { McpServer } from '@modelcontextprotocol/server';
import { createMcpServer } from 'mcpkit';
import { stdioUpstream } from 'mcpkit/node';
import { connectClient } from 'mcpkit/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { answerDirectly } from '../src/integrations/upstream.js';
import { isPlainResult, quickMessage } from '../src/integrations/upstreamMessages.js';
import { readFaster } from '../src/node/stdioUpstream.js';
import { UpstreamLineReader } from '../src/node/upstreamLines.js';
import { upstreamReady } from './fixtures.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'upstreamServer.mjs');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Messages of every kind, and near misses of the two the shortcuts recognise. */
const MESSAGES: unknown[] = [
  { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'a' }] } },
  { jsonrpc: '2.0', id: 'x', result: {} },
  { jsonrpc: '2.0', id: 0, result: { isError: true, content: [] } },
  { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } },
  { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
  // near misses: each must be left to the SDK
  { jsonrpc: '2.0', id: 1, result: { _meta: { 'io.modelcontextprotocol/serverInfo': 3 } } },
  { jsonrpc: '2.0', id: 1, result: { _meta: {} } },
  { jsonrpc: '2.0', id: 1.5, result: {} },
  { jsonrpc: '2.0', id: 2 ** 60, result: {} },
  { jsonrpc: '2.0', id: null, result: {} },
  { jsonrpc: '2.0', result: {} },
  { jsonrpc: '2.0', id: 1, result: [] },
  { jsonrpc: '2.0', id: 1, result: null },
  { jsonrpc: '2.0', id: 1, result: {}, extra: true },
  { jsonrpc: '1.0', id: 1, result: {} },
  { jsonrpc: '2.0', id: 1, result: {}, method: 'x' },
  { jsonrpc: '2.0', method: 'notifications/progress', params: { _meta: { progressToken: 1.5 } } },
  { jsonrpc: '2.0', method: 'notifications/progress', params: null },
  { jsonrpc: '2.0', method: 'notifications/progress', params: [] },
  { jsonrpc: '2.0', method: 'x', params: {}, extra: 1 },
  { jsonrpc: '2.0', method: 3 },
  JSON.parse('{"jsonrpc":"2.0","id":1,"result":{},"__proto__":{"polluted":true}}'),
  { jsonrpc: '2.0', id: 1, method: 'ping' },
  { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'nope' } },
  { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'nope', extra: 1 } },
  'text',
  null,
  [],
];

/** What the SDK's schema makes of a value: its parse, or the fact that it throws. */
function sdkParse(value: unknown): { message: unknown } | { threw: true } {
  try {
    return { message: parseJSONRPCMessage(structuredClone(value)) };
  } catch {
    return { threw: true };
  }
}

describe('the shape checks', () => {
  it('recognise only messages the SDK accepts and hands on unchanged', () => {
    let recognised = 0;
    for (const value of MESSAGES) {
      const quick = quickMessage(value);
      if (quick === undefined) continue;
      recognised += 1;
      expect(quick).toBe(value);
      expect(sdkParse(value)).toEqual({ message: value });
    }
    expect(recognised).toBe(5);
    for (const value of MESSAGES.slice(5)) expect(quickMessage(value)).toBeUndefined();
  });

  it('take a result response only where the SDK classifies it as one', () => {
    const plain = MESSAGES.filter(isPlainResult);
    expect(plain).toEqual(MESSAGES.slice(0, 3));
    for (const value of plain) expect(isJSONRPCResultResponse(value)).toBe(true);
  });
});

/** Reads `chunks` with `reader`: each message, or `threw` for an error, in order. */
function readAll(reader: Pick<ReadBuffer, 'append' | 'readMessage'>, chunks: Buffer[]): unknown[] {
  const out: unknown[] = [];
  for (const chunk of chunks) {
    try {
      reader.append(chunk);
    } catch (error) {
      out.push({ appendFailed: (error as Error).message });
      continue;
    }
    for (;;) {
      try {
        const message = reader.readMessage();
        if (message === null) break;
        out.push(structuredClone(message));
      } catch {
        out.push('threw');
      }
    }
  }
  return out;
}

/** `text` cut into chunks at the given byte offsets. */
function chunked(text: string, cuts: number[]): Buffer[] {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > at) chunks.push(bytes.subarray(at, cut));
    at = Math.max(at, cut);
  }
  return chunks;
}

describe('the stdio reader', () => {
  const stream = [
    ...MESSAGES.map((m) => JSON.stringify(m)),
    'not json at all',
    '{"jsonrpc":"2.0","id":7,"result":{"text":"ünïcödé ✓"}}\r',
    '{"truncated": ',
    '',
    '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}',
  ].join('\n');

  it('reads what the SDK ReadBuffer reads, however the output is cut', () => {
    const expected = readAll(new ReadBuffer(), chunked(`${stream}\n`, []));
    expect(expected.length).toBeGreaterThan(20);
    const cuts = [[], [1, 2, 3], [17, 90, 91, 300, 301, 302], Array.from({ length: 200 }, (_, i) => i * 7)];
    for (const at of cuts) {
      const reader = new UpstreamLineReader({ maxBufferSize: 1 << 20, parse: parseJSONRPCMessage });
      expect(readAll(reader, chunked(`${stream}\n`, at))).toEqual(expected);
    }
  });

  it('refuses output past its bound as the SDK does, and reads on after it', () => {
    const line = `${JSON.stringify(MESSAGES[0])}\n`;
    const big = Buffer.from(`${'x'.repeat(200)}`);
    const chunks = [big, Buffer.from(line)];
    const sdk = readAll(new ReadBuffer({ maxBufferSize: 150 }), chunks);
    const ours = readAll(new UpstreamLineReader({ maxBufferSize: 150, parse: parseJSONRPCMessage }), chunks);
    expect(ours).toEqual(sdk);
    expect(ours[0]).toEqual({ appendFailed: 'ReadBuffer exceeded maximum size of 150 bytes' });
    expect(ours[1]).toEqual(MESSAGES[0]);
  });

  it('is what a stdio upstream reads with on the pinned SDK, and only where the transport fits', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [FIXTURE] });
    expect(await readFaster(transport, undefined)).toBe(true);
    expect((transport as unknown as { _readBuffer: unknown })._readBuffer).toBeInstanceOf(UpstreamLineReader);
    expect(await readFaster({}, undefined)).toBe(false);
    expect(await readFaster({ _readBuffer: { append() {} } }, undefined)).toBe(false);
    const source = stdioUpstream({ command: process.execPath, args: [FIXTURE] });
    const opened = (await source.connect()) as unknown as { _readBuffer: unknown };
    expect(opened._readBuffer).toBeInstanceOf(UpstreamLineReader);
  });
});

/** A bare SDK server with the tools the comparison calls, connected to a new client. */
async function pair(direct: boolean) {
  const server = new McpServer({ name: 'bare', version: '1.0.0' });
  const seen = { cancelled: 0 };
  server.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({
    content: [{ type: 'text', text }],
    structuredContent: { text },
  }));
  server.registerTool('broken', { inputSchema: z.object({}) }, async () => {
    throw new Error('it broke');
  });
  server.registerTool('waits', { inputSchema: z.object({}) }, async (_args, ctx) => {
    const token = ctx.mcpReq._meta?.progressToken;
    if (token !== undefined)
      await ctx.mcpReq.notify({
        method: 'notifications/progress',
        params: { progressToken: token, progress: 1, total: 2, message: 'half' },
      });
    await new Promise<void>((resolve) => {
      const cancelled = () => {
        seen.cancelled += 1;
        resolve();
      };
      // In memory, the cancel may have landed while the progress went out.
      if (ctx.mcpReq.signal.aborted) cancelled();
      else ctx.mcpReq.signal.addEventListener('abort', cancelled);
    });
    return { content: [] };
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'test', version: '1.0.0' });
  const unclaimed = clientSide.onmessage === undefined;
  await client.connect(clientSide);
  const classify = clientSide.onmessage;
  const active = unclaimed && direct ? answerDirectly(client, clientSide) : false;
  cleanups.push(
    () => client.close(),
    () => server.close(),
  );
  return { client, seen, active, replaced: clientSide.onmessage !== classify };
}

/** Everything a client sees of one run of the calls. */
async function observe(client: Client, seen: { cancelled: number }) {
  const accept = { '~standard': { version: 1, vendor: 'test', validate: (value: unknown) => ({ value }) } };
  const ask = (name: string, args: Record<string, unknown>, options: Record<string, unknown> = {}) =>
    client.request({ method: 'tools/call', params: { name, arguments: args } }, accept as never, options);
  const outcome = (p: Promise<unknown>) =>
    p.then(
      (value) => ({ value }),
      (error: { code?: unknown; message?: unknown }) => ({ code: error.code, message: error.message }),
    );
  const echoed = await ask('echo', { text: 'hello' });
  const broken = await ask('broken', {});
  const unknown = await outcome(ask('missing', {}));
  const invalid = await outcome(ask('echo', { text: 5 }));
  const progress: unknown[] = [];
  const controller = new AbortController();
  const cancelled = await outcome(
    ask(
      'waits',
      {},
      {
        signal: controller.signal,
        onprogress: (p: unknown) => {
          progress.push(p);
          controller.abort('enough');
        },
      },
    ),
  );
  await vi.waitFor(() => expect(seen.cancelled).toBe(1));
  const after = await ask('echo', { text: 'after' });
  return { echoed, broken, unknown, invalid, progress, cancelled, after };
}

describe("the upstream client's result dispatch", () => {
  it('is in place on the pinned SDK and behaves as the plain client', async () => {
    const fast = await pair(true);
    const plain = await pair(false);
    expect(fast.active).toBe(true);
    expect(fast.replaced).toBe(true);
    expect(plain.active).toBe(false);
    const seenFast = await observe(fast.client, fast.seen);
    const seenPlain = await observe(plain.client, plain.seen);
    expect(seenFast).toEqual(seenPlain);
    expect(seenFast.echoed).toEqual({
      content: [{ type: 'text', text: 'hello' }],
      structuredContent: { text: 'hello' },
    });
    expect(seenFast.progress).toEqual([{ progress: 1, total: 2, message: 'half' }]);
    expect(seenFast.cancelled).toMatchObject({ message: expect.stringContaining('enough') });
  });

  it('is not put on a transport that had its own onmessage', async () => {
    const [clientSide] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: 'test', version: '1.0.0' });
    expect(answerDirectly(client, clientSide)).toBe(false); // not connected: nothing to route past
  });
});

describe('a forwarded call', () => {
  it('asks the upstream for progress only when its caller takes it', async () => {
    const server = createMcpServer({
      logLevel: 'silent',
      integrations: { upstreams: { fx: stdioUpstream({ command: process.execPath, args: [FIXTURE] }) } },
    });
    cleanups.push(() => server.close());
    await upstreamReady(server, 'fx');
    const { client, close } = await connectClient(server);
    cleanups.push(close);
    const metaOf = (result: unknown) =>
      (result as { structuredContent: { meta: Record<string, unknown> | null } }).structuredContent.meta;
    const without = await client.callTool({ name: 'fx__echo', arguments: { text: 'a' } });
    expect(metaOf(without)?.progressToken).toBeUndefined();
    const progress: number[] = [];
    const withProgress = await client.callTool(
      { name: 'fx__echo', arguments: { text: 'b' } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(metaOf(withProgress)?.progressToken).toBeDefined();
    // From the executor, with no caller taking progress, none is asked for either.
    const internal = await server.executor.execute('fx__echo', { text: 'c' });
    expect(metaOf(internal)?.progressToken).toBeUndefined();
    const taken = await server.executor.execute('fx__echo', { text: 'd' }, { onProgress: async () => {} });
    expect(metaOf(taken)?.progressToken).toBeDefined();
  });
});

describe("the executor's context for mcpkit's own handlers", () => {
  type Seen = { hasMcp?: unknown; takesProgress?: unknown; cancellation?: unknown };
  function probeServer(timeoutMs = 60_000) {
    const server = createMcpServer({ logLevel: 'silent' });
    cleanups.push(() => server.close());
    const seen: Seen[] = [];
    const events: string[] = [];
    server.tools.register({
      name: 'probe',
      handler: (_args, ctx) => {
        const c = ctx as unknown as Seen;
        seen.push({ hasMcp: c.hasMcp, takesProgress: c.takesProgress });
        return 'ok';
      },
    });
    server.tools.register({
      name: 'hold',
      timeoutMs,
      handler: (_args, ctx) => {
        const signal = (ctx as unknown as { cancellation: AbortSignal }).cancellation;
        const ignored = () => events.push('removed listener ran');
        signal.addEventListener('abort', ignored);
        signal.removeEventListener('abort', ignored);
        return new Promise((resolve) => {
          signal.addEventListener('abort', () => {
            events.push(
              `aborted=${signal.aborted} reason=${String((signal.reason as Error)?.message ?? signal.reason)}`,
            );
            resolve('late');
          });
        });
      },
    });
    return { server, seen, events };
  }

  it('tells whether the call has an MCP context and takes progress, without building anything', async () => {
    const { server, seen } = probeServer();
    await server.executor.execute('probe', {});
    await server.executor.execute('probe', {}, { onProgress: async () => {}, mcp: undefined });
    const { client, close } = await connectClient(server);
    cleanups.push(close);
    await client.callTool({ name: 'probe', arguments: {} });
    await client.callTool({ name: 'probe', arguments: {} }, { onprogress: () => {} });
    expect(seen).toEqual([
      { hasMcp: false, takesProgress: false },
      { hasMcp: false, takesProgress: true },
      { hasMcp: true, takesProgress: false },
      { hasMcp: true, takesProgress: true },
    ]);
  });

  it("ends its cancellation with the caller's abort, and with the timeout", async () => {
    const cancelled = probeServer();
    const controller = new AbortController();
    const call = cancelled.server.executor.execute('hold', {}, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 20));
    controller.abort('caller left');
    const result = await call;
    expect(result.isError).toBe(true);
    expect(cancelled.events).toEqual(['aborted=true reason=caller left']);

    const timed = probeServer(50);
    const late = await timed.server.executor.execute('hold', {});
    expect(late.isError).toBe(true);
    expect(JSON.stringify(late.content)).toMatch(/timed out/);
    expect(timed.events).toEqual(['aborted=true reason=Tool hold timed out after 50 ms']);
  });
});

describe('results recognised without zod', () => {
  it('are handed on as they are, and a near miss is not taken for a result', async () => {
    const server = createMcpServer({ logLevel: 'silent' });
    cleanups.push(() => server.close());
    const answers: unknown[] = [
      { content: [{ type: 'text', text: 'plain' }] },
      { content: [{ type: 'text', text: 'meta' }], _meta: { a: 1 }, isError: false },
      { content: [{ type: 'text', text: 'x' }], isError: 'yes' },
      { content: [{ type: 'text', text: 5 }] },
      { content: [{ type: 'text', text: 'x' }], _meta: 'not an object' },
    ];
    for (const [i, answer] of answers.entries())
      server.tools.register({ name: `answer${i}`, handler: () => answer as never });
    const results = await Promise.all(answers.map((_, i) => server.executor.execute(`answer${i}`, {})));
    expect(results[0]).toEqual(answers[0]);
    expect(results[1]).toEqual(answers[1]);
    // Not results by the SDK's schema: normalised as any other object (JSON text plus structuredContent).
    for (const i of [2, 3, 4]) {
      expect(results[i]!.structuredContent).toEqual(answers[i]);
      expect(results[i]!.content).toEqual([{ type: 'text', text: JSON.stringify(answers[i]) }]);
    }
  });
});
