import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createMcpServer } from 'mcpkit';
import { listen } from 'mcpkit/node';
import { jsonRpcPost, request } from 'mcpkit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { markStable, messageJson } from '../src/protocol/wireJson.js';
import { postMcp } from './fixtures.js';

describe('messageJson', () => {
  it('writes exactly what JSON.stringify writes, for list answers and everything else', () => {
    const tools = markStable([
      { name: 'a', inputSchema: { type: 'object' } },
      { name: 'b', title: 'B "quoted"' },
    ]);
    const messages: unknown[] = [
      { jsonrpc: '2.0', id: 1, result: { tools } },
      { jsonrpc: '2.0', id: 'x\u2028y', result: { tools, nextCursor: '2', _meta: { a: [1, null] } } },
      { jsonrpc: '2.0', id: 0, result: { prompts: markStable([]) } },
      { jsonrpc: '2.0', id: 2, result: { resourceTemplates: markStable([{ uriTemplate: 'x://{id}' }]) } },
      { jsonrpc: '2.0', id: 3, result: { tools: [{ name: 'not stable' }] } },
      { jsonrpc: '2.0', id: 4, result: { content: [{ type: 'text', text: 'hi' }] } },
      { jsonrpc: '2.0', id: 5, error: { code: -32601, message: 'Method not found' } },
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } },
      { jsonrpc: '2.0', id: 6, result: null },
      { result: { tools } },
    ];
    for (const message of messages) {
      const text = messageJson(message);
      expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(message)));
    }
    // Twice the same message: the same text.
    expect(messageJson(messages[1])).toBe(messageJson(messages[1]));
  });

  it('serialises a stable list once, however many answers carry it', () => {
    let serialised = 0;
    const item = {
      name: 'counted',
      toJSON() {
        serialised++;
        return { name: 'counted' };
      },
    };
    const stable = markStable([item]);
    for (let id = 0; id < 5; id++) {
      expect(JSON.parse(messageJson({ jsonrpc: '2.0', id, result: { tools: stable } }))).toEqual({
        jsonrpc: '2.0',
        id,
        result: { tools: [{ name: 'counted' }] },
      });
    }
    expect(serialised).toBe(1);
    // An array nobody marked is serialised every time.
    const loose = [item];
    messageJson({ jsonrpc: '2.0', id: 9, result: { tools: loose } });
    messageJson({ jsonrpc: '2.0', id: 9, result: { tools: loose } });
    expect(serialised).toBe(3);
  });
});

