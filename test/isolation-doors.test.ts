/**
 * Isolated tools behind real doors: a cancel over WebSocket (`notifications/cancelled`) and a REST
 * client that goes away stop the work in the worker, not just the wait. Each pool has one worker, so
 * the next call answers only if the spinning one was really terminated. And the same tools over
 * Streamable HTTP to SDK clients of both protocol eras.
 */
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMcpServer, type McpKitServer } from 'mcpkit';
import { createIsolation, type Isolation, type IsolationLevel, type Listening, listen } from 'mcpkit/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { rawPeer } from './websocketHelpers.js';

const TOOLS = new URL('./fixtures/isolated/tools.mjs', import.meta.url);

describe.each<IsolationLevel>(['worker', 'process'])('cancelling an isolated call (%s level)', (level) => {
  let isolation: Isolation;
  let server: McpKitServer;
  let listening: Listening;

  async function start(): Promise<void> {
    isolation = createIsolation({ maxWorkers: 1 });
    server = createMcpServer({ logLevel: 'silent' });
    // One pool for both tools (same level and limits), one worker in it.
    const isolate = { level, timeoutMs: 120_000, graceMs: 50, maxWorkers: 1 } as const;
    server.tools.register(isolation.tool(TOOLS, { name: 'spin', isolate: { ...isolate, export: 'spin' } }));
    server.tools.register(
      isolation.tool(TOOLS, { name: 'echo', inputSchema: { text: z.string() }, isolate }),
    );
    listening = await listen(server, { port: 0 });
  }
  afterEach(async () => {
    await listening.close();
    await isolation.close();
  });

  it('stops the work on notifications/cancelled over WebSocket', async () => {
    await start();
    const peer = await rawPeer(`${listening.url.replace(/^http/, 'ws')}/mcp`);
    const spinning = peer.request('tools/call', { name: 'spin', arguments: {} }, 'spin-1');
    await expect.poll(() => isolation.stats().workers).toBe(1);
    peer.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'spin-1' } });
    // The single worker was spinning: the echo gets it only once the spinner is terminated.
    const echo = await peer.request('tools/call', { name: 'echo', arguments: { text: 'next' } });
    expect(echo.result.structuredContent).toEqual({ echoed: 'next', tool: 'echo', origin: 'websocket' });
    void spinning;
    peer.socket.terminate();
  }, 30_000);

  it('stops the work when a REST client goes away', async () => {
    await start();
    const controller = new AbortController();
    const spinning = fetch(`${listening.url}/tools/spin/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: {} }),
      signal: controller.signal,
    }).catch((error: unknown) => error);
    await expect.poll(() => isolation.stats().workers).toBe(1);
    controller.abort();
    await spinning;
    const echo = await fetch(`${listening.url}/tools/echo/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ arguments: { text: 'after' } }),
    });
    expect(await echo.json()).toMatchObject({ structuredContent: { echoed: 'after', origin: 'rest' } });
  }, 30_000);
});

describe('an isolated tool over /mcp in both protocol eras', () => {
  let isolation: Isolation;
  let listening: Listening;
  beforeAll(async () => {
    isolation = createIsolation({ maxWorkers: 1 });
    const server = createMcpServer({ logLevel: 'silent' });
    server.tools.register(
      isolation.tool(TOOLS, {
        name: 'echo',
        inputSchema: { text: z.string() },
        isolate: { level: 'worker' },
      }),
    );
    server.tools.register(
      isolation.tool(TOOLS, { name: 'chatty', isolate: { level: 'process', export: 'chatty' } }),
    );
    listening = await listen(server, { port: 0 });
  });
  afterAll(async () => {
    await listening.close();
    await isolation.close();
  });

  type Progress = { onprogress: (p: { progress: number }) => void };
  /** A connected client's `callTool`: the 1.x client takes its options third, after a result schema. */
  type Call = (
    params: { name: string; arguments: Record<string, unknown> },
    options?: Progress,
  ) => Promise<any>;
  const clients: Record<string, () => Promise<{ call: Call; close(): Promise<void> }>> = {
    'SDK 1.x client (2025-era session)': async () => {
      const client = new ClientV1({ name: 'iso', version: '1' });
      await client.connect(new HttpV1(new URL(`${listening.url}/mcp`)));
      return {
        call: (params, options) => client.callTool(params, undefined, options),
        close: () => client.close(),
      };
    },
    'SDK v2 client (2026-07-28, auto negotiation)': async () => {
      const client = new ClientV2({ name: 'iso', version: '1' }, { versionNegotiation: { mode: 'auto' } });
      await client.connect(new HttpV2(new URL(`${listening.url}/mcp`)));
      return { call: (params, options) => client.callTool(params, options), close: () => client.close() };
    },
  };

  for (const [name, connect] of Object.entries(clients)) {
    it(`answers with structured content and progress: ${name}`, async () => {
      const client = await connect();
      const echoed = await client.call({ name: 'echo', arguments: { text: 'over http' } });
      expect(echoed.structuredContent).toEqual({ echoed: 'over http', tool: 'echo', origin: 'http' });
      const progress: number[] = [];
      const chatted = await client.call(
        { name: 'chatty', arguments: {} },
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(chatted.content).toEqual([{ type: 'text', text: 'chatted' }]);
      expect(progress).toEqual([1, 2]);
      await client.close();
    }, 30_000);
  }
});