describe('list answers over a 2025-era session', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function session(options: Parameters<typeof createMcpServer>[0] = {}) {
    const server = createMcpServer({ logLevel: 'silent', ...options });
    const listening = await listen(server, { port: 0 });
    closers.push(async () => {
      await listening.close();
      await server.close();
    });
    const url = `${listening.url}/mcp`;
    const init = await postMcp(url, {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '0' } },
    });
    await init.text();
    const sessionHeaders = {
      'mcp-session-id': init.headers.get('mcp-session-id')!,
      'mcp-protocol-version': '2025-06-18',
    };
    let id = 1;
    const call = async (method: string, params: Record<string, unknown> = {}) => {
      const response = await postMcp(url, { jsonrpc: '2.0', id: id++, method, params }, sessionHeaders);
      expect(response.headers.get('content-type')).toBe('application/json');
      return response.text();
    };
    return { server, call };
  }

  it('answers the same bytes until the catalog changes, then the new catalog', async () => {
    const { server, call } = await session();
    server.tools.registerMany(
      Array.from({ length: 50 }, (_, i) => ({
        name: `tool_${i}`,
        description: `Tool ${i}`,
        inputSchema: { n: z.number().describe('A number') },
        handler: () => 'ok',
      })),
    );
    const first = JSON.parse(await call('tools/list'));
    const second = JSON.parse(await call('tools/list'));
    expect(second.result).toEqual(first.result);
    expect(second.id).toBe(first.id + 1);
    expect(first.result.tools).toHaveLength(50);
    expect(first.result.tools[49]).toEqual({
      name: 'tool_49',
      description: 'Tool 49',
      inputSchema: {
        type: 'object',
        properties: { n: { type: 'number', description: 'A number' } },
        required: ['n'],
      },
    });
    server.tools.register({ name: 'late', handler: () => 'ok' });
    server.tools.disable('tool_0');
    const third = JSON.parse(await call('tools/list'));
    expect(third.result.tools.map((t: { name: string }) => t.name)).toContain('late');
    expect(third.result.tools.map((t: { name: string }) => t.name)).not.toContain('tool_0');
    expect(third.result.tools).toHaveLength(50);
  });

  it('keeps each page of a paginated list, with its cursor', async () => {
    const { server, call } = await session({ pageSize: 2 });
    for (const name of ['a', 'b', 'c']) server.tools.register({ name, handler: () => name });
    server.prompts.register({ name: 'p1', messages: [{ role: 'user', content: 'hi' }] });
    for (let round = 0; round < 2; round++) {
      const page1 = JSON.parse(await call('tools/list'));
      expect(page1.result).toMatchObject({ tools: [{ name: 'a' }, { name: 'b' }], nextCursor: '2' });
      const page2 = JSON.parse(await call('tools/list', { cursor: '2' }));
      expect(page2.result.tools.map((t: { name: string }) => t.name)).toEqual(['c']);
      expect(page2.result.nextCursor).toBeUndefined();
      const prompts = JSON.parse(await call('prompts/list'));
      expect(prompts.result.prompts.map((p: { name: string }) => p.name)).toEqual(['p1']);
    }
    const resources = JSON.parse(await call('resources/list'));
    expect(resources.result).toEqual({ resources: [] });
    server.resources.register({ uri: 'mem://one', name: 'one', read: () => 'x' });
    const after = JSON.parse(await call('resources/list'));
    expect(after.result.resources.map((r: { uri: string }) => r.uri)).toEqual(['mem://one']);
  });

  it('answers a fetch runtime (a real Response, no bridge) with the same list', async () => {
    const server = createMcpServer({
      logLevel: 'silent',
      tools: [{ name: 'unicode', description: 'naïve — ✓', handler: () => 'ok' }],
    });
    closers.push(() => server.close());
    const init = await request(
      server,
      '/mcp',
      jsonRpcPost({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '0' } },
      }),
    );
    await init.text();
    const headers = {
      'mcp-session-id': init.headers.get('mcp-session-id')!,
      'mcp-protocol-version': '2025-06-18',
    };
    for (let id = 1; id <= 2; id++) {
      const response = await request(
        server,
        '/mcp',
        jsonRpcPost({ jsonrpc: '2.0', id, method: 'tools/list' }, headers),
      );
      expect(response.headers.get('content-type')).toBe('application/json');
      const bytes = new Uint8Array(await response.arrayBuffer());
      const body = JSON.parse(new TextDecoder().decode(bytes));
      expect(body).toEqual({
        jsonrpc: '2.0',
        id,
        result: {
          tools: [
            { name: 'unicode', description: 'naïve — ✓', inputSchema: { type: 'object', properties: {} } },
          ],
        },
      });
    }
  });

  it('remembers only the pages it hands out cursors for, not every cursor a client makes up', {
    timeout: 30_000,
  }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = () => {
      gc();
      gc();
      const memory = process.memoryUsage();
      return memory.heapUsed + memory.arrayBuffers;
    };
    for (const pageSize of [undefined, 7]) {
      const server = createMcpServer({
        logLevel: 'silent',
        http: { stateless: true },
        ...(pageSize && { pageSize }),
      });
      closers.push(() => server.close());
      server.tools.registerMany(
        Array.from({ length: 500 }, (_, i) => ({
          name: `tool_${i}`,
          description: `Tool ${i} `.padEnd(200, 'x'),
          handler: () => 'ok',
        })),
      );
      const list = async (cursor?: string) => {
        const body = { jsonrpc: '2.0', id: 1, method: 'tools/list', ...(cursor && { params: { cursor } }) };
        const response = await request(
          server,
          '/mcp',
          jsonRpcPost(body, { 'mcp-protocol-version': '2025-06-18' }),
        );
        return (await response.json()).result;
      };
      expect((await list('3')).tools[0].name).toBe('tool_3');
      const before = used();
      for (let cursor = 1; cursor < 500; cursor++) await list(String(cursor));
      // Without the guard this kept each made-up page's text and bytes: ~80 MB for 500 tools.
      expect(used() - before).toBeLessThan(10e6);
    }
  });
});
